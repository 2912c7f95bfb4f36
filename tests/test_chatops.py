"""ChatOps: `/mlops ...` in comments, from GitHub's own issue_comment deliveries.

On GitHub the permission is asked of the API (the stand-in, over real HTTP, held to
GitHub's OpenAPI description), never read from the payload: every delivery here says
`author_association: OWNER`, which must not matter.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlgitops.events.chatops import Command, parse
from tests.github_standin import SHARED, StandIn, github_for_cli
from tests.helpers import REPO_ROOT, GitRepo
from tests.test_deploy import deploy_v1, make_repo

TOKEN = "ghs_chatops_secret_token_789"
DELIVERY = SHARED / "webhooks" / "octokit-webhooks" / "api.github.com" / "issue_comment" / "created.1.payload.json"
HELP_LINES = [
    "Commands (people with write access to this repository):",
    "",
    "- `/mlops retrain`: train this pull request's model again from scratch (ignoring the cache), re-run its gates and update its comment",
    "- `/mlops promote ENV [from SOURCE]`: open the PR that deploys to ENV the model SOURCE runs (default: the environment before ENV)",
    "- `/mlops rollback ENV [to VERSION]`: open the PR that rolls ENV back to its previous model (or to registry VERSION)",
    "- `/mlops help`: this list",
]


def delivery(number: int, body: str, login: str, comment_id: int, on_pull: bool = True, full_name: str = "acme/models", action: str = "created", bot: bool = False) -> dict[str, Any]:
    """GitHub's own issue_comment example, pointed at our repository, PR and comment."""
    data = json.loads(DELIVERY.read_text()) if DELIVERY.is_file() else {"issue": {}, "comment": {"user": {}}, "repository": {}, "sender": {}}
    data["action"] = action
    issue, comment = data["issue"], data["comment"]
    issue["number"] = number
    issue["pull_request"] = {"url": f"https://api.github.com/repos/{full_name}/pulls/{number}", "html_url": f"https://github.com/{full_name}/pull/{number}"} if on_pull else None
    if not on_pull:
        issue.pop("pull_request")
    comment.update(id=comment_id, body=body, author_association="OWNER")  # the payload claims OWNER; it must not matter
    comment["user"].update(login=login, type="Bot" if bot else "User")
    data["repository"].update(full_name=full_name, default_branch="main")
    data["sender"] = {**data.get("sender", {}), "login": login}
    return data


def test_parse_finds_the_first_command_outside_quotes_and_code() -> None:
    assert parse("LGTM\n/mlops promote production\n/mlops help") == Command("promote", ("production",), "/mlops promote production")
    assert parse("> /mlops retrain\n```\n/mlops retrain\n```\nthanks") is None
    assert parse("  /mlops   RETRAIN  ") == Command("retrain", (), "/mlops   RETRAIN")
    assert parse("/mlops") == Command("help", (), "/mlops")
    assert parse("/mlopsy retrain") is None and parse(None) is None
    assert parse("/mlops deploy now").name == "deploy" and not parse("/mlops deploy now").known


# -- the local forge --------------------------------------------------------------------
def local_comment(cli: Any, repo: GitRepo, tmp: Path, number: int, body: str, login: str = "alice", **kw: Any) -> Any:
    path = tmp / f"comment-{number}-{abs(hash(body))}.json"
    path.write_text(json.dumps(delivery(number, body, login, 500 + number, **kw)))
    return cli("run", "--event-path", str(path), "--event-name", "issue_comment", cwd=repo.path)


def local_thread(repo: GitRepo, number: int) -> tuple[list[dict], dict]:
    folder = repo.path / ".mlops" / "forge" / f"pr-{number}"
    comments = json.loads((folder / "comments.json").read_text()) if (folder / "comments.json").is_file() else []
    reactions = json.loads((folder / "reactions.json").read_text()) if (folder / "reactions.json").is_file() else {}
    return comments, reactions


def test_local_promote_then_a_failing_rollback(cli: Any, repo: GitRepo, tmp_path: Path) -> None:
    deploy_v1(cli, make_repo(repo))
    promoted = local_comment(cli, repo, tmp_path, 12, "/mlops promote production")
    assert promoted.exit_code == 0, promoted.output
    assert re.match(r"ran promote: opened PR #\d+: Promote churn v1 \([0-9a-f]{12}\) to production", promoted.stdout), promoted.stdout
    comments, reactions = local_thread(repo, 12)
    assert reactions == {"512": ["eyes", "rocket"]}
    reply = comments[-1]["body"]
    assert reply.startswith("<!-- mlgitops:chatops reply-to=512 -->\n> `/mlops promote production`\n\n@alice: opened PR #")
    pulls = json.loads((repo.path / ".mlops" / "forge" / "pulls.json").read_text())
    assert [p["head"] for p in pulls if p["state"] == "open"] == ["mlops/deploy-production"]

    failed = local_comment(cli, repo, tmp_path, 12, "/mlops rollback staging")
    assert failed.exit_code == 2
    comments, reactions = local_thread(repo, 12)
    assert reactions == {"512": ["eyes", "rocket", "confused"]}
    assert comments[-1]["body"] == (
        "<!-- mlgitops:chatops reply-to=512 -->\n> `/mlops rollback staging`\n\n@alice: `/mlops rollback staging` failed: staging has no previous pin to roll back to "
        "(deploy/staging.yaml@main has no `previous:`)\n\nHint: name a version: mlops rollback staging --to VERSION (`mlops status` shows the registry's versions)\n"
    )
    first = local_comment(cli, repo, tmp_path, 12, "/mlops promote staging")
    assert first.exit_code == 2 and "staging is the first environment: merges to the default branch deploy to it" in local_thread(repo, 12)[0][-1]["body"]


def test_local_readers_are_refused_and_help_is_for_everyone(cli_noprefect: Any, repo: GitRepo, tmp_path: Path) -> None:
    make_repo(repo)
    forge = repo.path / ".mlops" / "forge"
    forge.mkdir(parents=True)
    (forge / "collaborators.json").write_text(json.dumps({"alice": "write", "bob": "read"}))
    refused = local_comment(cli_noprefect, repo, tmp_path, 3, "/mlops retrain", login="bob")
    assert refused.exit_code == 0 and refused.stdout == "refused retrain: bob has read access, not write\n"
    stranger = local_comment(cli_noprefect, repo, tmp_path, 3, "please /mlops promote production", login="eve")
    assert stranger.stdout == "nothing to do: the comment holds no `/mlops` command\n"  # not at a line's start
    helped = local_comment(cli_noprefect, repo, tmp_path, 3, "/mlops help", login="eve")
    assert helped.stdout == "answered /mlops help\n"
    unknown = local_comment(cli_noprefect, repo, tmp_path, 3, "/mlops deploy production", login="bob")
    assert unknown.stdout == "unknown command 'deploy': answered with the help\n"
    comments, reactions = local_thread(repo, 3)
    assert reactions == {"503": ["-1", "+1", "confused"]}
    assert comments[0]["body"] == "<!-- mlgitops:chatops reply-to=503 -->\n> `/mlops retrain`\n\n@bob: sorry, `/mlops retrain` needs write access to acme/models, and GitHub says your access is `read`. A maintainer can run it for you; `/mlops help` works for everyone.\n"
    assert comments[1]["body"] == "<!-- mlgitops:chatops reply-to=503 -->\n> `/mlops help`\n\n@eve: " + "\n".join(HELP_LINES) + "\n\nEnvironments: `staging`, `production`.\n"
    assert comments[2]["body"].startswith("<!-- mlgitops:chatops reply-to=503 -->\n> `/mlops deploy production`\n\n@bob: I do not know `/mlops deploy`.\n\nCommands")
    bot = local_comment(cli_noprefect, repo, tmp_path, 3, "/mlops retrain", login="mlops[bot]", bot=True)
    edited = local_comment(cli_noprefect, repo, tmp_path, 3, "/mlops retrain", action="edited")
    assert bot.stdout.startswith("nothing to do: the comment is a bot's") and edited.stdout.startswith("nothing to do: comment edited")
    assert len(local_thread(repo, 3)[0]) == 3  # nothing more was written
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"action": "created", "issue": {"title": "x"}, "comment": {"body": "/mlops help"}}))
    bad = cli_noprefect("run", "--event-path", str(broken), "--event-name", "issue_comment", cwd=repo.path)
    assert bad.exit_code == 2 and f"{broken}: an issue_comment event must have issue.number" in bad.output


def test_local_retrain_trains_afresh_and_says_whether_it_reproduced(cli: Any, repo: GitRepo, tmp_path: Path) -> None:
    make_repo(repo)
    repo.branch("feature/c").edit("mlops.yaml", "C: 0.01", "C: 0.5").commit("C 0.5")
    first = local_comment(cli, repo, tmp_path, 21, "/mlops retrain")
    assert first.exit_code == 0, first.output
    again = local_comment(cli, repo, tmp_path, 21, "/mlops retrain\nthe data share was flaky")
    assert again.exit_code == 0, again.output
    sticky = (repo.path / ".mlops" / "forge" / "pr-21" / "comment.md").read_text()
    assert "Retrained from scratch (`/mlops retrain` by @alice): same metrics as the cached model of these inputs, so training is reproducible; the new model replaces it." in sticky
    comments, reactions = local_thread(repo, 21)
    replies = [c["body"] for c in comments if c["body"].startswith("<!-- mlgitops:chatops ")]
    assert len(replies) == 2 and replies[1].startswith("<!-- mlgitops:chatops reply-to=521 -->\n> `/mlops retrain`\n\n@alice: retrained: ")
    assert "The comment is updated: file://" in replies[1]
    assert reactions == {"521": ["eyes", "rocket"]}
    statuses = json.loads((repo.path / ".mlops" / "forge" / "statuses" / f"{repo.git('rev-parse', 'HEAD')}.json").read_text())
    assert statuses["mlops/gate"]["state"] == "success"
    repo.checkout("main")
    moved = local_comment(cli, repo, tmp_path, 21, "/mlops retrain")
    assert moved.exit_code == 0  # the local forge takes the checkout as the PR's head: main's model now


# -- GitHub -----------------------------------------------------------------------------
@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Any:
    for server in github_for_cli(monkeypatch, TOKEN):
        server.repos["acme/models"].collaborators.update({"alice": "maintain", "bob": "triage", "carol": "read"})
        yield server


def github_comment(cli: Any, repo: GitRepo, github: StandIn, tmp: Path, number: int, body: str, login: str, **kw: Any) -> tuple[Any, int]:
    cid = github.add_comment("acme/models", number, body, login)
    path = tmp / f"delivery-{cid}.json"
    path.write_text(json.dumps(delivery(number, body, login, cid, **kw)))
    return cli("run", "--event-path", str(path), "--event-name", "issue_comment", "--forge", "github", cwd=repo.path), cid


def reactions_to(github: StandIn, cid: int) -> list[str]:
    return [r["content"] for r in github.repos["acme/models"].reactions.get(cid, [])]


def replies(github: StandIn, number: int) -> list[str]:
    return [c["body"] for c in sorted(github.repos["acme/models"].comments.values(), key=lambda c: c["id"]) if c["number"] == number and c["author"] == github.identity]


def test_github_asks_the_api_not_the_payload(cli_noprefect: Any, repo: GitRepo, github: StandIn, tmp_path: Path) -> None:
    make_repo(repo)
    github.add_pull("acme/models", 5, "1" * 40, "2" * 40)
    refused, cid = github_comment(cli_noprefect, repo, github, tmp_path, 5, "/mlops promote production", "bob")
    assert refused.exit_code == 0, refused.output
    assert refused.stdout == "refused promote: bob has read access, not write\n"  # triage reads as read
    assert github.calls("GET", r"/collaborators/bob/permission$") == [("GET", "/repos/acme/models/collaborators/bob/permission", 200)]
    assert reactions_to(github, cid) == ["-1"]
    assert replies(github, 5) == [f"<!-- mlgitops:chatops reply-to={cid} -->\n> `/mlops promote production`\n\n@bob: sorry, `/mlops promote production` needs write access to acme/models, and GitHub says your access is `read`. A maintainer can run it for you; `/mlops help` works for everyone.\n"]
    stranger, cid = github_comment(cli_noprefect, repo, github, tmp_path, 5, "/mlops rollback staging", "mallory")
    assert stranger.stdout == "refused rollback: mallory has none access, not write\n"  # 404: not a collaborator
    assert reactions_to(github, cid) == ["-1"]
    assert not github.repos["acme/models"].branches.keys() - {"main"}  # nothing was promoted or rolled back
    helped, cid = github_comment(cli_noprefect, repo, github, tmp_path, 5, "/mlops help", "carol")
    assert helped.exit_code == 0 and reactions_to(github, cid) == ["+1"]
    assert replies(github, 5)[-1] == f"<!-- mlgitops:chatops reply-to={cid} -->\n> `/mlops help`\n\n@carol: " + "\n".join(HELP_LINES) + "\n\nEnvironments: `staging`, `production`.\n"


def test_github_refuses_commands_on_a_fork_pull_request(cli_noprefect: Any, repo: GitRepo, github: StandIn, tmp_path: Path) -> None:
    make_repo(repo)
    pull = github.add_pull("acme/models", 6, "3" * 40, "2" * 40, head_ref="patch-1")
    pull["head_repo"] = "mallory/models"
    refused, cid = github_comment(cli_noprefect, repo, github, tmp_path, 6, "/mlops retrain", "alice")
    assert refused.exit_code == 0 and refused.stdout == "refused retrain: PR #6 comes from a fork\n"
    assert reactions_to(github, cid) == ["-1"]
    assert replies(github, 6) == [
        f"<!-- mlgitops:chatops reply-to={cid} -->\n> `/mlops retrain`\n\n@alice: sorry, commands are not taken on pull requests from forks: this one comes from `mallory/models`, "
        "and `/mlops retrain` would run with acme/models's token. Push the branch to acme/models and open the pull request from there, "
        "or run the command from a clone (`mlops promote`, `mlops rollback`).\n"
    ]
    assert github.repos["acme/models"].statuses == {}  # no run started


def deployed_on_github(cli: Any, repo: GitRepo, github: StandIn) -> Any:
    """staging (its manifest on GitHub) runs v1: PR #7 merged, deployed, promotion PR merged."""
    from tests.test_deploy import HAND_WRITTEN, pr_and_merge

    remote = github.repos["acme/models"]
    remote.commit("main", {"deploy/staging.yaml": HAND_WRITTEN.encode()}, "Add the staging manifest")
    make_repo(repo)
    pr_and_merge(cli, repo, "feature/stronger", "C: 0.01", "C: 1.0", 7)
    first = cli("deploy", "--forge", "github", cwd=repo.path)
    assert first.exit_code == 0, first.output
    github.merge_over_http("acme/models", int(first.output.split("opened PR #")[1].split(":")[0]))
    return remote


def test_github_promote_from_a_comment(cli: Any, repo: GitRepo, github: StandIn, tmp_path: Path) -> None:
    remote = deployed_on_github(cli, repo, github)
    remote.issues[20] = {"id": 99, "number": 20, "title": "Release 1", "body": "", "labels": [], "state": "open", "author": "alice", "created_at": "2026-11-27T00:00:00Z", "updated_at": "2026-11-27T00:00:00Z"}
    done, cid = github_comment(cli, repo, github, tmp_path, 20, "/mlops promote production", "alice", on_pull=False)
    assert done.exit_code == 0, done.output
    assert reactions_to(github, cid) == ["eyes", "rocket"]
    (pull,) = [p for p in remote.pulls.values() if p["head_ref"] == "mlops/deploy-production"]
    assert pull["title"].startswith("Promote churn v1 (") and pull["title"].endswith(") to production")
    assert replies(github, 20)[-1].startswith(f"<!-- mlgitops:chatops reply-to={cid} -->\n> `/mlops promote production`\n\n@alice: opened PR #{pull['number']}: Promote churn v1")
    retrain, cid = github_comment(cli, repo, github, tmp_path, 20, "/mlops retrain", "alice", on_pull=False)
    assert retrain.stdout == "refused retrain: the comment is on an issue, not a pull request\n" and reactions_to(github, cid) == ["-1"]


def action_steps() -> dict[str, str]:
    doc = yaml.safe_load((REPO_ROOT / "actions" / "chatops" / "action.yml").read_text())
    return {s["id"]: s["run"] for s in doc["runs"]["steps"] if s.get("id") and "run" in s}


def test_retrain_on_github_as_the_action_runs_it(prefect_api: str, example_repo: GitRepo, github: StandIn, tmp_path: Path) -> None:
    """The chatops action's two steps (check, then run) with a runner's environment."""
    repo = example_repo
    repo.branch("feature").edit("mlops.yaml", "max_depth: 2", "max_depth: 3").commit("deeper")
    head = repo.git("rev-parse", "HEAD")
    github.add_pull("acme/models", 31, head, repo.git("rev-parse", "main"))
    cid = github.add_comment("acme/models", 31, "/mlops retrain", "alice")
    event_path, output = tmp_path / "event.json", tmp_path / "output.txt"
    event_path.write_text(json.dumps(delivery(31, "/mlops retrain", "alice", cid)))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "RUNNER_"))}
    env.update(
        CI="true", GITHUB_ACTIONS="true", GITHUB_EVENT_NAME="issue_comment", GITHUB_EVENT_PATH=str(event_path), GITHUB_REPOSITORY="acme/models",
        GITHUB_API_URL=github.url, GITHUB_OUTPUT=str(output), GITHUB_TOKEN=TOKEN, PREFECT_API_URL=prefect_api, MLOPS_GITHUB_WRITE_INTERVAL="0",
        MLOPS_CONFIG="mlops.yaml", PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    )
    steps = action_steps()
    check = subprocess.run(["bash", "-e", "-c", steps["check"]], cwd=repo.path, env=env, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr
    assert check.stdout == f"::add-mask::{TOKEN}\naccepted retrain from alice (write)\n"
    assert "chatops-run<<" in output.read_text() and reactions_to(github, cid) == []  # the check writes nothing
    ran = subprocess.run(["bash", "-e", "-c", steps["chatops"]], cwd=repo.path, env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr
    assert TOKEN not in (check.stdout + check.stderr + ran.stdout + ran.stderr).replace(f"::add-mask::{TOKEN}\n", "")
    assert reactions_to(github, cid) == ["eyes", "rocket"]
    state = github.repos["acme/models"]
    assert [s["state"] for s in state.statuses[head]] == ["pending", "success"]
    sticky, reply = replies(github, 31)
    assert "Retrained from scratch (`/mlops retrain` by @alice)" in sticky and f"<!-- mlgitops:sha={head} -->" in sticky
    assert reply.startswith(f"<!-- mlgitops:chatops reply-to={cid} -->\n> `/mlops retrain`\n\n@alice: retrained: ")
    assert "The comment is updated: https://github.com/acme/models/pull/31#issuecomment-" in reply
