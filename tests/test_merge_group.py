"""Merge queues: GitHub's merge_group delivery, run as an Actions runner runs it (the
pull-request action's own step script) against the GitHub stand-in over real HTTP.

The queue's merge commit is gated against the queue's base; the verdict is the
`mlops/gate` status and check run on that commit (what a required check reads) and
the exit code. A queue run names no pull request: nothing is commented."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlgitops.events.payloads import event_from_payload
from tests.github_standin import StandIn
from tests.helpers import GitRepo
from tests.test_github import TOKEN, outputs, runner

# GitHub's own example delivery, vendored (tests/github_extra/webhooks/README.md).
EXAMPLE = Path(__file__).resolve().parent / "github_extra" / "webhooks" / "merge_group" / "checks_requested.payload.json"


@pytest.fixture
def github() -> StandIn:
    server = StandIn(token=TOKEN).start()
    server.add_repo("acme/models")
    yield server
    server.stop()
    assert server.violations == []


def queue_payload(repo: GitRepo, number: int, pr_head: str, action: str = "checks_requested") -> dict:
    """GitHub's example, pointed at our queue commit (HEAD) and base (main)."""
    data = json.loads(EXAMPLE.read_text())
    data["action"] = action
    group = data["merge_group"]
    group["head_sha"] = repo.git("rev-parse", "HEAD")
    group["head_ref"] = f"refs/heads/gh-readonly-queue/main/pr-{number}-{pr_head}"
    group["base_sha"] = repo.git("rev-parse", "main")
    group["base_ref"] = "refs/heads/main"
    data["repository"]["full_name"] = "acme/models"
    data["repository"]["default_branch"] = "main"
    return data


def queue_repo(example_repo: GitRepo, edit: tuple[str, str]) -> tuple[GitRepo, str]:
    """A PR branch and the merge queue's commit of it on main, checked out detached
    (actions/checkout of a merge_group: GITHUB_SHA = merge_group.head_sha)."""
    repo = example_repo
    repo.branch("feature").edit("mlops.yaml", *edit).commit("pr")
    pr_head = repo.git("rev-parse", "HEAD")
    repo.git("checkout", "--quiet", "--detach", "main")
    repo.git("merge", "--quiet", "--no-ff", "-m", "Merge pull request #12 from acme/feature", pr_head)
    return repo, pr_head


def test_the_example_parses_to_the_queue_head_and_base() -> None:
    event = event_from_payload(EXAMPLE, "merge_group")
    assert (event.kind, event.action, event.repo) == ("merge_group", "checks_requested", "octo-org/octo-repo")
    assert event.head_sha == "2ffea6db159f6b6c47a24e778fb9ef40cf6b1c7d"
    assert event.head_ref == "gh-readonly-queue/main/pr-104-929f8209d40f77f4abc622a499c93a83babdbe64"
    assert event.ref == "refs/heads/gh-readonly-queue/main/pr-104-929f8209d40f77f4abc622a499c93a83babdbe64"
    assert (event.base_ref, event.base_sha) == ("main", "380387fbc80638b734a49e1be1c4dfec1c01b33c")
    assert (event.pr_number, event.queue_pr) == (None, 104)  # no PR to comment on; the branch names it
    assert event.should_run() == (True, "")
    assert event_from_payload(EXAMPLE).kind == "merge_group"  # told by its shape without a name


def test_checks_requested_gates_the_queue_commit_and_comments_nowhere(prefect_api: str, example_repo: GitRepo, github: StandIn, tmp_path: Path) -> None:
    repo, pr_head = queue_repo(example_repo, ("max_depth: 2", "max_depth: 3"))
    head, base = repo.git("rev-parse", "HEAD"), repo.git("rev-parse", "main")
    proc, summary, output = runner(repo, github, prefect_api, queue_payload(repo, 12, pr_head), tmp_path, name="merge_group")
    assert proc.returncode == 0, proc.stderr
    state = github.repos["acme/models"]
    assert [s["state"] for s in state.statuses[head]] == ["pending", "success"]
    assert all(s["context"] == "mlops/gate" for s in state.statuses[head])
    assert set(state.statuses) == {head}  # not on the PR's own head, nor the base
    (check,) = state.check_runs.values()
    assert (check["name"], check["head_sha"], check["status"], check["conclusion"]) == ("mlops/gate", head, "completed", "success")
    assert state.comments == {}
    assert github.calls(pattern=r"/issues|/pulls") == []  # nothing even looked for a PR
    line = f"merge queue: gated `gh-readonly-queue/main/pr-12-{pr_head}` (PR #12) at {head[:7]} against `main` at {base[:7]}; the result is the `mlops/gate` status and check run on {head[:7]}, no PR comment is written"
    assert f"\n{line}\n" in proc.stdout
    assert summary.read_text().startswith(f"{line}\n\n<!-- mlgitops:pr-report name=breast-cancer -->\n### ✅ mlops gate passed")
    out = outputs(output)
    assert (out["verdict"], out["comment-url"]) == ("pass", "")


def test_a_failing_queue_commit_is_exit_1_and_a_failure_status(prefect_api: str, example_repo: GitRepo, github: StandIn, tmp_path: Path) -> None:
    repo, pr_head = queue_repo(example_repo, ("n_estimators: 60", "n_estimators: 1"))
    head = repo.git("rev-parse", "HEAD")
    proc, _, output = runner(repo, github, prefect_api, queue_payload(repo, 13, pr_head), tmp_path, name="merge_group")
    assert proc.returncode == 1, proc.stderr
    state = github.repos["acme/models"]
    assert [s["state"] for s in state.statuses[head]] == ["pending", "failure"]
    (check,) = state.check_runs.values()
    assert (check["head_sha"], check["conclusion"]) == (head, "failure")
    assert state.comments == {}
    assert outputs(output)["verdict"] == "fail"


@pytest.mark.parametrize("reason", ["merged", "dequeued", "invalidated"])
def test_destroyed_exits_0_with_its_one_line(example_repo: GitRepo, github: StandIn, tmp_path: Path, reason: str) -> None:
    # GitHub publishes no destroyed example: its schema adds a top-level reason.
    event = queue_payload(example_repo, 12, "a" * 40, action="destroyed") | {"reason": reason}
    proc, _, _ = runner(example_repo, github, "http://127.0.0.1:9/api", event, tmp_path, name="merge_group")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"nothing to do: merge queue group gh-readonly-queue/main/pr-12-{'a' * 40} destroyed ({reason}); the gate runs on checks_requested\n"
    assert github.log == []


def test_a_checks_requested_without_its_head_is_exit_2(tmp_path: Path) -> None:
    from mlgitops.errors import EventError

    data = json.loads(EXAMPLE.read_text())
    del data["merge_group"]["head_sha"]
    path = tmp_path / "event.json"
    path.write_text(json.dumps(data))
    with pytest.raises(EventError) as info:
        event_from_payload(path, "merge_group")
    assert info.value.message == f"{path}: merge_group payload lacks merge_group.head_sha or merge_group.base_ref"


def test_the_group_is_gated_against_the_base_it_was_built_on(example_repo: GitRepo, tmp_path: Path) -> None:
    """main moved on after the group was made: the group's base_sha, not main's tip."""
    from mlgitops.events.payloads import localize

    repo, pr_head = queue_repo(example_repo, ("max_depth: 2", "max_depth: 3"))
    data = queue_payload(repo, 12, pr_head)
    built_on = repo.git("rev-parse", "main")
    head = repo.git("rev-parse", "HEAD")
    repo.checkout("main").gen({"NOTES.md": "later\n"}).commit("main moves on")
    repo.git("checkout", "--quiet", "--detach", head)
    path = tmp_path / "event.json"
    path.write_text(json.dumps(data))
    event = localize(event_from_payload(path, "merge_group"), repo.path)
    assert (event.base_sha, event.head_sha) == (built_on, head)
    assert repo.git("rev-parse", "main") != built_on
    # The pull-request flow keeps taking the base tip over a stale base.sha.
    pr = localize(type(event)(**{**event.to_dict(), "kind": "pull_request"}), repo.path)
    assert pr.base_sha == repo.git("rev-parse", "main")


def test_the_webhook_service_takes_merge_group_deliveries(tmp_path: Path) -> None:
    """The service handles merge_group: it runs at the queue's commit (fetched from
    origin's gh-readonly-queue branch), and names a commit the clone lacks."""
    from mlgitops.service import delivery, webhook
    from tests.helpers import GitRepo

    assert "merge_group" in webhook.HANDLED
    repo = GitRepo(tmp_path / "clone")
    head = repo.commit("queue head")
    payload = json.loads(EXAMPLE.read_text())
    payload["merge_group"]["head_sha"] = head
    assert delivery.prepare(repo.path, "merge_group", payload, "t1") == (head, None, "")
    payload["merge_group"]["head_sha"] = "f" * 40
    sha, base, error = delivery.prepare(repo.path, "merge_group", payload, "t2")
    assert (sha, base) == (None, None)
    assert error == f"commit fffffff of merge queue group {payload['merge_group']['head_ref']} is not in the clone at {repo.path} (it has no origin to fetch from)"
