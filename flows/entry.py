"""Flows a Prefect deployment can run: JSON parameters in, a final state out.

``mlops-event`` runs what ``mlops run`` runs for one GitHub event payload (the
pull-request flow for a pull_request, the deploy flow for a push to the default
branch, a ChatOps command for an issue_comment); ``mlops-monitor`` runs ``mlops
monitor``. Both work in the worker's own clone of the repository (``clone_url``;
see service.worker), and the inner flows (e.g. the pull-request flow) run as their
subflows on the same Prefect server.

The final state carries the command's exit code in its message ("mlops exit N"),
so the caller (``mlops run --deployment``) exits as a local run would: 0 and 1
(a gate failed) complete the flow run, 2 and 3 fail it.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.states import Completed, Failed

EXIT_MESSAGE = "mlops exit {code}"


class _KnownExit(logging.Filter):
    """Drops Prefect's traceback for a run that ended in our own Failed state: the engine
    process re-raises it as FailedRun and logs "Engine execution exited with unexpected
    exception" with a traceback, although "Finished in state Failed('mlops exit 2: error:
    ...')" already said it in one line (issue 17: an input error on a worker is one line)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (exc is not None and type(exc).__name__ == "FailedRun" and str(exc).startswith("mlops exit "))


for _name in ("prefect.flow_runs", "prefect.engine"):  # the worker's flow-run process imports this module before it runs
    logging.getLogger(_name).addFilter(_KnownExit())


def _in_process(lines: list[str], kept: list[Any]) -> Any:
    """The dispatcher in this process; what it prints is kept in ``lines``, its
    outcomes in ``kept``."""
    from mlgitops.events.dispatch import handle_request

    def echo(text: str = "", err: bool = False) -> None:
        lines.append(str(text))

    def execute(request: dict[str, Any], tree: Path) -> int:
        return handle_request(request, echo=echo, keep=kept)

    return execute


def _finish(code: int | None, lines: list[str], why: str = "") -> Any:
    output = "\n".join([*lines, why]).strip()
    print(output)  # log_prints: the command's own output lands in the flow run's logs
    if code is None:
        return Completed(message=f"{EXIT_MESSAGE.format(code=0)}: not run: {why}")
    lines_out = [line.strip() for line in output.splitlines() if line.strip()]
    if code in (0, 1):  # the last line says where the report went
        said = lines_out[-1] if lines_out else ""
    else:  # the error's own line (file:line:col, the field), then its hint
        error = next((line for line in lines_out if line.startswith("error:")), lines_out[0] if lines_out else "")
        hint = next((line for line in lines_out if line.startswith("hint:")), "")
        said = f"{error} ({hint})" if hint else error
    message = f"{EXIT_MESSAGE.format(code=code)}: {said[:600]}"
    return Completed(message=message) if code in (0, 1) else Failed(message=message)


def run_name(event_name: str, payload: dict[str, Any], model: str | None = None) -> str:
    """What a run is for, as its name: ``pr-42 acme/models 3f2a1c0 churn``,
    ``deploy main 9e1b2d4 churn``, ``comment-7 acme/models``, ``merge-queue …``."""
    repo = str((payload.get("repository") or {}).get("full_name") or "")
    pr = payload.get("pull_request") or {}
    if event_name == "pull_request":
        words = [f"pr-{pr.get('number')}", repo, str((pr.get("head") or {}).get("sha") or "")[:7]]
    elif event_name == "push":
        ref = str(payload.get("ref") or "").removeprefix("refs/heads/")
        words = ["deploy" if ref == (payload.get("repository") or {}).get("default_branch") else "push", ref, str(payload.get("after") or "")[:7]]
    elif event_name == "issue_comment":
        words = [f"comment-{(payload.get('issue') or {}).get('number')}", repo]
    elif event_name == "merge_group":
        group = payload.get("merge_group") or {}
        words = ["merge-queue", repo, str(group.get("head_sha") or "")[:7]]
    else:
        words = [event_name, repo]
    return " ".join(w for w in [*words, model or ""] if w)


def _name_from_parameters() -> str:
    from prefect.runtime import flow_run

    params = flow_run.parameters
    return run_name(params.get("event_name", "event"), params.get("payload") or {})


def _tags(event_name: str, payload: dict[str, Any], model: str | None, outcome: Any) -> list[str]:
    """Tags the UI and `prefect flow-run ls` filter on."""
    repo = (payload.get("repository") or {}).get("full_name")
    number = (payload.get("pull_request") or {}).get("number") or (payload.get("issue") or {}).get("number")
    tags = ["mlops", f"event:{event_name}", *([f"repo:{repo}"] if repo else []), *([f"pr:{number}"] if number else []), *([f"model:{model}"] if model else [])]
    report = getattr(outcome, "report", None)
    if report is not None:
        tags.append(f"verdict:{'pass' if report.passed else 'fail'}")
    elif outcome is not None:
        tags.append(f"outcome:{outcome.route}")
    return tags


def _describe_run(event_name: str, payload: dict[str, Any], model: str | None, outcome: Any) -> None:
    """Name and tag the flow run for what it was; attach the report as a markdown artifact
    keyed per model, so the UI shows its history across runs. Best effort: the exit code
    stands whatever Prefect answers."""
    import re

    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None:
        return
    try:
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            client.update_flow_run(ctx.flow_run.id, name=run_name(event_name, payload, model), tags=_tags(event_name, payload, model, outcome))
        report = getattr(outcome, "report", None)
        if report is not None:
            from prefect.artifacts import create_markdown_artifact

            from mlgitops.report.render import render_comment

            key = re.sub(r"[^a-z0-9-]+", "-", f"mlops-{model or report.name}".lower()).strip("-")[:100]
            create_markdown_artifact(markdown=render_comment(report), key=key, description=f"{run_name(event_name, payload, model)}: {report.summary}")
    except Exception as exc:  # noqa: BLE001 - naming is a courtesy; the run's result is not
        print(f"note: could not name or tag the flow run, or attach its report: {type(exc).__name__}: {exc}")


def _model_name(root: Path, config: str) -> str | None:
    """The model's name from mlops.yaml at the clone's default branch, for the run's name."""
    import yaml

    try:
        data = yaml.safe_load((root / config).read_text(encoding="utf-8")[:200_000])
    except (OSError, yaml.YAMLError):
        return None
    name = data.get("name") if isinstance(data, dict) else None
    return str(name)[:60] if isinstance(name, (str, int)) else None


@flow(name="mlops-event", flow_run_name=_name_from_parameters, log_prints=True)
def handle_event(event_name: str, payload: dict[str, Any], clone_url: str, config: str = "mlops.yaml", forge: str = "github") -> Any:
    """What ``mlops run`` does for one GitHub event payload, on any worker: the worker
    clones or fetches ``clone_url`` into its own cache (``service.worker``), then runs
    the event at the payload's commit in a temporary worktree through the same delivery
    steps and dispatcher as the webhook service (a fork's pull request is not run; a
    comment is decided before any PR code is checked out). ``config``: mlops.yaml's
    path inside the repository. Credentials come from the worker, never the event."""
    import os
    import uuid

    from mlgitops.errors import MlopsError
    from mlgitops.guard import format_error
    from mlgitops.service.delivery import run_event
    from mlgitops.service.worker import clone_for, worker_token

    os.environ.pop("MLOPS_DEPLOYMENT", None)  # never hand the event to a deployment again
    lines: list[str] = []
    kept: list[Any] = []
    if Path(config).is_absolute() or ".." in Path(config).parts:
        return _finish(2, [f"error: config {config!r}: give mlops.yaml's path inside the repository (e.g. models/churn/mlops.yaml)"])
    try:
        token = worker_token()
        if token:
            os.environ.setdefault("GITHUB_TOKEN", token)  # the forge reads it; PR code runs without it (compute_child)
        root = clone_for(clone_url, event_name, payload, token)
    except MlopsError as exc:
        return _finish(exc.exit_code, [format_error(exc)])
    model = _model_name(root, config)
    with tempfile.TemporaryDirectory(prefix="mlops-event-") as tmp:
        path = Path(tmp) / "event.json"
        path.write_text(json.dumps(payload))
        code, why = run_event(root, event_name, payload, path, forge, _in_process(lines, kept), f"flow-{uuid.uuid4().hex}", config=str(root / config))
    _describe_run(event_name, payload, model, kept[-1] if kept else None)
    return _finish(code, lines, why)


@flow(name="mlops-monitor", log_prints=True)
def monitor(current: str, clone_url: str | None = None, repo: str | None = None, env: str | None = None, retrain_pr: bool = False, config: str | None = None, forge: str = "github") -> Any:
    """`mlops monitor` for the recent data at ``current`` (a path or URL the worker can
    read), on the worker's own clone of ``clone_url`` at the default branch (as
    :func:`handle_event`; ``config`` inside it), or on a folder ``repo`` the worker has."""
    import os

    from mlgitops.deploy.monitor import monitor_command
    from mlgitops.errors import MlopsError
    from mlgitops.guard import call_guarded, format_error
    from mlgitops.service.worker import clone_for, worker_token

    lines: list[str] = []
    if (clone_url is None) == (repo is None):
        return _finish(2, ["error: give the monitor flow clone_url (the repository's URL; the worker clones it) or repo (a folder on the worker), not both"])
    if clone_url is not None:
        if config and (Path(config).is_absolute() or ".." in Path(config).parts):
            return _finish(2, [f"error: config {config!r}: give mlops.yaml's path inside the repository (e.g. models/churn/mlops.yaml)"])
        try:
            token = worker_token()
            if token:
                os.environ.setdefault("GITHUB_TOKEN", token)
            root = clone_for(clone_url, "schedule", {}, token)
        except MlopsError as exc:
            return _finish(exc.exit_code, [format_error(exc)])
        repo, config = str(root), str(root / (config or "mlops.yaml"))

    def echo(text: str = "", err: bool = False) -> None:
        lines.append(str(text))

    def work() -> int:
        outcome = monitor_command(current, env, retrain_pr, config, repo, forge, None)
        lines.extend([outcome.message, *([f"  issue: {outcome.issue.url}"] if outcome.issue else []), *([f"  retraining PR: {outcome.pull.url}"] if outcome.pull else [])])
        return outcome.exit_code

    return _finish(call_guarded("monitor", work, echo=echo), lines)
