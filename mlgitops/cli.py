"""The `mlops` command. Commands are thin: parse options, call the core, return a code.

Heavy imports (pandas, scikit-learn, Prefect) happen inside commands, so `mlops --help`
and `mlops validate` stay fast.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import traceback
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable

import click

from .errors import EXIT_INTERNAL, EXIT_OK, ConfigError, MlopsError

LOGGED_PACKAGES = ("mlgitops", "prefect", "pandas", "scikit-learn", "numpy", "pydantic", "PyGithub", "onnxruntime", "skl2onnx")


def _log_dir() -> Path:
    import os

    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "mlgitops" / "logs"


def write_crash_log(exc: BaseException) -> Path:
    """Versions + traceback for an unexpected error (kept out of the repo's `.mlops/`)."""
    lines = [f"mlops crashed at {datetime.now().isoformat(timespec='seconds')}", f"command: {' '.join(_redacted(sys.argv))}", f"python: {sys.version.split()[0]} on {platform.platform()}"]
    for pkg in LOGGED_PACKAGES:
        try:
            lines.append(f"{pkg}: {version(pkg)}")
        except PackageNotFoundError:
            lines.append(f"{pkg}: not installed")
    lines += ["", "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))]
    folder = _log_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"mlops-{datetime.now().strftime('%Y%m%d-%H%M%S-%f')}.log"
    path.write_text("\n".join(lines))
    return path


def _redacted(argv: list[str]) -> list[str]:
    """The command line with any --token value hidden (the log may be shared)."""
    out, hide = [], False
    for arg in argv:
        if hide:
            out.append("***")
            hide = False
        elif arg == "--token":
            out.append(arg)
            hide = True
        elif arg.startswith("--token="):
            out.append("--token=***")
        else:
            out.append(arg)
    return out


def guarded(fn: Callable[..., int]) -> Callable[..., None]:
    """Map our errors to their exit codes; anything else is exit 3 with a log."""

    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            code = fn(*args, **kwargs)
        except MlopsError as exc:
            from .actions_runtime import annotate_errors

            text = format_error(exc)
            annotate_errors(text)  # ::error file=mlops.yaml,line=N:: on an Actions runner
            click.echo(text, err=True)
            sys.exit(exc.exit_code)
        except (KeyboardInterrupt, click.exceptions.Exit, click.ClickException):
            raise
        except Exception as exc:  # noqa: BLE001 - the one place that catches everything
            log = write_crash_log(exc)
            click.echo(f"internal error: {type(exc).__name__}: {exc}\n  a log with versions and the traceback is at {log}\n  please attach it when reporting the problem", err=True)
            sys.exit(EXIT_INTERNAL)
        sys.exit(code)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


def format_error(exc: MlopsError) -> str:
    """``error: <file:line:col>: <key>: <what>`` per problem, then the hint."""
    problems = exc.problems if isinstance(exc, ConfigError) else [exc.message]
    text = "\n".join(f"error: {p}" for p in problems)
    return text + (f"\n  hint: {exc.hint}" if exc.hint else "")


def _find_config(repo: str | None, config: str | None) -> tuple[Path, Path, str]:
    """(repo root, config path, config path relative to the root)."""
    from .gitrepo import repo_root

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
@click.option("--event-name", default=None, help="The event's name (default on Actions: $GITHUB_EVENT_NAME; else told from the payload).")
@click.option("--config", "config", default=None, help="Path of mlops.yaml (default: at the repo root).")
@click.option("--repo", default=None, help="Repository folder (default: the current one).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.option("--forge", type=click.Choice(["auto", "local", "github"]), default="auto", show_default=True, help="Where the comment and status go; auto: GitHub on an Actions runner with a token and a PR event, else local files under .mlops/.")
@click.option("--token", default=None, help="GitHub token (default: $GITHUB_TOKEN). Never printed.")
@guarded
def run(base: str | None, event_path: str | None, event_name: str | None, config: str | None, repo: str | None, as_json: bool, forge: str, token: str | None) -> int:
    """Run the pull-request flow for the checked-out branch (or an event payload)."""
    from rich.console import Console

    from .config import load_config
    from .events import event_from_payload, local_event, localize
    from .forges.local import LocalForge
    from .render import print_terminal, render_json
    from .runner import run_pull_request

    from . import actions_runtime

    if as_json:
        actions_runtime.STREAM = sys.stderr  # keep stdout pure JSON
    root, cpath, rel = _find_config(repo, config)
    if not event_path and not base and os.environ.get("GITHUB_EVENT_PATH"):
        # On a GitHub Actions runner: the event that started the workflow.
        event_path, event_name = os.environ["GITHUB_EVENT_PATH"], event_name or os.environ.get("GITHUB_EVENT_NAME")
    if event_path:
        event = event_from_payload(Path(event_path), event_name)
        ok, why = event.should_run()
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
    where = str(target.comment_path(event.pr_key).relative_to(root)) if isinstance(target, LocalForge) else outcome.comment.url
    if as_json:
        click.echo(render_json(outcome.report))
    else:
        print_terminal(outcome.report, Console(highlight=False), where)
    for note in [outcome.comment.note, *getattr(target, "warnings", [])]:
        if note:
            click.echo(f"note: {note}", err=True)
    return outcome.exit_code


def _make_forge(kind: str, token: str | None, event: Any, root: Path) -> Any:
    """Local files, or GitHub through PyGithub (GITHUB_API_URL, so Enterprise works)."""
    from . import actions_runtime
    from .errors import InputError
    from .forges.local import LocalForge

    token = token or os.environ.get("GITHUB_TOKEN") or None
    wants_github = kind == "github" or (kind == "auto" and actions_runtime.on_actions() and token and event.kind == "pull_request")
    if not wants_github:
        return LocalForge(root)
    actions_runtime.mask(token)
    if not token:
        raise InputError("--forge github needs a token", hint="set GITHUB_TOKEN (in Actions: `env: GITHUB_TOKEN: ${{ github.token }}`) or pass --token")
    repo_name = event.repo or os.environ.get("GITHUB_REPOSITORY")
    if not repo_name or event.pr_number is None:
        raise InputError("--forge github needs a pull_request event naming the repository and PR", hint="run it for a pull_request payload (--event-path, or GITHUB_EVENT_PATH on Actions)")
    from .forges.github import GitHubForge

    interval = float(os.environ.get("MLOPS_GITHUB_WRITE_INTERVAL", "1.0"))
    return GitHubForge(repo_name, token, os.environ.get("GITHUB_API_URL"), seconds_between_writes=interval, seconds_between_requests=min(interval, 0.25))


@main.command()
@click.option("--config", "config", default=None, help="Path of mlops.yaml (default: at the repo root).")
@click.option("--repo", default=None, help="Repository folder (default: the current one).")
@guarded
def validate(config: str | None, repo: str | None) -> int:
    """Check mlops.yaml and that its data loads with the target present (no training, no Prefect)."""
    from .config import load_config
    from .datacheck import check_data, check_estimator

    from .errors import GitError

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
    for note in dataset.notes:
        click.echo(f"  note: {note}")
    return EXIT_OK


DEFAULT_ACTION_REF = "mlgitops/mlgitops/actions/pull-request@v1"


@main.command()
@click.option("--data", default="sklearn:breast_cancer", show_default=True, help="Data path for the new mlops.yaml.")
@click.option("--target", default="target", show_default=True, help="Target column for the new mlops.yaml.")
@click.option("--action-ref", default=DEFAULT_ACTION_REF, show_default=True, help="The composite action the workflow uses (OWNER/REPO/actions/pull-request@REF).")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@click.option("--repo", default=None, help="Repository folder (default: the current one).")
@guarded
def init(data: str, target: str, action_ref: str, force: bool, repo: str | None) -> int:
    """Write a commented mlops.yaml and .github/workflows/mlops.yml that uses the action."""
    from .init import write_scaffold

    for path, created in write_scaffold(Path(repo or "."), data, target, action_ref, force):
        click.echo(f"{'wrote' if created else 'kept (exists; --force overwrites)'} {path}")
    click.echo("next: mlops validate, commit, open a pull request; then require the `mlops/gate` check on your default branch")
    return EXIT_OK


@main.command()
def schema() -> None:
    """Print the JSON Schema of mlops.yaml (for editors)."""
    from .config import json_schema

    click.echo(json.dumps(json_schema(), indent=2))


@main.command()
@click.option("--dir", "directory", default=None, type=click.Path(file_okay=False), help="Where to create the demo repo (default: a new temp dir).")
@guarded
def demo(directory: str | None) -> int:
    """Make a git repo from the bundled example, open a PR branch, run the PR flow."""
    from .demo import run_demo

    return run_demo(Path(directory) if directory else None)


if __name__ == "__main__":  # pragma: no cover
    main()
