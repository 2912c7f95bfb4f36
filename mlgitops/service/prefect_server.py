"""An embedded Prefect server for runs with no Prefect API configured.

Prefect's own ephemeral mode starts its server lazily, at the first API call, after
the client has imported the server package (3 s) and with nothing else to do while
the server migrates its database (7-8 s on a fresh PREFECT_HOME). We start the
documented `prefect server start` on a free loopback port *first*, then import
Prefect, pandas and scikit-learn while it boots on the other core, and only then wait
for its health endpoint: bench/RESULTS.md has the before/after numbers.

Used only when neither PREFECT_API_URL nor the active Prefect profile names an API,
and Prefect's ephemeral mode is allowed. The server stops when the process exits, and
also when it is killed outright (SIGKILL, an abort in native code): the server runs in
its own process group, asks Linux for a parent-death signal, and watches its parent.
`prefect server start` with one worker runs uvicorn in-process, so the group is one
process today; the watchdog ends the whole group in case that changes.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import os
import runpy
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from mlgitops.errors import MlopsError
from mlgitops.service.prefect_profile import active_profile

STARTUP_TIMEOUT_S = 120
SERVER_ENV = {
    # We use no Prefect blocks; registering them costs 1.7 s on a fresh database.
    "PREFECT_API_BLOCKS_REGISTER_ON_START": "false",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_UI_ENABLED": "false",
    "PREFECT_SERVER_UI_ENABLED": "false",
}

_current: "EmbeddedServer | None" = None
PR_SET_PDEATHSIG = 1
WATCH_INTERVAL_S = 0.5
GRACE_S = 10  # after SIGTERM, before the watchdog kills the group outright
# The server's own code runs in the child: `-P` keeps the working directory (a pull
# request's checkout) off sys.path, so a `prefect/` folder there cannot shadow Prefect.
_CHILD = "from mlgitops.service.prefect_server import _child_main; _child_main()"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def configured_api_url() -> str | None:
    """The API URL Prefect would use, read without importing Prefect."""
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    if "prefect" in sys.modules:  # already configured in-process (e.g. Prefect's test harness)
        from prefect.settings import PREFECT_API_URL

        return PREFECT_API_URL.value() or None
    return (active_profile(os.environ) or {}).get("PREFECT_API_URL") or None


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
        env = server_env()
        from mlgitops.service import prefect_db

        # A new PREFECT_HOME starts from a copy of a database migrated once (-4 s), else
        # the server migrates and wait() keeps the result for the next new home.
        self.database = prefect_db.default_database(env)
        extra, self.save_template_to = prefect_db.prepare(self.database)
        env.update(extra)
        # Linux's parent-death signal fires when the *thread* that forked the child ends,
        # so it is asked for only when forking from the main thread; the watchdog covers the rest.
        pdeathsig = "1" if threading.current_thread() is threading.main_thread() else "0"
        args = ["server", "start", "--host", "127.0.0.1", "--port", str(self.port), "--no-ui", "--analytics-off", "--no-scheduler", "--no-late-runs"]
        cmd = [sys.executable, "-P", "-c", _CHILD, str(os.getpid()), pdeathsig, *args]
        # cwd: Prefect reads prefect.toml and .env from the working directory; the
        # repository's must not configure (or run code in) our server.
        self.proc = subprocess.Popen(cmd, env=env, cwd=tempfile.gettempdir(), stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
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
                if self.ready and self.save_template_to is not None and self.database is not None:
                    from mlgitops.service.prefect_db import save_template

                    save_template(self.database, self.save_template_to)  # migrated, nothing run yet
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise MlopsError(f"the embedded Prefect server did not answer within {timeout:.0f} s; its output is in {self.log.name}", hint="set PREFECT_API_URL to a running Prefect server") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            # The whole group (the server leads it), signalled before the leader is
            # reaped so that the group id cannot have been reused.
            _kill_group(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                _kill_group(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        if self.ready or self.proc.returncode in (0, -15):
            Path(self.log.name).unlink(missing_ok=True)


def server_env() -> dict[str, str]:
    """The server's environment: the allow-listed basics and Prefect's own settings,
    not the tool's credentials (it needs no GitHub token)."""
    from mlgitops.run.childenv import child_env

    env = child_env([n for n in os.environ if n.startswith("PREFECT_")], SERVER_ENV)
    env.pop("PREFECT_API_URL", None)
    return env


def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _set_pdeathsig(sig: int) -> None:
    """Linux: deliver ``sig`` to this process when its parent (thread) dies. Hand-written
    with ctypes: the standard library has no prctl; best effort elsewhere."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _watch_parent(parent: int) -> None:
    """Poll: once the parent is gone (we are re-parented), end the whole group."""
    while os.getppid() == parent:
        time.sleep(WATCH_INTERVAL_S)
    _kill_group(os.getpgid(0), signal.SIGTERM)
    time.sleep(GRACE_S)
    _kill_group(os.getpgid(0), signal.SIGKILL)


def _child_main() -> None:
    """Entry point of the server process: die with the parent, then run `prefect ...`."""
    parent, pdeathsig, args = int(sys.argv[1]), sys.argv[2] == "1", sys.argv[3:]
    if pdeathsig:
        _set_pdeathsig(signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(0)
    threading.Thread(target=_watch_parent, args=(parent,), name="mlops-parent-watch", daemon=True).start()
    sys.argv = ["prefect", *args]
    runpy.run_module("prefect", run_name="__main__", alter_sys=True)


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


def import_prefect() -> None:
    """Import Prefect from an empty private folder, never from the checkout.

    Prefect reads its settings from `.env`, `prefect.toml` and `pyproject.toml`
    (`[tool.prefect]`) in the *working directory* when it is first imported, and a
    logging config named there is handed to `logging.config.dictConfig`, whose `()`
    factories call any Python callable. A pull request that adds a `prefect.toml` would
    otherwise run code inside `mlops`, beside the forge token. Prefect builds its root
    settings once, at import (later copies are validated from that object, not re-read),
    so importing it from a folder nobody else can write closes this door; settings from
    the environment and the Prefect profile still apply.
    """
    if "prefect" in sys.modules:
        return
    here = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="mlops-prefect-import-") as neutral:
        os.chdir(neutral)
        try:
            import prefect  # noqa: F401
            import prefect.context  # noqa: F401  (builds the root settings context here)
        finally:
            os.chdir(here)
