"""What a deploy target says when a pinned registry object cannot be fetched (issue 15,
item 7), without a registry server: each failure is made on the spot and its message
and hint are held exactly.

- unreachable: an S3 endpoint or an OCI registry on a loopback port nobody listens
  on (bound, then closed: connections are refused at once);
- a registry that redirects forever (an OSError from the HTTP client, not a backend
  error): the generic "check the registry's address" hint;
- a missing SDK extra (``s3fs``, ``oras``) and a backend module that cannot be imported
  at all: ``None`` in ``sys.modules`` makes ``import NAME`` raise ImportError;
- a scheme no backend knows, and a pinned object the registry does not hold.

A failed fetch leaves nothing in the cache.
"""

from __future__ import annotations

import hashlib
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mlgitops.deploy.fetch import cache_path, fetch_pinned, verify_artifact
from mlgitops.deploy.manifest import ManifestError, Pin
from mlgitops.errors import InputError
from tests.helpers import missing

DATA = b"a model nobody can fetch"
SHA = hashlib.sha256(DATA).hexdigest()
WHERE = "deploy/prod.yaml"
UNREACHABLE_HINT = "check the registry's address and credentials from this machine (the SDK's usual environment variables or config); a model already in the local cache is served without the registry"


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then closed)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def refused(uri: str, cache: Path, read: Callable[..., bytes] = fetch_pinned) -> InputError:
    """The error ``read`` raises for a pin of ``uri`` (verify_artifact uses the default
    cache, which never holds SHA: nothing fetches it)."""
    with pytest.raises(InputError) as info:
        read(Pin("m", 1, uri, SHA), Path("/nonexistent"), WHERE, *([cache] if read is fetch_pinned else []))
    assert not cache_path(SHA, cache).exists()
    return info.value


def needs(module: str, extra: str) -> None:
    try:
        __import__(module)
    except ImportError:
        missing(f"{module} is not installed: pip install -e '.[{extra}]'")


@pytest.fixture
def s3_nowhere(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """Dummy credentials and an S3 endpoint on a closed port; one try (no retries)."""
    from tests.fixtures_s3 import s3_vars

    needs("s3fs", "s3")
    port = closed_port()
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_RETRY_MODE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in s3_vars(f"http://127.0.0.1:{port}").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    yield port


def test_an_unreachable_s3_registry_is_named_with_its_endpoint(tmp_path: Path, s3_nowhere: int) -> None:
    uri = f"s3://mlops-nowhere/models/objects/{SHA[:2]}/{SHA}"
    error = refused(uri, tmp_path / "cache")
    assert error.message == f'{WHERE}: model.uri: cannot fetch {uri}: registry s3://mlops-nowhere/models: cannot reach http://127.0.0.1:{s3_nowhere} while reading {uri}: Could not connect to the endpoint URL: "http://127.0.0.1:{s3_nowhere}/mlops-nowhere/models/objects/{SHA[:2]}/{SHA}"'
    assert error.hint == "check the network and the endpoint (AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL for S3-compatible stores)"


def test_an_unreachable_oci_registry_is_named_with_its_address(tmp_path: Path) -> None:
    needs("oras", "oci")
    port = closed_port()
    uri = f"oci://127.0.0.1:{port}/acme/models:sha256-{SHA}"
    error = refused(uri, tmp_path / "cache")
    assert error.message == f"{WHERE}: model.uri: cannot fetch {uri}: cannot reach the OCI registry 127.0.0.1:{port} while pulling blob {SHA[:12]}: connection refused"
    assert error.hint == f"check registry.url (oci://127.0.0.1:{port}/acme/models) in mlops.yaml and that the registry is up; plain HTTP is used only for 127.0.0.1/localhost/::1 or with MLOPS_OCI_INSECURE=1"


def test_a_registry_that_redirects_forever_gets_the_generic_hint(tmp_path: Path) -> None:
    """requests' TooManyRedirects is an OSError, not a backend error: the message
    names its type, the hint is the generic one."""
    needs("oras", "oci")

    class Loop(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Loop)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        uri = f"oci://127.0.0.1:{server.server_address[1]}/acme/models:sha256-{SHA}"
        error = refused(uri, tmp_path / "cache")
    finally:
        server.shutdown()
        server.server_close()
    assert (error.message, error.hint) == (f"{WHERE}: model.uri: cannot fetch {uri}: TooManyRedirects: Exceeded 30 redirects.", UNREACHABLE_HINT)


def test_a_missing_s3_extra_names_the_uri_and_the_extra(tmp_path: Path, s3_nowhere: int, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    monkeypatch.setitem(sys.modules, "s3fs", None)
    # fsspec keeps a filesystem class once imported (other tests here import s3fs): forget it for this test
    monkeypatch.delitem(importlib.import_module("fsspec.registry")._registry, "s3", raising=False)
    uri = f"s3://mlops-nowhere/models/objects/{SHA[:2]}/{SHA}"
    error = refused(uri, tmp_path / "cache")
    assert (error.message, error.hint) == (f"{WHERE}: model.uri: {uri}: registry s3://mlops-nowhere/models: the s3:// backend needs the s3fs package, which is not installed", "pip install 'mlgitops[s3]'")


def test_a_missing_oci_extra_names_the_uri_and_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlgitops.deploy.registry.oci  # noqa: F401 (restored by monkeypatch after the test)

    monkeypatch.delitem(sys.modules, "mlgitops.deploy.registry.oci")  # imported again, without oras
    monkeypatch.setitem(sys.modules, "oras", None)
    uri = f"oci://127.0.0.1:5000/acme/models:sha256-{SHA}"
    error = refused(uri, tmp_path / "cache")
    assert (error.message, error.hint) == (f"{WHERE}: model.uri: {uri}: registry URL 'oci://127.0.0.1:5000/acme/models' needs oras-py (import of oras halted; None in sys.modules)", "pip install 'mlgitops[oci]'")


@pytest.mark.parametrize(
    ("uri", "module", "extra"),
    [
        (f"oci://127.0.0.1:5000/acme/models:sha256-{SHA}", "requests", "oci"),
        (f"s3://mlops-nowhere/models/objects/{SHA[:2]}/{SHA}", "mlgitops.deploy.registry.fsspec_backend", "s3"),
        (f"gs://mlops-nowhere/models/objects/{SHA[:2]}/{SHA}", "mlgitops.deploy.registry.fsspec_backend", "s3"),
    ],
)
def test_a_backend_that_cannot_be_imported_names_the_package_and_an_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uri: str, module: str, extra: str) -> None:
    """An ImportError from the backend's own module (not the SDK check inside it)."""
    import mlgitops.deploy.registry.fsspec_backend
    import mlgitops.deploy.registry.oci  # noqa: F401 (restored by monkeypatch after the test)

    monkeypatch.delitem(sys.modules, "mlgitops.deploy.registry.oci")
    monkeypatch.setitem(sys.modules, module, None)
    scheme = uri.split("://")[0]
    error = refused(uri, tmp_path / "cache")
    assert (error.message, error.hint) == (f"{WHERE}: model.uri: {uri} needs a package that is not installed: import of {module} halted; None in sys.modules", f"install mlgitops with the extra for {scheme}:// (e.g. pip install 'mlgitops[{extra}]')")


@pytest.mark.parametrize("read", [fetch_pinned, verify_artifact])
def test_an_unknown_scheme_is_refused_with_every_known_one(tmp_path: Path, read) -> None:
    error = refused("https://example.invalid/m.onnx", tmp_path / "cache", read)
    assert isinstance(error, ManifestError)
    assert error.message == f"{WHERE}: model.uri: https://example.invalid/m.onnx has an unknown scheme 'https' (known: file paths, file://, abfs://, az://, gcs://, gs://, memory://, oci://, s3://)"
    assert error.hint == "pins name registry objects (.../objects/ab/<sha256>, or oci://HOST/REPO:sha256-<hex>); promotion PRs write them"


@pytest.mark.parametrize("read", [fetch_pinned, verify_artifact])
def test_a_malformed_object_uri_is_named_once(tmp_path: Path, read) -> None:
    uri = "s3://mlops-nowhere/models/m.onnx"
    error = refused(uri, tmp_path / "cache", read)
    assert (error.message, error.hint) == (f"{WHERE}: model.uri: '{uri}' is not a registry object URI", "expected <registry url>/objects/<first 2 hex digits>/<sha256>, as `mlops deploy` writes into pins")


def test_a_pinned_object_the_registry_does_not_hold(tmp_path: Path) -> None:
    from fsspec.implementations.memory import MemoryFileSystem

    uri = f"memory://registry-errors/models/objects/{SHA[:2]}/{SHA}"
    try:
        error = refused(uri, tmp_path / "cache")
    finally:
        for key in [k for k in MemoryFileSystem.store if k.startswith("/registry-errors/")]:
            MemoryFileSystem.store.pop(key, None)
    assert isinstance(error, ManifestError)
    assert error.message == f"{WHERE}: model.uri: the pinned artifact {uri} does not exist in the registry memory://registry-errors/models"
    assert error.hint == "the registry was cleaned, or the pin names another registry; redeploy with `mlops rollback ENV --to VERSION`"
