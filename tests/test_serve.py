"""`mlops serve`: a real uvicorn server on loopback, the manifest watched, bad pins refused."""

from __future__ import annotations

import hashlib
import urllib.request
from pathlib import Path

import pytest

from mlgitops.deploy import onnx as export
from mlgitops.errors import InputError
from mlgitops.deploy.serve import ModelHolder
from tests.helpers import mixed_frame
from tests.test_deploy import Server
from tests.test_export import fitted


def artifact(tmp_path: Path, name: str, C: float) -> tuple[str, str]:
    frame = mixed_frame(300)
    model, features = fitted("sklearn.linear_model.LogisticRegression", frame, "churn", f"{{C: {C}}}")
    data = export.to_onnx(model, frame, features, "classification").onnx
    path = tmp_path / "art" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return f"art/{name}", hashlib.sha256(data).hexdigest()


def pin(version: int, uri: str, sha: str) -> str:
    return f"# mine\nmodel:\n  name: churn\n  version: {version}\n  uri: {uri}\n  sha256: {sha}\n  format: onnx\n"


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    return tmp_path / "staging.yaml"


@pytest.fixture
def server(tmp_path: Path, manifest: Path):  # type: ignore[no-untyped-def]
    uri, sha = artifact(tmp_path, "one.onnx", 1.0)
    manifest.write_text(pin(1, uri, sha))
    s = Server(ModelHolder("staging", manifest.read_text, "deploy/staging.yaml", tmp_path))
    yield s
    s.stop()


def test_predict_answers_and_names_bad_requests(server: Server) -> None:
    status, body = server.post("/predict", {"age": 30, "income": 1000.0, "city": "nice", "plan": "pro"})
    assert status == 200 and body["version"] == 1 and body["predictions"] == [1]
    status, body = server.post("/predict", {"instances": [{"age": 30, "city": "nice", "plan": "pro"}]})
    assert (status, body["error"]) == (422, "instances[0] lacks column(s) 'income'")
    status, body = server.post("/predict", {"instances": []})
    assert status == 422 and body["error"].startswith('expected {"instances": [{"column": value, ...}, ...]}')
    req = urllib.request.Request(f"http://127.0.0.1:{server.port}/predict", data=b"{not json", headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    assert err.value.code == 400


def test_a_new_pin_is_swapped_in_and_a_broken_one_refused(tmp_path: Path, manifest: Path, server: Server) -> None:
    uri2, sha2 = artifact(tmp_path, "two.onnx", 0.001)
    manifest.write_text(pin(2, uri2, "f" * 64))  # a pin whose hash does not match the file
    health = server.wait(lambda h: h["status"] == "degraded")
    assert health["version"] == 1
    assert health["error"].startswith("deploy/staging.yaml: model.sha256: the artifact art/two.onnx hashes to ")
    assert server.post("/predict", {"age": 30, "income": 1000.0, "city": "nice", "plan": "pro"})[1]["version"] == 1
    manifest.write_text(pin(2, uri2, sha2))
    health = server.wait(lambda h: h["status"] == "ok" and h["version"] == 2)
    assert health["sha256"] == sha2 and "error" not in health


def test_nothing_pinned_refuses_to_start(tmp_path: Path, manifest: Path) -> None:
    manifest.write_text("# staging\nmodel:\n")
    holder = ModelHolder("staging", manifest.read_text, "deploy/staging.yaml", tmp_path)
    with pytest.raises(InputError, match="deploy/staging.yaml: pins no model"):
        holder.load(initial=True)


def test_a_model_without_column_transformer_is_served_from_json_rows(tmp_path: Path, manifest: Path) -> None:
    """preprocessing: none exports one float tensor of every feature: rows still work."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    frame = load_iris(as_frame=True).frame
    features = [c for c in frame.columns if c != "target"]
    model = LogisticRegression(max_iter=500).fit(frame[features], frame["target"])
    data = export.to_onnx(model, frame, features, "classification", {"features": features}).onnx
    (tmp_path / "art").mkdir()
    (tmp_path / "art" / "iris.onnx").write_bytes(data)
    manifest.write_text(pin(1, "art/iris.onnx", hashlib.sha256(data).hexdigest()))
    server = Server(ModelHolder("staging", manifest.read_text, "deploy/staging.yaml", tmp_path))
    try:
        row = frame[features].iloc[0].to_dict()
        status, body = server.post("/predict", {"instances": [row, {**row, "petal length (cm)": 5.5, "petal width (cm)": 2.2}]})
        assert status == 200 and body["predictions"] == [0, 2]
        status, body = server.post("/predict", {"instances": [{**row, "sepal width (cm)": "wide"}]})
        assert status == 422 and "column 'sepal width (cm)' is numeric, got 'wide'" in body["error"]
    finally:
        server.stop()


def test_an_unreadable_manifest_degrades_and_recovers(manifest: Path, server: Server) -> None:
    good = manifest.read_bytes()
    manifest.write_bytes(b"model:\n  uri: \xff\xfe\n")  # not UTF-8
    health = server.wait(lambda h: h["status"] == "degraded")
    assert health["version"] == 1 and "cannot read the manifest: UnicodeDecodeError" in health["error"]
    manifest.write_bytes(good)
    assert "error" not in server.wait(lambda h: h["status"] == "ok")


def test_a_port_in_use_is_input_not_a_crash(cli_noprefect, tmp_path: Path) -> None:
    import socket

    from mlgitops.deploy.serve import make_server

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        holder = ModelHolder("staging", lambda: None, "deploy/staging.yaml", tmp_path)
        with pytest.raises(InputError, match=r"cannot listen on 127.0.0.1:\d+: "):
            make_server(holder, "127.0.0.1", taken.getsockname()[1], 1.0)
    finally:
        taken.close()


# -- pins on remote registries (issue 12): fetched through the verified cache ------------

from tests.test_pull import onnx_models, one_off, remote  # noqa: E402,F401 - fixtures

ROW = {"age": 30, "income": 1000.0, "city": "nice", "plan": "pro"}


def test_a_remote_pin_is_cached_and_one_that_fails_keeps_the_old_model(tmp_path: Path, manifest: Path, server: Server, remote, onnx_models: list[bytes], monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import socket

    from mlgitops.deploy.fetch import cache_path
    from tests.fixtures_s3 import s3_vars

    sha2 = remote.put_object(onnx_models[1])
    uri2 = remote.object_uri(sha2)
    manifest.write_text(pin(2, uri2, one_off(sha2)))  # one hex digit off
    health = server.wait(lambda h: h["status"] == "degraded")
    assert health["version"] == 1
    assert health["error"] == f"deploy/staging.yaml: model.sha256: the artifact {uri2} hashes to {sha2[:12]}, not the pinned {one_off(sha2)[:12]}; refusing to use it"
    assert server.post("/predict", ROW)[1]["version"] == 1

    missing = hashlib.sha256(b"never registered").hexdigest()
    manifest.write_text(pin(2, remote.object_uri(missing), missing))
    health = server.wait(lambda h: h["status"] == "degraded" and "does not exist" in h["error"])
    assert health["version"] == 1
    assert health["error"] == f"deploy/staging.yaml: model.uri: the pinned artifact {remote.object_uri(missing)} does not exist in the registry {remote.url}"

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there: connections are refused
    for name, value in s3_vars(f"http://127.0.0.1:{port}").items():
        monkeypatch.setenv(name, value)
    s3_uri = f"s3://mlops-nowhere/models/objects/{sha2[:2]}/{sha2}"
    manifest.write_text(pin(2, s3_uri, sha2))
    health = server.wait(lambda h: h["status"] == "degraded" and "cannot fetch" in h["error"])
    assert health["version"] == 1
    assert health["error"].startswith(f"deploy/staging.yaml: model.uri: cannot fetch {s3_uri}: registry s3://mlops-nowhere/models: cannot reach http://127.0.0.1:{port} while reading ")
    assert server.post("/predict", ROW)[1]["version"] == 1

    manifest.write_text(pin(2, uri2, sha2))
    health = server.wait(lambda h: h["status"] == "ok" and h["version"] == 2)
    assert (health["sha256"], health["uri"]) == (sha2, uri2) and "error" not in health
    assert cache_path(sha2).read_bytes() == onnx_models[1]
    assert server.post("/predict", ROW)[1]["version"] == 2


def test_a_slow_registry_blocks_neither_requests_nor_a_stop(manifest: Path, server: Server, remote, onnx_models: list[bytes], monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import threading

    from fsspec.implementations.memory import MemoryFileSystem

    shas = [remote.put_object(data) for data in onnx_models]
    gates = {sha: threading.Event() for sha in shas}
    cat_file = MemoryFileSystem.cat_file

    def slow(self, path, *args, **kwargs):  # type: ignore[no-untyped-def]
        for sha, gate in gates.items():
            if sha in path:
                gate.wait(30)  # bounded: the test opens it
        return cat_file(self, path, *args, **kwargs)

    monkeypatch.setattr(MemoryFileSystem, "cat_file", slow)
    try:
        manifest.write_text(pin(2, remote.object_uri(shas[1]), shas[1]))
        health = server.wait(lambda h: "loading" in h)
        assert (health["status"], health["version"]) == ("ok", 1)
        assert health["loading"].startswith(f"v2 ({shas[1][:12]}) from {remote.object_uri(shas[1])} (since ")
        status, answer = server.post("/predict", ROW)  # answered while the fetch hangs
        assert (status, answer["version"]) == (200, 1)
        gates[shas[1]].set()
        assert "loading" not in server.wait(lambda h: h["version"] == 2)

        manifest.write_text(pin(3, remote.object_uri(shas[0]), shas[0]))
        server.wait(lambda h: "loading" in h and h["loading"].startswith("v3 "))
        server.stop()  # while the fetch hangs
        assert not server.thread.is_alive()
    finally:
        for gate in gates.values():
            gate.set()
