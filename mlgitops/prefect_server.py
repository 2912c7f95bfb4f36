"""An embedded Prefect server for runs with no Prefect API configured.

Prefect's own ephemeral mode starts its server lazily, at the first API call, after
the client has imported the server package (3 s) and with nothing else to do while
the server migrates its database (7-8 s on a fresh PREFECT_HOME). We start the
documented `prefect server start` on a free loopback port *first*, then import
Prefect, pandas and scikit-learn while it boots on the other core, and only then wait
for its health endpoint: bench/RESULTS.md has the before/after numbers.

Used only when neither PREFECT_API_URL nor the active Prefect profile names an API,
and Prefect's ephemeral mode is allowed. The server stops when the process exits.
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from pathlib import Path

from .errors import MlopsError

STARTUP_TIMEOUT_S = 120
SERVER_ENV = {
    # We use no Prefect blocks; registering them costs 1.7 s on a fresh database.
    "PREFECT_API_BLOCKS_REGISTER_ON_START": "false",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_UI_ENABLED": "false",
    "PREFECT_SERVER_UI_ENABLED": "false",
}

_current: "EmbeddedServer | None" = None


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def configured_api_url() -> str | None:
    """The API URL Prefect would use, read without importing Prefect."""
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    if "prefect" in sys.modules:  # already configured in-process (e.g. Prefect's test harness)
        from prefect.settings import PREFECT_API_URL

        return PREFECT_API_URL.value() or None
    home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    path = Path(os.environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
    if not path.is_file():
        return None
    try:
        doc = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, OSError):
        return None
    active = os.environ.get("PREFECT_PROFILE") or doc.get("active") or "ephemeral"
    return (doc.get("profiles", {}).get(active) or {}).get("PREFECT_API_URL") or None


def wanted() -> bool:
    allow = os.environ.get("PREFECT_SERVER_ALLOW_EPHEMERAL_MODE")
    return configured_api_url() is None and (allow is None or _truthy(allow))


class EmbeddedServer:
    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/api"
        self.log = tempfile.NamedTemporaryFile(prefix="mlops-prefect-server-", suffix=".log", delete=False)
        env = {**os.environ, **SERVER_ENV}
        env.pop("PREFECT_API_URL", None)
        cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(self.port), "--no-ui", "--analytics-off", "--no-scheduler", "--no-late-runs"]
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.ready = False
        atexit.register(self.stop)  # registered before Prefect's own exit hooks, so it runs after them

    def wait(self, timeout: float = STARTUP_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready:
            if self.proc.poll() is not None:
                raise MlopsError(f"the embedded Prefect server exited with status {self.proc.returncode}; its output is in {self.log.name}", hint="set PREFECT_API_URL to a running Prefect server, or check PREFECT_HOME")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as resp:
                    self.ready = resp.status == 200
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise MlopsError(f"the embedded Prefect server did not answer within {timeout:.0f} s; its output is in {self.log.name}", hint="set PREFECT_API_URL to a running Prefect server") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        if self.ready or self.proc.returncode in (0, -15):
            Path(self.log.name).unlink(missing_ok=True)


def start() -> EmbeddedServer | None:
    """Start the embedded server (once per process) when no API is configured."""
    global _current
    if _current is not None and _current.proc.poll() is None:
        return _current
    if not wanted():
        return None
    _current = EmbeddedServer()
    os.environ["PREFECT_API_URL"] = _current.url  # read by Prefect when it is imported next
    return _current
