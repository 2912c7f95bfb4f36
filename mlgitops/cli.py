"""The `mlops` command. Commands are thin: parse options, call the core, return a code.

Heavy imports (pandas, scikit-learn, Prefect) happen inside commands, so `mlops --help`
and `mlops validate` stay fast.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

import click

from mlgitops.errors import EXIT_INTERNAL, EXIT_OK, ConfigError, InputError, MlopsError

MAX_SHOWN_PROBLEMS = 50  # a config with thousands of mistakes gets the first ones
PROBLEM_CHARS = 2_000  # one problem line (it may quote a key the user wrote)


def guarded(fn: Callable[..., int]) -> Callable[..., None]:
    """Map our errors to their exit codes; anything else is exit 3 with a log."""

    def wrapper(*args: Any, **kwargs: Any) -> None:
        from mlgitops.forges import alerts

        alerts.reset()
        try:
            code = fn(*args, **kwargs)
        except MlopsError as exc:
            from mlgitops.forges import alerts
            from mlgitops.forges.actions_runtime import annotate_errors

            text = format_error(exc)
            annotate_errors(text)  # ::error file=mlops.yaml,line=N:: on an Actions runner
            click.echo(text, err=True)
            alerts.send("run_failure", f"`mlops {fn.__name__}` failed (exit {exc.exit_code})", text.splitlines()[:5])
            _alert_notes()
            sys.exit(exc.exit_code)
        except (KeyboardInterrupt, click.exceptions.Exit, click.ClickException):
            raise
        except Exception as exc:  # noqa: BLE001 - the one place that catches everything
            _crashed(fn.__name__, exc)
            sys.exit(EXIT_INTERNAL)
        _alert_notes()
        sys.exit(code)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


def _crashed(command: str, exc: Exception) -> None:
    """Exit 3's message, log and alert; nothing here may raise (see crashlog)."""
    from mlgitops.crashlog import safe_text, write_crash_log

    log, why = write_crash_log(exc)
    where = f"a log with versions and the traceback is at {log}\n  please attach it when reporting the problem" if log else f"no log could be written ({why})"
    try:
        click.echo(f"internal error: {type(exc).__name__}: {safe_text(exc)}\n  {where}", err=True)
    except Exception:  # noqa: BLE001 - e.g. a closed stderr; the exit code still tells
        pass
    try:
        from mlgitops.forges import alerts

        alerts.send("run_failure", f"`mlops {command}` crashed (exit 3): {type(exc).__name__}", [safe_text(exc, 300)])
        _alert_notes()
    except Exception:  # noqa: BLE001 - an alert is best effort; exit 3 is what counts
        pass


def _alert_notes() -> None:
    from mlgitops.forges import alerts

    for note in alerts.NOTES:
        click.echo(f"note: {note}", err=True)
    alerts.NOTES.clear()


def format_error(exc: MlopsError) -> str:
    """``error: <file:line:col>: <key>: <what>`` per problem, then the hint."""
    problems = exc.problems if isinstance(exc, ConfigError) else [exc.message]
    shown = [p if len(p) <= PROBLEM_CHARS else p[:PROBLEM_CHARS] + "..." for p in problems[:MAX_SHOWN_PROBLEMS]]
    if len(problems) > MAX_SHOWN_PROBLEMS:
        shown.append(f"... and {len(problems) - MAX_SHOWN_PROBLEMS} more problem(s)")
    text = "\n".join(f"error: {p}" for p in shown)
    return text + (f"\n  hint: {exc.hint}" if exc.hint else "")


def _find_config(repo: str | None, config: str | None) -> tuple[Path, Path, str]:
    """(repo root, config path, config path relative to the root)."""
    from mlgitops.gitrepo import repo_root

    start = Path(repo or ".").resolve()
    if config:
        cpath = Path(config)
        cpath = cpath if cpath.is_absolute() else (Path.cwd() / cpath)
        root = repo_root(cpath.parent if cpath.parent.exists() else start)
    else:
        root = repo_root(start)
        cpath = root / "mlops.yaml"
    try:
        rel = cpath.resolve().relative_to(root).as_posix()
    except ValueError:
        rel = cpath.name
    return root, cpath, rel


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mlgitops", prog_name="mlops")
def main() -> None:
    """GitOps CI/CD for ML models: train, gate, comment, export, promote.

    Exit codes: 0 pass, 1 a gate failed, 2 invalid input, 3 internal error.
    """


@main.command()
@click.option("--base", default=None, help="Branch or commit the PR targets (default: main, or the payload's base).")
@click.option("--event-path", type=click.Path(dir_okay=False), default=None, help="A GitHub event payload to run for (default on Actions: $GITHUB_EVENT_PATH, unless --base is given).")
@click.option("--event-name", default=None, help="The event's name (default: $GITHUB_EVENT_NAME when set, also with --event-path; else told from the payload). pull_request_target is refused.")
@click.option("--config", "config", default=None, help="Path of mlops.yaml (default: at the repo root).")
@click.option("--repo", default=None, help="Repository folder (default: the current one).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.option("--forge", type=click.Choice(["auto", "local", "github"]), default="auto", show_default=True, help="Where the comment and status go; auto: GitHub on an Actions runner with a token and a PR or merge_group event, else local files under .mlops/.")
@click.option("--token", default=None, help="GitHub token (default: $GITHUB_TOKEN). Never printed.")
@click.option("--check-command", is_flag=True, help="For a comment (issue_comment) event: only decide whether its /mlops command would run (parse, permission, fork); write nothing.")
@click.option("--deployment", default=None, envvar="MLOPS_DEPLOYMENT", help="Run the event on Prefect workers through this deployment (FLOW/DEPLOYMENT, e.g. mlops-event/mlops-event; needs PREFECT_API_URL) and wait for it. Default: $MLOPS_DEPLOYMENT, else run here.")
@click.option("--wait", "wait_seconds", default=3600, show_default=True, type=click.IntRange(1, 86_400), help="With --deployment: seconds to wait for the flow run to finish.")
@guarded
def run(base: str | None, event_path: str | None, event_name: str | None, config: str | None, repo: str | None, as_json: bool, forge: str, token: str | None, check_command: bool, deployment: str | None, wait_seconds: int) -> int:
    """Run the flow an event calls for: the pull-request flow for the checked-out
    branch, a pull_request payload or a merge queue's merge_group payload (the gate's
    status and check run only, no comment), the deploy flow for a push to the default
    branch, a ChatOps command for an issue_comment payload."""
    from rich.console import Console

    from mlgitops.config.loader import load_config
    from mlgitops.events.payloads import event_from_payload, local_event, localize
    from mlgitops.forges.local import LocalForge
    from mlgitops.report.render import print_terminal, render_json
    from mlgitops.run.runner import run_pull_request

    from mlgitops.forges import actions_runtime

    if as_json:
        actions_runtime.STREAM = sys.stderr  # keep stdout pure JSON
    root, cpath, rel = _find_config(repo, config)
    if not event_path and not base and os.environ.get("GITHUB_EVENT_PATH"):
        # On a GitHub Actions runner: the event that started the workflow.
        event_path = os.environ["GITHUB_EVENT_PATH"]
    if event_path and not event_name:
        # The runner's word for the event beats a guess from the payload's shape: a
        # pull_request_target payload looks exactly like a pull_request one (issue 11).
        event_name = os.environ.get("GITHUB_EVENT_NAME") or None
    if deployment and not check_command:
        return run_through_deployment(deployment, root, event_path, event_name, config, forge, wait_seconds)
    if event_path:
        event = event_from_payload(Path(event_path), event_name)
        ok, why = event.should_run()
        if event.kind == "push" and not event.deleted and event.ref_type == "branch" and event.head_ref == (event.default_branch or "main"):
            # A merge to the default branch: the deploy flow.
            event = localize(event, root)
            return run_deploy_command(root, *_find_config(repo, config)[1:], event, forge, token, as_json)
        if event.kind == "issue_comment":
            return run_chatops_command(root, cpath, rel, event, forge, token, check_command)
        if not ok:
            click.echo(f"nothing to do: {why}")
            return EXIT_OK
        if base:
            event = type(event)(**{**event.to_dict(), "base_ref": base, "base_sha": None})
        event = localize(event, root)
    else:
        event = local_event(root, base or "main")
    cfg = load_config(cpath, display=rel)
    target = _make_forge(forge, token, event, root)
    outcome = run_pull_request(cfg, root, rel, event, target)
    queue = event.kind == "merge_group"  # no PR comment: the status/check run is the result
    where = None if queue else str(target.comment_path(event.pr_key).relative_to(root)) if isinstance(target, LocalForge) else outcome.comment.url
    if as_json:
        click.echo(render_json(outcome.report))
    else:
        print_terminal(outcome.report, Console(highlight=False), where)
    if queue:
        from mlgitops.run.runner import queue_line

        click.echo(queue_line(event), err=as_json)
    for note in [outcome.comment.note, *getattr(target, "warnings", [])]:
        if note:
            click.echo(f"note: {note}", err=True)
    return outcome.exit_code


def _make_forge(kind: str, token: str | None, event: Any, root: Path) -> Any:
    """Local files, or GitHub through PyGithub (GITHUB_API_URL, so Enterprise works)."""
    from mlgitops.forges import actions_runtime
    from mlgitops.errors import InputError
    from mlgitops.forges.local import LocalForge

    token = token or os.environ.get("GITHUB_TOKEN") or None
    wants_github = kind == "github" or (kind == "auto" and actions_runtime.on_actions() and token and event.kind in ("pull_request", "merge_group"))
    if not wants_github:
        return LocalForge(root)
    actions_runtime.mask(token)
    if not token:
        raise InputError("--forge github needs a token", hint="set GITHUB_TOKEN (in Actions: `env: GITHUB_TOKEN: ${{ github.token }}`) or pass --token")
    repo_name = event.repo or os.environ.get("GITHUB_REPOSITORY")
    if not repo_name or (event.pr_number is None and event.kind != "merge_group"):
        raise InputError("--forge github needs a pull_request event naming the repository and PR (or a merge_group event)", hint="run it for a pull_request or merge_group payload (--event-path, or GITHUB_EVENT_PATH on Actions)")
    from mlgitops.forges.github import GitHubForge

    interval = float(os.environ.get("MLOPS_GITHUB_WRITE_INTERVAL", "1.0"))
    return GitHubForge(repo_name, token, os.environ.get("GITHUB_API_URL"), seconds_between_writes=interval, seconds_between_requests=min(interval, 0.25))


@main.command()
@click.option("--config", "config", default=None, help="Path of mlops.yaml (default: at the repo root).")
@click.option("--repo", default=None, help="Repository folder (default: the current one).")
@guarded
def validate(config: str | None, repo: str | None) -> int:
    """Check mlops.yaml and that its data loads with the target present (no training, no Prefect)."""
    from mlgitops.config.loader import load_config
    from mlgitops.data.check import check_data, check_estimator

    from mlgitops.errors import GitError

    try:
        _root, cpath, rel = _find_config(repo, config)
    except GitError:  # validate also works outside a git repository
        cpath = Path(config) if config else Path(repo or ".").resolve() / "mlops.yaml"
        rel = cpath.name if not config else config
    cfg = load_config(cpath, display=rel)
    dataset = check_data(cfg)
    check_estimator(cfg)
    t = cfg.config.training
    how = f"estimator {t.estimator}" if t.estimator else f"command `{t.command}`"
    gates = cfg.gated_metrics()
    click.echo(
        f"{cfg.display}: OK\n"
        f"  data: {cfg.config.data.path} -> {dataset.train_rows} training + {dataset.holdout_rows} holdout rows, "
        f"{len(dataset.features)} feature(s), target {dataset.target!r}\n"
        f"  task: {dataset.task} ({dataset.task_reason})\n"
        f"  training: {how}\n"
        f"  gates: {', '.join(gates) if gates else 'none'}"
    )
    contract = cfg.config.data.contract
    if contract is not None and not cfg.config.data.path.startswith("sklearn:"):
        known = {*dataset.features, dataset.target}
        for column in contract.columns:
            if column not in known:
                dataset.notes.append(f"{cfg.where('data', 'contract', 'columns', column)}: data.contract.columns.{column}: not a column of {cfg.config.data.path}; the run's contract check will fail")
    for note in dataset.notes:
        click.echo(f"  note: {note}")
    return EXIT_OK


def _forge_maker(cfg: Any, root: Path, forge: str, token: str | None) -> Callable[[str | None, str | None], Any]:
    """Builds the forge of a repository: (OWNER/NAME or folder, or None for this one; branch)."""
    from mlgitops.forges import actions_runtime
    from mlgitops.forges.local import LocalRepoForge
    from mlgitops.gitrepo import repo_root

    token = token or os.environ.get("GITHUB_TOKEN") or None
    use_github = forge == "github" or (forge == "auto" and actions_runtime.on_actions() and bool(token))

    def make(repo: str | None, branch: str | None) -> Any:
        if use_github:
            from mlgitops.forges.github import GitHubForge

            if not token:
                raise InputError("--forge github needs a token", hint="set GITHUB_TOKEN or pass --token")
            actions_runtime.mask(token)
            name = repo or os.environ.get("GITHUB_REPOSITORY")
            if not name:
                raise InputError("--forge github needs the repository: set GITHUB_REPOSITORY=OWNER/NAME")
            interval = float(os.environ.get("MLOPS_GITHUB_WRITE_INTERVAL", "1.0"))
            return GitHubForge(name, token, os.environ.get("GITHUB_API_URL"), seconds_between_writes=interval, seconds_between_requests=min(interval, 0.25), branch=branch)
        if repo is None:
            return LocalRepoForge(root, branch)
        other = Path(repo) if Path(repo).is_absolute() else (cfg.root / repo)
        if not other.is_dir():
            raise InputError(f"{cfg.display}: deploy.environments: manifest repository {repo!r} is not a folder here ({other})", hint="for the local forge, `repo:` is a path to a git clone; on GitHub it is OWNER/NAME")
        return LocalRepoForge(repo_root(other), branch)

    return make


def _deploy_targets(cfg: Any, root: Path, forge: str, token: str | None) -> dict[str, Any]:
    """Each environment's manifest forge: local git branches, or GitHub pull requests."""
    from mlgitops.deploy.promote import targets

    return targets(cfg, root, _forge_maker(cfg, root, forge, token))


def _print_outcome(outcome: Any) -> None:
    from mlgitops.forges import actions_runtime

    click.echo(outcome.message)
    for line in getattr(outcome, "details", []):
        click.echo(f"  {line}")
    if outcome.pull is not None:
        click.echo(f"  pull request: {outcome.pull.url}")
    outputs = {"deploy-message": outcome.message}
    if outcome.version is not None:
        outputs["version"] = str(outcome.version.version)
    if outcome.pull is not None:
        outputs["pull-url"] = outcome.pull.url
    actions_runtime.set_outputs(outputs)


forge_option = click.option("--forge", type=click.Choice(["auto", "local", "github"]), default="auto", show_default=True, help="Where manifests and PRs live; auto: GitHub on an Actions runner with a token, else local git branches.")
token_option = click.option("--token", default=None, help="GitHub token (default: $GITHUB_TOKEN). Never printed.")
config_option = click.option("--config", "config", default=None, help="Path of mlops.yaml (default: at the repo root).")
repo_option = click.option("--repo", default=None, help="Repository folder (default: the current one).")


def run_deploy_command(root: Path, cpath: Path, rel: str, event: Any, forge: str, token: str | None, as_json: bool) -> int:
    from mlgitops.config.loader import load_config
    from mlgitops.deploy.promote import merged_pr, run_deploy

    cfg = load_config(cpath, display=rel)
    all_targets = _deploy_targets(cfg, root, forge, token)
    origin = merged_pr(root, event.head_sha)
    if not origin and forge != "local" and all_targets:
        finder = next(iter(all_targets.values())).forge
        if hasattr(finder, "pull_for_sha") and event.head_sha:
            number = finder.pull_for_sha(event.head_sha)
            origin = {"pr": number} if number else {}
    outcome = run_deploy(cfg, root, rel, event, all_targets, origin)
    if as_json:
        click.echo(json.dumps({"message": outcome.message, "version": outcome.version.to_dict() if outcome.version else None, "pull": outcome.pull.__dict__ if outcome.pull else None}, indent=2, default=str))
    else:
        _print_outcome(outcome)
    return outcome.exit_code


def run_through_deployment(deployment: str, root: Path, event_path: str | None, event_name: str | None, config: str | None, forge: str, wait_seconds: int) -> int:
    """Hand the event to Prefect workers (a deployment run) and wait for its end."""
    from mlgitops.events.payloads import event_from_payload

    if not os.environ.get("PREFECT_API_URL"):
        raise InputError("--deployment needs a Prefect server: PREFECT_API_URL is not set", hint="export PREFECT_API_URL=http://HOST:4200/api (see prefect.yaml), or run without --deployment")
    if not event_path:
        raise InputError("--deployment runs an event payload: pass --event-path (on Actions: GITHUB_EVENT_PATH)", hint="a local branch run (--base) runs here, without --deployment")
    event = event_from_payload(Path(event_path), event_name)  # a bad payload is exit 2 here, not on a worker
    payload = json.loads(Path(event_path).read_text(encoding="utf-8"))
    from mlgitops.service.prefect_deploy import run_deployment_and_wait

    from mlgitops.forges import actions_runtime

    if forge == "auto":  # decided here, where the caller's context is, not on the worker
        forge = "github" if actions_runtime.on_actions() and os.environ.get("GITHUB_TOKEN") else "local"
    parameters = {"event_name": event.kind, "payload": payload, "repo": str(root), "config": str(Path(config).resolve()) if config else None, "forge": forge}
    code, line = run_deployment_and_wait(deployment, parameters, wait_seconds)
    click.echo(line)
    return code


def run_chatops_command(root: Path, cpath: Path, rel: str, event: Any, forge: str, token: str | None, check_only: bool = False) -> int:
    """An issue_comment event: a ChatOps command (see mlgitops.events.chatops)."""
    from mlgitops.forges import actions_runtime
    from mlgitops.events.chatops import CommentEvent, decide, environment_pair, handle, rollback_args
    from mlgitops.config.loader import load_config
    from mlgitops.forges.local import LocalForge

    token = token or os.environ.get("GITHUB_TOKEN") or None
    use_github = forge == "github" or (forge == "auto" and actions_runtime.on_actions() and bool(token))
    if use_github:
        from mlgitops.forges.github import GitHubForge

        if not token:
            raise InputError("--forge github needs a token", hint="set GITHUB_TOKEN or pass --token")
        actions_runtime.mask(token)
        name = event.repo or os.environ.get("GITHUB_REPOSITORY")
        if not name:
            raise InputError("the issue_comment payload names no repository: set GITHUB_REPOSITORY=OWNER/NAME")
        interval = float(os.environ.get("MLOPS_GITHUB_WRITE_INTERVAL", "1.0"))
        chat: Any = GitHubForge(name, token, os.environ.get("GITHUB_API_URL"), seconds_between_writes=interval, seconds_between_requests=min(interval, 0.25))
    else:
        chat = LocalForge(root)
    cfg = None
    try:
        cfg = load_config(cpath, display=rel)
    except MlopsError:
        pass  # help and refusals still answer; a command that needs the config reports it below
    comment = CommentEvent(event.issue_number, event.pr_number is not None, event.comment_id, event.comment_body, event.actor, event.actor_is_bot, event.action, event.repo)
    if check_only:
        decision = decide(comment, chat, cfg)
        click.echo(decision.message)
        actions_runtime.set_outputs({"chatops-command": decision.command.name if decision.command else "", "chatops-run": "true" if decision.kind == "run" else "false"})
        return EXIT_OK

    def run_command(command: Any, pull: dict[str, Any] | None) -> str:
        from mlgitops.deploy.promote import promote, registry_for, rollback

        loaded = cfg if cfg is not None else load_config(cpath, display=rel)  # raises the config's own error
        kind = "github" if use_github else "local"
        if command.name == "promote":
            source, dest = environment_pair(loaded, command)
            outcome = promote(loaded, _deploy_targets(loaded, root, kind, token), source, dest, registry_for(loaded))
        elif command.name == "rollback":
            env, version = rollback_args(command)
            outcome = rollback(loaded, _deploy_targets(loaded, root, kind, token), env, version, registry_for(loaded))
        else:
            return _chat_retrain(loaded, root, rel, event, pull or {}, chat)
        return outcome.message + (f"\n\n{outcome.pull.url}" if outcome.pull is not None else "")

    result = handle(comment, chat, cfg, run_command)
    click.echo(result.message)
    outputs = {"chatops-command": result.command.name if result.command else "", "chatops-run": "true" if "eyes" in result.reactions else "false", "chatops-reply": result.reply_url or ""}
    actions_runtime.set_outputs(outputs)
    return result.exit_code


def _chat_retrain(cfg: Any, root: Path, rel: str, event: Any, pull: dict[str, Any], chat: Any) -> str:
    """`/mlops retrain`: the PR flow on the PR's head, training afresh."""
    from mlgitops.events.payloads import Event, localize
    from mlgitops.gitrepo import resolve
    from mlgitops.run.runner import run_pull_request

    want = pull.get("head_sha") or resolve(root, "HEAD")
    if pull.get("state") not in (None, "open"):
        raise InputError(f"PR #{event.issue_number} is {pull.get('state')}: only an open pull request is retrained")
    base_ref = pull.get("base_ref") or "main"
    pr = Event(kind="pull_request", action="synchronize", repo=event.repo, pr_number=event.issue_number, base_ref=base_ref, base_sha=pull.get("base_sha"), head_ref=pull.get("head_ref"), head_sha=want, actor=event.actor)
    pr = localize(pr, root)  # refuses a checkout that is not the PR's head (or a merge of it)
    outcome = run_pull_request(cfg, root, rel, pr, chat, retrain=f"`/mlops retrain` by @{event.actor}")
    where = outcome.comment.url or "the pull request's comment"
    return f"retrained: {outcome.report.summary}\n\nThe comment is updated: {where}"


@main.command()
@config_option
@repo_option
@forge_option
@token_option
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@guarded
def deploy(config: str | None, repo: str | None, forge: str, token: str | None, as_json: bool) -> int:
    """Deploy flow for the checked-out commit (what a push to the default branch runs):
    reuse or train, gate against what is deployed, register, open the promotion PR."""
    from mlgitops.events.payloads import Event
    from mlgitops.gitrepo import current_branch, resolve

    root, cpath, rel = _find_config(repo, config)
    event = Event(kind="push", head_sha=resolve(root, "HEAD"), head_ref=current_branch(root), ref=f"refs/heads/{current_branch(root) or 'HEAD'}")
    return run_deploy_command(root, cpath, rel, event, forge, token, as_json)


@main.command()
@click.argument("source")
@click.argument("dest")
@config_option
@repo_option
@forge_option
@token_option
@guarded
def promote(source: str, dest: str, config: str | None, repo: str | None, forge: str, token: str | None) -> int:
    """Open (or update) a PR that deploys to DEST the model SOURCE runs."""
    from mlgitops.config.loader import load_config
    from mlgitops.deploy.promote import promote as do_promote, registry_for

    root, cpath, rel = _find_config(repo, config)
    cfg = load_config(cpath, display=rel)
    _print_outcome(do_promote(cfg, _deploy_targets(cfg, root, forge, token), source, dest, registry_for(cfg)))
    return EXIT_OK


@main.command()
@click.argument("env")
@click.option("--to", "to", type=int, default=None, help="Registry version to pin (default: the manifest's previous pin).")
@config_option
@repo_option
@forge_option
@token_option
@guarded
def rollback(env: str, to: int | None, config: str | None, repo: str | None, forge: str, token: str | None) -> int:
    """Open (or update) a PR that pins ENV's previous model (or --to VERSION)."""
    from mlgitops.config.loader import load_config
    from mlgitops.deploy.promote import registry_for, rollback as do_rollback

    root, cpath, rel = _find_config(repo, config)
    cfg = load_config(cpath, display=rel)
    _print_outcome(do_rollback(cfg, _deploy_targets(cfg, root, forge, token), env, to, registry_for(cfg)))
    return EXIT_OK


@main.command()
@config_option
@repo_option
@forge_option
@token_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@guarded
def status(config: str | None, repo: str | None, forge: str, token: str | None, as_json: bool) -> int:
    """What is deployed where, from the manifests on the default branch."""
    from rich.console import Console
    from rich.table import Table

    from mlgitops.config.loader import load_config
    from mlgitops.deploy.promote import registry_for, status as do_status

    root, cpath, rel = _find_config(repo, config)
    cfg = load_config(cpath, display=rel)
    rows = do_status(cfg, _deploy_targets(cfg, root, forge, token))
    versions = [v.version for v in registry_for(cfg).versions(cfg.config.name)]
    if as_json:
        click.echo(json.dumps({"environments": rows, "registry": {"name": cfg.config.name, "versions": versions}}, indent=2, default=str))
        return EXIT_OK
    table = Table(title=f"{cfg.config.name}: deployments", title_justify="left")
    for col in ("environment", "version", "sha256", "artifact", "previous", "pending PR"):
        table.add_column(col)
    for row in rows:
        pending = ", ".join(f"#{p['number']} {p['title']}" for p in row["pending"]) or ""
        table.add_row(row["environment"], f"v{row['version']}" if row["version"] else "-", (row["sha256"] or "-")[:12], row["artifact"], f"v{row['previous']}" if row.get("previous") else "", pending)
    Console(highlight=False).print(table)
    click.echo(f"registry: {', '.join(f'v{v}' for v in versions) or 'no versions'} ({registry_for(cfg).url})")
    if not rows:
        click.echo("no deploy.environments in mlops.yaml")
    return EXIT_OK


manifest_option = click.option("--manifest", "manifest", default=None, type=click.Path(dir_okay=False), help="Read this manifest file instead of ENV's from mlops.yaml (no mlops.yaml or git needed; relative file pins are relative to the current folder).")
ref_option = click.option("--ref", default=None, help="Read the manifest from this git branch (e.g. main) instead of the working tree file.")


def _pinned_source(env: str | None, manifest: str | None, ref: str | None, config: str | None, repo: str | None) -> tuple[str, Callable[[], str | None], str, Path]:
    """(environment name, read() -> the manifest's current text or None, where (as
    messages name it), the folder relative file pins are relative to), for ENV of
    mlops.yaml or a ``--manifest`` file."""
    import subprocess

    from mlgitops.errors import GitError

    if manifest:
        path = Path(manifest).expanduser()
        path = path if path.is_absolute() else Path.cwd() / path
        name, where, uri_base = env or path.stem, manifest, Path.cwd()
    else:
        if not env:
            raise InputError("which environment? give ENV (one of deploy.environments in mlops.yaml) or --manifest FILE", hint="e.g. `mlops pull production --to out/` or `mlops pull --manifest deploy/production.yaml --to out/`")
        from mlgitops.config.loader import load_config
        from mlgitops.deploy.promote import environment

        root, cpath, rel = _find_config(repo, config)
        cfg = load_config(cpath, display=rel)
        spec = environment(cfg, env)
        base = (Path(spec.repo) if spec.repo and Path(spec.repo).is_absolute() else cfg.root / spec.repo) if spec.repo else cfg.root
        path = base / spec.manifest
        name, where, uri_base = env, spec.manifest, cfg.root
    if ref is None:
        def read() -> str | None:
            return path.read_text(encoding="utf-8") if path.is_file() else None

        return name, read, where, uri_base
    top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=path.parent if path.parent.is_dir() else Path.cwd(), capture_output=True, text=True)
    if top.returncode != 0:
        raise GitError(f"--ref {ref}: {where} is not inside a git repository", hint="drop --ref to read the file as it is")
    toplevel = Path(top.stdout.strip()).resolve()
    try:
        rel_path = path.resolve().relative_to(toplevel).as_posix()
    except ValueError:
        raise GitError(f"--ref {ref}: {where} is outside the git repository {toplevel}", hint="drop --ref to read the file as it is") from None

    def read_at_ref() -> str | None:
        proc = subprocess.run(["git", "show", f"{ref}:{rel_path}"], cwd=toplevel, capture_output=True, text=True)
        return proc.stdout if proc.returncode == 0 else None

    return name, read_at_ref, f"{where}@{ref}", uri_base


@main.command()
@click.argument("env", required=False)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 in a container).")
@click.option("--port", default=8080, show_default=True, type=int, help="Port (0: any free port).")
@click.option("--poll", default=2.0, show_default=True, type=float, help="Seconds between manifest checks; a changed pin is loaded and swapped in.")
@ref_option
@manifest_option
@config_option
@repo_option
@guarded
def serve(env: str | None, host: str, port: int, poll: float, ref: str | None, manifest: str | None, config: str | None, repo: str | None) -> int:
    """Serve predictions over HTTP from the ONNX model ENV's manifest pins.

    Pins on any registry (files, s3://, oci://, ...) are fetched into the local cache
    ($MLOPS_CACHE_DIR, else $XDG_CACHE_HOME/mlgitops) and their sha256 checked; a new pin
    that cannot be fetched or fails its hash leaves the previous model serving and
    /healthz "degraded" with the reason.
    """
    from mlgitops.deploy.serve import ModelHolder, serve as run_server

    name, read, where, uri_base = _pinned_source(env, manifest, ref, config, repo)
    holder = ModelHolder(name, read, where, uri_base)
    holder.load(initial=True)
    pin = holder.current.pin if holder.current else None

    def ready(bound: int) -> None:
        click.echo(f"serving {(pin.name if pin else None) or name} {pin.short() if pin else ''} for {name} on http://{host}:{bound} (POST /predict, GET /healthz); watching {where} every {poll:g} s", err=True)

    run_server(holder, host, port, poll, ready)
    return EXIT_OK


@main.command()
@click.argument("env", required=False)
@click.option("--to", "to", required=True, type=click.Path(file_okay=False), help="Folder to write model.onnx and pin.json into (created if missing).")
@ref_option
@manifest_option
@config_option
@repo_option
@guarded
def pull(env: str | None, to: str, ref: str | None, manifest: str | None, config: str | None, repo: str | None) -> int:
    """Fetch the ONNX model ENV's manifest pins, check its sha256, write it to a folder.

    For an init container or a CI step: DIR/model.onnx and DIR/pin.json (name, version,
    sha256, uri, pulled_at), each written whole or not at all; nothing is written when
    the model cannot be fetched or fails its hash (exit 2).
    """
    from datetime import datetime, timezone

    from mlgitops.deploy.fetch import fetch_pinned
    from mlgitops.deploy.manifest import ManifestError, read_pin
    from mlgitops.deploy.registry.backends import _atomic_write

    name, read, where, uri_base = _pinned_source(env, manifest, ref, config, repo)
    try:
        text = read()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{where}: cannot read the manifest: {type(exc).__name__}: {exc}") from None
    if text is None:
        raise ManifestError(f"{where}: no such manifest", hint="check the path (and --ref); promotion PRs create it")
    pin = read_pin(text, where)
    if pin is None:
        raise ManifestError(f"{where}: pins no model (model.uri and model.sha256)", hint=f"merge a promotion PR for {name} first")
    if pin.format != "onnx":
        raise ManifestError(f"{where}: model.format is {pin.format!r}; mlops pull writes ONNX models", hint="deploy a version registered with ONNX")
    data = fetch_pinned(pin, uri_base, where)
    out = Path(to)
    record = {"name": pin.name, "version": pin.version, "sha256": pin.sha256, "uri": pin.uri, "pulled_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "environment": name, "manifest": where}
    try:
        _atomic_write(out / "model.onnx", data)  # the model first: pin.json names what is there
        _atomic_write(out / "pin.json", (json.dumps(record, indent=2) + "\n").encode())
    except OSError as exc:
        raise InputError(f"--to {to}: cannot write the model there: {type(exc).__name__}: {exc}", hint="pick a folder this user can write") from None
    version = f" v{pin.version}" if pin.version is not None else ""
    click.echo(f"pulled {pin.name or name}{version} (sha256 {pin.sha256[:12]}) to {out / 'model.onnx'}")
    return EXIT_OK


@main.command()
@click.option("--older-than", "older_than", type=click.FloatRange(min=0), default=None, help="Remove pull-request candidates older than this many days (default: registry.candidates_max_age_days).")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@config_option
@repo_option
@guarded
def gc(older_than: float | None, as_json: bool, config: str | None, repo: str | None) -> int:
    """Remove old pull-request candidates from the registry, and the objects only they used.

    Registered versions and their objects are never removed.
    """
    from mlgitops.config.loader import load_config
    from mlgitops.deploy.promote import registry_for

    root, cpath, rel = _find_config(repo, config)
    cfg = load_config(cpath, display=rel)
    days = float(older_than if older_than is not None else cfg.config.registry.candidates_max_age_days)
    registry = registry_for(cfg)
    result = registry.gc(days)
    if as_json:
        click.echo(json.dumps({"registry": registry.url, "older_than_days": days, **result}, indent=2))
    else:
        click.echo(f"removed {result['candidates_removed']} candidates older than {days:g} days (kept {result['candidates_kept']}); removed {result['objects_removed']} objects")
    return EXIT_OK


@main.group()
def webhook() -> None:
    """Receive GitHub webhook deliveries as a service."""


@webhook.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 behind a proxy or in a container).")
@click.option("--port", default=8787, show_default=True, type=int, help="Port (0: any free port).")
@click.option("--secret-env", default="MLOPS_WEBHOOK_SECRET", show_default=True, help="Environment variable holding the webhook's secret (never a flag: it would show in `ps`).")
@click.option("--max-body", default=25 * 1024 * 1024, show_default=True, type=click.IntRange(1), help="Largest delivery accepted, in bytes (GitHub sends at most 25 MB); a larger one is 413.")
@click.option("--header-timeout", default=10.0, show_default=True, type=click.FloatRange(0, min_open=True), help="Seconds a client has to send a request's headers; then 408 and the connection is closed.")
@click.option("--body-timeout", default=30.0, show_default=True, type=click.FloatRange(0, min_open=True), help="Seconds a client has to send a whole body (GitHub itself gives up after 10 s); then 408 and the connection is closed.")
@click.option("--max-unfinished-per-client", default=8, show_default=True, type=click.IntRange(1), help="Bodies one client address (an IPv6 /64) may be sending at once; beyond it 429 with Retry-After.")
@click.option("--max-unfinished", default=64, show_default=True, type=click.IntRange(1), help="Bodies all clients may be sending at once; beyond it 503 with Retry-After.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Deliveries run at once (embedded runner).")
@click.option("--queue", "queue_size", default=100, show_default=True, type=click.IntRange(1, 100_000), help="Deliveries that may wait; beyond it the service answers 503 and GitHub may redeliver.")
@click.option("--stop-grace", default=5.0, show_default=True, type=click.FloatRange(0), help="On SIGTERM/SIGINT, seconds a running delivery's processes get between SIGTERM and SIGKILL.")
@repo_option
@click.option("--forge", type=click.Choice(["local", "github"]), default="github", show_default=True, help="Where runs report; github (GITHUB_TOKEN in the service's environment) also answers ChatOps' permission questions. local: files under .mlops/ (ChatOps then needs .mlops/forge/collaborators.json).")
@click.option("--record-only", is_flag=True, help="Verify and record deliveries but run nothing (to try a webhook's setup, or measure the service).")
@click.option("--deployment", default=None, envvar="MLOPS_DEPLOYMENT", help="Hand each delivery to Prefect workers through this deployment (e.g. mlops-event/mlops-event; needs PREFECT_API_URL) instead of running it here.")
@guarded
def webhook_serve(host: str, port: int, secret_env: str, max_body: int, header_timeout: float, body_timeout: float, max_unfinished_per_client: int, max_unfinished: int, workers: int, queue_size: int, stop_grace: float, repo: str | None, forge: str, record_only: bool, deployment: str | None) -> int:
    """Verify, deduplicate and run GitHub deliveries (pull_request, push, issue_comment, merge_group).

    Point the repository's webhook (content type application/json, with a secret) at
    http://HOST:PORT/webhook. Each new delivery is answered at once (202) and run with
    `mlops run` in a worktree of the clone at --repo, at the payload's commit.

    \b
    Answers: 202 queued or ignored, 200 duplicate or ping,
    400 bad headers or JSON (invalid, not an object, nested deeper than 400),
    401 missing or wrong X-Hub-Signature-256 (decided before the body is read),
    408 headers or body too slow, 413 body over --max-body,
    429/503 too many bodies arriving, 503 run queue full.

    On SIGTERM or SIGINT the running delivery's processes are ended and its worktree
    removed; the next start runs it again, once.
    """
    from mlgitops.run import childenv
    from mlgitops.service.asgi import bind_server
    from mlgitops.gitrepo import repo_root

    childenv.make_undumpable()  # deliveries' PR code runs as this user: it must not read our /proc/<pid>/environ (token, secret)
    from mlgitops.service.webhook import DeliveryLog, LocalDispatcher, lock_state, prune_worktrees, resume, worktree_base
    from mlgitops.service.http import Limits, make_app

    secret = os.environ.pop(secret_env, "")  # runs started from here never see it
    if not secret:
        raise InputError(f"the webhook secret is not set: ${secret_env} is empty", hint=f"export {secret_env}=<the secret set on the GitHub webhook> (it is never read from a flag or a file)")
    if forge == "github" and not record_only and not os.environ.get("GITHUB_TOKEN"):
        raise InputError("--forge github needs GITHUB_TOKEN in the service's environment", hint="export GITHUB_TOKEN=<a token that may comment, set statuses and open PRs>, or serve with --forge local")
    root = repo_root(Path(repo or ".").resolve())
    state = root / ".mlops" / "webhook"
    lock = lock_state(state)  # noqa: F841 - held until the process ends
    log = DeliveryLog(state / "deliveries.sqlite")
    run = (lambda delivery: (0, "recorded only (--record-only)")) if record_only else None
    if deployment and not record_only:
        if not os.environ.get("PREFECT_API_URL"):
            raise InputError("--deployment needs a Prefect server: PREFECT_API_URL is not set", hint="export PREFECT_API_URL=http://HOST:4200/api (see prefect.yaml), or serve without --deployment")
        from mlgitops.service.prefect_deploy import check_deployment
        from mlgitops.service.webhook import deployment_runner

        check_deployment(deployment)  # a typo stops the service now, not every delivery later
        run = deployment_runner(deployment, root, forge)
    worktrees = worktree_base(root)
    if prune_worktrees(root, worktrees):
        click.echo("removed the worktrees a stopped service left behind", err=True)
    dispatcher = LocalDispatcher(root, log, run=run, workers=workers, queue=queue_size, forge=forge, worktrees=worktrees)
    limits = Limits(max_body=max_body, body_timeout=body_timeout, per_client=max_unfinished_per_client, unfinished=max_unfinished)
    app = make_app(secret.encode(), log, dispatcher, state / "payloads", limits, stop_grace)
    how = f"hands deliveries to Prefect deployment {deployment}" if deployment and not record_only else f"{workers} worker(s), queue {queue_size}"

    def ready(bound: int) -> None:
        click.echo(f"webhook service on http://{host}:{bound}/webhook for {root} ({how}); GET /healthz, GET /deliveries/ID", err=True)

    server, sock, _ = bind_server(app, host, port, ready, header_timeout=header_timeout)  # a port in use is refused before anything is resumed
    requeued = resume(log, dispatcher, state / "payloads", stop_grace)
    if requeued:
        click.echo(f"requeued {len(requeued)} delivery(ies) a previous run accepted but did not finish", err=True)
    server.run(sockets=[sock])
    return EXIT_OK


@main.command()
@click.option("--current", "current", required=True, type=click.Path(dir_okay=False), help="CSV or Parquet of recent (production) data; with the target column, live metrics are checked too.")
@click.option("--env", "env", default=None, help="Environment whose deployed model to check (default: deploy.baseline, else the first).")
@click.option("--retrain-pr", is_flag=True, help="Over threshold, also open (or update) a PR that moves data.path to this snapshot.")
@config_option
@repo_option
@forge_option
@token_option
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@guarded
def monitor(current: str, env: str | None, retrain_pr: bool, config: str | None, repo: str | None, forge: str, token: str | None, as_json: bool) -> int:
    """Drift of recent data (and live metrics) against the deployed model; one issue when over threshold."""
    from mlgitops.config.loader import load_config
    from mlgitops.deploy.promote import environment
    from mlgitops.deploy.monitor import run_monitor

    root, cpath, rel = _find_config(repo, config)
    cfg = load_config(cpath, display=rel)
    envs = cfg.config.deploy.environments
    name = env or cfg.config.deploy.baseline or next(iter(envs), None)
    if name is None:
        raise InputError(f"{cfg.display} has no deploy.environments: there is no deployed model to monitor", hint="add deploy.environments and deploy a model first")
    environment(cfg, name)
    target = _deploy_targets(cfg, root, forge, token)[name]
    path = Path(current) if Path(current).is_absolute() else Path.cwd() / current
    own = _forge_maker(cfg, root, forge, token)(None, None)  # the issue and the PR belong to this repo
    outcome = run_monitor(cfg, root, rel, path, current, target, retrain_pr, own)
    if as_json:
        click.echo(json.dumps({"message": outcome.message, "drift": outcome.drift, "metrics": outcome.metrics, "gates": [g.__dict__ for g in outcome.gates], "issue": outcome.issue.__dict__ if outcome.issue else None, "pull": outcome.pull.__dict__ if outcome.pull else None}, indent=2, default=str))
    else:
        click.echo(outcome.message)
        if outcome.issue is not None:
            click.echo(f"  issue: {outcome.issue.url}")
        if outcome.pull is not None:
            click.echo(f"  retraining PR: {outcome.pull.url}")
    return outcome.exit_code


DEFAULT_ACTION_REF = "mlgitops/mlgitops/actions/pull-request@v1"


@main.command()
@click.option("--data", default="sklearn:breast_cancer", show_default=True, help="Data path for the new mlops.yaml.")
@click.option("--target", default="target", show_default=True, help="Target column for the new mlops.yaml.")
@click.option("--action-ref", default=DEFAULT_ACTION_REF, show_default=True, help="The composite action the workflow uses (OWNER/REPO/actions/pull-request@REF); a tag or branch is pinned to its commit sha (git ls-remote).")
@click.option("--branch", default="main", show_default=True, help="The default branch: a push to it runs the deploy job.")
@click.option("--registry", "registry", default="auto", show_default=True, help="registry.url for the new mlops.yaml: auto (GitHub's container registry, oci://ghcr.io/OWNER/REPO/models, when the origin remote is on github.com; else the folder .mlops/registry), a URL (s3://..., oci://...), or a folder.")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@click.option("--repo", default=None, help="Repository folder (default: the current one).")
@guarded
def init(data: str, target: str, action_ref: str, branch: str, registry: str, force: bool, repo: str | None) -> int:
    """Write a commented mlops.yaml and .github/workflows/mlops.yml that uses the action."""
    from mlgitops.config.scaffold import write_scaffold

    for path, created in write_scaffold(Path(repo or "."), data, target, action_ref, force, branch, registry):
        click.echo(f"{'wrote' if created else 'kept (exists; --force overwrites)'} {path}")
    click.echo("next: mlops validate, commit, open a pull request; then require the `mlops/gate` check on your default branch")
    return EXIT_OK


@main.command()
def schema() -> None:
    """Print the JSON Schema of mlops.yaml (for editors)."""
    from mlgitops.config.loader import json_schema

    click.echo(json.dumps(json_schema(), indent=2))


@main.command()
@click.option("--dir", "directory", default=None, type=click.Path(file_okay=False), help="Where to create the demo repo (default: a new temp dir).")
@guarded
def demo(directory: str | None) -> int:
    """Make a git repo from the bundled example, open a PR branch, run the PR flow."""
    from mlgitops.run.demo import run_demo

    return run_demo(Path(directory) if directory else None)


if __name__ == "__main__":  # pragma: no cover
    main()
