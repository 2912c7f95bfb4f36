"""The cross-runner story with GitHub's side (issue 12): the PR's comment and
`mlops/gate` status on runner A, the promotion PR opened by runner B (a fresh clone)
through the stand-in, and a manifest-only folder C pulling what main pins after the
merge, all with the registry on moto's S3 server."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.github_standin import StandIn, github_for_cli
from tests.helpers import GitRepo, mixed_frame
from tests.test_deploy import CONFIG, HAND_WRITTEN
from tests.test_github import TOKEN as GITHUB_JOB_TOKEN, runner
TOKEN = GITHUB_JOB_TOKEN  # the token runner() gives the job


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[StandIn]:
    yield from github_for_cli(monkeypatch, TOKEN)


def pr_payload(repo: GitRepo, number: int) -> dict[str, Any]:
    """The fields of GitHub's pull_request delivery the run reads (held to GitHub's own
    examples in tests/test_events.py); built here, so this test needs nothing beside the checkout."""
    return {
        "action": "synchronize",
        "number": number,
        "pull_request": {
            "number": number,
            "head": {"ref": repo.git("rev-parse", "--abbrev-ref", "HEAD"), "sha": repo.git("rev-parse", "HEAD"), "repo": {"full_name": "acme/models"}},
            "base": {"ref": "main", "sha": repo.git("rev-parse", "main"), "repo": {"full_name": "acme/models"}},
        },
        "repository": {"full_name": "acme/models", "default_branch": "main"},
        "sender": {"login": "octocat"},
    }


def test_pr_on_github_publishes_merge_on_a_fresh_runner_registers_it_and_main_pins_it(cli, prefect_api: str, github: StandIn, s3_registry_url: str, tmp_path: Path) -> None:
    config = CONFIG + f"registry:\n  url: {s3_registry_url}\n"
    remote = github.repos["acme/models"]
    remote.commit("main", {"mlops.yaml": config.encode(), "deploy/staging.yaml": HAND_WRITTEN.encode()}, "Add the churn model")
    a = GitRepo(tmp_path / "runner-a")
    a.gen({"mlops.yaml": config, "deploy/staging.yaml": HAND_WRITTEN})
    (a.path / "data").mkdir()
    mixed_frame(500).to_csv(a.path / "data" / "churn.csv", index=False)
    a.commit("Add the churn model")

    # Runner A: the pull_request job, exactly as the action runs it.
    a.branch("feature").edit("mlops.yaml", "C: 0.01", "C: 1.0").commit("Stronger regularisation off")
    head = a.git("rev-parse", "HEAD")
    github.add_pull("acme/models", 7, head, a.git("rev-parse", "main"))
    proc, _summary, _output = runner(a, github, prefect_api, pr_payload(a, 7), tmp_path / "job-a")
    assert proc.returncode == 0, proc.stderr
    (comment,) = remote.comments.values()
    shown = re.search(r"`model.onnx` sha256 `([0-9a-f]{12})`", comment["body"])
    assert shown and "candidate not published" not in comment["body"], comment["body"]
    assert remote.statuses[head][-1]["state"] == "success"
    a.checkout("main")
    a.git("merge", "--no-ff", "--quiet", "feature", "-m", "Merge pull request #7 from acme/feature")

    # Runner B: the push job on a fresh clone of the merge.
    b_path = tmp_path / "runner-b"
    subprocess.run(["git", "clone", "--quiet", str(a.path), str(b_path)], check=True)
    deploy = cli("deploy", "--forge", "github", cwd=b_path)
    assert deploy.exit_code == 0, deploy.output
    assert f"  registered the bytes reviewed in PR #7 (head {head[:12]}): ONNX sha256 {shown.group(1)}, fetched from the registry" in deploy.output.splitlines()
    number = int(deploy.output.split("opened PR #")[1].split(":")[0])
    pull = remote.pulls[number]
    assert pull["title"] == f"Deploy churn v1 ({shown.group(1)}) to staging"
    assert "not reviewed" not in pull["body"] and "- `pr`: #7" in pull["body"]
    github.merge_over_http("acme/models", number)

    # Folder C: what main pins now, and nothing else.
    c = tmp_path / "runner-c"
    c.mkdir()
    (c / "staging.yaml").write_bytes(remote.file("main", "deploy/staging.yaml"))
    pulled = cli("pull", "--manifest", str(c / "staging.yaml"), "--to", str(c / "model"), cwd=c)
    assert pulled.exit_code == 0, pulled.output
    assert hashlib.sha256((c / "model" / "model.onnx").read_bytes()).hexdigest().startswith(shown.group(1))
    assert TOKEN not in deploy.output + pulled.output
