"""Attack (debris): a hard kill of `mlops` left its embedded `prefect server` running.

The process that starts the server here is the same code path `mlops run` takes
(prefect_server.start, then wait for health); a full run would only add minutes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

STARTER = """\
import time
from mlgitops.service import prefect_server
server = prefect_server.start()
server.wait()
print(server.proc.pid, server.port, flush=True)
time.sleep(600)
"""
DEADLINE_S = 30  # bounded wait for the server to go after its parent is killed


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for a reaper."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return False
    return fields[0] != "Z"


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkill_of_mlops_leaves_no_prefect_server(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")  # no profile: the embedded server is wanted
    starter = subprocess.Popen([sys.executable, "-c", STARTER], env=env, cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    server_pid = 0
    try:
        line = starter.stdout.readline() if starter.stdout else ""
        assert line, "the starter exited before the server answered"
        server_pid, port = map(int, line.split())
        assert alive(server_pid) and listening(port)
        os.kill(starter.pid, signal.SIGKILL)
        starter.wait(timeout=10)
        deadline = time.monotonic() + DEADLINE_S
        while (alive(server_pid) or listening(port)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not alive(server_pid), f"the embedded Prefect server (pid {server_pid}) outlived its parent by {DEADLINE_S} s"
        assert not listening(port)
    finally:
        if starter.poll() is None:
            starter.kill()
        if server_pid and alive(server_pid):
            os.kill(server_pid, signal.SIGKILL)  # never leave it behind, even when the test fails
