"""Merge to deploy, end to end: PR -> merge -> promotion PR -> merge -> served version
changes -> rollback PR -> merge -> previous version served. On the local forge (git
branches) here; on the GitHub stand-in in test_deploy_github.py."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests.github_standin import SHARED
from tests.helpers import GitRepo, mixed_frame

CONFIG = """\
version: 1
name: churn
data:
  path: data/churn.csv
  target: churn
training:
  estimator: sklearn.linear_model.LogisticRegression
  params:
    C: 0.01
    max_iter: 500
metrics: [accuracy, f1, roc_auc, log_loss]
gates:
  accuracy:
    min: 0.6
deploy:
  environments:
    staging:
      manifest: deploy/staging.yaml
    production:
      manifest: deploy/production.yaml
"""

HAND_WRITTEN = """\
# staging: the churn-api deployment reads this file (keep this comment)
environment: staging
replicas: 2   # scaled by the platform team
model:
"""


def make_repo(repo: GitRepo, config: str = CONFIG, manifest: bool = True) -> GitRepo:
    repo.gen({"mlops.yaml": config, **({"deploy/staging.yaml": HAND_WRITTEN} if manifest else {})})
    (repo.path / "data").mkdir()
    mixed_frame(500).to_csv(repo.path / "data" / "churn.csv", index=False)
    repo.commit("Add the churn model")
    return repo


def deploy_v1(cli: Any, repo: GitRepo) -> str:
    """PR #7 (C 0.01 -> 1.0) merged, deployed, promotion merged: staging runs v1."""
    sha = pr_and_merge(cli, repo, "feature/stronger", "C: 0.01", "C: 1.0", 7)
    assert cli("deploy", cwd=repo.path).exit_code == 0
    merge_local(repo, "mlops/deploy-staging", 8)
    return sha


def pr_and_merge(cli: Any, repo: GitRepo, branch: str, old: str, new: str, number: int) -> str:
    """Open a PR changing ``old`` to ``new`` in mlops.yaml, run it, merge it; the ONNX sha256 it showed."""
    repo.checkout("main").branch(branch).edit("mlops.yaml", old, new).commit(f"{branch}: {new}")
    result = cli("run", "--base", "main", cwd=repo.path)
    assert result.exit_code == 0, result.output
    comment = next((repo.path / ".mlops" / "forge").glob(f"branch-{branch.replace('/', '-')}*/comment.md")).read_text()
    sha = re.search(r"`model.onnx` sha256 `([0-9a-f]{12})`", comment)
    assert sha, comment
    repo.checkout("main")
    repo.git("merge", "--no-ff", "--quiet", branch, "-m", f"Merge pull request #{number} from acme/{branch}")
    return sha.group(1)


def merge_local(repo: GitRepo, branch: str, number: int) -> None:
    repo.git("merge", "--no-ff", "--quiet", branch, "-m", f"Merge pull request #{number} from acme/{branch}")


class Server:
    """`mlops serve`'s server on a free loopback port, in a thread."""

    def __init__(self, holder: Any) -> None:
        from mlgitops.deploy.serve import make_server

        holder.load(initial=True)
        self.holder = holder
        self.server, sock, self.port = make_server(holder, "127.0.0.1", 0, poll=0.2)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        self.wait(lambda h: h.get("status") == "ok")

    def get(self, path: str) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())
        except urllib.error.URLError:
            return 0, {}

    def post(self, path: str, body: Any) -> tuple[int, dict]:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def wait(self, ok: Callable[[dict], bool], seconds: float = 15.0) -> dict:
        deadline = time.monotonic() + seconds  # bounded
        health: dict = {}
        while time.monotonic() < deadline:
            _, health = self.get("/healthz")
            if health and ok(health):
                return health
            time.sleep(0.1)
        raise AssertionError(f"server never reached the expected state; last /healthz: {health}")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def serving() -> Iterator[Callable[[Any], Server]]:
    started: list[Server] = []

    def start(holder: Any) -> Server:
        started.append(Server(holder))
        return started[-1]

    yield start
    for s in started:
        s.stop()


def holder_for(repo: GitRepo, env: str = "staging") -> Any:
    from mlgitops.deploy.serve import ModelHolder

    path = repo.path / "deploy" / f"{env}.yaml"
    return ModelHolder(env, lambda: path.read_text() if path.is_file() else None, f"deploy/{env}.yaml", repo.path)


def plant_pickle(repo: GitRepo, onnx_sha: str, marker: Path) -> bytes:
    """Replace the cached pickle of the model whose ONNX starts with ``onnx_sha`` by one
    that writes ``marker`` when unpickled, meta.json kept consistent: what anyone who
    can write the cache can leave (tests/security/test_cache_trust.py)."""
    import pickle

    from tests.security.test_cache_trust import Planted

    cache = repo.path / ".mlops" / "cache"
    [key] = [p.parent.name for p in (cache / "onnx").glob("*/model.onnx") if hashlib.sha256(p.read_bytes()).hexdigest().startswith(onnx_sha)]
    data = pickle.dumps(Planted(marker), protocol=4)
    (cache / "models" / key / "model.joblib").write_bytes(data)
    meta = json.loads((cache / "models" / key / "meta.json").read_text())
    (cache / "models" / key / "meta.json").write_text(json.dumps(dict(meta, model_sha256=hashlib.sha256(data).hexdigest())))
    return data


def test_merge_promote_serve_rollback_on_the_local_forge(cli, repo: GitRepo, serving, tmp_path: Path) -> None:
    make_repo(repo)
    sha1 = pr_and_merge(cli, repo, "feature/stronger", "C: 0.01", "C: 1.0", 7)
    assert not (repo.path / ".mlops" / "trusted").exists()  # a PR run never writes the trust ledger
    # The PR run's pickle replaced by one that runs code: the deploy (a trusted run)
    # reuses the PR's model through its ONNX export and never unpickles it.
    planted = plant_pickle(repo, sha1, tmp_path / "unpickled")

    result = cli("deploy", cwd=repo.path)
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "unpickled").exists()
    assert result.output.startswith("registered churn v1; opened PR #1: Deploy churn v1 (")
    assert (
        "\n  model: reused the model trained for the pull request (same data, params, code and libraries): its ONNX export, scored through ONNX Runtime;"
        f" its pickle is registered as bytes, never unpickled by this trusted run\n  artifact: sha256 {sha1} (.mlops/registry/objects/"
    ) in result.output
    record = json.loads((repo.path / ".mlops" / "registry" / "models" / "churn" / "1.json").read_text())
    assert record["artifacts"]["sklearn"]["sha256"] == hashlib.sha256(planted).hexdigest()
    diff = repo.git("diff", "main", "mlops/deploy-staging")
    removed = [l for l in diff.splitlines() if l.startswith("-") and not l.startswith("---")]
    added = [l for l in diff.splitlines() if l.startswith("+") and not l.startswith("+++")]
    assert removed == []  # comments, key order and the platform's keys are kept
    assert [l.split(":")[0] for l in added] == ["+  name", "+  version", "+  uri", "+  sha256", "+  format", "+  metrics", "+  lineage"]
    body = (repo.path / ".mlops" / "forge" / "pulls" / "1.md").read_text()
    assert "### 🚀 Deploy `churn` v1" in body and "| accuracy ↑ | — |" in body and "- `pr`: #7" in body
    assert "Nothing is deployed to staging yet" in body or "nothing usable is deployed" in body.lower()

    # A rerun of the deploy updates nothing: same branch, same PR.
    again = cli("deploy", cwd=repo.path)
    assert again.exit_code == 0 and "unchanged PR #1" in again.output

    merge_local(repo, "mlops/deploy-staging", 8)
    pinned = (repo.path / "deploy" / "staging.yaml").read_text()
    assert pinned.startswith(HAND_WRITTEN.rstrip("\n").rsplit("\n", 1)[0])
    server = serving(holder_for(repo))
    health = server.wait(lambda h: h.get("version") == 1)
    assert health["sha256"].startswith(sha1)
    # Byte for byte: the served file is the ONNX the PR run exported and showed.
    served = (repo.path / health["uri"]).read_bytes()
    reviewed = [p.read_bytes() for p in (repo.path / ".mlops" / "cache" / "onnx").glob("*/model.onnx") if hashlib.sha256(p.read_bytes()).hexdigest().startswith(sha1)]
    assert reviewed == [served]
    status, answer = server.post("/predict", {"instances": [{"age": 30, "income": 20000, "city": "nice", "plan": "pro"}, {"age": None, "income": 1000, "city": None, "plan": "basic"}]})
    assert status == 200 and answer["version"] == 1 and len(answer["predictions"]) == 2
    assert set(answer["probabilities"][0]) == {"0", "1"}

    # The merged promotion PR is a push to main too: nothing to do, no Prefect.
    noop = cli("deploy", cwd=repo.path)
    assert noop.exit_code == 0 and "staging already runs churn v1" in noop.output

    sha2 = pr_and_merge(cli, repo, "feature/balanced", "max_iter: 500", "max_iter: 500\n    class_weight: balanced", 9)
    assert sha2 != sha1
    second = cli("deploy", cwd=repo.path)
    assert second.exit_code == 0 and "registered churn v2; opened PR #2" in second.output, second.output
    body2 = (repo.path / ".mlops" / "forge" / "pulls" / "2.md").read_text()
    assert "| metric | deployed v1 (" in body2 and re.search(r"Both models scored on the same holdout \(\d+ rows\); both through ONNX Runtime, as they serve\.", body2)
    merge_local(repo, "mlops/deploy-staging", 10)
    assert server.wait(lambda h: h.get("version") == 2)["sha256"].startswith(sha2)

    back = cli("rollback", "staging", cwd=repo.path)
    assert back.exit_code == 0 and "opened PR #3: Roll back staging to churn v1" in back.output, back.output
    merge_local(repo, "mlops/deploy-staging", 11)
    assert server.wait(lambda h: h.get("version") == 1)["sha256"].startswith(sha1)
    # The rollback holds: main still produces v2's model, and a push does not reopen it.
    held = cli("deploy", cwd=repo.path)
    assert held.exit_code == 0, held.output
    assert held.output.splitlines()[0] == (
        f"reusing registered churn v2; held: staging stays at v1 ({sha1}) after rolling back v2; this push produces that model again"
        f" (sha256 {sha2}), so no promotion PR is opened. A new model, or `mlops promote`, lifts the hold"
    )
    assert not (repo.path / ".mlops" / "forge" / "pulls" / "4.md").exists()

    promoted = cli("promote", "staging", "production", cwd=repo.path)
    assert promoted.exit_code == 0 and "opened PR #4: Promote churn v1" in promoted.output
    report = json.loads(cli("status", "--json", cwd=repo.path).output)
    envs = {e["environment"]: e for e in report["environments"]}
    assert envs["staging"]["version"] == 1 and envs["staging"]["previous"] == 2 and envs["staging"]["artifact"] == f"ok (sha256 verified); held at v1 ({sha1}) after rolling back v2 ({sha2})"
    assert envs["production"]["version"] is None and [p["number"] for p in envs["production"]["pending"]] == [4]
    assert report["registry"]["versions"] == [1, 2]


@pytest.fixture
def deployed(cli, repo: GitRepo) -> GitRepo:
    """staging runs v1."""
    deploy_v1(cli, make_repo(repo))
    return repo


def test_a_corrupted_artifact_is_refused_everywhere(cli_noprefect, deployed: GitRepo) -> None:
    pin = (deployed.path / "deploy" / "staging.yaml").read_text()
    uri = re.search(r"uri: (\S+)", pin).group(1)
    artifact = deployed.path / uri
    data = bytearray(artifact.read_bytes())
    data[100] ^= 0xFF
    artifact.write_bytes(bytes(data))

    served = cli_noprefect("serve", "staging", "--port", "0", cwd=deployed.path)
    assert served.exit_code == 2
    assert re.search(r"error: deploy/staging.yaml: model.sha256: the artifact \S+ hashes to [0-9a-f]{12}, not the pinned [0-9a-f]{12}; refusing to use it", served.output)
    status = json.loads(cli_noprefect("status", "--json", cwd=deployed.path).output)
    assert "hashes to" in status["environments"][0]["artifact"]
    back = cli_noprefect("rollback", "staging", "--to", "1", cwd=deployed.path)
    assert back.exit_code == 2 and "is corrupted: its content hashes to" in back.output


def test_missing_version_and_nothing_to_roll_back(cli_noprefect, deployed: GitRepo) -> None:
    missing = cli_noprefect("rollback", "staging", "--to", "9", cwd=deployed.path)
    assert missing.exit_code == 2
    assert "error: model 'churn' has no version 9 in the registry" in missing.output and "(versions: 1)" in missing.output
    first = cli_noprefect("rollback", "staging", cwd=deployed.path)
    assert first.exit_code == 2 and "staging has no previous pin to roll back to" in first.output
    unknown = cli_noprefect("promote", "staging", "prod", cwd=deployed.path)
    assert unknown.exit_code == 2 and "unknown environment 'prod' (environments in mlops.yaml: staging, production)" in unknown.output
    assert cli_noprefect("promote", "production", "staging", cwd=deployed.path).output.startswith("error: production runs no model yet")


def test_a_manifest_edited_into_nonsense_is_named_by_line(cli_noprefect, deployed: GitRepo) -> None:
    (deployed.path / "deploy" / "staging.yaml").write_text("environment: staging\nmodel:\n  uri: 3\n  sha256: not-a-hash\n")
    deployed.commit("hand edit")
    result = cli_noprefect("deploy", cwd=deployed.path)
    assert result.exit_code == 2
    assert "error: deploy/staging.yaml@main:3:8: model.uri: expected a string, got 3" in result.output
    assert "deploy/staging.yaml@main:4:11: model.sha256: expected 64 lowercase hex digits, got 'not-a-hash'" in result.output
    (deployed.path / "deploy" / "staging.yaml").write_text("model: [unclosed\n")
    deployed.commit("broken yaml")
    status = json.loads(cli_noprefect("status", "--json", cwd=deployed.path).output)
    assert status["environments"][0]["artifact"].startswith("manifest unreadable: deploy/staging.yaml@main:")


def test_an_estimator_skl2onnx_cannot_convert(cli, repo: GitRepo) -> None:
    make_repo(repo)
    repo.branch("dummy").edit("mlops.yaml", "sklearn.linear_model.LogisticRegression", "sklearn.dummy.DummyClassifier").edit("mlops.yaml", "    C: 0.01\n    max_iter: 500\n", "    strategy: prior\n").edit("mlops.yaml", "min: 0.6", "min: 0.1").commit()
    failed = cli("run", "--base", "main", cwd=repo.path)
    assert failed.exit_code == 1
    comment = next((repo.path / ".mlops" / "forge").glob("branch-dummy*/comment.md")).read_text()
    assert "**ONNX export**: ❌ cannot export sklearn.dummy.DummyClassifier to ONNX: skl2onnx has no converter for DummyClassifier" in comment
    assert "set export.on_failure: warn" in comment
    repo.gen({"mlops.yaml": (repo.path / "mlops.yaml").read_text() + "export:\n  on_failure: warn\n"}).commit()
    warned = cli("run", "--base", "main", cwd=repo.path)
    assert warned.exit_code == 0, warned.output
    comment = next((repo.path / ".mlops" / "forge").glob("branch-dummy*/comment.md")).read_text()
    assert "**ONNX export**: ⚠️ cannot export sklearn.dummy.DummyClassifier" in comment and "ONNX not deployable (warn only)" in comment


def test_parity_tolerances_decide_the_gate(cli, repo: GitRepo) -> None:
    make_repo(repo)
    repo.branch("forest").edit("mlops.yaml", "sklearn.linear_model.LogisticRegression", "sklearn.ensemble.GradientBoostingClassifier").edit("mlops.yaml", "    C: 0.01\n    max_iter: 500\n", "    random_state: 0\n")
    repo.gen({"mlops.yaml": (repo.path / "mlops.yaml").read_text() + "export:\n  parity:\n    max_proba_diff: 0.0\n"}).commit()
    result = cli("run", "--base", "main", "--json", cwd=repo.path)
    report = json.loads(result.stdout)
    assert result.exit_code == 1
    assert report["export"]["status"] == "parity_failed" and report["export"]["parity"]["max_abs_diff"] > 0
    gate = [g for g in report["gates"] if g["metric"] == "onnx"][0]
    assert gate["rule"] == "parity" and not gate["passed"] and gate["message"].startswith("ONNX parity failed: labels agree on")


def test_a_push_to_the_default_branch_runs_the_deploy_flow(cli, repo: GitRepo, tmp_path: Path) -> None:
    make_repo(repo)
    pr_and_merge(cli, repo, "feature/stronger", "C: 0.01", "C: 1.0", 7)
    payload = json.loads((SHARED / "webhooks" / "octokit-webhooks" / "api.github.com" / "push" / "1.payload.json").read_text())
    payload.update(ref="refs/heads/main", before=repo.git("rev-parse", "HEAD^"), after=repo.git("rev-parse", "HEAD"), deleted=False)
    payload["repository"]["default_branch"] = "main"
    event = tmp_path / "push.json"
    event.write_text(json.dumps(payload))
    result = cli("run", "--event-path", str(event), "--event-name", "push", cwd=repo.path)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("registered churn v1; opened PR #1: Deploy churn v1")
    payload["ref"] = "refs/heads/feature/other"
    event.write_text(json.dumps(payload))
    other = cli("run", "--event-path", str(event), "--event-name", "push", cwd=repo.path)
    assert other.exit_code == 0 and other.output == "nothing to do: push to refs/heads/feature/other: the pull-request flow runs on pull_request events; the deploy flow on pushes to main\n"


def test_manifest_in_another_repo_and_a_registry_outside_the_checkout(cli, tmp_path: Path) -> None:
    """production's manifest lives in a deployments repo; the registry on a shared volume."""
    app = GitRepo(tmp_path / "app")
    deployments = GitRepo(tmp_path / "deployments")
    deployments.gen({"README.md": "what runs where\n"}).commit("init")
    volume = tmp_path / "volume" / "registry"
    config = CONFIG.replace("    production:\n      manifest: deploy/production.yaml\n", "    production:\n      manifest: prod/churn.yaml\n      repo: ../deployments\n")
    config += f"registry:\n  path: {volume}\n"
    deploy_v1(cli, make_repo(app, config, manifest=False))
    staging = (app.path / "deploy" / "staging.yaml").read_text()
    assert f"uri: {volume.as_uri()}/objects/" in staging  # outside the checkout: an absolute URI

    result = cli("promote", "staging", "production", cwd=app.path)
    assert result.exit_code == 0 and result.output.startswith("opened PR #1: Promote churn v1"), result.output
    assert (deployments.path / ".mlops" / "forge" / "pulls" / "1.md").is_file()
    assert deployments.git("diff", "--name-only", "main", "mlops/deploy-production") == "prod/churn.yaml"
    deployments.git("merge", "--no-ff", "--quiet", "mlops/deploy-production", "-m", "Merge pull request #1")
    status = json.loads(cli("status", "--json", cwd=app.path).output)
    envs = {e["environment"]: e for e in status["environments"]}
    assert envs["production"]["version"] == 1 and envs["production"]["artifact"] == "ok (sha256 verified)"
    assert envs["production"]["manifest"] == "prod/churn.yaml@main"


def test_a_deploy_that_fails_parity_registers_nothing(cli, repo: GitRepo) -> None:
    make_repo(repo)
    repo.gen({"mlops.yaml": CONFIG.replace("sklearn.linear_model.LogisticRegression", "sklearn.ensemble.GradientBoostingClassifier").replace("    C: 0.01\n    max_iter: 500\n", "    random_state: 0\n") + "export:\n  parity:\n    max_proba_diff: 0.0\n"}).commit("strict parity")
    result = cli("deploy", cwd=repo.path)
    assert result.exit_code == 1
    assert result.output.startswith("not deployed: 1 of 2 gate checks failed: ONNX parity failed: labels agree on 100.00%")
    assert not (repo.path / ".mlops" / "registry").exists()
    assert repo.git("branch", "--list", "mlops/*") == ""


def test_a_reverted_change_closes_its_open_deploy_pr(cli, deployed: GitRepo) -> None:
    """staging runs v1; a PR's change reaches main (deploy PR for v2 opens), then is reverted."""
    pr_and_merge(cli, deployed, "feature/balanced", "max_iter: 500", "max_iter: 500\n    class_weight: balanced", 9)
    opened = cli("deploy", cwd=deployed.path)
    assert "opened PR #2: Deploy churn v2" in opened.output, opened.output
    deployed.git("revert", "--no-edit", "-m", "1", "HEAD")
    result = cli("deploy", cwd=deployed.path)
    assert result.exit_code == 0
    assert result.output.startswith("staging already runs churn v1 (") and result.output.rstrip().endswith("closed the stale PR #2")
    pulls = json.loads((deployed.path / ".mlops" / "forge" / "pulls.json").read_text())
    assert [(p["number"], p["state"]) for p in pulls] == [(1, "merged"), (2, "closed")]
