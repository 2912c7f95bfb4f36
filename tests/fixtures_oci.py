"""A real OCI registry on 127.0.0.1 for the registry tests: the CNCF distribution
registry (Debian's ``docker-registry``), one per session.

* ``oci_registry``: ``"127.0.0.1:PORT"`` (a str; ``.storage`` is its storage folder,
  ``.url(repo)`` an ``oci://`` URL), filesystem storage in a temp folder, deletes
  enabled, no auth; stopped after the session.
* ``oci_registry_auth``: the same with htpasswd auth (user ``ci``, password
  :data:`AUTH_PASSWORD`), to check 401 handling and credentials from the environment.
* ``oci_registry_token``: Bearer token auth as on ghcr.io, tokens from a small
  :class:`TokenServer` in this process (``.tokens``) for the same user;
  ``oci_registry_token_elsewhere`` announces that token endpoint on another host name.
* ``oci_url``: a fresh repository on ``oci_registry`` per test, with the environment
  cleared of every OCI credential (``GITHUB_TOKEN``, ``MLOPS_OCI_*``, a developer's
  ``~/.docker/config.json``), so a test talks only to 127.0.0.1 and only anonymously.

Under ``CI=true`` a missing ``docker-registry`` fails the test; elsewhere it skips.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import time
import uuid
import warnings
from pathlib import Path
from typing import Iterator

import pytest

AUTH_USER = "ci"
AUTH_PASSWORD = "s3cret-registry-pw"
#: variables that would give the backend credentials or change its transport
CREDENTIAL_VARS = ("GITHUB_TOKEN", "GITHUB_ACTOR", "MLOPS_OCI_USERNAME", "MLOPS_OCI_PASSWORD", "MLOPS_OCI_HOST", "MLOPS_OCI_INSECURE")


class OciServer(str):
    """``"127.0.0.1:PORT"`` plus where the registry keeps its files."""

    storage: Path
    tokens: "TokenServer | None" = None

    def url(self, repo: str) -> str:
        return f"oci://{self}/{repo}"


def _binary() -> str:
    found = shutil.which("docker-registry") or ("/usr/bin/docker-registry" if os.access("/usr/bin/docker-registry", os.X_OK) else None)
    if not found:
        message = "docker-registry (the CNCF distribution registry) is not installed: apt-get install docker-registry"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _htpasswd(path: Path) -> None:
    """A bcrypt htpasswd line (distribution accepts only bcrypt), cost 4: the registry
    checks it on every request. Python's crypt (libxcrypt; Python <= 3.12) does bcrypt
    with no extra package; else the ``bcrypt`` package if installed."""
    hashed = ""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt

        hashed = crypt.crypt(AUTH_PASSWORD, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)) or ""
    except ImportError:
        pass
    if not hashed.startswith("$2"):
        try:
            import bcrypt

            hashed = bcrypt.hashpw(AUTH_PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
        except ImportError:
            message = "no bcrypt for the htpasswd registry: Python's crypt module is gone (3.13+) or lacks bcrypt; pip install bcrypt"
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)
    path.write_text(f"{AUTH_USER}:{hashed}\n")


class TokenServer:
    """A Bearer token endpoint (Docker's token auth, as ghcr.io has) on 127.0.0.1: it
    signs a JWT the registry trusts (ES256, its self-signed certificate in ``x5c``) for
    ``ci``/:data:`AUTH_PASSWORD`, granting the scope asked for, and refuses anyone
    else. ``seen`` records each request's Authorization header (None if absent)."""

    issuer = "mlops-test-issuer"
    service = "mlops-test-registry"

    def __init__(self, folder: Path) -> None:
        import datetime
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mlops-test-token")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.bundle = folder / "token-ca.pem"
        self.bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        self.seen: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                server.seen.append(self.headers.get("Authorization"))
                expected = "Basic " + base64.b64encode(f"{AUTH_USER}:{AUTH_PASSWORD}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.end_headers()
                    return
                from urllib.parse import parse_qs, urlsplit

                scopes = parse_qs(urlsplit(self.path).query).get("scope", [])
                body = json.dumps({"token": server.token(scopes)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def token(self, scopes: list[str]) -> str:
        import jwt

        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            repo, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": repo, "actions": actions.split(",")})
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": AUTH_USER, "aud": self.service, "iat": now, "nbf": now - 10, "exp": now + 300, "jti": uuid.uuid4().hex, "access": access}
        return jwt.encode(claims, self.key, algorithm="ES256", headers={"x5c": [self.x5c]})

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


def _serve(folder: Path, auth: bool | str, realm_host: str = "127.0.0.1") -> Iterator[OciServer]:
    """``auth``: False, True (htpasswd) or "token" (Bearer tokens from a
    :class:`TokenServer` on 127.0.0.1, announced as ``realm_host``; the server is
    ``.tokens`` on what this yields)."""
    binary = _binary()
    storage = folder / "storage"
    storage.mkdir()
    extra = ""
    tokens: TokenServer | None = None
    if auth == "token":
        tokens = TokenServer(folder)
        extra = (
            f"auth:\n  token:\n    realm: http://{realm_host}:{tokens.port}/token\n    service: {tokens.service}\n"
            f"    issuer: {tokens.issuer}\n    rootcertbundle: {tokens.bundle}\n"
        )
    elif auth:
        _htpasswd(folder / "htpasswd")
        extra = f"auth:\n  htpasswd:\n    realm: mlops-test\n    path: {folder / 'htpasswd'}\n"
    try:
        last = ""
        for _attempt in range(3):  # another process may take the free port before us
            port = _free_port()
            config = folder / "config.yml"
            config.write_text(
                "version: 0.1\n"
                "log:\n  level: error\n  accesslog:\n    disabled: true\n"
                f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
                "  maintenance:\n    uploadpurging:\n      enabled: false\n"
                f"http:\n  addr: 127.0.0.1:{port}\n  secret: {uuid.uuid4().hex}\n" + extra
            )
            log = (folder / "registry.log").open("wb")
            proc = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            try:
                if _wait_ready(proc, port):
                    server = OciServer(f"127.0.0.1:{port}")
                    server.storage = storage
                    server.tokens = tokens
                    yield server
                    return
                last = (folder / "registry.log").read_text(errors="replace")[-2000:]
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
                log.close()
        pytest.fail(f"docker-registry did not answer on /v2/ after 3 starts; its log:\n{last}")
    finally:
        if tokens is not None:
            tokens.close()


def _wait_ready(proc: subprocess.Popen, port: int) -> bool:
    """True once GET /v2/ answers (200, or 401 with auth); False if it exited. Bounded."""
    import requests

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if requests.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code in (200, 401):
                return True
        except requests.RequestException:
            pass
        time.sleep(0.05)
    return False


@pytest.fixture(scope="session")
def oci_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OciServer]:
    yield from _serve(tmp_path_factory.mktemp("oci-registry"), auth=False)


@pytest.fixture(scope="session")
def oci_registry_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OciServer]:
    yield from _serve(tmp_path_factory.mktemp("oci-registry-token"), auth="token")


@pytest.fixture(scope="session")
def oci_registry_token_elsewhere(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OciServer]:
    """Token auth whose realm names another host (localhost, while the registry is
    127.0.0.1): our credentials must not go there."""
    yield from _serve(tmp_path_factory.mktemp("oci-registry-token-elsewhere"), auth="token", realm_host="localhost")


@pytest.fixture(scope="session")
def oci_registry_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OciServer]:
    yield from _serve(tmp_path_factory.mktemp("oci-registry-auth"), auth=True)


def clear_oci_env(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """No credential from the environment or a developer's docker config."""
    for name in CREDENTIAL_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))


@pytest.fixture
def oci_url(oci_registry: OciServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """``oci://127.0.0.1:PORT/test/<fresh>``: an empty repository for this test."""
    clear_oci_env(monkeypatch, tmp_path / "home")
    return oci_registry.url(f"test/r{uuid.uuid4().hex[:12]}")
