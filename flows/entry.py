"""Flows a Prefect deployment can run: JSON parameters in, a final state out.

``mlops-event`` runs what ``mlops run`` runs for one GitHub event payload (the
pull-request flow for a pull_request, the deploy flow for a push to the default
branch, a ChatOps command for an issue_comment); ``mlops-monitor`` runs ``mlops
monitor``. Both work on a checkout the worker can read (``repo``), and the inner
flows (e.g. the pull-request flow) run as their subflows on the same Prefect server.

The final state carries the command's exit code in its message ("mlops exit N"),
so the caller (``mlops run --deployment``) exits as a local run would: 0 and 1
(a gate failed) complete the flow run, 2 and 3 fail it.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.states import Completed, Failed

EXIT_MESSAGE = "mlops exit {code}"


def _in_process(lines: list[str]) -> Any:
    """The dispatcher in this process; what it prints is kept in ``lines``."""
    from mlgitops.events.dispatch import handle_request

    def echo(text: str = "", err: bool = False) -> None:
        lines.append(str(text))

    def execute(request: dict[str, Any], tree: Path) -> int:
        return handle_request(request, echo=echo)

    return execute


def _finish(code: int | None, lines: list[str], why: str = "") -> Any:
    output = "\n".join([*lines, why]).strip()
    print(output)  # log_prints: the command's own output lands in the flow run's logs
    if code is None:
        return Completed(message=f"{EXIT_MESSAGE.format(code=0)}: not run: {why}")
    last = next((line for line in reversed(output.splitlines()) if line.strip()), "")
    message = f"{EXIT_MESSAGE.format(code=code)}: {last[:300]}"
    return Completed(message=message) if code in (0, 1) else Failed(message=message)


@flow(name="mlops-event", log_prints=True)
def handle_event(event_name: str, payload: dict[str, Any], repo: str, config: str | None = None, forge: str = "github") -> Any:
    """What ``mlops run`` does for one GitHub event payload, at the payload's commit of
    the clone at ``repo`` (a temporary worktree; the clone's checkout is never moved),
    through the same delivery steps and dispatcher as the webhook service: a fork's pull
    request is not run; a comment is decided before any PR code is checked out."""
    import os
    import uuid

    from mlgitops.service.delivery import run_event

    os.environ.pop("MLOPS_DEPLOYMENT", None)  # never hand the event to a deployment again
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="mlops-event-") as tmp:
        path = Path(tmp) / "event.json"
        path.write_text(json.dumps(payload))
        code, why = run_event(Path(repo), event_name, payload, path, forge, _in_process(lines), f"flow-{uuid.uuid4().hex}", config=config)
    return _finish(code, lines, why)


@flow(name="mlops-monitor", log_prints=True)
def monitor(current: str, repo: str, env: str | None = None, retrain_pr: bool = False, config: str | None = None, forge: str = "github") -> Any:
    """`mlops monitor` for the recent data at ``current`` (a path the worker can read)."""
    from mlgitops.deploy.monitor import monitor_command
    from mlgitops.guard import call_guarded

    lines: list[str] = []

    def echo(text: str = "", err: bool = False) -> None:
        lines.append(str(text))

    def work() -> int:
        outcome = monitor_command(current, env, retrain_pr, config, repo, forge, None)
        lines.extend([outcome.message, *([f"  issue: {outcome.issue.url}"] if outcome.issue else []), *([f"  retraining PR: {outcome.pull.url}"] if outcome.pull else [])])
        return outcome.exit_code

    return _finish(call_guarded("monitor", work, echo=echo), lines)
