"""A worker's credentials (issue 17): GITHUB_TOKEN from its environment, else a Prefect
Secret block; sent by git as an Authorization header over https only, never written
into the clone's .git/config, never on a command line, never in an error message."""

from __future__ import annotations

import base64
import datetime
import http.server
import ipaddress
import os
import ssl
import threading
from pathlib import Path
from typing import Iterator

import pytest

TOKEN = "ghs_worker0token0for0tests0000000000000"


@pytest.fixture
def https_git(tmp_path: Path) -> Iterator[dict]:
    """A loopback https server with a self-signed certificate that records each request's
    Authorization header and answers 404 (no repository there)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key()).serial_number(1).not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(hours=1)).add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False).sign(key, hashes.SHA256())
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    seen: list[str | None] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            seen.append(self.headers.get("Authorization"))
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"url": f"https://127.0.0.1:{server.server_address[1]}/acme/models.git", "seen": seen, "ca": tmp_path / "cert.pem"}
    finally:
        server.shutdown()
        server.server_close()


def test_the_token_goes_to_git_as_a_header_over_https_only(https_git: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlgitops.errors import InputError
    from mlgitops.service.worker import auth_env, clone_for

    monkeypatch.setenv("MLOPS_WORKER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GIT_SSL_CAINFO", str(https_git["ca"]))  # trust the test's certificate, as a worker trusts GitHub's
    with pytest.raises(InputError) as err:
        clone_for(https_git["url"], "pull_request", {}, TOKEN)
    assert https_git["seen"] and set(https_git["seen"]) == {"Basic " + base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()}
    assert TOKEN not in err.value.message and base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode() not in err.value.message
    assert err.value.message.startswith(f"cannot clone {https_git['url']} on this worker: ")
    for config in (tmp_path / "cache").rglob("config"):
        assert TOKEN not in config.read_text()
    # Never over plain http, ssh or to a local path; nothing without a token.
    for url in ("http://example.invalid/acme/models.git", "ssh://git@example.invalid/acme/models.git", "/srv/models.git", "git@github.com:acme/models.git"):
        assert auth_env(url, TOKEN) == {}
    assert auth_env(https_git["url"], None) == {}


def test_the_token_comes_from_the_environment_else_a_secret_block(prefect_api: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.blocks.system import Secret

    from mlgitops.service.worker import worker_token

    monkeypatch.setenv("PREFECT_API_URL", prefect_api)
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.delenv("MLOPS_GITHUB_TOKEN_BLOCK", raising=False)
    Secret(value="from-the-default-block").save("mlops-github-token", overwrite=True)
    Secret(value="from-a-named-block").save("acme-bot-token", overwrite=True)
    assert worker_token() == "from-the-default-block"
    monkeypatch.setenv("MLOPS_GITHUB_TOKEN_BLOCK", "acme-bot-token")
    assert worker_token() == "from-a-named-block"
    monkeypatch.setenv("MLOPS_GITHUB_TOKEN_BLOCK", "no-such-block")
    assert worker_token() is None
    monkeypatch.setenv("GITHUB_TOKEN", "from-the-environment")
    assert worker_token() == "from-the-environment"  # the worker's environment wins


def test_git_config_from_the_callers_environment_is_not_inherited(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """GIT_CONFIG_* already in the worker's environment cannot add or override config."""
    from mlgitops.service.worker import _git

    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "user.name")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "injected")
    out = _git(tmp_path, {}, "config", "--get", "user.name")
    assert "injected" not in out.stdout
    assert os.environ["GIT_CONFIG_VALUE_0"] == "injected"  # the worker's own environment is untouched
