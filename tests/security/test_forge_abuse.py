"""Issue 11, the forge: what an outsider's comment, a lost answer or a rate limit can
make the bot do on GitHub. PyGithub over real HTTP against the stand-in
(tests/github_standin.py), which answers 422 past GitHub's limits as GitHub does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.github_standin import StandIn, github_for_cli
from tests.helpers import GitRepo
from tests.test_alerts import Receiver, with_alerts
from tests.test_chatops import delivery
from tests.test_deploy import CONFIG, make_repo

TOKEN = "ghs_forge_abuse_token_456"
GITHUB_BODY_LIMIT = 65_536  # GitHub: "body is too long (maximum is 65536 characters)"
HUGE = "/mlops " + "A" * 33_000  # 33,007 characters, as in the issue


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[StandIn]:
    for server in github_for_cli(monkeypatch, TOKEN):
        server.repos["acme/models"].collaborators.update({"alice": "maintain", "carol": "read"})
        yield server


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    """The alert webhook mlops.yaml names, on 127.0.0.1."""
    r = Receiver()
    monkeypatch.setenv("TEAM_WEBHOOK", r.url)
    yield r
    r.stop()


def comment(cli: Any, repo: GitRepo, github: StandIn, tmp: Path, number: int, body: str, login: str) -> tuple[Any, int]:
    """``login`` comments ``body`` on PR ``number``; mlops runs the issue_comment delivery."""
    cid = github.add_comment("acme/models", number, body, login)
    path = tmp / f"delivery-{cid}.json"
    path.write_text(json.dumps(delivery(number, body, login, cid)))
    return cli("run", "--event-path", str(path), "--event-name", "issue_comment", "--forge", "github", cwd=repo.path), cid


def ours(github: StandIn, number: int) -> list[str]:
    return [c["body"] for c in sorted(github.repos["acme/models"].comments.values(), key=lambda c: c["id"]) if c["number"] == number and c["author"] == github.identity]


def test_an_outsiders_huge_command_gets_one_short_reply_and_fires_no_alert(cli_noprefect: Any, repo: GitRepo, github: StandIn, receiver: Receiver, tmp_path: Path) -> None:
    """Before: the reply quoted all 33,007 characters twice, GitHub answered 422, the
    run exited 3 and a run_failure alert went out."""
    make_repo(repo, with_alerts(CONFIG))
    github.add_pull("acme/models", 5, "1" * 40, "2" * 40)
    unknown, cid = comment(cli_noprefect, repo, github, tmp_path, 5, HUGE, "mallory")  # not a collaborator
    assert unknown.exit_code == 0, unknown.output
    assert unknown.stdout == f"unknown command {'a' * 100 + '…'!r}: answered with the help\n"
    (reply,) = ours(github, 5)
    assert len(reply) <= GITHUB_BODY_LIMIT
    quoted = "/mlops " + "A" * 93 + "…"  # the first 100 characters
    assert reply.startswith(f"<!-- mlgitops:chatops reply-to={cid} -->\n> `{quoted}`\n\n@mallory: I do not know `/mlops {'a' * 93}…`.\n\nCommands")

    refused, cid = comment(cli_noprefect, repo, github, tmp_path, 5, "/mlops promote " + "A" * 33_000, "mallory")
    assert refused.exit_code == 0 and refused.stdout == "refused promote: mallory has none access, not write\n"
    reply = ours(github, 5)[-1]
    assert len(reply) <= GITHUB_BODY_LIMIT
    assert reply.startswith(f"<!-- mlgitops:chatops reply-to={cid} -->\n> `/mlops promote {'A' * 85}…`\n\n@mallory: sorry, `/mlops promote {'A' * 85}…` needs write access")
    assert receiver.attempts == 0  # no alert was even tried


def test_a_refusal_github_will_not_post_is_a_note_not_exit_3(cli_noprefect: Any, repo: GitRepo, github: StandIn, receiver: Receiver, tmp_path: Path) -> None:
    """An outsider's comment must not fail the run or alert, even when GitHub refuses
    the answer (here: a locked conversation)."""
    make_repo(repo, with_alerts(CONFIG))
    github.add_pull("acme/models", 12, "9" * 40, "2" * 40)
    locked = {"message": "Unable to create comment because issue is locked.", "documentation_url": "https://docs.github.com/articles/locking-conversations/"}
    github.fail("POST", r"/issues/12/comments$", 403, body=locked)
    refused, _ = comment(cli_noprefect, repo, github, tmp_path, 12, "/mlops promote production", "mallory")
    assert refused.exit_code == 0
    assert refused.stdout == (
        "refused promote: mallory has none access, not write; the answer could not be posted: "
        "GitHub answered 403 while trying to reply on the pull request: Unable to create comment because issue is locked.\n"
    )
    assert ours(github, 12) == [] and receiver.attempts == 0


def test_a_quoted_command_cannot_break_out_of_its_code_span_or_ping_anyone(cli_noprefect: Any, repo: GitRepo, github: StandIn, tmp_path: Path) -> None:
    """A command holding backticks, an @team and an image: quoted in a code span whose
    fence is longer than any backtick run in it, so GitHub renders none of it."""
    make_repo(repo)
    github.add_pull("acme/models", 6, "3" * 40, "2" * 40)
    line = "/mlops promote x` @acme/owners ![p](https://evil.example/p.png) ``"
    refused, cid = comment(cli_noprefect, repo, github, tmp_path, 6, line, "mallory")
    assert refused.exit_code == 0
    (reply,) = ours(github, 6)
    span = f"``` {line} ```"  # three backticks: longer than the run of two inside; padded, as it ends in one
    assert reply == (
        f"<!-- mlgitops:chatops reply-to={cid} -->\n> {span}\n\n@mallory: sorry, {span} needs write access to acme/models, "
        "and GitHub says your access is `none`. A maintainer can run it for you; `/mlops help` works for everyone.\n"
    )


def test_a_reply_whose_answer_is_lost_is_posted_once(cli_noprefect: Any, repo: GitRepo, github: StandIn, tmp_path: Path) -> None:
    """Before: urllib3 repeated the POST after the dropped connection: two replies."""
    make_repo(repo)
    github.add_pull("acme/models", 7, "4" * 40, "2" * 40)
    github.lose_answer("POST", r"/issues/7/comments$")
    helped, cid = comment(cli_noprefect, repo, github, tmp_path, 7, "/mlops help", "carol")
    assert helped.exit_code == 0, helped.output
    assert helped.stdout == "answered /mlops help\n"
    (reply,) = ours(github, 7)
    assert reply.startswith(f"<!-- mlgitops:chatops reply-to={cid} -->\n> `/mlops help`\n\n@carol: Commands")
    assert [status for _, _, status in github.calls("POST", r"/issues/7/comments$")] == [0]  # posted once, the answer lost


def forge(github: StandIn, **kw: Any) -> Any:
    from mlgitops.forges.github import GitHubForge

    return GitHubForge("acme/models", TOKEN, github.url, seconds_between_writes=0, seconds_between_requests=0, **kw)


def test_a_promotion_pr_whose_answer_is_lost_is_found_not_opened_twice(github: StandIn) -> None:
    """Before: the repeated POST got GitHub's 422 "A pull request already exists" and
    the run stopped with exit 3 although the PR was open."""
    github.lose_answer("POST", r"/pulls$")
    pull = forge(github).upsert_pull("main", "mlops/deploy-production", {"deploy/production.yaml": "model: v1\n"}, "Promote v1 to production", "body")
    (only,) = github.repos["acme/models"].pulls.values()
    assert (pull.number, pull.created, only["head_ref"], only["title"]) == (only["number"], True, "mlops/deploy-production", "Promote v1 to production")
    assert [status for _, _, status in github.calls("POST", r"/pulls$")] == [0]


def test_already_exists_updates_the_open_pr(github: StandIn) -> None:
    """GitHub's lists lag: a PR our listing missed is opened already; its 422 (the
    exact body GitHub sends) leads to that PR, updated. Before: exit 3."""
    files = {"deploy/production.yaml": "model: v1\n"}
    first = forge(github).upsert_pull("main", "mlops/deploy-production", files, "Promote v1 to production", "v1")
    github.fail("GET", r"/pulls$", 200, body=[])  # a listing that has not caught up
    second = forge(github).upsert_pull("main", "mlops/deploy-production", {"deploy/production.yaml": "model: v2\n"}, "Promote v2 to production", "v2")
    assert [status for _, _, status in github.calls("POST", r"/pulls$")] == [201, 422]
    (only,) = github.repos["acme/models"].pulls.values()
    assert (second.number, second.created, only["title"], only["body"]) == (first.number, False, "Promote v2 to production", "v2")
    assert github.repos["acme/models"].file("mlops/deploy-production", "deploy/production.yaml") == b"model: v2\n"


@pytest.mark.parametrize("route", [r"/check-runs$", r"/repos/acme/models/issues$", r"/issues/8/comments$"])
def test_other_creates_whose_answer_is_lost_are_made_once(github: StandIn, route: str) -> None:
    """The gate's check run, the monitor's issue and the sticky comment: one each."""
    from mlgitops.events.payloads import Event

    github.add_pull("acme/models", 8, "5" * 40, "2" * 40)
    github.lose_answer("POST", route)
    gh = forge(github)
    gh.set_status("5" * 40, "pending", "mlops: training and evaluating")
    gh.upsert_issue("<!-- mlgitops:monitor name=churn env=production -->", "churn in production: drift", "drifted")
    gh.upsert_comment(Event(kind="pull_request", repo="acme/models", pr_number=8, head_sha="5" * 40), "<!-- m -->", "<!-- m -->\nreport")
    state = github.repos["acme/models"]
    assert (len(state.check_runs), len(state.issues), len(state.comments)) == (1, 1, 1)
    assert [status for _, _, status in github.calls("POST", route)] == [0]


SECONDARY = {"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.", "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}


@pytest.mark.parametrize("method,route,status", [("GET", r"/pulls/9$", 403), ("GET", r"/pulls/9$", 429), ("POST", r"/issues/9/comments$", 403)])
def test_a_secondary_rate_limit_without_retry_after_waits_a_minute(github: StandIn, method: str, route: str, status: int) -> None:
    """GitHub: no Retry-After and the primary limit not spent: "wait for at least one
    minute". Before: 30 s (secondary_rate_wait capped at the 30 s max_wait)."""
    from mlgitops.events.payloads import Event

    github.add_pull("acme/models", 9, "6" * 40, "2" * 40)
    github.fail(method, route, status, body=SECONDARY)
    slept: list[float] = []
    ref = forge(github, sleep=slept.append).upsert_comment(Event(kind="pull_request", repo="acme/models", pr_number=9, head_sha="6" * 40), "<!-- m -->", "<!-- m -->\nx")
    assert ref.created and len(github.repos["acme/models"].comments) == 1
    assert slept == [60.0]
    assert [s for _, _, s in github.calls(method, route)] == [status, 200 if method == "GET" else 201]


def test_a_second_secondary_limit_doubles_the_wait_and_beyond_the_budget_stops(github: StandIn) -> None:
    from mlgitops.events.payloads import Event
    from mlgitops.forges.github import ForgeError

    github.add_pull("acme/models", 10, "7" * 40, "2" * 40)
    github.fail("GET", r"/pulls/10$", 403, times=2, body=SECONDARY)
    slept: list[float] = []
    with pytest.raises(ForgeError) as info:
        forge(github, sleep=slept.append, max_wait=120).upsert_comment(Event(kind="pull_request", repo="acme/models", pr_number=10, head_sha="7" * 40), "<!-- m -->", "<!-- m -->\nx")
    assert slept == [60.0]  # the second wait, 120 s, is more than the 60 s left
    assert info.value.exit_code == 3
    assert info.value.render() == (
        "stopped before trying again to read the pull request: GitHub asked to wait 120 s before retrying "
        "(a secondary rate limit without Retry-After: at least a minute), more than the 60 s left of this run's 120 s for waiting\n"
        "  hint: run the job again later; retrying sooner breaks GitHub's rate-limit rules"
    )
    assert github.repos["acme/models"].comments == {}


def test_a_budget_under_a_minute_stops_at_once_rather_than_retry_early(github: StandIn) -> None:
    from mlgitops.events.payloads import Event
    from mlgitops.forges.github import ForgeError

    github.add_pull("acme/models", 11, "8" * 40, "2" * 40)
    github.fail("GET", r"/pulls/11$", 403, body=SECONDARY)
    slept: list[float] = []
    with pytest.raises(ForgeError) as info:
        forge(github, sleep=slept.append, max_wait=59).upsert_comment(Event(kind="pull_request", repo="acme/models", pr_number=11, head_sha="8" * 40), "<!-- m -->", "<!-- m -->\nx")
    assert slept == []
    assert info.value.message.endswith("GitHub asked to wait 60 s before retrying (a secondary rate limit without Retry-After: at least a minute), more than the 59 s left of this run's 59 s for waiting")
    assert len(github.calls("GET", r"/pulls/11$")) == 1
