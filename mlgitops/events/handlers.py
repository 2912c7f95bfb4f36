"""The handlers the dispatcher routes to: the pull-request run, the deploy, ChatOps.

Each takes the event and the :class:`~mlgitops.events.outcome.Context` and returns an
:class:`~mlgitops.events.outcome.Outcome`; none prints (``report.present`` does)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlgitops.errors import EXIT_OK, InputError, MlopsError
from mlgitops.events.outcome import Context, Outcome


def pull_request(event: Any, ctx: Context) -> Outcome:
    """A pull request, a merge queue's group, or the checked-out branch: train, gate, comment."""
    from mlgitops.config.loader import load_config
    from mlgitops.config.workspace import is_member
    from mlgitops.forges import GATE_CONTEXT
    from mlgitops.forges.factory import pull_request_forge
    from mlgitops.forges.local import LocalForge
    from mlgitops.run.runner import queue_line, run_pull_request

    workspace = ctx.workspace()
    if workspace is not None:
        from mlgitops.events.workspace import pull_request as many

        return many(event, ctx, workspace)
    root, cpath, rel = ctx.config_paths()
    cfg = load_config(cpath, display=rel)
    forge = pull_request_forge(ctx.forge, ctx.token, event, root)
    context = GATE_CONTEXT
    if ctx.config is not None and is_member(root, cpath):  # one model of a workspace, named with --config: its own context
        from mlgitops.run.workspace import model_context

        context = model_context(cfg.config.name)
    outcome = run_pull_request(cfg, root, rel, event, forge, context=context)
    queue = event.kind == "merge_group"  # no PR comment: the status/check run is the result
    where = None if queue else str(forge.comment_path(event.pr_key).relative_to(root)) if isinstance(forge, LocalForge) else outcome.comment.url
    notes = [n for n in [outcome.comment.note, *getattr(forge, "warnings", [])] if n]
    return Outcome(outcome.exit_code, "merge_group" if queue else "pull_request", message=outcome.report.summary, report=outcome.report, where=where, queue_line=queue_line(event) if queue else None, notes=notes)


def deploy_outputs(outcome: Any) -> dict[str, str]:
    """The deploy action's step outputs (actions/deploy/action.yml declares these)."""
    outputs = {"deploy-message": outcome.message}
    if outcome.version is not None:
        outputs["version"] = str(outcome.version.version)
    if outcome.pull is not None:
        outputs["pull-url"] = outcome.pull.url
    return outputs


def deploy(event: Any, ctx: Context) -> Outcome:
    """A push to the default branch (or ``mlops deploy``): reuse the reviewed bytes or
    train, gate against what is deployed, register, open the promotion PRs."""
    from mlgitops.config.loader import load_config
    from mlgitops.deploy.ops import deploy_model
    from mlgitops.forges.factory import deploy_targets

    workspace = ctx.workspace()
    if workspace is not None:
        from mlgitops.events.workspace import deploy as many

        return many(event, ctx, workspace)
    root, cpath, rel = ctx.config_paths()
    cfg = load_config(cpath, display=rel)
    result = deploy_model(cfg, root, rel, event, ctx.forge, deploy_targets(cfg, root, ctx.forge, ctx.token))
    return Outcome(result.exit_code, "deploy", message=result.message, deploy=result, outputs=deploy_outputs(result))


def chatops(event: Any, ctx: Context) -> Outcome:
    """An issue_comment: a ``/mlops`` command (see ``events.chatops``), decided before
    anything runs; ``ctx.check_only`` decides and writes nothing."""
    from mlgitops.config.loader import load_config
    from mlgitops.events.chatops import CommentEvent, decide, environment_pair, handle, rollback_args
    from mlgitops.forges.factory import chat_forge, deploy_targets

    root, cpath, rel = ctx.config_paths()
    chat, use_github = chat_forge(ctx.forge, ctx.token, event, root)
    cfg = workspace = members = None
    try:
        workspace = ctx.workspace()  # a workspace: /mlops retrain retrains every model
        cfg = load_config(cpath, display=rel) if workspace is None else None
        if workspace is not None:
            from mlgitops.config.workspace import load_members

            members = load_members(workspace)  # the help names them; promote/rollback pick one
    except MlopsError:
        pass  # help and refusals still answer; a command that needs the config reports it below
    models = [c.config.name for c in members] if members is not None else None
    comment = CommentEvent(event.issue_number, event.pr_number is not None, event.comment_id, event.comment_body, event.actor, event.actor_is_bot, event.action, event.repo)
    if ctx.check_only:
        decision = decide(comment, chat, cfg, models)
        name = decision.command.name if decision.command else ""
        outputs = {"chatops-command": name, "chatops-run": "true" if decision.kind == "run" else "false"}
        return Outcome(EXIT_OK, "chatops-check", message=decision.message, decision=decision.kind, command=name or None, outputs=outputs)
    failed_gate: list[int] = []

    def run_command(command: Any, pull: dict[str, Any] | None) -> str:
        from mlgitops.deploy.promote import promote, rollback
        from mlgitops.deploy.registry.urls import registry_for

        if workspace is not None and command.name == "retrain":
            text, code = _retrain(None, root, rel, event, pull or {}, chat, lambda pr, why: _retrain_workspace(pr, ctx, workspace, chat, why))
            failed_gate.append(code)
            return text
        if workspace is not None:  # `/mlops promote MODEL ENV ...`: that model's config, its own promotion branches
            loaded, command = workspace_model(workspace, members, command)
        else:
            if cfg is None:
                ctx.workspace()  # a broken mlops-workspace.yaml: its own error
            loaded = cfg if cfg is not None else load_config(cpath, display=rel)  # raises the config's own error
        kind = "github" if use_github else "local"
        base = workspace.root if workspace is not None else root
        if command.name == "promote":
            source, dest = environment_pair(loaded, command)
            outcome = promote(loaded, deploy_targets(loaded, base, kind, ctx.token), source, dest, registry_for(loaded))
        elif command.name == "rollback":
            env, version = rollback_args(command)
            outcome = rollback(loaded, deploy_targets(loaded, base, kind, ctx.token), env, version, registry_for(loaded))
        else:
            text, code = _retrain(loaded, root, rel, event, pull or {}, chat)
            failed_gate.append(code)
            return text
        return outcome.message + (f"\n\n{outcome.pull.url}" if outcome.pull is not None else "")

    result = handle(comment, chat, cfg, run_command, models)
    name = result.command.name if result.command else ""
    outputs = {"chatops-command": name, "chatops-run": "true" if "eyes" in result.reactions else "false", "chatops-reply": result.reply_url or ""}
    code = result.exit_code or (failed_gate[0] if failed_gate else EXIT_OK)  # a retrain whose gate fails is a failure
    return Outcome(code, "chatops", message=result.message, decision="run" if "eyes" in result.reactions else None, command=name or None, outputs=outputs)


def workspace_model(workspace: Any, members: list[Any] | None, command: Any) -> tuple[Any, Any]:
    """In a workspace, ``promote``/``rollback`` name the model first: its loaded config
    (among ``members``, loaded already unless that failed), and the command with the
    model's name taken off its arguments."""
    from dataclasses import replace

    from mlgitops.config.workspace import load_members
    from mlgitops.events.chatops import PREFIX, clip

    configs = members if members is not None else load_members(workspace)  # a broken member raises its own error here
    names = [c.config.name for c in configs]
    usage = {"promote": "MODEL ENV [from SOURCE]", "rollback": "MODEL ENV [to VERSION]"}[command.name]
    example = f"`{PREFIX} {command.name} {names[0]} {'production' if command.name == 'promote' else 'staging'}`"
    if not command.args:
        raise InputError(f"name the model: `{PREFIX} {command.name} {usage}` (this repository's models, in mlops-workspace.yaml: {', '.join(names)})", hint=f"e.g. {example}")
    chosen = next((c for c in configs if c.config.name == command.args[0]), None)
    if chosen is None:
        raise InputError(f"no model {clip(command.args[0])!r} in mlops-workspace.yaml (models: {', '.join(names)}); expected `{PREFIX} {command.name} {usage}`", hint=f"e.g. {example}")
    return chosen, replace(command, args=command.args[1:])


def _retrain_workspace(pr: Any, ctx: Context, workspace: Any, chat: Any, why: str) -> tuple[str, int]:
    """`/mlops retrain` in a workspace: every model, trained afresh: (summary, exit code)."""
    from mlgitops.events.workspace import pull_request as many

    outcome = many(pr, ctx, workspace, retrain=why, forge=chat)
    lines = [f"- `{m.name}`: {m.message}" for m in outcome.models]
    return "\n".join([outcome.message.removeprefix("PASS ").removeprefix("FAIL "), "", *lines]), outcome.exit_code


def _retrain(cfg: Any, root: Path, rel: str, event: Any, pull: dict[str, Any], chat: Any, run: Any = None) -> tuple[str, int]:
    """`/mlops retrain`: the PR flow on the PR's head, training afresh: (reply, exit code)."""
    from mlgitops.events.payloads import Event, localize
    from mlgitops.gitrepo import resolve
    from mlgitops.run.runner import run_pull_request

    want = pull.get("head_sha") or resolve(root, "HEAD")
    if pull.get("state") not in (None, "open"):
        raise InputError(f"PR #{event.issue_number} is {pull.get('state')}: only an open pull request is retrained")
    base_ref = pull.get("base_ref") or "main"
    pr = Event(kind="pull_request", action="synchronize", repo=event.repo, pr_number=event.issue_number, base_ref=base_ref, base_sha=pull.get("base_sha"), head_ref=pull.get("head_ref"), head_sha=want, actor=event.actor)
    pr = localize(pr, root)  # refuses a checkout that is not the PR's head (or a merge of it)
    why = f"`/mlops retrain` by @{event.actor}"
    if run is not None:  # a workspace: every model
        summary, code = run(pr, why)
        return f"retrained: {summary}\n\nEach model's comment is updated.", code
    outcome = run_pull_request(cfg, root, rel, pr, chat, retrain=why)
    where = outcome.comment.url or "the pull request's comment"
    return f"retrained: {outcome.report.summary}\n\nThe comment is updated: {where}", outcome.exit_code
