"""Workers anywhere (issue 17): two process workers in two unrelated folders, each with
its own clone cache, take runs from one work pool of a real `prefect server start` (with
its UI); the folder `prefect deploy` ran in is deleted before any run; the caller's
checkout is never read by a worker (its clone URL is a bare repository). A pull request,
a failing gate and a push to main all complete with the exit codes a local run gives.
Then the PR's flow run is opened in headless Chromium (Debian's `chromium`): its name,
tags, final state and the report artifact's metric table are on the page, and a
screenshot is kept in test-artifacts/."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.github_standin import SHARED
from tests.helpers import REPO_ROOT, GitRepo
from tests.helpers import chromium as chromium_binary
from tests.test_prefect_deploy import pr_payload

BIN = Path(sys.executable).parent
POOL = "mlops-fleet"
PUSH = SHARED / "webhooks" / "octokit-webhooks" / "api.github.com" / "push" / "1.payload.json"


def _prefect(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "prefect"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180)


ARTIFACTS = REPO_ROOT / "test-artifacts"  # kept after the run (git-ignored)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`prefect server start` with its UI, as a user runs it, on 127.0.0.1; its base URL."""
    home = tmp_path_factory.mktemp("prefect-server-home")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "GITHUB_", "MLOPS_"))}
    # Another port than 4200: the UI must be told where its API is (PREFECT_UI_API_URL)
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_LOGGING_LEVEL="WARNING", PREFECT_UI_API_URL=f"http://127.0.0.1:{port}/api")
    log = open(home / "server.log", "w")
    proc = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port), "--analytics-off"], cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (home / "server.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{url}/api/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "prefect server start did not answer in 120 s: " + (home / "server.log").read_text()[-3000:]
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def fleet(ui_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("fleet")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "MLOPS_", "PREFECT_"))}
    env.update(PREFECT_API_URL=f"{ui_server}/api", PREFECT_HOME=str(base / "prefect-home"), PREFECT_WORKER_QUERY_SECONDS="1", PREFECT_LOGGING_LEVEL="WARNING", MLOPS_ISOLATE="1")
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
        worker_env.pop("PREFECT_LOGGING_LEVEL")  # a worker as users start it: INFO, so the runs' logs reach the API
        workers.append(subprocess.Popen([str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--type", "process", "--limit", "1", "--name", f"fleet-{name}"], cwd=home, env=worker_env, stdout=log, stderr=subprocess.STDOUT))
        logs.append(log)
    try:
        yield {"env": env, "base": base, "ui": ui_server, "runs": {}}
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
    fleet["runs"]["pr-61"] = _flow_run(fleet, "pr:61")

    repo.git("checkout", "--quiet", "-b", "strict", "main")
    repo.edit("mlops.yaml", "min: 0.90                   # absolute floor", "min: 0.9999").commit("an accuracy floor no model reaches")
    repo.git("push", "--quiet", "origin", "strict")
    failing = _run(fleet, repo.path, "pull_request", pr_payload(repo, 62), tmp_path)
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert ": Completed (mlops exit 1: " in failing.stdout

    # An input error on the worker: one line naming file:line and the field, exit 2, no traceback.
    repo.git("checkout", "--quiet", "-b", "typo", "main")
    repo.edit("mlops.yaml", "min: 0.90                   # absolute floor", "min: 0.9x                   # absolute floor").commit("a typo in a gate")
    repo.git("push", "--quiet", "origin", "typo")
    typo = _run(fleet, repo.path, "pull_request", pr_payload(repo, 63), tmp_path)
    assert typo.returncode == 2, typo.stdout + typo.stderr
    assert typo.stdout.rstrip().endswith(": Failed (mlops exit 2: error: mlops.yaml:26:10: gates.accuracy.min: expected a number, got '0.9x' (hint: write numbers without quotes, e.g. `min: 0.9`))"), typo.stdout
    worker_logs = "".join(p.read_text() for p in fleet["base"].glob("worker-*/worker.log"))
    assert "Traceback" not in worker_logs, worker_logs[-3000:]

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


def _flow_run(fleet: dict[str, Any], tag: str) -> dict[str, Any]:
    """The one flow run of fleet-event carrying ``tag``, as the API returns it."""
    body = json.dumps({"flow_runs": {"tags": {"all_": [tag]}}}).encode()
    request = urllib.request.Request(f"{fleet['ui']}/api/flow_runs/filter", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        runs = json.loads(answer.read())
    assert len(runs) == 1, runs
    return runs[0]


def _browse(chromium: str, url: str, profile: Path, *mode: str) -> subprocess.CompletedProcess[str]:
    """One headless Chromium load of ``url``: the page's JavaScript runs (the UI fetches
    the run from the server) for up to 20 s of virtual time, then ``mode`` happens."""
    args = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions", f"--user-data-dir={profile}", "--window-size=1400,2000", "--virtual-time-budget=20000", *mode, url]
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def test_the_pr_run_is_found_and_read_in_the_prefect_ui(fleet: dict[str, Any], tmp_path: Path) -> None:
    import re

    chromium = chromium_binary()
    run = fleet["runs"].get("pr-61")
    assert run is not None, "the fleet test above runs the PR event this test looks at"
    name = run["name"]
    assert re.fullmatch(r"pr-61 acme/models [0-9a-f]{7} breast-cancer", name), name
    assert set(run["tags"]) >= {"mlops", "event:pull_request", "repo:acme/models", "pr:61", "model:breast-cancer", "verdict:pass"}, run["tags"]
    page = f"{fleet['ui']}/runs/flow-run/{run['id']}"

    comment = next(fleet["base"].glob("worker-*/cache/*/.mlops/forge/pr-61/comment.md")).read_text()
    metric_rows = [line for line in comment.splitlines() if line.startswith("| accuracy")]
    assert metric_rows, comment
    cells = [c.strip().strip("`").strip() for c in metric_rows[0].strip().strip("|").split("|")]

    # The flow run's page (its Logs tab): name, tags, final state, and the verdict and
    # metric table in the run's logs, then Prefect's own last line.
    words = _words(_browse(chromium, page, tmp_path / "profile", "--dump-dom"))
    assert f"Flow Run: {name}" in words, words[:3000]
    for tag in ("event:pull_request", "repo:acme/models", "pr:61", "model:breast-cancer", "verdict:pass"):
        assert tag in words, (tag, words[:3000])
    assert "Completed" in words and "Finished in state Completed(" in words, words[:4000]
    assert "Info PASS breast-cancer: All 5 gate checks passed metric ┃ base ┃ candidate ┃ delta ┃ gate" in words, words[-6000:]
    assert " │ ".join(cells[:3]) in words, (cells, words[-6000:])  # the comment's metric row, as the log's table shows it

    # The report artifact's page renders its Markdown: the PR comment's metric table.
    body = json.dumps({"artifacts": {"flow_run_id": {"any_": [run["id"]]}, "key": {"any_": ["mlops-breast-cancer"]}}}).encode()
    request = urllib.request.Request(f"{fleet['ui']}/api/artifacts/filter", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        (artifact,) = json.loads(answer.read())
    assert artifact["type"] == "markdown" and artifact["data"] == comment  # the same Markdown the PR comment shows
    shown = _browse(chromium, f"{fleet['ui']}/artifacts/artifact/{artifact['id']}", tmp_path / "profile", "--dump-dom")
    assert "<table" in shown.stdout, shown.stdout[:3000]
    words = _words(shown)
    assert " ".join(c for c in cells if c) in words, (cells, words[:4000])  # one table row, cell by cell
    assert f"Flow Run {name}" in words and "Artifact Key mlops-breast-cancer" in words, words[:4000]

    ARTIFACTS.mkdir(exist_ok=True)
    for where, file in ((page, "prefect-ui-flow-run.png"), (f"{fleet['ui']}/artifacts/artifact/{artifact['id']}", "prefect-ui-report-artifact.png")):
        shot = ARTIFACTS / file
        shot.unlink(missing_ok=True)
        taken = _browse(chromium, where, tmp_path / "profile", f"--screenshot={shot}")
        assert taken.returncode == 0 and shot.stat().st_size > 10_000, taken.stderr[-2000:]


def _words(shown: subprocess.CompletedProcess[str]) -> str:
    """The page's text as a reader sees it: tags dropped, entities decoded, spaces folded."""
    import re
    from html import unescape

    assert shown.returncode == 0, shown.stderr[-2000:]
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", shown.stdout)).split())
