"""Deploy targets fetch by pin: `mlops pull`, `mlops serve --manifest`, the verified
content-addressed cache, and `mlops gc`.

Folder registries are read directly (no cache). The cache is for remote backends; the
cache tests use fsspec's in-process ``memory://`` store through the real
FsspecBackend, so they need no server; the same path with real S3 (moto) and OCI
(distribution) servers is ``test_pull_and_serve_from_a_remote_registry``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from mlgitops.deploy import onnx as export
from mlgitops.deploy.fetch import cache_path
from mlgitops.deploy.registry import Registry
from mlgitops.deploy.registry.urls import open_backend
from tests.helpers import GitRepo, mixed_frame
from tests.test_export import fitted

CONFIG = """\
version: 1
name: churn
data:
  path: data/churn.csv
  target: churn
training:
  estimator: sklearn.linear_model.LogisticRegression
deploy:
  environments:
    staging:
      manifest: deploy/staging.yaml
"""

ROW = {"age": 30, "income": 1000.0, "city": "nice", "plan": "pro"}


@pytest.fixture(scope="module")
def onnx_models() -> list[bytes]:
    """Two real ONNX models (different bytes)."""
    frame = mixed_frame(300)
    out = []
    for c in ("{C: 1.0}", "{C: 0.001}"):
        model, features = fitted("sklearn.linear_model.LogisticRegression", frame, "churn", c)
        out.append(export.to_onnx(model, frame, features, "classification").onnx)
    return out


def pin_text(uri: str, sha: str, version: int = 1, name: str = "churn") -> str:
    return f"# production: the churn-api reads this\nenvironment: production\nmodel:\n  name: {name}\n  version: {version}\n  uri: {uri}\n  sha256: {sha}\n  format: onnx\n"


def one_off(sha: str) -> str:
    """``sha`` with its last hex digit changed: a near miss."""
    return sha[:-1] + ("0" if sha[-1] != "0" else "1")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def remote() -> Iterator[Registry]:
    """A registry reached like a remote one (backend_for_blob_uri, hence the cache):
    fsspec's in-process ``memory://`` filesystem through the real FsspecBackend."""
    from fsspec.implementations.memory import MemoryFileSystem

    name = f"mlops-test-{uuid.uuid4().hex[:12]}"
    yield Registry(open_backend(f"memory://{name}/models", Path(".")))
    for key in [k for k in MemoryFileSystem.store if k.startswith(f"/{name}/")]:
        MemoryFileSystem.store.pop(key, None)


@pytest.fixture
def repo_with_version(tmp_path: Path, onnx_models: list[bytes]) -> tuple[GitRepo, str]:
    """mlops.yaml with a folder registry holding churn v1; staging pins it (committed)."""
    repo = GitRepo(tmp_path / "repo")
    repo.gen({"mlops.yaml": CONFIG})
    registry = Registry(repo.path / ".mlops" / "registry")
    version = registry.register("churn", {"onnx": (onnx_models[0], "onnx")}, {"accuracy": 0.9}, {"model_key": "k1"}, None, list(ROW), "classification")
    sha = version.artifacts["onnx"].sha256
    repo.gen({"deploy/staging.yaml": pin_text(f".mlops/registry/objects/{sha[:2]}/{sha}", sha)})
    repo.commit("staging runs churn v1")
    return repo, sha


def test_pull_writes_the_model_and_its_pin(cli_noprefect, repo_with_version: tuple[GitRepo, str], onnx_models: list[bytes]) -> None:
    repo, sha = repo_with_version
    result = cli_noprefect("pull", "staging", "--to", "out", cwd=repo.path)
    assert result.exit_code == 0, result.output
    assert result.output == f"pulled churn v1 (sha256 {sha[:12]}) to out/model.onnx\n"
    assert (repo.path / "out" / "model.onnx").read_bytes() == onnx_models[0]
    record = json.loads((repo.path / "out" / "pin.json").read_text())
    assert {k: record[k] for k in ("name", "version", "sha256", "uri", "environment")} == {"name": "churn", "version": 1, "sha256": sha, "uri": f".mlops/registry/objects/{sha[:2]}/{sha}", "environment": "staging"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", record["pulled_at"])
    assert sorted(p.name for p in (repo.path / "out").iterdir()) == ["model.onnx", "pin.json"]  # no temp files left

    # --ref reads the committed manifest, not the working tree's edit.
    (repo.path / "deploy" / "staging.yaml").write_text(pin_text("nowhere.onnx", "ab" * 32, 2))
    at_main = cli_noprefect("pull", "staging", "--ref", "main", "--to", "out2", cwd=repo.path)
    assert at_main.exit_code == 0 and at_main.output == f"pulled churn v1 (sha256 {sha[:12]}) to out2/model.onnx\n"
    worktree = cli_noprefect("pull", "staging", "--to", "out3", cwd=repo.path)
    assert worktree.exit_code == 2
    assert worktree.output.startswith("error: deploy/staging.yaml: model.uri: the pinned artifact nowhere.onnx does not exist (")
    assert not (repo.path / "out3").exists()


def test_pull_from_a_folder_holding_only_a_manifest(cli_noprefect, tmp_path: Path, onnx_models: list[bytes]) -> None:
    registry = Registry(tmp_path / "shared-volume" / "registry")
    for data in onnx_models:
        registry.register("churn", {"onnx": (data, "onnx")}, {}, {}, None, [], "classification")
    sha = sha256(onnx_models[1])
    folder = tmp_path / "target"
    (folder / "deploy").mkdir(parents=True)
    (folder / "deploy" / "production.yaml").write_text(pin_text(registry.object_uri(sha), sha, 2))
    assert registry.object_uri(sha).startswith("file:///")
    result = cli_noprefect("pull", "--manifest", "deploy/production.yaml", "--to", "out/", cwd=folder)
    assert result.exit_code == 0, result.output
    assert result.output == f"pulled churn v2 (sha256 {sha[:12]}) to out/model.onnx\n"
    assert (folder / "out" / "model.onnx").read_bytes() == onnx_models[1]
    assert json.loads((folder / "out" / "pin.json").read_text())["environment"] == "production"  # the file's stem

    nothing = cli_noprefect("pull", "--to", "out/", cwd=folder)
    assert nothing.exit_code == 2 and nothing.output.startswith("error: which environment? give ENV (one of deploy.environments in mlops.yaml) or --manifest FILE\n")
    missing = cli_noprefect("pull", "--manifest", "deploy/prod.yaml", "--to", "out/", cwd=folder)
    assert missing.exit_code == 2 and missing.output.startswith("error: deploy/prod.yaml: no such manifest\n")
    (folder / "deploy" / "empty.yaml").write_text("# nothing yet\nmodel:\n")
    empty = cli_noprefect("pull", "--manifest", "deploy/empty.yaml", "--to", "out/", cwd=folder)
    assert empty.exit_code == 2 and empty.output.startswith("error: deploy/empty.yaml: pins no model (model.uri and model.sha256)\n")
    (folder / "deploy" / "http.yaml").write_text(pin_text("https://example.invalid/model.onnx", sha))
    http = cli_noprefect("pull", "--manifest", "deploy/http.yaml", "--to", "out/", cwd=folder)
    assert http.exit_code == 2 and http.output.startswith("error: deploy/http.yaml: model.uri: https://example.invalid/model.onnx has an unknown scheme 'https' (known: file paths, file://, ")


@pytest.mark.parametrize("where", ["folder", "remote"])
def test_a_one_digit_off_sha256_is_refused_and_nothing_written(cli_noprefect, tmp_path: Path, onnx_models: list[bytes], remote: Registry, where: str) -> None:
    registry = Registry(tmp_path / "registry") if where == "folder" else remote
    sha = registry.put_object(onnx_models[0])
    uri = registry.object_uri(sha)
    (tmp_path / "production.yaml").write_text(pin_text(uri, one_off(sha)))
    result = cli_noprefect("pull", "--manifest", "production.yaml", "--to", "out", cwd=tmp_path)
    assert result.exit_code == 2
    assert result.output.startswith(f"error: production.yaml: model.sha256: the artifact {uri} hashes to {sha[:12]}, not the pinned {one_off(sha)[:12]}; refusing to use it\n  hint: ")
    assert not (tmp_path / "out").exists()
    assert not cache_path(one_off(sha)).exists() and not cache_path(sha).exists()  # refused bytes are not cached


def test_a_remote_pin_goes_through_the_cache_and_a_corrupted_entry_is_refetched(cli_noprefect, tmp_path: Path, onnx_models: list[bytes], remote: Registry) -> None:
    sha = remote.put_object(onnx_models[0])
    (tmp_path / "production.yaml").write_text(pin_text(remote.object_uri(sha), sha))

    def pull(to: str) -> Any:
        return cli_noprefect("pull", "--manifest", "production.yaml", "--to", to, cwd=tmp_path)

    assert pull("a").exit_code == 0
    entry = cache_path(sha)
    assert entry == Path(os.environ["XDG_CACHE_HOME"]) / "mlgitops" / "objects" / sha[:2] / sha
    assert entry.read_bytes() == onnx_models[0]

    # A cached model is served without the registry (it may be down).
    remote.backend.delete_blob(sha)
    assert pull("b").exit_code == 0 and (tmp_path / "b" / "model.onnx").read_bytes() == onnx_models[0]

    # A corrupted entry is never served: with the registry gone, the pull fails ...
    corrupted = bytearray(onnx_models[0])
    corrupted[100] ^= 0xFF
    entry.write_bytes(bytes(corrupted))
    gone = pull("c")
    assert gone.exit_code == 2 and not (tmp_path / "c").exists()
    assert gone.output.startswith(f"error: production.yaml: model.uri: the pinned artifact {remote.object_uri(sha)} does not exist in the registry {remote.url}\n")
    assert not entry.exists()  # the bad entry was removed
    # ... and with the registry back, the model is fetched again and the entry repaired.
    entry.write_bytes(bytes(corrupted))
    remote.put_object(onnx_models[0])
    back = pull("d")
    assert back.exit_code == 0 and (tmp_path / "d" / "model.onnx").read_bytes() == onnx_models[0]
    assert entry.read_bytes() == onnx_models[0]

    # MLOPS_CACHE_DIR overrides the cache's place.
    os.environ["MLOPS_CACHE_DIR"] = str(tmp_path / "elsewhere")
    try:
        assert pull("e").exit_code == 0
        assert (tmp_path / "elsewhere" / "objects" / sha[:2] / sha).read_bytes() == onnx_models[0]
    finally:
        del os.environ["MLOPS_CACHE_DIR"]


def test_a_pin_to_a_missing_object_is_a_clear_error(cli_noprefect, tmp_path: Path, remote: Registry) -> None:
    sha = sha256(b"never registered")
    folder = Registry(tmp_path / "registry")
    for registry in (folder, remote):
        registry.put_object(b"something else")
    (tmp_path / "a.yaml").write_text(pin_text(folder.object_uri(sha), sha))
    result = cli_noprefect("pull", "--manifest", "a.yaml", "--to", "out", cwd=tmp_path)
    assert result.exit_code == 2
    assert result.output.startswith(f"error: a.yaml: model.uri: the pinned artifact {folder.object_uri(sha)} does not exist (")
    (tmp_path / "b.yaml").write_text(pin_text(remote.object_uri(sha), sha))
    result = cli_noprefect("pull", "--manifest", "b.yaml", "--to", "out", cwd=tmp_path)
    assert result.exit_code == 2
    assert result.output.startswith(f"error: b.yaml: model.uri: the pinned artifact {remote.object_uri(sha)} does not exist in the registry {remote.url}\n  hint: ")
    (tmp_path / "c.yaml").write_text(pin_text(f"{remote.url}/objects/{sha}", sha))  # no ab/ level
    result = cli_noprefect("pull", "--manifest", "c.yaml", "--to", "out", cwd=tmp_path)
    assert result.exit_code == 2
    assert result.output.startswith(f"error: c.yaml: model.uri: '{remote.url}/objects/{sha}' is not a registry object URI\n  hint: expected <registry url>/objects/")
    assert not (tmp_path / "out").exists()


def test_serve_from_a_manifest_only_folder(tmp_path: Path, onnx_models: list[bytes]) -> None:
    """`mlops serve --manifest FILE` as a process: no mlops.yaml, no git; /healthz names
    the file's stem as the environment and one prediction is answered."""
    registry = Registry(tmp_path / "volume")
    sha = registry.put_object(onnx_models[0])
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "canary.yaml").write_text(pin_text(registry.object_uri(sha), sha, 4))
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.Popen([sys.executable, "-m", "mlgitops", "serve", "--manifest", "canary.yaml", "--port", "0"], cwd=tmp_path / "target", env=env, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()  # bounded: the server prints it once it listens (or exits)
        found = re.search(r"^serving churn v4 \([0-9a-f]{12}\) for canary on http://127\.0\.0\.1:(\d+) ", line)
        assert found, line + proc.stderr.read() if proc.poll() is not None else line
        port = found.group(1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as resp:
            health = json.loads(resp.read())
        assert (health["status"], health["environment"], health["manifest"], health["version"], health["sha256"]) == ("ok", "canary", "canary.yaml", 4, sha)
        req = urllib.request.Request(f"http://127.0.0.1:{port}/predict", data=json.dumps(ROW).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            answer = json.loads(resp.read())
        assert answer["version"] == 4 and answer["predictions"] == [1]
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        proc.stderr.close()


def test_gc_removes_old_candidates_and_their_objects(cli_noprefect, repo_with_version: tuple[GitRepo, str]) -> None:
    repo, sha = repo_with_version
    registry = Registry(repo.path / ".mlops" / "registry")
    old = registry.publish_candidate("churn", "aa11", {"onnx": (b"old candidate", "onnx")}, {"pr": 3})
    registry.publish_candidate("churn", "bb22", {"onnx": (b"new candidate", "onnx")}, {"pr": 4})
    key = "candidates/churn/aa11.json"
    record = json.loads(registry.backend.read(key))
    registry.backend.write(key, json.dumps(dict(record, created_at="2020-01-01T00:00:00+00:00")).encode())

    result = cli_noprefect("gc", "--older-than", "10", cwd=repo.path)
    assert result.exit_code == 0, result.output
    assert result.output == "removed 1 candidates older than 10 days (kept 1); removed 1 objects\n"
    assert not registry.backend.has_blob(old.artifacts["onnx"].sha256)
    assert registry.backend.has_blob(sha)  # a registered version's object stays
    again = cli_noprefect("gc", "--json", cwd=repo.path)  # default: registry.candidates_max_age_days (30)
    assert again.exit_code == 0
    assert json.loads(again.output) == {"registry": ".mlops/registry", "older_than_days": 30.0, "candidates_removed": 0, "candidates_kept": 1, "objects_removed": 0}
    everything = cli_noprefect("gc", "--older-than", "0", cwd=repo.path)
    assert everything.output == "removed 1 candidates older than 0 days (kept 0); removed 1 objects\n"


@pytest.mark.parametrize("store", ["s3", "oci"])
def test_pull_and_serve_from_a_remote_registry(cli_noprefect, request: pytest.FixtureRequest, tmp_path: Path, onnx_models: list[bytes], store: str) -> None:
    """A version registered on a real server (moto S3, the CNCF distribution registry),
    pinned by its object URI: pulled, then served, both sha256-checked."""
    from tests.test_deploy import Server
    from mlgitops.deploy.serve import ModelHolder

    url = request.getfixturevalue("s3_registry_url" if store == "s3" else "oci_url")  # tests/fixtures_s3.py, fixtures_oci.py
    registry = Registry(open_backend(url, tmp_path))
    version = registry.register("churn", {"onnx": (onnx_models[1], "onnx")}, {"accuracy": 0.9}, {"model_key": "k1"}, None, list(ROW), "classification")
    sha = version.artifacts["onnx"].sha256
    uri = registry.object_uri(sha)
    assert uri.startswith(f"{store}://")
    (tmp_path / "production.yaml").write_text(pin_text(uri, sha, version.version))

    result = cli_noprefect("pull", "--manifest", "production.yaml", "--to", "out", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert result.output == f"pulled churn v1 (sha256 {sha[:12]}) to out/model.onnx\n"
    assert (tmp_path / "out" / "model.onnx").read_bytes() == onnx_models[1] == cache_path(sha).read_bytes()

    cache_path(sha).unlink()  # serve fetches from the server itself
    (tmp_path / "wrong.yaml").write_text(pin_text(uri, one_off(sha)))
    wrong = cli_noprefect("pull", "--manifest", "wrong.yaml", "--to", "wrong", cwd=tmp_path)
    assert wrong.exit_code == 2 and wrong.output.startswith(f"error: wrong.yaml: model.sha256: the artifact {uri} hashes to {sha[:12]}, not the pinned {one_off(sha)[:12]}; refusing to use it\n")
    assert not (tmp_path / "wrong").exists()

    manifest = tmp_path / "production.yaml"
    server = Server(ModelHolder("production", manifest.read_text, "production.yaml", tmp_path))
    try:
        status, answer = server.post("/predict", ROW)
        assert (status, answer["version"], answer["sha256"]) == (200, 1, sha)
        assert server.get("/healthz")[1]["uri"] == uri
    finally:
        server.stop()
