"""A real OCI registry on 127.0.0.1 for the registry tests: the CNCF distribution
registry (Debian's ``docker-registry``), one per session.

* ``oci_registry``: ``"127.0.0.1:PORT"`` (a str; ``.storage`` is its storage folder,
  ``.url(repo)`` an ``oci://`` URL), filesystem storage in a temp folder, deletes
  enabled, no auth; stopped after the session.
* ``oci_registry_auth``: the same with htpasswd auth (user ``ci``, password
  :data:`AUTH_PASSWORD`), to check 401 handling and credentials from the environment.
* ``oci_url``: a fresh repository on ``oci_registry`` per test, with the environment
  cleared of every OCI credential (``GITHUB_TOKEN``, ``MLOPS_OCI_*``, a developer's
  ``~/.docker/config.json``), so a test talks only to 127.0.0.1 and only anonymously.

Under ``CI=true`` a missing ``docker-registry`` fails the test; elsewhere it skips.
"""

from __future__ import annotations

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
    checks it on every request. Python's crypt (libxcrypt) does bcrypt; no extra package."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt

    hashed = crypt.crypt(AUTH_PASSWORD, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
    if not hashed or not hashed.startswith("$2"):
        pytest.skip("this libc's crypt cannot make bcrypt hashes (needed for an htpasswd registry)")
    path.write_text(f"{AUTH_USER}:{hashed}\n")


def _serve(folder: Path, auth: bool) -> Iterator[OciServer]:
    binary = _binary()
    storage = folder / "storage"
    storage.mkdir()
    extra = ""
    if auth:
        _htpasswd(folder / "htpasswd")
        extra = f"auth:\n  htpasswd:\n    realm: mlops-test\n    path: {folder / 'htpasswd'}\n"
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
