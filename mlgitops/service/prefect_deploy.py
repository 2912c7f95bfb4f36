"""Runs through Prefect deployments (see prefect.yaml): create the flow run, wait, read
the exit code the entry flow put in its final state's message."""

from __future__ import annotations

import os
import re
from typing import Any

from mlgitops.errors import EXIT_INTERNAL, InputError, MlopsError

EXIT_IN_MESSAGE = re.compile(r"\bmlops exit (\d+)\b")


class DeploymentRunError(MlopsError):
    exit_code = EXIT_INTERNAL


def _deployment_or_error(name: str) -> None:
    if name.count("/") != 1 or not all(name.split("/")):
        raise InputError(f"--deployment {name!r} is not FLOW/DEPLOYMENT", hint="e.g. mlops-event/mlops-event (prefect.yaml names them)")


def run_deployment_and_wait(name: str, parameters: dict[str, Any], wait_seconds: int) -> tuple[int, str]:
    """(exit code, one line saying what ran where)."""
    _deployment_or_error(name)
    from mlgitops.service.prefect_server import import_prefect

    import_prefect()  # never reads prefect.toml / .env from the checkout
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    api = os.environ.get("PREFECT_API_URL", "")
    try:
        flow_run = run_deployment(name=name, parameters=parameters, timeout=wait_seconds, poll_interval=1)
    except ObjectNotFound:
        raise InputError(f"no Prefect deployment {name!r} on {api}", hint="deploy the flows first: `prefect --no-prompt deploy --all` next to prefect.yaml") from None
    return outcome_of(flow_run, name, wait_seconds)


def outcome_of(flow_run: Any, name: str, wait_seconds: float) -> tuple[int, str]:
    """(exit code, one line) of a flow run that should have ended: the code the entry
    flow put in its final state's message ("mlops exit N")."""
    state = flow_run.state
    where = f"flow run {flow_run.name} ({flow_run.id}) of deployment {name}"
    if state is None or not state.is_final():
        raise DeploymentRunError(
            f"{where} did not finish within {wait_seconds:g} s (state: {state.name if state else 'unknown'})",
            hint="is a worker polling the work pool? `prefect worker start --pool mlops`; the run goes on, see it in the Prefect UI",
        )
    found = EXIT_IN_MESSAGE.search(state.message or "")
    code = int(found.group(1)) if found else (0 if state.is_completed() else EXIT_INTERNAL)
    return code, f"{where}: {state.name} ({state.message or 'no message'})"


def wait_for(flow_run_id: str, name: str, wait_seconds: float, poll: float = 1.0, stopping: Any = None) -> tuple[int, str]:
    """Wait (bounded by ``wait_seconds``; ``stopping``, an Event, ends it early) for a
    flow run's final state and read its exit code as :func:`outcome_of` does."""
    import time

    from mlgitops.service.prefect_server import import_prefect

    import_prefect()  # never reads prefect.toml / .env from the checkout
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + wait_seconds
    with get_client(sync_client=True) as client:
        while True:
            flow_run = client.read_flow_run(flow_run_id)
            if (flow_run.state is not None and flow_run.state.is_final()) or time.monotonic() >= deadline or (stopping is not None and stopping.is_set()):
                return outcome_of(flow_run, name, wait_seconds)
            time.sleep(poll)


def event_parameters(root: Any, event_name: str, payload: dict[str, Any], config: str | None, forge: str) -> dict[str, Any]:
    """The entry flow's parameters for an event: the repository's clone URL (never a
    path on this machine's disk) and mlops.yaml's path inside it."""
    from pathlib import Path

    from mlgitops.service.worker import clone_url_for

    rel = "mlops.yaml"
    if config:
        path = Path(config).resolve()
        try:
            rel = path.relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            raise InputError(f"--config {config}: with --deployment, mlops.yaml must be inside the repository {root}", hint="the workers read it from their own clone") from None
    return {"event_name": event_name, "payload": payload, "clone_url": clone_url_for(Path(root), payload), "config": rel, "forge": forge}


def check_deployment(name: str) -> None:
    """Refuse, with `mlops run`'s message, a deployment the Prefect API does not have
    (`webhook serve --deployment` checks at start instead of failing each delivery)."""
    _deployment_or_error(name)
    from mlgitops.service.prefect_server import import_prefect

    import_prefect()
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    api = os.environ.get("PREFECT_API_URL", "")
    with get_client(sync_client=True) as client:
        try:
            client.read_deployment_by_name(name)
        except ObjectNotFound:
            raise InputError(f"no Prefect deployment {name!r} on {api}", hint="deploy the flows first: `prefect --no-prompt deploy --all` next to prefect.yaml") from None


def submit_deployment(name: str, parameters: dict[str, Any]) -> str:
    """Create a flow run of the deployment and return its id at once (no waiting)."""
    _deployment_or_error(name)
    from mlgitops.service.prefect_server import import_prefect

    import_prefect()  # never reads prefect.toml / .env from the checkout
    from prefect.deployments import run_deployment

    flow_run = run_deployment(name=name, parameters=parameters, timeout=0)
    return str(flow_run.id)


def run_event_on_deployment(deployment: str, root: Any, event_path: str | None, event_name: str | None, config: str | None, forge: str, wait_seconds: int) -> tuple[int, str]:
    """`mlops run --deployment`: hand the event to Prefect workers and wait for its end."""
    import json
    from pathlib import Path

    from mlgitops.events.payloads import event_from_payload
    from mlgitops.forges import actions_runtime

    if not os.environ.get("PREFECT_API_URL"):
        raise InputError("--deployment needs a Prefect server: PREFECT_API_URL is not set", hint="export PREFECT_API_URL=http://HOST:4200/api (see prefect.yaml), or run without --deployment")
    if not event_path:
        raise InputError("--deployment runs an event payload: pass --event-path (on Actions: GITHUB_EVENT_PATH)", hint="a local branch run (--base) runs here, without --deployment")
    event = event_from_payload(Path(event_path), event_name)  # a bad payload is exit 2 here, not on a worker
    payload = json.loads(Path(event_path).read_text(encoding="utf-8"))
    if forge == "auto":  # decided here, where the caller's context is, not on the worker
        forge = "github" if actions_runtime.on_actions() and os.environ.get("GITHUB_TOKEN") else "local"
    return run_deployment_and_wait(deployment, event_parameters(root, event.kind, payload, config, forge), wait_seconds)
