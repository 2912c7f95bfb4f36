"""Issue 11: every body posted to a forge fits GitHub's published limits, held to
GitHub's numbers (a body at the limit passes whole, one character more is cut with a
visible note), on GitHub (the stand-in answers 422 past them, as GitHub does) and,
for parity, on the local forge."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.github_standin import StandIn

TOKEN = "ghs_forge_limits_token_321"
COMMENT = 65_536  # GitHub: "body is too long (maximum is 65536 characters)"
CHECK_SUMMARY = 65_535  # GitHub's OpenAPI: output.summary maxLength
STATUS = 140  # GitHub: "description is too long (maximum is 140 characters)"
NOTE = "\n\n> ⚠️ Cut here: longer than GitHub's 65,536-character limit.\n"


@pytest.fixture
def github() -> Iterator[StandIn]:
    server = StandIn(token=TOKEN).start()
    server.add_repo("acme/models")
    server.add_pull("acme/models", 3, "a" * 40, "b" * 40)
    yield server
    server.stop()
    assert server.violations == []


def forge(github: StandIn) -> Any:
    from mlgitops.forges.github import GitHubForge

    return GitHubForge("acme/models", TOKEN, github.url, seconds_between_writes=0, seconds_between_requests=0)


def test_github_bodies_at_the_limit_pass_whole_and_one_more_is_cut(github: StandIn) -> None:
    gh = forge(github)
    state = github.repos["acme/models"]
    gh.reply(3, "x" * COMMENT)
    gh.reply(3, "y" * (COMMENT + 1))
    whole, cut = (c["body"] for c in sorted(state.comments.values(), key=lambda c: c["id"]))
    assert whole == "x" * COMMENT
    assert len(cut) <= COMMENT and cut.endswith("y" + NOTE)

    gh.set_status("a" * 40, "success", "d" * STATUS, summary="s" * CHECK_SUMMARY)
    gh.set_status("a" * 40, "failure", "e" * (STATUS + 1), summary="t" * (CHECK_SUMMARY + 1))
    assert [s["description"] for s in state.statuses["a" * 40]] == ["d" * STATUS, "e" * (STATUS - 1) + "…"]
    run = max(state.check_runs.values(), key=lambda r: r["id"])  # the failure's
    summary = run["output"]["summary"]
    assert len(summary) <= CHECK_SUMMARY and summary.startswith("t" * 60_000) and summary.endswith("\n\n> ⚠️ Cut here: longer than GitHub's 65,535-character limit.\n")

    marker = "<!-- mlgitops:monitor name=m env=prod -->"
    issue = gh.upsert_issue(marker, "m in prod: drift", "z" * (COMMENT + 10))
    body = state.issues[issue.number]["body"]
    assert len(body) <= COMMENT and body.startswith(marker) and body.endswith(NOTE)

    pull = gh.upsert_pull("main", "mlops/deploy-prod", {"deploy/prod.yaml": "model: v1\n"}, "Promote v1 to prod", "p" * (COMMENT + 1))
    assert len(state.pulls[pull.number]["body"]) <= COMMENT and state.pulls[pull.number]["body"].endswith(NOTE)


def test_the_local_forge_keeps_githubs_limits_too(tmp_path: Path) -> None:
    import json

    from mlgitops.forges.local import LocalForge

    local = LocalForge(tmp_path)
    local.reply(1, "x" * COMMENT)
    local.reply(1, "y" * (COMMENT + 1))
    local.set_status("a" * 40, "success", "d" * (STATUS + 1))
    whole, cut = (c["body"] for c in json.loads((tmp_path / ".mlops" / "forge" / "pr-1" / "comments.json").read_text()))
    assert whole == "x" * COMMENT and len(cut) <= COMMENT and cut.endswith(NOTE)
    assert local.statuses("a" * 40)["mlops/gate"]["description"] == "d" * (STATUS - 1) + "…"
