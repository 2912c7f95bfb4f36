"""The OCI registry backend against a real CNCF distribution registry on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from mlgitops.deploy.registry import Registry, RegistryError
from mlgitops.deploy.registry.backends import BackendError
from mlgitops.deploy.registry.urls import backend_for_blob_uri, open_backend
from mlgitops.deploy.registry.oci import OciBackend, decode_tag, encode_key
from tests.fixtures_oci import AUTH_PASSWORD, AUTH_USER, OciServer, clear_oci_env


def register(reg: Registry, data: bytes, key: str = "k1", name: str = "churn") -> object:
    return reg.register(name, {"onnx": (data, "onnx"), "sklearn": (data + b"-pickle", "joblib")}, {"accuracy": 0.9}, {"model_key": key, "git_sha": "abc"}, None, ["a"], "classification")


def test_versions_candidates_and_gc_round_trip(oci_url: str, tmp_path: Path) -> None:
    backend = open_backend(oci_url, tmp_path)  # the scheme maps to OciBackend
    assert isinstance(backend, OciBackend) and backend.url == oci_url
    reg = Registry(backend)
    assert reg.versions("churn") == [] and reg.names() == []  # a repository nothing was pushed to
    v1 = register(reg, b"first model")
    v2 = register(reg, b"second model", "k2")
    assert (v1.version, v2.version) == (1, 2)
    assert [v.version for v in reg.versions("churn")] == [1, 2]
    assert reg.get("churn", 2).to_dict() == v2.to_dict()
    assert reg.find("churn", "k2", v2.artifacts["onnx"].sha256).version == 2
    assert reg.find("churn", "k2", v1.artifacts["onnx"].sha256) is None
    assert reg.load(reg.get("churn", 1)) == b"first model"
    assert reg.load(reg.get("churn", 1), "sklearn") == b"first model-pickle"
    with pytest.raises(RegistryError, match=r"model 'churn' has no version 7 in the registry oci://127\.0\.0\.1:\d+/test/\w+ \(versions: 1, 2\)"):
        reg.get("churn", 7)

    old = reg.publish_candidate("churn", "ab" * 32, {"onnx": (b"old candidate", "onnx")}, {"pr": 3})
    new = reg.publish_candidate("churn", "cd" * 32, {"onnx": (b"first model", "onnx")}, {"pr": 4})
    assert reg.candidate("churn", "ab" * 32).info == {"pr": 3}
    assert sorted(c.model_key for c in reg.candidates("churn")) == ["ab" * 32, "cd" * 32]
    again = reg.publish_candidate("churn", "ab" * 32, {"onnx": (b"old candidate", "onnx")}, {"pr": 5})  # the latest run wins
    assert reg.candidate("churn", "ab" * 32).info == {"pr": 5} == again.info
    assert reg.names() == ["churn"]

    later = datetime.fromisoformat(old.created_at) + timedelta(days=30)
    assert reg.gc(7, now=later) == {"candidates_removed": 2, "candidates_kept": 0, "objects_removed": 1}
    assert reg.candidates("churn") == [] and reg.candidate("churn", "ab" * 32) is None
    gone = old.artifacts["onnx"].sha256
    with pytest.raises(RegistryError, match=rf"churn candidate {gone[:12]} is missing \(oci://127\.0\.0\.1:\d+/test/\w+:sha256-{gone}\)"):
        reg.read_object(gone, "churn candidate")
    assert reg.read_object(new.artifacts["onnx"].sha256) == b"first model"  # still version 1's
    assert [v.version for v in reg.versions("churn")] == [1, 2]


def test_a_blob_is_an_oci_artifact_oras_can_pull(oci_url: str, tmp_path: Path) -> None:
    import oras.provider

    backend = OciBackend(oci_url)
    sha = Registry(backend).put_object(b"model bytes")
    uri = backend.blob_uri(sha)
    assert uri == f"{oci_url}:sha256-{sha}"
    again, digest = OciBackend.for_blob_uri(uri)
    assert (again.url, digest) == (oci_url, sha)
    found = backend_for_blob_uri(uri)
    assert found is not None and found[1] == sha and found[0].get_blob(sha) == b"model bytes"
    pulled = oras.provider.Registry(insecure=True).pull(target=uri.removeprefix("oci://"), outdir=str(tmp_path / "out"))
    assert [Path(p).read_bytes() for p in pulled] == [b"model bytes"]
    # records too: `oras pull HOST/REPO:models__churn__1.json`
    register(Registry(backend), b"m")
    pulled = oras.provider.Registry(insecure=True).pull(target=f"{oci_url.removeprefix('oci://')}:models__churn__1.json", outdir=str(tmp_path / "rec"))
    assert [Path(p).name for p in pulled] == ["1.json"] and json.loads(Path(pulled[0]).read_text())["version"] == 1


def test_tampered_or_wrong_blobs_are_refused(oci_url: str, oci_registry: OciServer) -> None:
    reg = Registry(OciBackend(oci_url))
    version = register(reg, b"the real model")
    sha = version.artifacts["onnx"].sha256
    # one byte flipped in the registry's own storage: it serves it, we refuse it
    (data_file,) = oci_registry.storage.glob(f"docker/registry/v2/blobs/sha256/{sha[:2]}/{sha}/data")
    data_file.write_bytes(b"the real modeL")
    with pytest.raises(RegistryError, match=rf"churn v1 onnx {sha[:12]} is corrupted: its content hashes to [0-9a-f]{{12}}"):
        reg.load(reg.get("churn", 1))
    # one digit off: not ours, so missing (never someone else's bytes)
    near = sha[:-1] + ("0" if sha[-1] != "0" else "1")
    with pytest.raises(RegistryError, match=rf"artifact {near[:12]} is missing \(oci://.*:sha256-{near}\)"):
        reg.read_object(near)


def test_create_is_create_if_absent_and_claims_stay_hidden(oci_url: str) -> None:
    backend = OciBackend(oci_url)
    assert backend.create("models/m/1.json", b'{"a": 1}') is True
    assert backend.create("models/m/1.json", b'{"a": 2}') is False
    assert backend.read("models/m/1.json") == b'{"a": 1}'
    tags = backend._tags("test")
    assert "models__m__1.json" in tags and [t for t in tags if t.startswith("models__m__1.json_c")]
    assert backend.list("models/m") == ["models/m/1.json"]  # the claim is not a key
    backend.write("models/m/1.json", b'{"a": 3}')  # write overwrites
    assert backend.read("models/m/1.json") == b'{"a": 3}'
    # a writer that lost (or died) before sealing burns the key: nobody can win it later
    backend.write("models/m/2.json", b"{}")
    backend.delete("models/m/2.json")
    backend._put_manifest("models__m__2.json_c0123456789abcdef", backend._record_manifest("models/m/2.json", b'{"lost": 1}'), "test")
    assert backend.read("models/m/2.json") is None and backend.list("models/") == ["models/m/1.json"]
    assert backend.create("models/m/2.json", b'{"late": 1}') is False
    assert backend.read("models/m/2.json") is None
    # delete removes the seal and the claims: the key is free again (as in a folder)
    backend.delete("models/m/2.json")
    backend.delete("models/m/1.json")
    assert backend.read("models/m/1.json") is None and backend.list("models/") == []
    assert backend.create("models/m/1.json", b'{"a": 4}') is True and backend.read("models/m/1.json") == b'{"a": 4}'


def test_racing_processes_get_distinct_versions(oci_url: str, tmp_path: Path) -> None:
    go = tmp_path / "go"
    code = (
        "import sys, time; from pathlib import Path\n"
        "from mlgitops.deploy.registry import Registry; from mlgitops.deploy.registry.oci import OciBackend\n"
        "r = Registry(OciBackend(sys.argv[1]))\n"
        "r.versions('m')  # connected before the start line\n"
        "for _ in range(400):\n"
        "    if Path(sys.argv[3]).exists(): break\n"
        "    time.sleep(0.01)\n"
        "for i in range(5): r.register('m', {'onnx': (f'{sys.argv[2]}-{i}'.encode(), 'onnx')}, {}, {'model_key': sys.argv[2]}, None, [], 'classification')\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, oci_url, f"p{n}", str(go)]) for n in range(3)]
    go.touch()
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    reg = Registry(OciBackend(oci_url))
    versions = reg.versions("m")
    numbers = [v.version for v in versions]
    assert len(numbers) == 15 == len(set(numbers)) and numbers == sorted(numbers) and numbers[0] >= 1
    # nothing lost: every process's 5 artifacts are some version's
    import hashlib

    shas = {v.artifacts["onnx"].sha256 for v in versions}
    assert shas == {hashlib.sha256(f"p{n}-{i}".encode()).hexdigest() for n in range(3) for i in range(5)}
    assert {v.lineage["model_key"] for v in versions} == {"p0", "p1", "p2"}


def test_interleaved_creates_never_both_win(oci_url: str) -> None:
    """The two orders the docstring's argument covers, forced step by step."""
    a, b = OciBackend(oci_url), OciBackend(oci_url)
    push_a, push_b, tags_b = a._put_manifest, b._put_manifest, b._tags
    results: list[bool] = []

    # A tie: both pass the first look, B claims, then A claims, then each lists
    def a_claims(tag: str, body: bytes, doing: str) -> None:
        if "_c" not in tag or results:
            return push_a(tag, body, doing)

        def b_claims(tag_b: str, body_b: bytes, doing_b: str) -> None:
            push_b(tag_b, body_b, doing_b)
            if "_c" in tag_b:
                push_a(tag, body, doing)  # A's claim lands before B lists

        b._put_manifest = b_claims  # type: ignore[method-assign]
        results.append(b.create("models/m/1.json", b'{"by": "b"}'))

    a._put_manifest = a_claims  # type: ignore[method-assign]
    results.insert(0, a.create("models/m/1.json", b'{"by": "a"}'))
    assert results == [False, False]  # nobody wins: the key is burnt
    assert a.read("models/m/1.json") is None and a.list("models/") == []
    b._put_manifest = push_b  # type: ignore[method-assign]
    assert b.create("models/m/1.json", b"{}") is False  # for good

    # B looks first (nothing there), A then creates entirely, B claims on a stale look
    a._put_manifest = push_a  # type: ignore[method-assign]

    def stale_look(doing: str) -> list[str]:
        seen = tags_b(doing)
        if not results[2:]:
            results.append(a.create("models/m/2.json", b'{"by": "a"}'))
        return seen

    b._tags = stale_look  # type: ignore[method-assign]
    assert b.create("models/m/2.json", b'{"by": "b"}') is False and results[2:] == [True]
    assert b.read("models/m/2.json") == b'{"by": "a"}'
    # A's claim is there when B arrives between A's listing and A's seal: B backs off
    b._tags = tags_b  # type: ignore[method-assign]

    def b_before_the_seal(tag: str, body: bytes, doing: str) -> None:
        if "_c" not in tag:
            results.append(b.create("models/m/3.json", b'{"by": "b"}'))
        push_a(tag, body, doing)

    a._put_manifest = b_before_the_seal  # type: ignore[method-assign]
    assert a.create("models/m/3.json", b'{"by": "a"}') is True and results[3:] == [False]
    assert b.read("models/m/3.json") == b'{"by": "a"}'


@pytest.mark.parametrize(
    "key",
    ["models/churn/3.json", "a_/b", "a/_b", "a__b/c", "a/u/b", "x_u/y", "candidates/m/" + "ab" * 32 + ".json", "M.x-Y/Z_", ".hidden/x", "holds/" + "n" * 200 + "/prod.json"],
)
def test_keys_map_to_tags_one_to_one(key: str) -> None:
    tag = encode_key(key)
    assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,109}", tag)  # OCI's tag grammar, room for a claim
    decoded = decode_tag(tag)
    assert decoded is not None and decoded[1] is None
    hashed = key.startswith(".") or len(key) > 100  # not a valid tag (a leading dot) or too long: a hashed seal, the key named in its manifest
    assert decoded[0] == (None if hashed else key)
    claim = decode_tag(tag + "_c0123456789abcdef")
    assert claim is not None and claim[0] == decoded[0] and claim[1] == "0123456789abcdef"


def test_tags_are_injective_and_foreign_tags_are_ignored() -> None:
    keys = ["a_/b", "a/_b", "a__b/c", "a/u/b", "a_u/b", "a/b_c0123456789abcdef", "a/b"]
    assert len({encode_key(k) for k in keys}) == len(keys)
    assert decode_tag(encode_key("a/b_c0123456789abcdef")) == ("a/b_c0123456789abcdef", None)  # a key, not a claim
    for foreign in ["latest", "sha256-" + "a" * 64, "v1.0", "a_xb", "models__m__1.json_cnothex"]:
        assert decode_tag(foreign) is None
    with pytest.raises(BackendError, match=r"registry key 'a/../b' is not a relative path"):
        encode_key("a/../b")


def test_an_unreachable_registry_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import socket

    clear_oci_env(monkeypatch, tmp_path)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    reg = Registry(OciBackend(f"oci://127.0.0.1:{port}/acme/models"))
    with pytest.raises(BackendError) as err:
        reg.versions("churn")
    assert err.value.message == f"cannot reach the OCI registry 127.0.0.1:{port} while listing models/churn/: connection refused"
    assert "check registry.url (oci://127.0.0.1:" in err.value.hint and err.value.exit_code == 2


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("oci://127.0.0.1:5000/Acme/Models", r"'Acme/Models' is not an OCI repository name \(lowercase"),
        ("oci://127.0.0.1:5000", r"names no repository"),
        ("oci://127.0.0.1:5000/acme/models:latest", r"give the repository only, no :tag"),
        ("oci://127.0.0.1:port/acme", r"the port is not a number"),
        ("oci://bob:hunter2@ghcr.io/acme/models", r"registry URL oci://\.\.\.@ghcr\.io/acme/models: credentials do not belong in mlops\.yaml"),
    ],
)
def test_bad_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(BackendError, match=message) as err:
        OciBackend(url)
    assert "hunter2" not in err.value.render()


def test_a_bad_blob_uri_is_refused() -> None:
    with pytest.raises(BackendError, match=r"artifact URI 'oci://ghcr.io/acme/m:sha256-abc' is not oci://HOST/REPOSITORY:sha256-<64 lowercase hex>"):
        OciBackend.for_blob_uri("oci://ghcr.io/acme/m:sha256-abc")


def test_plain_http_only_for_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLOPS_OCI_INSECURE", raising=False)
    assert OciBackend("oci://ghcr.io/acme/m").base == "https://ghcr.io"
    assert OciBackend("oci://localhost:5000/acme/m").base == "http://localhost:5000"
    assert OciBackend("oci://[::1]:5000/acme/m").base == "http://[::1]:5000"
    assert OciBackend("oci://registry.lan:5000/acme/m").base == "https://registry.lan:5000"
    monkeypatch.setenv("MLOPS_OCI_INSECURE", "1")
    assert OciBackend("oci://registry.lan:5000/acme/m").base == "http://registry.lan:5000"


# -- credentials (an htpasswd registry) ----------------------------------------------------
@pytest.fixture
def auth_url(oci_registry_auth: OciServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    clear_oci_env(monkeypatch, tmp_path / "home")
    return oci_registry_auth.url(f"acme/m{uuid.uuid4().hex[:12]}")


def test_anonymous_push_to_an_auth_registry_says_what_to_do(auth_url: str) -> None:
    with pytest.raises(BackendError) as err:
        Registry(OciBackend(auth_url)).put_object(b"x")
    assert err.value.message.startswith(f"OCI registry {auth_url.split('/')[2]} refused us anonymously while checking blob")
    assert "(401 unauthorized)" in err.value.message
    assert err.value.hint.startswith("no credentials found: set GITHUB_TOKEN (ghcr.io), MLOPS_OCI_USERNAME/MLOPS_OCI_PASSWORD")
    assert "give the job `packages: write`" in err.value.hint


def test_credentials_from_the_environment(auth_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_OCI_USERNAME", AUTH_USER)
    monkeypatch.setenv("MLOPS_OCI_PASSWORD", AUTH_PASSWORD)
    reg = Registry(OciBackend(auth_url))
    assert reg.read_object(reg.put_object(b"authorised")) == b"authorised"
    monkeypatch.setenv("MLOPS_OCI_PASSWORD", "wrong-" + AUTH_PASSWORD)
    with pytest.raises(BackendError) as err:
        Registry(OciBackend(auth_url)).put_object(b"y")
    assert "refused us as MLOPS_OCI_USERNAME/MLOPS_OCI_PASSWORD while checking blob" in err.value.message
    assert AUTH_PASSWORD not in err.value.render()


def test_credentials_go_only_to_their_host(auth_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # GITHUB_TOKEN is for ghcr.io only; MLOPS_OCI_* only for MLOPS_OCI_HOST when set
    monkeypatch.setenv("GITHUB_TOKEN", AUTH_PASSWORD)
    monkeypatch.setenv("GITHUB_ACTOR", AUTH_USER)
    with pytest.raises(BackendError, match="refused us anonymously"):
        Registry(OciBackend(auth_url)).put_object(b"z")
    monkeypatch.setenv("MLOPS_OCI_USERNAME", AUTH_USER)
    monkeypatch.setenv("MLOPS_OCI_PASSWORD", AUTH_PASSWORD)
    monkeypatch.setenv("MLOPS_OCI_HOST", "registry.example.com")
    with pytest.raises(BackendError, match="refused us anonymously"):
        Registry(OciBackend(auth_url)).put_object(b"z")
    monkeypatch.setenv("MLOPS_OCI_HOST", auth_url.split("/")[2])
    assert Registry(OciBackend(auth_url)).put_object(b"z")


def test_credentials_never_go_to_another_host(auth_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Location or Link naming another host (here: the same server as "localhost")
    gets the request without our credentials."""
    monkeypatch.setenv("MLOPS_OCI_USERNAME", AUTH_USER)
    monkeypatch.setenv("MLOPS_OCI_PASSWORD", AUTH_PASSWORD)
    backend = OciBackend(auth_url)
    backend.write("models/m/1.json", b"{}")
    assert backend._request("GET", backend._url("tags/list"), "test").json()["tags"] == ["models__m__1.json"]
    port = auth_url.split("/")[2].split(":")[1]
    with pytest.raises(BackendError, match=r"refused us as MLOPS_OCI_USERNAME/MLOPS_OCI_PASSWORD while test \(401"):
        backend._request("GET", f"http://localhost:{port}/v2/{backend.repo}/tags/list", "test")


def test_credentials_from_the_docker_config(auth_url: str, tmp_path: Path) -> None:
    host = auth_url.split("/")[2]
    config = tmp_path / "home" / ".docker" / "config.json"
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps({"auths": {host: {"auth": base64.b64encode(f"{AUTH_USER}:{AUTH_PASSWORD}".encode()).decode()}}}))
    backend = OciBackend(auth_url)
    assert backend.create("models/m/1.json", b"{}") is True and backend.list("models/") == ["models/m/1.json"]


def test_records_written_elsewhere_are_not_trusted(oci_url: str) -> None:
    backend = OciBackend(oci_url)
    backend.write("models/m/1.json", b"{}")
    body = backend._record_manifest("models/m/9.json", b'{"forged": 1}')
    backend._put_manifest(encode_key("models/m/1.json"), body, "test")  # another key's record under this tag
    with pytest.raises(BackendError, match=r"registry record models/m/1\.json: oci://.*:models__m__1\.json holds an artifact mlops did not write for that key"):
        backend.read("models/m/1.json")



# -- Bearer tokens (Docker token auth, as on ghcr.io) ----------------------------------------
def test_bearer_tokens_from_the_registry_token_endpoint(oci_registry_token: OciServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clear_oci_env(monkeypatch, tmp_path / "home")
    url = oci_registry_token.url(f"acme/m{uuid.uuid4().hex[:12]}")
    tokens = oci_registry_token.tokens
    assert tokens is not None
    with pytest.raises(BackendError, match=r"refused us anonymously while listing models/ \(401 unauthorized: UNAUTHORIZED: authentication required"):
        OciBackend(url).list("models/")
    assert tokens.seen[-1] is None  # asked anonymously, refused
    monkeypatch.setenv("MLOPS_OCI_USERNAME", AUTH_USER)
    monkeypatch.setenv("MLOPS_OCI_PASSWORD", AUTH_PASSWORD)
    before = len(tokens.seen)
    reg = Registry(OciBackend(url))
    v = register(reg, b"behind tokens")  # pull scope, then push: a new token when the scope grows
    assert reg.load(reg.get("churn", v.version)) == b"behind tokens"
    assert reg.backend.create(f"models/churn/{v.version}.json", b"{}") is False
    assert len(tokens.seen) - before >= 2 and all(h and h.startswith("Basic ") for h in tokens.seen[before:])


def test_credentials_never_go_to_a_token_endpoint_on_another_host(oci_registry_token_elsewhere: OciServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clear_oci_env(monkeypatch, tmp_path / "home")
    monkeypatch.setenv("MLOPS_OCI_USERNAME", AUTH_USER)
    monkeypatch.setenv("MLOPS_OCI_PASSWORD", AUTH_PASSWORD)
    tokens = oci_registry_token_elsewhere.tokens
    assert tokens is not None
    with pytest.raises(BackendError, match=r"OCI registry 127\.0\.0\.1:\d+ refused us as MLOPS_OCI_USERNAME/MLOPS_OCI_PASSWORD while listing models/ \(401") as err:
        OciBackend(oci_registry_token_elsewhere.url("acme/models")).list("models/")
    assert tokens.seen and all(h is None for h in tokens.seen)  # asked, but only anonymously
    assert AUTH_PASSWORD not in err.value.render()
