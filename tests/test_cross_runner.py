"""The cross-runner story, once per registry backend (issue 12).

Clone A runs the pull request and publishes its candidate; clone B (a fresh clone:
empty `.mlops/`, no cache, nothing shared with A but the registry URL) runs the deploy
for the merge and pins the very bytes A's comment showed; folder C, holding only the
manifest, pulls and serves them. A second fresh clone whose registry lost the
candidate retrains, and its promotion PR's first line says the bytes were not
reviewed. Real servers: moto's S3 server, the CNCF distribution registry.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import GitRepo, mixed_frame
from tests.test_deploy import CONFIG, HAND_WRITTEN, Server

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _registry_url(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if kind == "folder":
        return str(tmp_path / "shared-volume" / "registry")  # e.g. an NFS mount both runners see
    if kind == "s3":
        return request.getfixturevalue("s3_registry_url")
    host = request.getfixturevalue("oci_registry")
    return f"oci://{host}/acme/churn-{tmp_path.name[-12:].lower().replace('_', '-')}/models"


def _clone(origin: GitRepo, dest: Path) -> GitRepo:
    subprocess.run(["git", "clone", "--quiet", str(origin.path), str(dest)], check=True)
    clone = GitRepo.__new__(GitRepo)
    clone.path = dest
    clone.git("config", "user.name", "Runner B")
    clone.git("config", "user.email", "runner-b@example.invalid")
    return clone


def _run_pr(cli: Any, repo: GitRepo, number: int, branch: str, tmp_path: Path) -> Any:
    """The pull_request event a runner gets for PR ``number`` (head ``branch``, base main)."""
    payload = {
        "action": "synchronize",
        "number": number,
        "pull_request": {"number": number, "base": {"ref": "main", "sha": repo.git("rev-parse", "main")}, "head": {"ref": branch, "sha": repo.git("rev-parse", branch), "repo": {"full_name": "acme/churn"}}},
        "repository": {"full_name": "acme/churn", "default_branch": "main"},
        "sender": {"login": "octocat"},
    }
    path = tmp_path / f"event-{number}.json"
    path.write_text(json.dumps(payload))
    return cli("run", "--event-path", str(path), "--forge", "local", cwd=repo.path)


def _manifest_on(repo: GitRepo, branch: str, path: str) -> str:
    return repo.git("show", f"{branch}:{path}") + "\n"


@pytest.mark.parametrize("kind", ["folder", "s3", "oci"])
def test_pr_publishes_merge_on_another_runner_registers_those_bytes_and_a_bare_folder_serves_them(kind: str, cli, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = _registry_url(kind, request, tmp_path)
    a = GitRepo(tmp_path / "runner-a")
    # staging is deployed by KServe (Argo CD syncs k8s/): the promotion PR also pins its storageUri.
    kserve = """\
      files:
        - path: k8s/inference-service.yaml
          key: spec.predictor.model.storageUri
          annotate: metadata.annotations
"""
    config = CONFIG.replace("      manifest: deploy/staging.yaml\n", "      manifest: deploy/staging.yaml\n" + kserve) + f"registry:\n  url: {url}\n"
    isvc = (EXAMPLES / "kserve" / "k8s" / "inference-service.yaml").read_text()
    a.gen({"mlops.yaml": config, "deploy/staging.yaml": HAND_WRITTEN, "k8s/inference-service.yaml": isvc})
    (a.path / "data").mkdir()
    mixed_frame(500).to_csv(a.path / "data" / "churn.csv", index=False)
    a.commit("Add the churn model")

    # Runner A: the pull request run trains, comments, and publishes its candidate.
    a.branch("feature/stronger").edit("mlops.yaml", "C: 0.01", "C: 1.0").commit("feature/stronger: C 1.0")
    run = _run_pr(cli, a, 7, "feature/stronger", tmp_path)
    assert run.exit_code == 0, run.output
    comment = (a.path / ".mlops" / "forge" / "pr-7" / "comment.md").read_text()
    shown = re.search(r"`model.onnx` sha256 `([0-9a-f]{12})`", comment)
    assert shown, comment
    assert "candidate not published" not in comment
    a.checkout("main")
    a.git("merge", "--no-ff", "--quiet", "feature/stronger", "-m", "Merge pull request #7 from acme/feature/stronger")

    # Runner B: a fresh clone of the merge; nothing of A's but the registry URL.
    b = _clone(a, tmp_path / "runner-b")
    assert not (b.path / ".mlops").exists()
    deploy = cli("deploy", cwd=b.path)
    assert deploy.exit_code == 0, deploy.output
    lines = deploy.output.splitlines()
    assert lines[0] == "registered churn v1; opened PR #1: Deploy churn v1 (" + lines[0].split("(", 1)[1]
    assert f"  registered the bytes reviewed in PR #7 (head {a.git('rev-parse', 'feature/stronger')[:12]}): ONNX sha256 {shown.group(1)}, fetched from the registry" in lines
    body = (b.path / ".mlops" / "forge" / "pulls" / "1.md").read_text()
    assert "not reviewed" not in body
    manifest = _manifest_on(b, "mlops/deploy-staging", "deploy/staging.yaml")
    pin = re.search(r"uri: (\S+)\n\s+sha256: ([0-9a-f]{64})", manifest)
    assert pin and pin.group(2).startswith(shown.group(1)), manifest
    if kind != "folder":
        assert pin.group(1).startswith(url.split("/models")[0].split("://")[0] + "://"), pin.group(1)
    assert "pr: 7" in manifest
    # The KServe file: exactly the storageUri and the two annotations changed.
    diff = b.git("diff", "--unified=0", "main", "mlops/deploy-staging", "--", "k8s/inference-service.yaml")
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    old_sha = "0c1d7f3a9b2e4c6d8f0a1b3c5d7e9f1a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e"
    assert changed == [
        f'-    mlgitops.dev/model-sha256: "{old_sha}"',
        '-    mlgitops.dev/model-version: "3"',
        f'+    mlgitops.dev/model-sha256: "{pin.group(2)}"',
        '+    mlgitops.dev/model-version: "1"',
        f'-      storageUri: "s3://acme-models/iris/objects/0c/{old_sha}"  # pinned by mlgitops',
        f'+      storageUri: "{pin.group(1)}"  # pinned by mlgitops',
    ], diff

    # Folder C: the manifest alone (an init container, a serving host).
    c = tmp_path / "runner-c"
    c.mkdir()
    (c / "staging.yaml").write_text(manifest)
    pulled = cli("pull", "--manifest", str(c / "staging.yaml"), "--to", str(c / "model"), cwd=c)
    assert pulled.exit_code == 0, pulled.output
    data = (c / "model" / "model.onnx").read_bytes()
    assert hashlib.sha256(data).hexdigest() == pin.group(2)
    assert pulled.output.strip().startswith(f"pulled churn v1 (sha256 {shown.group(1)}) to ")

    from mlgitops.deploy.manifest import read_pin
    from mlgitops.deploy.serve import ModelHolder

    holder = ModelHolder("staging", lambda: (c / "staging.yaml").read_text(), "staging.yaml", c)
    server = Server(holder)
    try:
        health = server.wait(lambda h: h.get("version") == 1)
        assert health["sha256"] == read_pin(manifest, "m").sha256
        status, answer = server.post("/predict", {"instances": [{"age": 30, "income": 20000, "city": "nice", "plan": "pro"}]})
        assert status == 200 and answer["version"] == 1 and len(answer["predictions"]) == 1
    finally:
        server.stop()


@pytest.mark.parametrize("kind", ["folder", "s3"])  # the decision is backend-independent; OCI's candidates are covered above and in test_registry_oci
def test_a_merge_whose_candidate_is_gone_retrains_and_says_the_bytes_were_not_reviewed(kind: str, cli, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = _registry_url(kind, request, tmp_path)
    a = GitRepo(tmp_path / "runner-a")
    a.gen({"mlops.yaml": CONFIG + f"registry:\n  url: {url}\n", "deploy/staging.yaml": HAND_WRITTEN})
    (a.path / "data").mkdir()
    mixed_frame(500).to_csv(a.path / "data" / "churn.csv", index=False)
    a.commit("Add the churn model")
    a.branch("feature/stronger").edit("mlops.yaml", "C: 0.01", "C: 1.0").commit("feature/stronger: C 1.0")
    assert _run_pr(cli, a, 7, "feature/stronger", tmp_path).exit_code == 0
    a.checkout("main")
    # The merge also changes the data: the merged commit's model key is not the PR's.
    frame = mixed_frame(520)
    frame.to_csv(a.path / "data" / "churn.csv", index=False)
    a.git("merge", "--no-ff", "--quiet", "--no-commit", "feature/stronger")
    a.git("add", "-A")
    a.git("commit", "--quiet", "-m", "Merge pull request #7 from acme/feature/stronger")

    from mlgitops.deploy.registry import Registry
    from mlgitops.deploy.registry.urls import open_backend

    registry = Registry(open_backend(url, a.path))
    reviewed = [c for c in registry.candidates("churn") if c.info.get("pr") == 7]
    assert len(reviewed) == 1
    reviewed_sha, reviewed_key = reviewed[0].artifacts["onnx"].sha256, reviewed[0].model_key
    b = _clone(a, tmp_path / "runner-b")
    deploy = cli("deploy", cwd=b.path)
    assert deploy.exit_code == 0, deploy.output
    body = (b.path / ".mlops" / "forge" / "pulls" / "1.md").read_text()
    visible = body.split("<!-- mlgitops:promotion env=staging -->\n", 1)[1].splitlines()  # the PR body (the local forge's file starts with the title)
    trained = re.search(r"sha256: ([0-9a-f]{64})", _manifest_on(b, "mlops/deploy-staging", "deploy/staging.yaml")).group(1)
    merged_key = visible[0].rsplit("model key ", 1)[1][:12]
    assert merged_key != reviewed_key[:12]
    assert visible[0] == (
        f"⚠️ **These bytes were not reviewed in PR #7: the deploy trained them (ONNX sha256 {trained[:12]}); PR #7 reviewed ONNX sha256 {reviewed_sha[:12]}"
        f" (model key {reviewed_key[:12]}), and the merged commit's inputs give model key {merged_key}.**"
    )
    assert f"  warning: {visible[0][5:-2]}" in deploy.output.splitlines()

    # The candidate pruned: the line says the registry holds none.
    registry.delete_candidate("churn", reviewed_key)
    c = _clone(a, tmp_path / "runner-c")
    again = cli("deploy", cwd=c.path)
    assert again.exit_code == 0, again.output
    first = (c.path / ".mlops" / "forge" / "pulls" / "1.md").read_text().split("<!-- mlgitops:promotion env=staging -->\n", 1)[1].splitlines()[0]
    assert first == (
        f"⚠️ **These bytes were not reviewed in PR #7: the deploy trained them (ONNX sha256 {first.split('ONNX sha256 ')[1][:12]}); the registry {url}"
        f" holds no candidate for model key {merged_key} (a fork's PR without registry credentials, a read-only token, or pruned by `mlops gc`).**"
    )
