"""The workflows `mlops init` writes, this repository's own workflows and actions/,
held against what an attacker with a branch or a comment can do (issue 11).

* zizmor (the GitHub Actions security linter) finds nothing high or medium, and
  each finding it was told to ignore says why, inline;
* a comment never cancels a pending `mlops/gate` run, and promote / rollback /
  retrain / deploy are never cancelled midway;
* the ChatOps job (issue_comment: the default branch's cache scope) never saves a
  cache, the PR job saves only in its own PR's scope, and only trusted runs touch
  the trust ledger's cache;
* no checkout leaves the token in .git/config, every action is pinned to a commit
  sha (the action `mlops init` writes too: its tag is resolved to the commit), the
  issue_comment job is guarded, and each job holds only the permissions it uses.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator
from unittest import mock

import pytest
import yaml

from mlgitops.config.scaffold import write_scaffold
from tests.helpers import REPO_ROOT, GitRepo

OWN_WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))
ACTIONS = [*sorted(REPO_ROOT.glob("actions/*/action.yml")), REPO_ROOT / "action.yml"]  # the root one: the Marketplace's
SHA_PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
TRUSTED = "steps.trust.outputs.trusted == 'true'"


class Generated:
    """A repository scaffolded by `mlops init --action-ref acme/mlgitops/actions/pull-request@v1`,
    with acme/mlgitops served from a local folder (GITHUB_SERVER_URL=file://...)."""

    def __init__(self, root: Path, tag_sha: str) -> None:
        self.root = root
        self.tag_sha = tag_sha
        self.workflow_path = root / ".github" / "workflows" / "mlops.yml"
        self.monitor_path = root / ".github" / "workflows" / "mlops-monitor.yml"
        self.workflow: dict[str, Any] = yaml.safe_load(self.workflow_path.read_text())
        self.monitor: dict[str, Any] = yaml.safe_load(self.monitor_path.read_text())


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Generated]:
    server = tmp_path_factory.mktemp("github")
    action = GitRepo(server / "acme" / "mlgitops")
    tagged = action.commit("v1")
    action.git("tag", "-a", "v1", "-m", "v1")  # annotated: its own object is not the commit
    action.commit("after v1")  # main moved on: the pin must be the tag's commit
    root = tmp_path_factory.mktemp("scaffolded")
    # On github.com: init picks GitHub's container registry, and the jobs that push
    # to it get `packages: write` (the variant with the most permissions is checked).
    subprocess.run(["git", "init", "--quiet", str(root)], check=True)
    subprocess.run(["git", "remote", "add", "origin", "git@github.com:Acme/Shop.git"], cwd=root, check=True)
    with mock.patch.dict(os.environ, {"GITHUB_SERVER_URL": server.as_uri()}):
        write_scaffold(root, "sklearn:breast_cancer", "target", "acme/mlgitops/actions/pull-request@v1", force=False)
    yield Generated(root, tagged)


def zizmor() -> list[str]:
    """zizmor as installed with the test extras (a binary beside this Python)."""
    beside = Path(sys.executable).with_name("zizmor")
    found = str(beside) if beside.exists() else shutil.which("zizmor")
    assert found, "zizmor is missing: pip install -e '.[test]'"
    return [found]


def steps(doc: dict) -> list[dict]:
    if "runs" in doc:
        return doc["runs"]["steps"]
    return [s for job in doc["jobs"].values() for s in job.get("steps", [])]


def all_files(generated: Generated) -> list[Path]:
    return [generated.workflow_path, generated.monitor_path, *OWN_WORKFLOWS, *ACTIONS]


def test_zizmor_finds_nothing_high_or_medium(generated: Generated) -> None:
    """One offline run over every workflow and action. --no-config: a suppression must
    be inline, next to its reason; --strict-collection: a file zizmor cannot parse
    fails instead of being skipped."""
    inputs = [str(generated.workflow_path.parent), str(REPO_ROOT / ".github" / "workflows"), str(REPO_ROOT / "actions"), str(REPO_ROOT / "action.yml")]
    proc = subprocess.run([*zizmor(), "--offline", "--no-config", "--strict-collection", "--no-exit-codes", "--no-progress", "--format", "json", *inputs], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    serious = [
        f"{loc['symbolic']['key']['Local']['verbatim_path']}:{loc['concrete']['location']['start_point']['row'] + 1}: {f['ident']} ({f['determinations']['severity']}): {loc['symbolic'].get('annotation')}"
        for f in json.loads(proc.stdout)
        if f["determinations"]["severity"] in ("High", "Medium") and not f.get("ignored")
        for loc in f["locations"][:1]
    ]
    assert serious == [], "\n".join(serious)


def test_each_zizmor_suppression_says_why(generated: Generated) -> None:
    for path in all_files(generated):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if "zizmor: ignore[" in line:
                reason = line.split("zizmor: ignore[", 1)[1].partition("]")[2].strip()
                assert len(reason.split()) >= 3, f"{path}:{n}: a zizmor ignore needs its reason next to it"


def test_a_comment_or_a_push_never_shares_the_gate_runs_concurrency_group(generated: Generated) -> None:
    """GitHub keeps one running and ONE pending run per group: a comment entering the
    gate's group would replace (cancel) a pending required `mlops/gate` run."""
    for doc in (generated.workflow, generated.monitor):
        assert "concurrency" not in doc, "a workflow-level group puts every job kind in one queue"
    groups = {name: job["concurrency"]["group"] for name, job in generated.workflow["jobs"].items()}
    assert set(groups) == {"gate", "deploy", "production", "chatops"}
    # Each group starts with its own literal prefix, none a prefix of another, so no
    # two job kinds can ever evaluate to the same group, whatever the event holds.
    prefixes = {name: group.split("${{", 1)[0] for name, group in groups.items()}
    assert prefixes == {"gate": "mlops-gate-", "deploy": "mlops-deploy-", "production": "mlops-promote-production", "chatops": "mlops-chatops-"}
    # A PR's number, or a merge queue's ref (refs/heads/gh-readonly-queue/...): a queue
    # run never shares (and so never cancels) a PR's own gate group.
    assert groups["gate"] == "mlops-gate-${{ github.event.pull_request.number || github.event.merge_group.head_ref }}"
    # A `/mlops help` gets a group of its own (the comment's id): it never replaces a
    # waiting retrain, promote or rollback.
    assert groups["chatops"].endswith("&& 'command' || github.event.comment.id }}")
    for command in ("retrain", "promote", "rollback"):
        assert f"startsWith(github.event.comment.body, '/mlops {command}')" in groups["chatops"]


def test_promote_rollback_retrain_and_deploy_are_never_cancelled_midway(generated: Generated) -> None:
    jobs = generated.workflow["jobs"]
    assert jobs["gate"]["concurrency"]["cancel-in-progress"] is True  # a newer push supersedes the gate for an older commit
    assert jobs["deploy"]["concurrency"]["cancel-in-progress"] is False
    assert jobs["production"]["concurrency"]["cancel-in-progress"] is False  # a promotion to production
    assert jobs["chatops"]["concurrency"]["cancel-in-progress"] is False  # retrain, promote, rollback
    assert generated.monitor["jobs"]["monitor"]["concurrency"] == {"group": "mlops-monitor", "cancel-in-progress": False}


def test_the_chatops_job_never_saves_a_cache(generated: Generated) -> None:
    """issue_comment runs in the default branch's cache scope: after an accepted
    retrain, .mlops/cache holds what the PR's code wrote, which the deploy job
    (holding a write token) would restore and unpickle."""
    assert all("cache" not in str(s.get("uses", "")) for s in generated.workflow["jobs"]["chatops"]["steps"])
    chatops = yaml.safe_load((REPO_ROOT / "actions" / "chatops" / "action.yml").read_text())
    caches = [s["uses"].split("@")[0] for s in steps(chatops) if s.get("uses", "").startswith("actions/cache")]
    assert caches == ["actions/cache/restore", "actions/cache/restore"], "actions/cache saves in its post step; actions/cache/save saves"  # the caches, uv's download cache


@pytest.mark.parametrize("path", [REPO_ROOT / "actions" / "pull-request" / "action.yml", REPO_ROOT / "action.yml"], ids=["pull-request", "root"])
def test_the_pr_job_saves_its_caches_only_on_pull_request(path: Path) -> None:
    """A pull_request run saves in its PR's merge-ref scope, which no other ref
    restores; uv's download cache is saved before any of the PR's code has run."""
    doc = yaml.safe_load(path.read_text())
    caches = [s for s in steps(doc) if s.get("uses", "").startswith("actions/cache")]
    assert [(s["uses"].split("@")[0], s["with"]["path"].split()) for s in caches] == [
        ("actions/cache/restore", ["~/.prefect", ".mlops/cache"]),
        ("actions/cache/restore", ["~/.cache/uv"]),
        ("actions/cache/save", ["~/.cache/uv"]),
        ("actions/cache/save", ["~/.prefect", ".mlops/cache"]),
    ]
    assert caches[2]["if"] == "success() && github.event_name == 'pull_request' && steps.uv-cache.outputs.cache-hit != 'true'"
    assert caches[3]["if"] == "success() && github.event_name == 'pull_request' && steps.cache.outputs.cache-hit != 'true'"
    ids = [s.get("id") for s in steps(doc)]
    assert steps(doc).index(caches[2]) < ids.index("run")


def covers_the_ledger(cache_path: str) -> bool:
    """Whether an actions/cache path line would pick up .mlops/trusted."""
    return any(c in cache_path for c in "*?[") or ".mlops/trusted/".startswith(cache_path.rstrip("/") + "/")


def test_only_trusted_runs_restore_or_save_the_trust_ledger() -> None:
    """The ledger (.mlops/trusted) names the pickles a trusted run wrote: no job that
    runs PR code may restore or save it, and no general cache carries it."""
    for path in ACTIONS:
        doc = yaml.safe_load(path.read_text())
        caches = [s for s in steps(doc) if s.get("uses", "").startswith("actions/cache")]
        ledger = [s for s in caches if s["with"]["path"] == ".mlops/trusted"]
        for step in caches:
            if step not in ledger:
                assert not any(covers_the_ledger(p) for p in step["with"]["path"].split()), (path, step["with"]["path"])
        if path.parent.name not in ("deploy", "monitor"):
            assert ledger == [], path
            continue
        trust = next(s for s in steps(doc) if s.get("id") == "trust")
        assert trust["env"]["TRUSTED"] == "${{ github.event_name == 'schedule' || ((github.event_name == 'push' || github.event_name == 'workflow_dispatch') && github.ref == format('refs/heads/{0}', github.event.repository.default_branch)) }}"
        assert [s["uses"].split("@")[0] for s in ledger] == ["actions/cache/restore", "actions/cache/save"], path
        assert ledger[0]["with"]["key"].startswith("mlops-trusted-") and ledger[0]["with"]["restore-keys"].strip() == "mlops-trusted-${{ runner.os }}-"
        assert all(TRUSTED in s["if"] for s in ledger), path
        assert all(TRUSTED in s["if"] for s in caches if s["uses"].startswith("actions/cache/save")), path


def test_no_checkout_leaves_the_token_in_git_config(generated: Generated) -> None:
    checkouts = [(path, s) for path in all_files(generated) for s in steps(yaml.safe_load(path.read_text())) if s.get("uses", "").startswith("actions/checkout@")]
    assert len(checkouts) >= 7
    for path, step in checkouts:
        assert step.get("with", {}).get("persist-credentials") is False, f"{path}: {step}"


def test_every_action_is_pinned_to_a_commit_sha(generated: Generated) -> None:
    for path in all_files(generated):
        for step in steps(yaml.safe_load(path.read_text())):
            uses = step.get("uses")
            if uses and not uses.startswith("./"):
                assert SHA_PINNED.match(uses), f"{path}: {uses} is not pinned to a full commit sha"
    # The action's own tag became the commit it names, with the tag beside it.
    text = generated.workflow_path.read_text()
    assert f"      - uses: acme/mlgitops/actions/pull-request@{generated.tag_sha} # v1\n" in text
    assert f"      - uses: acme/mlgitops/actions/deploy@{generated.tag_sha} # v1\n" in text
    assert f"      - uses: acme/mlgitops/actions/chatops@{generated.tag_sha} # v1\n" in text
    assert f"      - uses: acme/mlgitops/actions/monitor@{generated.tag_sha} # v1\n" in generated.monitor_path.read_text()


def test_the_comment_job_runs_only_for_a_pr_comment_starting_with_the_command(generated: Generated) -> None:
    chatops = generated.workflow["jobs"]["chatops"]
    assert chatops["if"] == "github.event_name == 'issue_comment' && github.event.issue.pull_request && startsWith(github.event.comment.body, '/mlops')"


def test_each_job_holds_only_the_permissions_it_uses(generated: Generated) -> None:
    """Nothing at the workflow level; per job, what mlgitops/forges/github.py calls."""
    for path in (generated.workflow_path, generated.monitor_path, *OWN_WORKFLOWS):
        assert yaml.safe_load(path.read_text())["permissions"] == {}, path
    jobs = generated.workflow["jobs"]
    gate = {"contents": "read", "pull-requests": "write", "statuses": "write", "checks": "write"}
    ghcr = {"packages": "write"}  # the scaffold's registry is ghcr.io (see the next test)
    assert jobs["gate"]["permissions"] == gate | ghcr
    assert jobs["deploy"]["permissions"] == {"contents": "write", "pull-requests": "write"} | ghcr
    assert jobs["production"]["permissions"] == {"contents": "write", "pull-requests": "write", "packages": "read"}  # reads staging's version
    assert jobs["chatops"]["permissions"] == {"contents": "write", "pull-requests": "write", "issues": "write", "statuses": "write", "checks": "write"} | ghcr
    assert generated.monitor["jobs"]["monitor"]["permissions"] == {"contents": "write", "pull-requests": "write", "issues": "write", "packages": "read"}
    own = {path.name: yaml.safe_load(path.read_text())["jobs"] for path in OWN_WORKFLOWS}
    assert own["mlops.yml"]["gate"]["permissions"] == gate
    assert own["ci.yml"]["test"]["permissions"] == {"contents": "read"}


def test_jobs_get_packages_write_only_where_they_push_to_ghcr(generated: Generated) -> None:
    """The registry on ghcr.io (issue 12): the gate (publishes the PR's candidate), the
    deploy (registers the version) and ChatOps (a retrain publishes) may write packages;
    the monitor only reads the deployed model; nothing at the workflow level."""
    assert "  url: oci://ghcr.io/acme/shop/models\n" in (generated.root / "mlops.yaml").read_text()
    jobs = generated.workflow["jobs"]
    assert {name: job["permissions"].get("packages") for name, job in jobs.items()} == {"gate": "write", "deploy": "write", "production": "read", "chatops": "write"}
    assert generated.workflow["permissions"] == {} and generated.monitor["permissions"] == {}
    assert generated.monitor["jobs"]["monitor"]["permissions"]["packages"] == "read"


def test_only_the_production_job_is_held_by_an_environment(generated: Generated) -> None:
    """GitHub Environments (issue 15): the `production` environment's required
    reviewers approve the promotion job, and its secrets reach no other job. It runs
    only when started by hand on the default branch (workflow_dispatch)."""
    jobs = generated.workflow["jobs"]
    assert {name: job.get("environment") for name, job in jobs.items()} == {"gate": None, "deploy": None, "production": "production", "chatops": None}
    assert jobs["production"]["if"] == "github.event_name == 'workflow_dispatch' && github.ref == 'refs/heads/main'"
    assert generated.workflow[True]["workflow_dispatch"] is None  # no inputs: nothing typed reaches a shell
    for name in ("gate", "deploy", "chatops"):
        assert "workflow_dispatch" not in jobs[name]["if"], name
