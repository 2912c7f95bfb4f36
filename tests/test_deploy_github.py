"""Merge to deploy on GitHub: promotion and rollback PRs through PyGithub over real HTTP
against the stand-in (refs, contents, pulls, merge), held to GitHub's OpenAPI subset."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.github_standin import StandIn, github_for_cli
from tests.helpers import GitRepo
from tests.test_deploy import HAND_WRITTEN, holder_for, make_repo, pr_and_merge, serving  # noqa: F401  (fixture)

TOKEN = "ghs_deploy_secret_token_456"


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Any:
    for server in github_for_cli(monkeypatch, TOKEN):
        server.repos["acme/models"].commit("main", {"deploy/staging.yaml": HAND_WRITTEN.encode()}, "Add the staging manifest")
        yield server


def merge_on_github(github: StandIn, number: int) -> None:
    github.merge_over_http("acme/models", number)


def sync_checkout(github: StandIn, repo: GitRepo) -> None:
    """The deployment's checkout pulls main (what a GitOps agent does)."""
    remote = github.repos["acme/models"]
    for env in ("staging", "production"):
        data = remote.file("main", f"deploy/{env}.yaml")
        if data is not None:
            (repo.path / "deploy" / f"{env}.yaml").write_bytes(data)


def test_merge_promote_serve_rollback_on_github(cli, repo: GitRepo, github: StandIn, serving) -> None:  # noqa: F811
    make_repo(repo)
    remote = github.repos["acme/models"]
    sha1 = pr_and_merge(cli, repo, "feature/stronger", "C: 0.01", "C: 1.0", 7)

    first = cli("deploy", "--forge", "github", cwd=repo.path)
    assert first.exit_code == 0, first.output
    number = int(first.output.split("opened PR #")[1].split(":")[0])
    pull = remote.pulls[number]
    assert pull["head_ref"] == "mlops/deploy-staging" and pull["title"].startswith("Deploy churn v1 (")
    assert "### 🚀 Deploy `churn` v1" in pull["body"] and "- `pr`: #7" in pull["body"]
    old = HAND_WRITTEN.splitlines()
    new = remote.file("mlops/deploy-staging", "deploy/staging.yaml").decode().splitlines()
    assert new[: len(old)] == old  # only pin lines were added under `model:`
    assert [line.split(":")[0] for line in new[len(old):]] == ["  name", "  version", "  uri", "  sha256", "  format", "  metrics", "  lineage"]

    branch_head = remote.branches["mlops/deploy-staging"]
    rerun = cli("deploy", "--forge", "github", cwd=repo.path)
    assert rerun.exit_code == 0 and f"unchanged PR #{number}" in rerun.output
    assert remote.branches["mlops/deploy-staging"] == branch_head and len(remote.pulls) == 1
    remote.commit("main", {"README.md": b"# models\nmain moved on\n"}, "Docs")  # the base moves
    moved = cli("deploy", "--forge", "github", cwd=repo.path)
    assert moved.exit_code == 0 and f"updated PR #{number}" in moved.output, moved.output
    assert remote.pulls[number]["state"] == "open" and len(remote.pulls) == 1  # still the one PR, never closed
    assert remote.commits[remote.branches["mlops/deploy-staging"]]["parents"] == [remote.branches["main"]]

    merge_on_github(github, number)
    sync_checkout(github, repo)
    server = serving(holder_for(repo))
    assert server.wait(lambda h: h.get("version") == 1)["sha256"].startswith(sha1)

    repo.gen({"deploy/staging.yaml": remote.file("main", "deploy/staging.yaml").decode()}).commit("sync the manifest")
    sha2 = pr_and_merge(cli, repo, "feature/balanced", "max_iter: 500", "max_iter: 500\n    class_weight: balanced", 9)
    second = cli("deploy", "--forge", "github", cwd=repo.path)
    assert second.exit_code == 0 and "registered churn v2; opened PR #" in second.output, second.output
    merge_on_github(github, int(second.output.split("opened PR #")[1].split(":")[0]))
    sync_checkout(github, repo)
    assert server.wait(lambda h: h.get("version") == 2)["sha256"].startswith(sha2)

    back = cli("rollback", "staging", "--forge", "github", cwd=repo.path)
    assert back.exit_code == 0 and "Roll back staging to churn v1" in back.output, back.output
    merge_on_github(github, int(back.output.split("opened PR #")[1].split(":")[0]))
    sync_checkout(github, repo)
    assert server.wait(lambda h: h.get("version") == 1)["sha256"].startswith(sha1)

    promoted = cli("promote", "staging", "production", "--forge", "github", cwd=repo.path)
    assert promoted.exit_code == 0 and "Promote churn v1" in promoted.output
    status = json.loads(cli("status", "--forge", "github", "--json", cwd=repo.path).output)
    envs = {e["environment"]: e for e in status["environments"]}
    assert envs["staging"]["version"] == 1 and envs["staging"]["previous"] == 2
    assert [p["title"] for p in envs["production"]["pending"]] == [promoted.output.split(": ", 1)[1].splitlines()[0]]
    assert TOKEN not in first.output + second.output + back.output + promoted.output


def test_promotion_into_a_manifest_in_another_github_repository(cli, repo: GitRepo, github: StandIn, tmp_path) -> None:
    """production's manifest lives in acme/deployments; the promotion PR is opened there."""
    from tests.helpers import mixed_frame
    from tests.test_deploy import CONFIG

    deployments = github.add_repo("acme/deployments")
    config = CONFIG.replace("    production:\n      manifest: deploy/production.yaml\n", "    production:\n      manifest: prod/churn.yaml\n      repo: acme/deployments\n")
    config += f"registry:\n  path: {tmp_path / 'volume'}\n"
    repo.gen({"mlops.yaml": config, "deploy/staging.yaml": HAND_WRITTEN})
    (repo.path / "data").mkdir()
    mixed_frame(500).to_csv(repo.path / "data" / "churn.csv", index=False)
    repo.commit("churn")
    github.repos["acme/models"].commit("main", {"mlops.yaml": config.encode(), "deploy/staging.yaml": HAND_WRITTEN.encode()}, "churn")
    pr_and_merge(cli, repo, "feature/stronger", "C: 0.01", "C: 1.0", 7)
    first = cli("deploy", "--forge", "github", cwd=repo.path)
    assert first.exit_code == 0, first.output
    merge_on_github(github, int(first.output.split("opened PR #")[1].split(":")[0]))

    promoted = cli("promote", "staging", "production", "--forge", "github", cwd=repo.path)
    assert promoted.exit_code == 0 and promoted.output.startswith("opened PR #1: Promote churn v1"), promoted.output
    pull = deployments.pulls[1]
    assert (pull["head_ref"], pull["base_ref"]) == ("mlops/deploy-production", "main")
    pinned = deployments.file("mlops/deploy-production", "prod/churn.yaml").decode()
    assert f"uri: {(tmp_path / 'volume').as_uri()}/objects/" in pinned  # another repo: an absolute URI
    assert deployments.file("main", "prod/churn.yaml") is None  # nothing lands before the merge
