"""Workers anywhere (issue 17): two process workers in two unrelated folders, each with
its own clone cache, take runs from one work pool; the folder `prefect deploy` ran in is
deleted before any run; the caller's checkout is never read by a worker (its clone URL is
a bare repository). A pull request, a failing gate and a push to main all complete with
the exit codes a local run gives."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.github_standin import SHARED
from tests.helpers import REPO_ROOT, GitRepo
from tests.test_prefect_deploy import pr_payload

BIN = Path(sys.executable).parent
POOL = "mlops-fleet"
PUSH = SHARED / "webhooks" / "octokit-webhooks" / "api.github.com" / "push" / "1.payload.json"


def _prefect(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "prefect"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def fleet(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("fleet")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "MLOPS_"))}
    env.update(PREFECT_API_URL=prefect_api, PREFECT_WORKER_QUERY_SECONDS="1", PREFECT_LOGGING_LEVEL="WARNING", MLOPS_ISOLATE="1")
    deploy_dir = base / "deploy-from-here"
    deploy_dir.mkdir()
    text = (REPO_ROOT / "prefect.yaml").read_text().replace("name: mlops\n", f"name: {POOL}\n").replace("- name: mlops-event\n", "- name: fleet-event\n").replace("- name: mlops-monitor\n", "- name: fleet-monitor\n")
    (deploy_dir / "prefect.yaml").write_text(text)
    pool = _prefect(env, deploy_dir, "work-pool", "create", POOL, "--type", "process")
    assert pool.returncode == 0 or "already exists" in pool.stdout + pool.stderr, pool.stdout + pool.stderr
    deployed = _prefect(env, deploy_dir, "--no-prompt", "deploy", "--all")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    shutil.rmtree(deploy_dir)  # a worker must not need it
    workers, logs = [], []
    for name in ("a", "b"):
        home = base / f"worker-{name}"
        home.mkdir()
        log = open(home / "worker.log", "w")
        worker_env = {**env, "MLOPS_WORKER_CACHE": str(home / "cache"), "HOME": str(home)}
        workers.append(subprocess.Popen([str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--type", "process", "--limit", "1", "--name", f"fleet-{name}"], cwd=home, env=worker_env, stdout=log, stderr=subprocess.STDOUT))
        logs.append(log)
    try:
        yield {"env": env, "base": base}
    finally:
        for proc in workers:
            proc.terminate()
        for proc in workers:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        for log in logs:
            log.close()


def _run(fleet: dict[str, Any], checkout: Path, event_name: str, payload: dict[str, Any], tmp: Path) -> subprocess.CompletedProcess[str]:
    event = tmp / f"{event_name}-{time.monotonic_ns()}.json"
    event.write_text(json.dumps(payload))
    return subprocess.run([str(BIN / "mlops"), "run", "--event-path", str(event), "--event-name", event_name, "--forge", "local", "--deployment", "mlops-event/fleet-event", "--wait", "300"], cwd=checkout, env=fleet["env"], capture_output=True, text=True, timeout=330)


def _in_caches(fleet: dict[str, Any], rel: str) -> list[Path]:
    return sorted(fleet["base"].glob(f"worker-*/cache/*/{rel}"))


def test_two_workers_in_unrelated_folders_run_pr_failing_gate_and_deploy(fleet: dict[str, Any], example_repo: GitRepo, tmp_path: Path) -> None:
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "clone", "--quiet", "--bare", str(example_repo.path), str(origin)], check=True)
    repo = example_repo
    repo.git("remote", "add", "origin", str(origin))
    repo.branch("feature").edit("mlops.yaml", "max_depth: 2", "max_depth: 3").commit("deeper")
    repo.git("push", "--quiet", "origin", "feature")
    passing = _run(fleet, repo.path, "pull_request", pr_payload(repo, 61), tmp_path)
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert " of deployment mlops-event/fleet-event: Completed (mlops exit 0: " in passing.stdout

    repo.git("checkout", "--quiet", "-b", "strict", "main")
    repo.edit("mlops.yaml", "min: 0.90                   # absolute floor", "min: 0.9999").commit("an accuracy floor no model reaches")
    repo.git("push", "--quiet", "origin", "strict")
    failing = _run(fleet, repo.path, "pull_request", pr_payload(repo, 62), tmp_path)
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert ": Completed (mlops exit 1: " in failing.stdout

    repo.git("checkout", "--quiet", "main")
    repo.git("merge", "--quiet", "--no-ff", "feature", "-m", "Merge pull request #61 from acme/feature")
    repo.git("push", "--quiet", "origin", "main")
    push = json.loads(PUSH.read_text())
    push.update(ref="refs/heads/main", before=repo.git("rev-parse", "HEAD^"), after=repo.git("rev-parse", "HEAD"), deleted=False)
    push["repository"].update(full_name="acme/models", default_branch="main")
    deployed = _run(fleet, repo.path, "push", push, tmp_path)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert ": Completed (mlops exit 0: " in deployed.stdout

    comments = _in_caches(fleet, ".mlops/forge/pr-61/comment.md") + _in_caches(fleet, ".mlops/forge/pr-62/comment.md")
    assert len(comments) == 2  # each written once, in a worker's own clone
    assert "- `training.params.max_depth`: `2` → `3`" in next(c for c in comments if "pr-61" in str(c)).read_text()
    assert not (repo.path / ".mlops" / "forge").exists()  # nothing ran in the caller's checkout
    clones = {p.parents[3].name for p in fleet["base"].glob("worker-*/cache/*/.git/HEAD")}
    assert clones <= {"worker-a", "worker-b"} and clones  # the clones live in the workers' own folders


def test_a_clone_url_never_carries_the_callers_credentials(example_repo: GitRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlgitops.service.worker import clone_url_for, public_url

    assert public_url("https://x-access-token:ghs_abc@github.com/acme/models.git") == "https://github.com/acme/models.git"
    assert public_url("ssh://git@github.com/acme/models.git") == "ssh://git@github.com/acme/models.git"
    monkeypatch.delenv("MLOPS_CLONE_URL", raising=False)
    example_repo.git("remote", "add", "origin", "https://bot:s3cret@example.invalid/acme/models.git")
    assert clone_url_for(example_repo.path, {}) == "https://example.invalid/acme/models.git"
    monkeypatch.setenv("MLOPS_CLONE_URL", "https://example.invalid/other.git")
    assert clone_url_for(example_repo.path, {}) == "https://example.invalid/other.git"


def test_no_clone_url_is_a_clear_error(example_repo: GitRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlgitops.errors import InputError
    from mlgitops.service.worker import clone_url_for

    monkeypatch.delenv("MLOPS_CLONE_URL", raising=False)
    with pytest.raises(InputError) as err:
        clone_url_for(example_repo.path, {"repository": {"full_name": "acme/models"}})
    assert err.value.message == f"no clone URL for the workers: {example_repo.path} has no `origin` remote and the payload names none"
