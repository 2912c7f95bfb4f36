"""The registry on object storage (fsspec): S3 against moto's server on 127.0.0.1,
``memory://`` through the same code, and clear errors for what cannot work."""

from __future__ import annotations

import hashlib
import importlib.util
import socket
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from mlgitops.deploy.registry import Registry, RegistryError
from mlgitops.deploy.registry.backends import BackendError
from mlgitops.deploy.registry.urls import backend_for_blob_uri, open_backend
from mlgitops.deploy.registry.fsspec_backend import FsspecBackend
from tests.fixtures_s3 import s3_env


def register(reg: Registry, data: bytes, key: str = "a1") -> object:
    return reg.register("churn", {"onnx": (data, "onnx")}, {"accuracy": 0.9}, {"model_key": key, "git_sha": "abc"}, None, ["f"], "classification")


def s3_client(endpoint: str) -> object:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")


def bucket_keys(endpoint: str, bucket: str) -> list[str]:
    listed = s3_client(endpoint).list_objects_v2(Bucket=bucket)  # type: ignore[attr-defined]
    return sorted(o["Key"] for o in listed.get("Contents", []))


def test_versions_and_candidates_round_trip_through_s3(s3_server: str, s3_registry_url: str) -> None:
    bucket = s3_registry_url.removeprefix("s3://").split("/")[0]
    reg = Registry(open_backend(s3_registry_url, Path("/nonexistent")))
    assert isinstance(reg.backend, FsspecBackend) and reg.url == s3_registry_url
    assert reg.versions("churn") == []
    v1 = register(reg, b"first model")
    v2 = register(reg, b"second model", "b2")
    sha1, sha2 = v1.artifacts["onnx"].sha256, v2.artifacts["onnx"].sha256
    assert sha1 == hashlib.sha256(b"first model").hexdigest()
    assert (v1.version, v2.version) == (1, 2)
    # the layout a user sees in the bucket
    assert bucket_keys(s3_server, bucket) == sorted([f"models/objects/{sha1[:2]}/{sha1}", f"models/objects/{sha2[:2]}/{sha2}", "models/models/churn/1.json", "models/models/churn/2.json"])
    # a fresh process's view: a new backend on the same URL
    again = Registry(FsspecBackend(s3_registry_url + "/"))
    assert [v.version for v in again.versions("churn")] == [1, 2]
    assert again.get("churn", 2).lineage == {"model_key": "b2", "git_sha": "abc"}
    assert again.find("churn", "b2", sha2).version == 2
    assert again.find("churn", "b2", sha1) is None
    assert again.load(again.get("churn", 1)) == b"first model"
    with pytest.raises(RegistryError, match=r"^model 'churn' has no version 7 in the registry s3://reg-[0-9a-f]+/models \(versions: 1, 2\)$"):
        again.get("churn", 7)
    # pins carry the blob URI; pull/serve open the registry back from it alone
    uri = again.object_uri(sha1)
    assert uri == f"{s3_registry_url}/objects/{sha1[:2]}/{sha1}"
    backend, sha = backend_for_blob_uri(uri)
    assert (backend.url, sha) == (s3_registry_url, sha1)
    assert Registry(backend).read_object(sha) == b"first model"

    # candidates: published, read back, listed; gc drops the stale one and only its own object
    shared = b"second model"  # also v2's artifact: must survive gc
    cand = reg.publish_candidate("churn", "c0ffee", {"onnx": (b"candidate model", "onnx"), "sklearn": (shared, "joblib")}, {"pr": 7})
    assert again.candidate("churn", "c0ffee").info == {"pr": 7}
    assert [c.model_key for c in again.candidates("churn")] == ["c0ffee"]
    assert again.names() == ["churn"]
    later = datetime.now(timezone.utc) + timedelta(days=10)
    assert again.gc(older_than_days=3, now=later) == {"candidates_removed": 1, "candidates_kept": 0, "objects_removed": 1}
    assert again.candidates("churn") == []
    assert not reg.backend.has_blob(cand.artifacts["onnx"].sha256)
    assert reg.load(reg.get("churn", 2)) == b"second model"


def test_a_tampered_or_missing_object_is_refused(s3_server: str, s3_registry_url: str) -> None:
    bucket = s3_registry_url.removeprefix("s3://").split("/")[0]
    reg = Registry(FsspecBackend(s3_registry_url))
    v1 = register(reg, b"model bytes")
    sha = v1.artifacts["onnx"].sha256
    key = f"models/objects/{sha[:2]}/{sha}"  # in the bucket; the URL already ends in /models
    uri = f"s3://{bucket}/{key}"
    s3_client(s3_server).put_object(Bucket=bucket, Key=key, Body=b"model bytez")  # type: ignore[attr-defined]  # one byte off
    actual = hashlib.sha256(b"model bytez").hexdigest()
    with pytest.raises(RegistryError, match=rf"^registry {s3_registry_url}: churn v1 onnx {sha[:12]} is corrupted: its content hashes to {actual[:12]}$") as err:
        reg.load(reg.get("churn", 1))
    assert err.value.hint == f"delete {uri} and rerun the deploy to register the model again"
    s3_client(s3_server).delete_object(Bucket=bucket, Key=key)  # type: ignore[attr-defined]
    with pytest.raises(RegistryError, match=rf"^registry {s3_registry_url}: churn v1 onnx {sha[:12]} is missing \({uri}\)$"):
        reg.load(reg.get("churn", 1))


def test_create_claims_a_key_once_and_other_writers_are_seen(s3_server: str, s3_registry_url: str) -> None:
    bucket = s3_registry_url.removeprefix("s3://").split("/")[0]
    first, second = FsspecBackend(s3_registry_url), FsspecBackend(s3_registry_url)
    assert first.list("models/churn/") == [] and first.read("models/churn/1.json") is None  # before the others write
    assert second.create("models/churn/1.json", b'{"who": "second"}') is True
    assert first.create("models/churn/1.json", b'{"who": "first"}') is False
    assert first.read("models/churn/1.json") == b'{"who": "second"}'
    # another runner (a plain S3 client here) writes version 2: no cached listing hides it
    s3_client(s3_server).put_object(Bucket=bucket, Key="models/models/churn/2.json", Body=b"{}")  # type: ignore[attr-defined]
    assert first.list("models/churn/") == ["models/churn/1.json", "models/churn/2.json"]
    assert first.create("models/churn/2.json", b"{}") is False
    assert first.list("models/chur/") == [] and first.read("models/churn/3.json") is None
    # a blob another runner's gc removed is missing here too (not remembered from a listing)
    sha = hashlib.sha256(b"blob").hexdigest()
    first.put_blob(sha, b"blob")
    assert first.list("objects/") == [f"objects/{sha[:2]}/{sha}"] and first.has_blob(sha)
    s3_client(s3_server).delete_object(Bucket=bucket, Key=f"models/objects/{sha[:2]}/{sha}")  # type: ignore[attr-defined]
    assert not first.has_blob(sha) and first.get_blob(sha) is None
    first.write("candidates/churn/ab.json", b"1")
    first.delete("candidates/churn/ab.json")
    first.delete("candidates/churn/ab.json")  # deleting what is gone is fine
    assert second.list("candidates/") == []


RACER = """
import sys, time
from pathlib import Path
from mlgitops.deploy.registry import Registry
from mlgitops.deploy.registry.fsspec_backend import FsspecBackend

url, who, go = sys.argv[1], sys.argv[2], Path(sys.argv[3])
reg = Registry(FsspecBackend(url))
print("ready", flush=True)
for _ in range(600):  # bounded: the parent creates the go file once all are ready
    if go.exists():
        break
    time.sleep(0.05)
for i in range(5):
    v = reg.register("m", {"onnx": (f"{who}-{i}".encode(), "onnx")}, {}, {"model_key": f"{who}{i}"}, None, [], "classification")
    print(v.version, flush=True)
"""


def test_racing_runners_get_distinct_versions(s3_server: str, s3_registry_url: str, tmp_path: Path) -> None:
    go = tmp_path / "go"
    env = s3_env(s3_server)
    procs = [subprocess.Popen([sys.executable, "-c", RACER, s3_registry_url, who, str(go)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for who in ("a", "b", "c")]
    try:
        assert [p.stdout.readline().strip() for p in procs] == ["ready"] * 3  # type: ignore[union-attr]
        go.touch()
        outs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-2000:] for _, err in outs]
    claimed = sorted(int(n) for out, _ in outs for n in out.split())
    assert claimed == list(range(1, 16))  # each number handed out once, none lost
    versions = Registry(FsspecBackend(s3_registry_url)).versions("m")
    assert [v.version for v in versions] == list(range(1, 16))
    assert sorted(v.lineage["model_key"] for v in versions) == sorted(f"{w}{i}" for w in "abc" for i in range(5))


def test_a_missing_bucket_is_named(s3_server: str, s3_registry_url: str) -> None:
    url = "s3://no-such-bucket-here/models"
    reg = Registry(FsspecBackend(url))
    expected = f"registry {url}: the bucket 'no-such-bucket-here' does not exist at {s3_server}"
    with pytest.raises(BackendError) as listing:
        reg.versions("churn")
    with pytest.raises(BackendError) as registering:
        register(reg, b"x")
    with pytest.raises(BackendError) as reading:
        reg.backend.read("models/churn/1.json")
    for err in (listing, registering, reading):
        assert err.value.message == expected
        assert err.value.hint.startswith("create it, or fix registry.url in mlops.yaml")
        assert "testing" not in err.value.render()  # the (dummy) credentials never show


def test_a_dead_endpoint_is_a_clear_error(s3_registry_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    reg = Registry(FsspecBackend(s3_registry_url))
    with pytest.raises(BackendError, match=rf"^registry {s3_registry_url}: cannot reach http://127.0.0.1:{port} while listing {s3_registry_url}/models/churn/: ") as err:
        reg.versions("churn")
    assert "AWS_ENDPOINT_URL" in err.value.hint


def test_no_credentials_is_a_clear_error(s3_registry_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    reg = Registry(FsspecBackend(s3_registry_url))
    with pytest.raises(BackendError, match=rf"^registry {s3_registry_url}: no usable credentials for http://127.0.0.1:\d+ while listing ") as err:
        reg.versions("churn")
    assert "AWS_ACCESS_KEY_ID" in err.value.hint and "never go in mlops.yaml" in err.value.hint


def test_memory_urls_use_the_same_code() -> None:
    url = "memory://registry-test-" + hashlib.sha256(str(id(object())).encode()).hexdigest()[:8]
    reg = Registry(FsspecBackend(url))
    v1 = register(reg, b"one")
    v2 = register(reg, b"two", "b2")
    assert [v.version for v in Registry(FsspecBackend(url)).versions("churn")] == [v1.version, v2.version] == [1, 2]
    assert reg.backend.create("models/churn/2.json", b"{}") is False
    assert reg.load(reg.get("churn", 2)) == b"two"
    backend, sha = FsspecBackend.for_blob_uri(reg.object_uri(v1.artifacts["onnx"].sha256))
    assert backend.url == url and Registry(backend).read_object(sha) == b"one"


def test_a_filesystem_without_conditional_create_is_refused(tmp_path: Path) -> None:
    import fsspec

    backend = FsspecBackend("memory://refused")
    backend.fs = fsspec.filesystem("file")  # its pipe_file(mode="create") is exists-then-write
    with pytest.raises(BackendError, match=r"^registry memory://refused: fsspec\.implementations\.local\.LocalFileSystem \(fsspec [^)]+\) cannot create a record only if it is absent, so version numbers could not be claimed safely$"):
        backend.create("models/churn/1.json", b"{}")
    assert not Path("/refused").exists()


@pytest.mark.parametrize(("url", "package", "extra"), [("gs://bucket/models", "gcsfs", "gcs"), ("az://container/models", "adlfs", "azure"), ("abfs://container/models", "adlfs", "azure")])
def test_a_missing_optional_package_names_the_extra(url: str, package: str, extra: str) -> None:
    if importlib.util.find_spec(package) is not None:
        pytest.skip(f"{package} is installed here")
    with pytest.raises(BackendError, match=rf"^registry {url}: the \w+:// backend needs the {package} package, which is not installed$") as err:
        open_backend(url, Path("/nonexistent"))
    assert err.value.hint == f"pip install 'mlgitops[{extra}]'"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3://", r"registry URL 's3://' names no bucket"),
        ("s3://key:secret@bucket/models", r"registry URL s3://bucket/models: credentials do not belong in the URL"),
        ("s3://bucket/models?versionId=3", r"registry URL 's3://bucket/models\?versionId=3': a query or fragment is not supported"),
    ],
)
def test_bad_registry_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(BackendError, match=rf"^{message}$") as err:
        FsspecBackend(url)
    assert "secret" not in err.value.render()


SHA = hashlib.sha256(b"x").hexdigest()


@pytest.mark.parametrize(
    "uri",
    [
        f"s3://bucket/models/objects/{SHA[:2]}/{SHA[:-1]}",  # one digit short
        f"s3://bucket/models/objects/{SHA[1:3]}/{SHA}",  # wrong fan-out folder
        f"s3://bucket/models/blobs/{SHA[:2]}/{SHA}",
        f"s3://bucket/models/objects/{SHA[:2]}/{SHA.upper()}",
    ],
)
def test_blob_uris_are_parsed_strictly(uri: str) -> None:
    with pytest.raises(BackendError, match=r"is not a registry object URI$"):
        FsspecBackend.for_blob_uri(uri)


def test_blob_uris_round_trip_without_a_prefix() -> None:
    backend, sha = FsspecBackend.for_blob_uri(f"s3://bucket/objects/{SHA[:2]}/{SHA}")
    assert (backend.url, sha, backend.blob_uri(sha)) == ("s3://bucket", SHA, f"s3://bucket/objects/{SHA[:2]}/{SHA}")
