"""Runs through Prefect deployments: a real `prefect server` (the session's), a real
process work pool and worker on 127.0.0.1, prefect.yaml deployed as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.github_standin import SHARED
from tests.helpers import REPO_ROOT, GitRepo

BIN = Path(sys.executable).parent
OPENED = SHARED / "webhooks" / "octokit-webhooks" / "api.github.com" / "pull_request" / "opened.payload.json"


def prefect(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "prefect"), *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def worker(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """prefect.yaml deployed to the session's server, and one process worker polling,
    with its own clone cache (``MLOPS_WORKER_CACHE``, in the env it returns)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "MLOPS_"))}
    env.update(PREFECT_API_URL=prefect_api, PREFECT_WORKER_QUERY_SECONDS="1", PREFECT_LOGGING_LEVEL="WARNING", MLOPS_ISOLATE="1")  # the PR flow in the secret-less child, still the deployment run's subflow
    env["MLOPS_WORKER_CACHE"] = str(tmp_path_factory.mktemp("worker-cache"))
    pool = prefect(env, "work-pool", "create", "mlops", "--type", "process")
    assert pool.returncode == 0 or "already exists" in pool.stdout + pool.stderr, pool.stdout + pool.stderr
    deployed = prefect(env, "--no-prompt", "deploy", "--all")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"mlops-worker-{os.getpid()}.log", "w")
    proc = subprocess.Popen([str(BIN / "prefect"), "worker", "start", "--pool", "mlops", "--type", "process", "--limit", "1"], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield env
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def worker_file(worker: dict[str, str], rel: str) -> Path:
    """A file in the worker's own clone (there is one clone per URL in its cache)."""
    found = sorted(Path(worker["MLOPS_WORKER_CACHE"]).glob(f"*/{rel}"))
    assert len(found) == 1, found
    return found[0]


def pr_payload(repo: GitRepo, number: int, head: str | None = None) -> dict[str, Any]:
    """GitHub's own pull_request example for PR ``number`` of acme/models: ``head``
    (default: the checkout's HEAD) on branch feature, into main."""
    data = json.loads(OPENED.read_text())
    data["number"] = data["pull_request"]["number"] = number
    pr = data["pull_request"]
    pr["head"].update(sha=head or repo.git("rev-parse", "HEAD"), ref="feature")
    pr["base"].update(sha=repo.git("rev-parse", "main"), ref="main")
    for side in ("head", "base"):
        pr[side]["repo"]["full_name"] = "acme/models"
    data["repository"].update(full_name="acme/models", default_branch="main")
    return data


def test_the_pull_request_flow_runs_on_a_worker_through_a_deployment(worker: dict[str, str], example_repo: GitRepo, tmp_path: Path) -> None:
    repo = example_repo
    repo.branch("feature").edit("mlops.yaml", "max_depth: 2", "max_depth: 3").commit("deeper")
    event = tmp_path / "event.json"
    event.write_text(json.dumps(pr_payload(repo, 52)))
    started = time.monotonic()
    env = {**worker, "MLOPS_CLONE_URL": str(repo.path)}  # what the worker clones (the caller has no origin)
    proc = subprocess.run([str(BIN / "mlops"), "run", "--event-path", str(event), "--event-name", "pull_request", "--forge", "local", "--deployment", "mlops-event/mlops-event", "--wait", "240"], cwd=repo.path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("flow run pr-52 acme/models ") and " of deployment mlops-event/mlops-event: Completed (mlops exit 0: " in proc.stdout
    comment = worker_file(worker, ".mlops/forge/pr-52/comment.md").read_text()
    assert "- `training.params.max_depth`: `2` → `3`" in comment
    assert time.monotonic() - started < 280

    from prefect.client.orchestration import get_client

    async def runs() -> list[Any]:
        async with get_client() as client:
            return await client.read_flow_runs()

    import asyncio

    all_runs = asyncio.run(runs())
    parent = next(r for r in all_runs if str(r.id) in proc.stdout)
    assert parent.state.is_completed() and parent.deployment_id is not None
    children = [r for r in all_runs if r.parent_task_run_id is not None and r.start_time and r.start_time >= parent.start_time and r.flow_id != parent.flow_id]
    assert children and all(r.state.is_completed() for r in children)  # the pull-request flow ran as its subflow


def test_deployment_errors_are_clear(cli_noprefect: Any, example_repo: GitRepo, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    event = tmp_path / "e.json"
    event.write_text("{}")
    no_api = cli_noprefect("run", "--event-path", str(event), "--deployment", "mlops-event/mlops-event", cwd=example_repo.path)
    assert no_api.exit_code == 2 and "error: --deployment needs a Prefect server: PREFECT_API_URL is not set" in no_api.output
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    no_event = cli_noprefect("run", "--deployment", "mlops-event/mlops-event", cwd=example_repo.path)
    assert no_event.exit_code == 2 and "error: --deployment runs an event payload: pass --event-path" in no_event.output
    bad = tmp_path / "pr.json"
    bad.write_text(json.dumps({"pull_request": {"number": 1}}))
    bad_name = cli_noprefect("run", "--event-path", str(bad), "--event-name", "pull_request", "--deployment", "mlops-event", cwd=example_repo.path)
    assert bad_name.exit_code == 2 and "lacks number, base.ref or head.sha" in bad_name.output


def test_the_webhook_service_hands_deliveries_to_the_deployment(worker: dict[str, str], example_repo: GitRepo, tmp_path: Path) -> None:
    import urllib.request

    from mlgitops.service.webhook import signature

    repo = example_repo
    repo.branch("feature").edit("mlops.yaml", "max_depth: 2", "max_depth: 3").commit("deeper")
    repo.git("checkout", "--quiet", "-b", "strict", "main")
    repo.edit("mlops.yaml", "min: 0.90                   # absolute floor", "min: 0.9999").commit("an accuracy floor no model reaches")
    strict = pr_payload(repo, 54)
    repo.git("checkout", "--quiet", "feature")
    env = {**worker, "MLOPS_WEBHOOK_SECRET": "deploy-secret", "MLOPS_CLONE_URL": str(repo.path)}
    service = subprocess.Popen([str(BIN / "mlops"), "webhook", "serve", "--port", "0", "--forge", "local", "--deployment", "mlops-event/mlops-event"], cwd=repo.path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        line = service.stderr.readline()
        assert "hands deliveries to Prefect deployment mlops-event/mlops-event" in line, line
        port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        for delivery, payload in (("dep-1", pr_payload(repo, 53)), ("dep-2", strict)):
            body = json.dumps(payload).encode()
            req = urllib.request.Request(f"http://127.0.0.1:{port}/webhook", data=body, method="POST", headers={"Content-Type": "application/json", "X-GitHub-Event": "pull_request", "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": signature(b"deploy-secret", body)})
            with urllib.request.urlopen(req, timeout=10) as resp:
                assert resp.status == 202
        rows = {}
        deadline = time.monotonic() + 400  # bounded: the worker picks them up and runs the flows
        while len(rows) < 2 and time.monotonic() < deadline:
            for delivery in ("dep-1", "dep-2"):
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/deliveries/{delivery}", timeout=10) as resp:
                    row = json.loads(resp.read())
                if row["finished_at"]:
                    rows[delivery] = row
            time.sleep(1)
        assert rows["dep-1"]["status"] == "done" and rows["dep-1"]["exit_code"] == 0, rows
        assert rows["dep-1"]["detail"].startswith("flow run pr-53 acme/models ") and ": Completed (mlops exit 0: " in rows["dep-1"]["detail"]
        assert rows["dep-2"]["status"] == "done" and rows["dep-2"]["exit_code"] == 1, rows  # the failing gate, not the hand-off
        assert ": Completed (mlops exit 1: " in rows["dep-2"]["detail"]
        assert rows["dep-1"]["finished_at"] > rows["dep-1"]["received_at"]
        assert worker_file(worker, ".mlops/forge/pr-53/comment.md").is_file()
    finally:
        service.terminate()
        service.wait(timeout=20)


def test_webhook_serve_refuses_a_deployment_prefect_does_not_have_at_start(cli_noprefect: Any, prefect_api: str, example_repo: GitRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same message `mlops run --deployment` gives, before any delivery is accepted."""
    monkeypatch.setenv("PREFECT_API_URL", prefect_api)
    monkeypatch.setenv("MLOPS_WEBHOOK_SECRET", "s3cret")
    typo = cli_noprefect("webhook", "serve", "--port", "0", "--repo", str(example_repo.path), "--forge", "local", "--deployment", "mlops-event/nope", cwd=example_repo.path)
    assert typo.exit_code == 2
    assert typo.stderr == f"error: no Prefect deployment 'mlops-event/nope' on {prefect_api}\n  hint: deploy the flows first: `prefect --no-prompt deploy --all` next to prefect.yaml\n"
