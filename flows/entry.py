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

import contextlib
import io
import json
import tempfile
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.states import Completed, Failed

EXIT_MESSAGE = "mlops exit {code}"


def invoke(args: list[str]) -> tuple[int, str]:
    """``mlops ARGS`` in this process: (exit code, what it printed)."""
    import os

    from mlgitops.cli import main

    os.environ.pop("MLOPS_DEPLOYMENT", None)  # else `mlops run` here would hand the event to a deployment again
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            main.main(args=args, prog_name="mlops", standalone_mode=False)
            code = 0
        except SystemExit as exc:  # `guarded` ends every command with sys.exit(code)
            code = int(exc.code or 0)
    return code, out.getvalue()


def _finish(code: int, output: str) -> Any:
    print(output.rstrip())  # log_prints: the command's own output lands in the flow run's logs
    last = next((line for line in reversed(output.strip().splitlines()) if line.strip()), "")
    message = f"{EXIT_MESSAGE.format(code=code)}: {last[:300]}"
    return Completed(message=message) if code in (0, 1) else Failed(message=message)


@flow(name="mlops-event", log_prints=True)
def handle_event(event_name: str, payload: dict[str, Any], repo: str, config: str | None = None, forge: str = "github") -> Any:
    """`mlops run` for one GitHub event payload, at the payload's commit of the clone at
    ``repo`` (a temporary worktree; the clone's checkout is never moved). A fork's pull
    request is not run; a comment is decided (permission, fork) before any PR code is
    checked out, as in the webhook service."""
    from mlgitops.service.webhook import checkout, prepare, refusal

    root = Path(repo)
    why = refusal(root, event_name, payload, forge)
    if why:
        return Completed(message=f"{EXIT_MESSAGE.format(code=0)}: not run: {why}")
    with tempfile.TemporaryDirectory(prefix="mlops-event-") as tmp:
        path = Path(tmp) / "event.json"
        path.write_text(json.dumps(payload))
        args = ["run", "--event-path", str(path), "--event-name", event_name, "--forge", forge]
        if event_name == "issue_comment":
            code, said = invoke([*args, "--check-command", "--repo", repo])
            issue = payload.get("issue") or {}
            if code != 0 or not said.startswith("accepted retrain") or not issue.get("number"):
                return _finish(*invoke([*args, "--repo", repo, *(["--config", config] if config else [])]))
            from mlgitops.service.webhook import git_at, has_origin

            ref = f"refs/mlops/flow-{issue['number']}"
            if has_origin(root):
                git_at(root, "fetch", "--quiet", "origin", f"+refs/pull/{issue['number']}/head:{ref}")
            sha = git_at(root, "rev-parse", "--verify", "--quiet", ref).stdout.strip() or None
            extra: list[str] = []
        else:
            sha, extra, error = prepare(root, event_name, payload, f"flow-{event_name}")
            if error:
                return Failed(message=f"{EXIT_MESSAGE.format(code=2)}: {error}")
        with checkout(root, sha, event_name) as tree:
            rel_config = ["--config", str(tree / Path(config).relative_to(root))] if config and Path(config).is_relative_to(root) else (["--config", config] if config else [])
            return _finish(*invoke([*args, *extra, "--repo", str(tree), *rel_config]))


@flow(name="mlops-monitor", log_prints=True)
def monitor(current: str, repo: str, env: str | None = None, retrain_pr: bool = False, config: str | None = None, forge: str = "github") -> Any:
    """`mlops monitor` for the recent data at ``current`` (a path the worker can read)."""
    args = ["monitor", "--current", current, "--repo", repo, "--forge", forge]
    if env:
        args += ["--env", env]
    if retrain_pr:
        args.append("--retrain-pr")
    if config:
        args += ["--config", config]
    return _finish(*invoke(args))
