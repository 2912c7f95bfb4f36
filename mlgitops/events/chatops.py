"""ChatOps: ``/mlops <command>`` in a comment (an ``issue_comment`` event).

Who may run what is asked of the forge (GitHub's collaborator-permission endpoint),
never read from the payload: ``author_association`` in a delivery is not a
permission. Commands that change something need write access (GitHub's ``write``
or ``admin``; ``maintain`` reads as ``write``, ``triage`` as ``read``) and a pull
request whose head is a branch of this repository: a fork's code must not run with
this repository's token. Every command is acknowledged with a reaction and a reply:
``eyes`` when accepted, then ``rocket`` (done) or ``confused`` (it failed); ``-1``
when refused; ``+1`` for help; ``confused`` for an unknown command, with the help.

Anyone can write a comment, so what it says is quoted short and inert (``code``: a
code span, where GitHub renders no Markdown and pings no @mention), every reply is
fitted to GitHub's limit by the forge, and answering someone who may not run a
command never fails the run: a reply GitHub refuses is a note, not exit 3.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from mlgitops.errors import EXIT_INTERNAL, EXIT_OK, InputError, MlopsError

PREFIX = "/mlops"
MARKER = "<!-- mlgitops:chatops -->"
WRITERS = ("admin", "write")
QUOTE_LIMIT = 100  # characters of a comment quoted back; the rest is "…"

USAGE = {
    "retrain": "`/mlops retrain`: train this pull request's model again from scratch (ignoring the cache), re-run its gates and update its comment",
    "promote": "`/mlops promote ENV [from SOURCE]`: open the PR that deploys to ENV the model SOURCE runs (default: the environment before ENV)",
    "rollback": "`/mlops rollback ENV [to VERSION]`: open the PR that rolls ENV back to its previous model (or to registry VERSION)",
    "help": "`/mlops help`: this list",
}


@dataclass(frozen=True)
class Command:
    name: str  # one of USAGE, or what the user typed when unknown
    args: tuple[str, ...]
    line: str  # the comment line, as typed

    @property
    def known(self) -> bool:
        return self.name in USAGE


@dataclass
class ChatOutcome:
    message: str  # one line for the terminal / job log
    exit_code: int = EXIT_OK
    command: Command | None = None
    reactions: list[str] = field(default_factory=list)
    reply_url: str | None = None


def clip(text: str, limit: int = QUOTE_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, "…" marking a cut."""
    return text if len(text) <= limit else text[:limit] + "…"


def code(text: str, limit: int = QUOTE_LIMIT) -> str:
    """``text`` (clipped) as an inline code span that nothing in it can end early:
    the fence is one backtick longer than any run of backticks inside (CommonMark),
    padded with a space where the text starts or ends with a backtick or space."""
    import re

    inner = clip(text, limit)
    fence = "`" * (max((len(run) for run in re.findall(r"`+", inner)), default=0) + 1)
    pad = " " if inner[:1] in ("`", " ") or inner[-1:] in ("`", " ") else ""
    return f"{fence}{pad}{inner}{pad}{fence}"


def parse(body: str | None) -> Command | None:
    """The first ``/mlops`` line outside code blocks and quotes, else None."""
    fenced = False
    for raw in (body or "").splitlines():
        line = raw.strip()
        if line.startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if fenced or not line.startswith(PREFIX):
            continue
        words = line.split()
        if words[0] != PREFIX:  # "/mlopsx" is someone else's command
            continue
        if len(words) == 1:
            return Command("help", (), line)
        return Command(words[1].lower(), tuple(words[2:]), line)
    return None


WORKSPACE_USAGE = {
    "promote": "`/mlops promote MODEL ENV [from SOURCE]`: open the PR that deploys MODEL to ENV from the environment SOURCE (default: the environment before ENV)",
    "rollback": "`/mlops rollback MODEL ENV [to VERSION]`: open the PR that rolls MODEL in ENV back to its previous version (or to registry VERSION)",
}


def help_text(cfg: Any | None, models: list[str] | None = None) -> str:
    """The command list; ``models``: a workspace's model names (promote and rollback
    then name the model first)."""
    envs = list(cfg.config.deploy.environments) if cfg is not None else []
    usage = {**USAGE, **WORKSPACE_USAGE} if models else USAGE
    lines = ["Commands (people with write access to this repository):", "", *[f"- {text}" for text in usage.values()]]
    if models:
        lines += ["", f"Models (mlops-workspace.yaml): {', '.join(f'`{m}`' for m in models)}."]
    if envs:
        lines += ["", f"Environments: {', '.join(f'`{e}`' for e in envs)}."]
    return "\n".join(lines)


def reply_marker(comment_id: int | None) -> str:
    """The reply's first line: hidden, and naming the command's comment so that a
    reply whose answer was lost is found rather than posted twice."""
    return f"<!-- mlgitops:chatops reply-to={comment_id} -->" if comment_id is not None else MARKER


def _reply_text(command: Command | None, actor: str | None, text: str, comment_id: int | None = None) -> str:
    quoted = f"> {code(command.line)}\n\n" if command is not None else ""
    who = f"@{actor}: " if actor else ""  # a GitHub login: letters, digits and hyphens
    return f"{reply_marker(comment_id)}\n{quoted}{who}{text}\n"


class Conversation:
    """One command's acknowledgements on the forge: reactions on the comment, one reply."""

    def __init__(self, forge: Any, event: Any, command: Command | None) -> None:
        self.forge, self.event, self.command = forge, event, command
        self.outcome = ChatOutcome("", command=command)

    def react(self, content: str) -> None:
        if self.event.comment_id is not None:
            self.forge.react(self.event.number, self.event.comment_id, content)
        self.outcome.reactions.append(content)

    def reply(self, text: str) -> None:
        key = reply_marker(self.event.comment_id)
        self.outcome.reply_url = self.forge.reply(self.event.number, _reply_text(self.command, self.event.actor, text, self.event.comment_id), key=key)


@dataclass(frozen=True)
class CommentEvent:
    """What ChatOps needs of an issue_comment event."""

    number: int  # the issue or PR the comment is on
    on_pull: bool
    comment_id: int | None
    body: str | None
    actor: str | None
    actor_is_bot: bool
    action: str | None
    repo: str | None


@dataclass
class Decision:
    """What to do with a comment, decided before anything is written."""

    kind: str  # ignore | help | unknown | refuse | run
    message: str  # one line for the terminal / job log
    command: Command | None = None
    text: str = ""  # the reply for help, unknown and refuse
    pull: dict[str, Any] | None = None


def decide(event: CommentEvent, forge: Any, cfg: Any | None, models: list[str] | None = None) -> Decision:
    """Parse and authorize; reads the forge (permission, the PR) but writes nothing.
    ``models``: a workspace's model names, for the help."""
    if event.action not in (None, "created"):
        return Decision("ignore", f"nothing to do: comment {event.action}; commands run when a comment is created")
    if event.actor_is_bot:
        return Decision("ignore", "nothing to do: the comment is a bot's; bots' comments are never commands")
    command = parse(event.body)
    if command is None:
        return Decision("ignore", f"nothing to do: the comment holds no `{PREFIX}` command")
    if command.name == "help":
        return Decision("help", "answered /mlops help", command, help_text(cfg, models))
    if not command.known:
        return Decision("unknown", f"unknown command {clip(command.name)!r}: answered with the help", command, f"I do not know {code(f'{PREFIX} {command.name}')}.\n\n{help_text(cfg, models)}")
    where = event.repo or "this repository"
    permission = forge.permission(event.actor) if event.actor else "none"
    if permission not in WRITERS:
        return Decision(
            "refuse",
            f"refused {command.name}: {event.actor} has {permission} access, not write",
            command,
            f"sorry, {code(command.line)} needs write access to {where}, and GitHub says your access is `{permission}`. "
            "A maintainer can run it for you; `/mlops help` works for everyone.",
        )
    pull = None
    if event.on_pull:
        pull = forge.pull_info(event.number)
        if pull.get("fork"):
            return Decision(
                "refuse",
                f"refused {command.name}: PR #{event.number} comes from a fork",
                command,
                f"sorry, commands are not taken on pull requests from forks: this one comes from `{pull.get('head_repo') or 'a deleted fork'}`, "
                f"and {code(command.line)} would run with {where}'s token. Push the branch to {where} and open the pull request from there, "
                "or run the command from a clone (`mlops promote`, `mlops rollback`).",
                pull,
            )
    elif command.name == "retrain":
        return Decision("refuse", "refused retrain: the comment is on an issue, not a pull request", command, "`/mlops retrain` works in pull request comments: it retrains that pull request's model.")
    return Decision("run", f"accepted {command.name} from {event.actor} ({permission})", command, pull=pull)


def handle(
    event: CommentEvent,
    forge: Any,
    cfg: Any | None,
    run_command: Callable[[Command, dict[str, Any] | None], str],
    models: list[str] | None = None,
) -> ChatOutcome:
    """Decide, acknowledge and run one comment's command.

    ``run_command(command, pull)`` does the work (``pull`` is the PR's head/base, or
    None on an issue) and returns the reply's text; an MlopsError it raises becomes
    a ``confused`` reaction and a reply with the error and its hint.
    """
    decision = decide(event, forge, cfg, models)
    if decision.kind == "ignore":
        return ChatOutcome(decision.message)
    talk = Conversation(forge, event, decision.command)
    out = talk.outcome
    out.message = decision.message
    if decision.kind != "run":
        try:
            talk.react({"help": "+1", "unknown": "confused", "refuse": "-1"}[decision.kind])
            talk.reply(decision.text)
        except MlopsError as exc:
            if exc.exit_code != EXIT_INTERNAL:
                raise
            # GitHub failing us (an outage, a rate limit) while answering a comment
            # that runs nothing: the comment's author is told nothing, but nothing
            # broke that a maintainer must fix, so no exit 3 (and no alert) on
            # anyone's say-so.
            out.message += f"; the answer could not be posted: {exc.message}"
        return out
    command = decision.command
    assert command is not None
    talk.react("eyes")
    try:
        text = run_command(command, decision.pull)
    except MlopsError as exc:
        talk.react("confused")
        hint = f"\n\nHint: {exc.hint}" if exc.hint else ""
        talk.reply(f"{code(command.line)} failed: {exc.message}{hint}")
        out.message = f"{command.name} failed: {exc.message}"
        out.exit_code = exc.exit_code
        return out
    except Exception as exc:
        # A bug of ours: still answer the person, then let the CLI write its crash log.
        talk.react("confused")
        talk.reply(f"{code(command.line)} failed with an internal error ({type(exc).__name__}); the job's log has the details.")
        raise
    talk.react("rocket")
    talk.reply(text)
    out.message = f"ran {command.name}: {text.splitlines()[0]}"
    return out


def environment_pair(cfg: Any, command: Command) -> tuple[str, str]:
    """``promote ENV [from SOURCE]`` -> (source, dest); SOURCE defaults to the
    environment listed before ENV."""
    envs = list(cfg.config.deploy.environments)
    args = command.args
    if not args:
        raise InputError(f"name the environment: `{PREFIX} promote ENV` (environments: {', '.join(envs) or 'none configured'})")
    dest = args[0]
    if len(args) == 3 and args[1].lower() == "from":
        return args[2], dest
    if len(args) != 1:
        raise InputError(f"{code(command.line)}: expected `{PREFIX} promote ENV [from SOURCE]`")
    if dest not in envs:
        raise InputError(f"no environment {clip(dest)!r} in deploy.environments ({', '.join(envs) or 'none configured'})")
    at = envs.index(dest)
    if at == 0:
        raise InputError(f"{dest} is the first environment: merges to the default branch deploy to it", hint=f"promote to a later environment, or name the source: `{PREFIX} promote {dest} from SOURCE`")
    return envs[at - 1], dest


def rollback_args(command: Command) -> tuple[str, int | None]:
    """``rollback ENV [to VERSION]`` -> (env, version or None)."""
    args = command.args
    if len(args) == 1:
        return args[0], None
    if len(args) == 3 and args[1].lower() == "to" and args[2].lstrip("v").isdigit():
        return args[0], int(args[2].lstrip("v"))
    raise InputError(f"{code(command.line)}: expected `{PREFIX} rollback ENV [to VERSION]`")
