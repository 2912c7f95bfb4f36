"""Events from GitHub's own payload examples (tests/github/webhooks), and from odd ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlgitops.events.payloads import Event, event_from_payload
from tests.helpers import GITHUB_MATERIAL

EXAMPLES = GITHUB_MATERIAL / "webhooks" / "octokit-webhooks" / "api.github.com"
ALL = sorted(EXAMPLES.glob("*/*.json"))


@pytest.mark.parametrize("path", ALL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_published_example_parses(path: Path) -> None:
    name = path.parent.name
    event = event_from_payload(path, name)
    assert event.kind == name
    assert event.repo == "Codertocat/Hello-World" or event.repo is None or "/" in event.repo
    run, reason = event.should_run()
    if run:
        assert (name, event.action) in {("pull_request", "opened"), ("pull_request", "synchronize"), ("pull_request", "reopened"), ("merge_group", "checks_requested")}
    else:
        assert reason and "\n" not in reason
    # The same payload without a name is recognised by its shape, for the handled kinds.
    if name in ("pull_request", "issue_comment", "push", "workflow_dispatch", "merge_group"):
        assert event_from_payload(path).kind == name


def test_pull_request_opened_fields() -> None:
    event = event_from_payload(EXAMPLES / "pull_request" / "opened.payload.json", "pull_request")
    assert event == Event(
        kind="pull_request",
        action="opened",
        repo="Codertocat/Hello-World",
        pr_number=2,
        base_ref="master",
        base_sha="f95f852bd8fca8fcc58a9a2d6c842781e32a215e",
        head_ref="changes",
        head_sha="ec26c3e57ca3a959ca5aad62de7213c562f8c821",
        default_branch="master",
        actor="Codertocat",
        fork=False,
        merged=False,
    )


def test_push_kinds() -> None:
    tag_delete = event_from_payload(EXAMPLES / "push" / "payload.json", "push")
    assert (tag_delete.ref, tag_delete.deleted, tag_delete.ref_type, tag_delete.head_sha) == ("refs/tags/simple-tag", True, "tag", None)
    assert tag_delete.should_run() == (False, "push deleted refs/tags/simple-tag; nothing to run")
    branch = event_from_payload(EXAMPLES / "push" / "with-new-branch.payload.json", "push")
    assert (branch.ref, branch.ref_type, branch.head_sha) == ("refs/heads/master", "branch", "6113728f27ae82c7b1a177c8d03f9e96e0adf246")
    assert branch.should_run() == (False, "push to refs/heads/master: the pull-request flow runs on pull_request events; the deploy flow on pushes to master")


def test_issue_comment_and_dispatch() -> None:
    comment = event_from_payload(EXAMPLES / "issue_comment" / "created.payload.json", "issue_comment")
    assert comment.kind == "issue_comment" and comment.pr_number is None and comment.comment_body.startswith("You are totally right!")
    dispatch = event_from_payload(EXAMPLES / "workflow_dispatch" / "payload.json", "workflow_dispatch")
    assert (dispatch.ref, dispatch.head_ref) == ("refs/heads/master", "master")


def test_closed_merged_pr_reason(tmp_path: Path) -> None:
    payload = json.loads((EXAMPLES / "pull_request" / "closed.payload.json").read_text())
    payload["pull_request"]["merged"] = True
    path = tmp_path / "merged.json"
    path.write_text(json.dumps(payload))
    assert event_from_payload(path, "pull_request").should_run() == (False, "PR #2 was merged; the pull-request flow runs on opened, synchronize, reopened")


def test_old_and_odd_payload_shapes(tmp_path: Path) -> None:
    """Deliveries from years ago lack fields; odd ones have other types. Neither crashes."""
    old = {"action": "opened", "number": 5, "pull_request": {"number": 5, "base": {"ref": "main", "sha": "a" * 40}, "head": {"ref": "x", "sha": "b" * 40, "repo": None}}, "repository": "o/r"}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    event = event_from_payload(path)
    assert (event.kind, event.pr_number, event.repo, event.fork) == ("pull_request", 5, None, True)
    fork = {**old, "repository": {"full_name": "o/r"}, "pull_request": {**old["pull_request"], "head": {"ref": "x", "sha": "b" * 40, "repo": {"full_name": "someone/r"}}}}
    path.write_text(json.dumps(fork))
    assert event_from_payload(path).fork is True
    path.write_text(json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}))
    assert event_from_payload(path, "ping").should_run() == (False, "event 'ping' does not trigger the pull-request flow")
