"""GitHub end to end: the CLI run exactly as an Actions runner runs it, against the
stand-in (tests/github_standin.py) over real HTTP, through PyGithub."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.github_standin import SHARED, StandIn
from tests.helpers import GitRepo

TOKEN = "ghs_standin_secret_token_123"
ACTION_STEP = next(step["run"] for step in yaml.safe_load((Path(__file__).resolve().parents[1] / "actions" / "pull-request" / "action.yml").read_text())["runs"]["steps"] if step.get("id") == "run")
OPENED = SHARED / "webhooks" / "octokit-webhooks" / "api.github.com" / "pull_request" / "opened.payload.json"


@pytest.fixture
def github() -> StandIn:
    server = StandIn(token=TOKEN).start()
    server.add_repo("acme/models")
    yield server
    server.stop()
    assert server.violations == []


def payload(repo: GitRepo, number: int, action: str = "opened", full_name: str = "acme/models") -> dict:
    """GitHub's own example delivery, pointed at our repository and commits."""
    data = json.loads(OPENED.read_text())
    data["action"] = action
    data["number"] = number
    pr = data["pull_request"]
    pr["number"] = number
    pr["head"]["sha"] = repo.git("rev-parse", "HEAD")
    pr["head"]["ref"] = repo.git("rev-parse", "--abbrev-ref", "HEAD")
    pr["head"]["repo"]["full_name"] = full_name
    pr["base"]["ref"] = "main"
    pr["base"]["sha"] = repo.git("rev-parse", "main")
    pr["base"]["repo"]["full_name"] = full_name
    data["repository"]["full_name"] = full_name
    data["repository"]["default_branch"] = "main"
    return data


def runner(repo: GitRepo, github: StandIn, prefect_api: str, event: dict, tmp: Path, name: str = "pull_request", **extra: str) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    """`mlops run` with the environment a GitHub-hosted runner gives a step."""
    tmp.mkdir(parents=True, exist_ok=True)
    event_path, summary, output = tmp / "event.json", tmp / "summary.md", tmp / "output.txt"
    event_path.write_text(json.dumps(event))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "RUNNER_"))}
    env.update(
        CI="true",
        GITHUB_ACTIONS="true",
        GITHUB_EVENT_NAME=name,
        GITHUB_EVENT_PATH=str(event_path),
        GITHUB_REPOSITORY=event["repository"]["full_name"],
        GITHUB_SHA=repo.git("rev-parse", "HEAD"),
        GITHUB_REF=f"refs/pull/{event.get('number')}/merge",
        GITHUB_API_URL=github.url,
        GITHUB_SERVER_URL="https://github.com",
        GITHUB_STEP_SUMMARY=str(summary),
        GITHUB_OUTPUT=str(output),
        GITHUB_TOKEN=TOKEN,
        PREFECT_API_URL=prefect_api,
        MLOPS_GITHUB_WRITE_INTERVAL="0",
        **extra,
    )
    # The action's own step script, run by bash with the env the step declares.
    env.update(MLOPS_CONFIG="mlops.yaml", PATH=f"{Path(sys.executable).parent}:{env['PATH']}")
    proc = subprocess.run(["bash", "-e", "-c", ACTION_STEP], cwd=repo.path, env=env, capture_output=True, text=True, timeout=300)
    # The only place the token appears is the command that tells the runner to mask it.
    shown = (proc.stdout + proc.stderr).replace(f"::add-mask::{TOKEN}\n", "")
    assert TOKEN not in shown
    return proc, summary, output


def outputs(path: Path) -> dict[str, str]:
    text = path.read_text()
    out, lines = {}, iter(text.splitlines())
    for line in lines:
        name, delim = line.split("<<", 1)
        value = []
        for inner in lines:
            if inner == delim:
                break
            value.append(inner)
        out[name] = "\n".join(value)
    return out


def pr_repo(example_repo: GitRepo, github: StandIn, number: int, edit: tuple[str, str]) -> GitRepo:
    repo = example_repo
    repo.branch("feature").edit("mlops.yaml", *edit).commit("pr")
    github.add_pull("acme/models", number, repo.git("rev-parse", "HEAD"), repo.git("rev-parse", "main"))
    return repo


def test_opened_then_synchronize_with_a_worse_model(prefect_api: str, example_repo: GitRepo, github: StandIn, tmp_path: Path) -> None:
    repo = pr_repo(example_repo, github, 9, ("max_depth: 2", "max_depth: 6"))
    proc, summary, output = runner(repo, github, prefect_api, payload(repo, 9), tmp_path / "run1")
    assert proc.returncode == 0, proc.stderr
    state = github.repos["acme/models"]
    (comment,) = state.comments.values()
    assert comment["body"].startswith("<!-- mlgitops:pr-report name=breast-cancer -->\n### ✅ mlops gate passed")
    head = repo.git("rev-parse", "HEAD")
    assert [s["state"] for s in state.statuses[head]] == ["pending", "success"]
    assert all(s["context"] == "mlops/gate" for s in state.statuses[head])
    (check,) = state.check_runs.values()
    assert (check["name"], check["status"], check["conclusion"]) == ("mlops/gate", "completed", "success")
    assert check["output"]["summary"].startswith("<!-- mlgitops:pr-report")
    assert "::group::mlops: train and evaluate breast-cancer" in proc.stdout
    assert summary.read_text().startswith("<!-- mlgitops:pr-report name=breast-cancer -->")
    out = outputs(output)
    assert out["verdict"] == "pass" and out["comment-url"].endswith(f"#issuecomment-{comment['id']}")
    assert set(json.loads(out["metrics"])) == {"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"}

    # synchronize: a worse model on a new commit edits the same comment and fails.
    repo.edit("mlops.yaml", "max_depth: 6", "max_depth: 1").edit("mlops.yaml", "n_estimators: 60", "n_estimators: 1").commit("worse")
    state.pulls[9]["head_sha"] = repo.git("rev-parse", "HEAD")
    proc, _, output = runner(repo, github, prefect_api, payload(repo, 9, "synchronize"), tmp_path / "run2")
    assert proc.returncode == 1, proc.stderr
    (edited,) = state.comments.values()
    assert edited["id"] == comment["id"] and "### ❌ mlops gate failed" in edited["body"]
    assert [s["state"] for s in state.statuses[repo.git("rev-parse", "HEAD")]] == ["pending", "failure"]
    assert outputs(output)["verdict"] == "fail"
    assert len(github.calls("POST", r"/issues/9/comments$")) == 1


def test_faults_are_retried_and_never_duplicate_the_comment(prefect_api: str, example_repo: GitRepo, github: StandIn, tmp_path: Path) -> None:
    repo = pr_repo(example_repo, github, 4, ("max_depth: 2", "max_depth: 3"))
    github.fail("POST", r"/issues/4/comments$", 502)  # refused: looked for, not found, posted again
    github.fail("POST", r"/issues/4/comments$", 500, after=True)  # created, answer lost: found, not posted again
    github.fail("POST", r"/statuses/", 429, headers={"Retry-After": "1"})
    github.fail("GET", r"/pulls/4$", 403, headers={"Retry-After": "1"}, body={"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.", "documentation_url": "https://docs.github.com/rest"})
    github.fail("PATCH", r"/check-runs/", 503, headers={"Retry-After": "1"})
    start = time.monotonic()
    proc, _, _ = runner(repo, github, prefect_api, payload(repo, 4), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert len(github.repos["acme/models"].comments) == 1
    assert [c[2] for c in github.calls("POST", r"/issues/4/comments$")] == [502, 500]
    assert github.calls("DELETE", r"/issues/comments/") == []  # no duplicate was made to fold
    assert [c[2] for c in github.calls("POST", r"/statuses/")][:2] == [429, 201]
    assert [c[2] for c in github.calls("PATCH", r"/check-runs/")] == [503, 200]
    (check,) = github.repos["acme/models"].check_runs.values()
    assert check["status"] == "completed"
    assert time.monotonic() - start < 120


def test_server_errors_that_do_not_stop_give_a_clear_error(prefect_api: str, example_repo: GitRepo, github: StandIn, tmp_path: Path) -> None:
    repo = pr_repo(example_repo, github, 5, ("max_depth: 2", "max_depth: 3"))
    github.fail("GET", r"/pulls/5$", 500, times=100)
    proc, summary, _ = runner(repo, github, prefect_api, payload(repo, 5), tmp_path)
    assert proc.returncode == 3
    assert "error: could not reach GitHub at" in proc.stderr or "error: GitHub answered 500" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert 1 < len(github.calls("GET", r"/pulls/5$")) <= 5  # retried, bounded
    assert summary.read_text().startswith("<!-- mlgitops:pr-report")  # the report still reached the run's page


def test_bad_token_is_exit_2(prefect_api: str, example_repo: GitRepo, github: StandIn, tmp_path: Path) -> None:
    repo = pr_repo(example_repo, github, 6, ("max_depth: 2", "max_depth: 3"))
    github.token = "another-token"
    proc, _, _ = runner(repo, github, prefect_api, payload(repo, 6), tmp_path)
    assert proc.returncode == 2
    assert "error: GitHub rejected the token while trying to read the repository (401 Bad credentials)" in proc.stderr
    assert "::error title=mlops::GitHub rejected the token" in proc.stdout


def test_fork_pull_request_degrades_to_summary_and_exit_code(prefect_api: str, example_repo: GitRepo, github: StandIn, tmp_path: Path) -> None:
    repo = pr_repo(example_repo, github, 8, ("max_depth: 2", "max_depth: 1"))
    github.repos["acme/models"].read_only = True
    event = payload(repo, 8)
    event["pull_request"]["head"]["repo"]["full_name"] = "stranger/models"
    proc, summary, output = runner(repo, github, prefect_api, event, tmp_path)
    assert proc.returncode == 1  # max_depth 1: log_loss worsens past its 25% gate; the verdict is the exit code even without a comment
    assert outputs(output)["verdict"] == "fail"
    assert proc.stderr.count("note: read-only token (e.g. a pull request from a fork)") == 1
    assert "Traceback" not in proc.stderr
    assert github.repos["acme/models"].comments == {}
    assert summary.read_text().startswith("<!-- mlgitops:pr-report")
    assert outputs(output)["comment-url"] == ""


def test_enterprise_base_url(prefect_api: str, example_repo: GitRepo, tmp_path: Path) -> None:
    ghes = StandIn(token=TOKEN, prefix="/api/v3").start()
    try:
        ghes.add_repo("acme/models")
        repo = pr_repo(example_repo, ghes, 3, ("max_depth: 2", "max_depth: 4"))
        proc, _, _ = runner(repo, ghes, prefect_api, payload(repo, 3), tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert len(ghes.repos["acme/models"].comments) == 1
        assert all(path.startswith("/api/v3/") for _, path, _ in ghes.log)
        assert ghes.violations == []
    finally:
        ghes.stop()


def test_config_error_becomes_an_annotation(example_repo: GitRepo, github: StandIn, tmp_path: Path) -> None:
    repo = example_repo
    repo.branch("typo").edit("mlops.yaml", "    min: 0.90", "    mni: 0.90").commit("typo")
    github.add_pull("acme/models", 2, repo.git("rev-parse", "HEAD"), repo.git("rev-parse", "main"))
    proc, _, _ = runner(repo, github, "http://127.0.0.1:9/api", payload(repo, 2), tmp_path)
    assert proc.returncode == 2
    assert "::error file=mlops.yaml,line=26,col=5,title=mlops::gates.accuracy.mni: unknown key 'mni'; did you mean 'min'?\n" in proc.stdout


def test_irrelevant_events_exit_0_with_a_reason(example_repo: GitRepo, github: StandIn, tmp_path: Path) -> None:
    event = payload(example_repo, 1, "labeled")
    proc, _, _ = runner(example_repo, github, "http://127.0.0.1:9/api", event, tmp_path)
    assert proc.returncode == 0
    assert proc.stdout == "nothing to do: pull_request action 'labeled' needs no run (runs on opened, synchronize, reopened)\n"
    assert github.log == []


def test_two_runs_racing_leave_one_comment_with_the_newer_report(github: StandIn) -> None:
    import threading

    from mlgitops.events.payloads import Event
    from mlgitops.forges.github import GitHubForge

    old, new = "a" * 40, "b" * 40
    github.add_pull("acme/models", 11, new, "c" * 40)  # the PR has moved on to `new`
    marker = "<!-- mlgitops:pr-report name=m -->"
    results = {}

    def run(sha: str, copies: int) -> None:
        forge = GitHubForge("acme/models", TOKEN, github.url, seconds_between_writes=0, seconds_between_requests=0)
        for i in range(copies):
            results[(sha, i)] = forge.upsert_comment(Event(kind="pull_request", repo="acme/models", pr_number=11, head_sha=sha), marker, f"{marker}\nreport for {sha[:7]}")

    github.delay = 0.05  # widen the window in which both runs see no comment yet
    threads = [threading.Thread(target=run, args=(sha, 1)) for sha in (old, new, new)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    (comment,) = github.repos["acme/models"].comments.values()
    assert comment["body"].startswith(f"{marker}\nreport for {new[:7]}")
    assert results[(old, 0)].note == "PR #11 moved on to bbbbbbb; the comment was left to that run"


def test_slow_responses_time_out_and_are_retried(github: StandIn) -> None:
    from mlgitops.events.payloads import Event
    from mlgitops.forges.github import ForgeError, GitHubForge

    github.add_pull("acme/models", 12, "d" * 40, "e" * 40)
    forge = GitHubForge("acme/models", TOKEN, github.url, timeout=1, retries=2, seconds_between_writes=0, seconds_between_requests=0)
    github.fail("GET", r"/pulls/12$", 200, delay=2.5)  # one answer arrives too late
    ref = forge.upsert_comment(Event(kind="pull_request", repo="acme/models", pr_number=12, head_sha="d" * 40), "<!-- m -->", "<!-- m -->\nx")
    assert ref.created and len(github.calls("GET", r"/pulls/12$")) >= 1
    github.fail("GET", r"/pulls/12$", 200, times=10, delay=2.5)  # every answer too late
    start = time.monotonic()
    with pytest.raises(ForgeError) as info:
        forge.upsert_comment(Event(kind="pull_request", repo="acme/models", pr_number=12, head_sha="d" * 40), "<!-- m -->", "<!-- m -->\ny")
    assert info.value.message.startswith(f"could not reach GitHub at {github.url} to read the pull request: ")
    assert time.monotonic() - start < 30


def test_pull_request_for_a_pushed_sha(github: StandIn) -> None:
    from mlgitops.forges.github import GitHubForge

    github.add_pull("acme/models", 21, "f" * 40, "e" * 40)
    forge = GitHubForge("acme/models", TOKEN, github.url, seconds_between_writes=0, seconds_between_requests=0)
    assert forge.pull_for_sha("f" * 40) == 21
    assert forge.pull_for_sha("0" * 40) is None


def test_personal_access_token_without_checks_and_foreign_marker_comments(prefect_api: str, example_repo: GitRepo, github: StandIn, tmp_path: Path) -> None:
    """A PAT may not create check runs (GitHub App only): statuses still gate. A
    comment someone else wrote with our marker is neither edited nor deleted."""
    repo = pr_repo(example_repo, github, 13, ("max_depth: 2", "max_depth: 5"))
    github.identity = "octocat"
    state = github.repos["acme/models"]
    state.comments[1] = {"id": 1, "number": 13, "body": "<!-- mlgitops:pr-report name=breast-cancer -->\nfake", "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z", "author": "mallory"}
    proc, _, _ = runner(repo, github, prefect_api, payload(repo, 13), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "note: check run skipped: the token may not create the check run (403: You must authenticate via a GitHub App.)" in proc.stderr
    assert [s["state"] for s in state.statuses[repo.git("rev-parse", "HEAD")]] == ["pending", "success"]
    assert state.comments[1]["body"].endswith("fake")
    ours = [c for c in state.comments.values() if c["author"] == "octocat"]
    assert len(ours) == 1 and "### ✅ mlops gate passed" in ours[0]["body"]


def test_retry_after_beyond_the_budget_stops_at_once(github: StandIn) -> None:
    from mlgitops.events.payloads import Event
    from mlgitops.forges.github import ForgeError, GitHubForge

    github.add_pull("acme/models", 14, "9" * 40, "8" * 40)
    github.fail("GET", r"/pulls/14$", 429, headers={"Retry-After": "3600"})
    forge = GitHubForge("acme/models", TOKEN, github.url, max_wait=5, seconds_between_writes=0, seconds_between_requests=0)
    start = time.monotonic()
    with pytest.raises(ForgeError) as info:
        forge.upsert_comment(Event(kind="pull_request", repo="acme/models", pr_number=14, head_sha="9" * 40), "<!-- m -->", "<!-- m -->\nx")
    assert info.value.message == "stopped before trying again to read the pull request: GitHub asked to wait 3600 s before retrying (Retry-After), more than the 5 s left of this run's 5 s for waiting"
    assert time.monotonic() - start < 20  # it did not sleep the hour (nor the 5 s budget, bar a loaded machine)
    assert len(github.calls("GET", r"/pulls/14$")) == 1


def test_runner_checkout_of_the_merge_commit(prefect_api: str, example_repo: GitRepo, github: StandIn, tmp_path: Path) -> None:
    """actions/checkout on pull_request: a detached merge commit, the base only as origin/main."""
    repo = pr_repo(example_repo, github, 15, ("max_depth: 2", "max_depth: 3"))
    head = repo.git("rev-parse", "HEAD")
    event = payload(repo, 15)
    repo.git("checkout", "--quiet", "--detach", "main")
    repo.git("merge", "--quiet", "--no-ff", "-m", "Merge feature into main", head)
    repo.git("update-ref", "refs/remotes/origin/main", "main")
    repo.git("branch", "-D", "main", "feature")
    proc, _, _ = runner(repo, github, prefect_api, event, tmp_path)
    assert proc.returncode == 0, proc.stderr
    state = github.repos["acme/models"]
    assert [s["state"] for s in state.statuses[head]] == ["pending", "success"]  # on the PR head, not the merge
    (comment,) = state.comments.values()
    assert "- `training.params.max_depth`: `2` → `3`" in comment["body"]


def test_a_port_that_reads_404_does_not_look_like_a_404() -> None:
    """Regression: a 429 once passed for a 404 (and was retried) when the stand-in's
    random port happened to contain "404"; errors are told apart by status now."""
    from mlgitops.events.payloads import Event
    from mlgitops.forges.github import ForgeError, GitHubForge

    for port in (40404, 14040, 24045, 34046, 44047, 54048):
        try:
            server = StandIn(token=TOKEN).start(port)
            break
        except OSError:
            continue
    else:
        pytest.fail("no free port containing 404")
    try:
        server.add_repo("acme/models")
        server.add_pull("acme/models", 17, "7" * 40, "8" * 40)
        server.fail("GET", r"/pulls/17$", 429, headers={"Retry-After": "3600"})
        forge = GitHubForge("acme/models", TOKEN, server.url, max_wait=5, seconds_between_writes=0, seconds_between_requests=0)
        with pytest.raises(ForgeError) as info:
            forge.upsert_comment(Event(kind="pull_request", repo="acme/models", pr_number=17, head_sha="7" * 40), "<!-- m -->", "<!-- m -->\nx")
        assert "404" in server.url  # the port reads 404 ...
        assert info.value.status is None  # ... but GitHub never answered 404
        assert len(server.calls("GET", r"/pulls/17$")) == 1
    finally:
        server.stop()
    assert server.violations == []


def test_429_without_retry_after_waits_a_minute_or_stops(github: StandIn) -> None:
    """GitHub: with no Retry-After, wait at least a minute; over the budget we stop."""
    from mlgitops.events.payloads import Event
    from mlgitops.forges.github import ForgeError, GitHubForge

    github.add_pull("acme/models", 16, "7" * 40, "8" * 40)
    github.fail("GET", r"/pulls/16$", 429)
    forge = GitHubForge("acme/models", TOKEN, github.url, max_wait=5, seconds_between_writes=0, seconds_between_requests=0)
    with pytest.raises(ForgeError) as info:
        forge.upsert_comment(Event(kind="pull_request", repo="acme/models", pr_number=16, head_sha="7" * 40), "<!-- m -->", "<!-- m -->\nx")
    assert info.value.message == "stopped before trying again to read the pull request: GitHub asked to wait 60 s before retrying (a secondary rate limit without Retry-After: at least a minute), more than the 5 s left of this run's 5 s for waiting"
    assert len(github.calls("GET", r"/pulls/16$")) == 1
