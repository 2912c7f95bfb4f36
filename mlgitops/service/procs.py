"""The webhook service's children, each the leader of its own process group.

A delivery's `mlops run` starts more processes (the training command, requirement
installs, sweep workers). Started with ``start_new_session=True``, the run and all it
starts share one process group, so stopping the service ends the whole tree with one
``killpg`` (TERM, then KILL after a grace) instead of orphaning it.

A group id outlives the service in the delivery log; on a restart a leftover group is
ended only when it is provably the one recorded: the leader's start time (Linux
``/proc/PID/stat``) must match, so a reused pid is never killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import IO, Any, Callable


class Interrupted(Exception):
    """The service is stopping: the run was ended and must be resumed, not recorded."""


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat),
    or None where it cannot be read (gone, or no /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs (zombies do not count: they have
    ended, and their reaper may be a container's init that never reaps)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists; not ours to signal
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # state, ppid, pgrp, ...
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def end_group(pgid: int, grace: float = 5.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left after ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not group_alive(pgid):  # a leader that is our child is reaped by its Popen
                return
            time.sleep(0.05)


def end_recorded_group(pgid: int | None, started: str | None, grace: float = 5.0) -> bool:
    """End a group a previous service recorded, if it still runs and is provably that
    group. False when a group with that id runs but cannot be told apart from a
    stranger's (the caller must then not run the delivery again)."""
    if not pgid or not group_alive(pgid):
        return True
    now = start_time(pgid)
    if now is None:
        # The leader is gone (or there is no /proc). While any member of a group lives,
        # its id is not handed out again, so with /proc this is still the recorded group.
        if not Path("/proc/self/stat").is_file():
            return False
    elif now != started:
        return True  # the pid was reused by an unrelated process: the recorded group is gone
    end_group(pgid, grace)
    return not group_alive(pgid)


class Children:
    """Runs children in their own sessions and ends them all on ``stop``."""

    def __init__(self, on_start: Callable[[str, int, str | None], None] | None = None) -> None:
        self.on_start = on_start
        self.live: dict[int, str] = {}
        self.ended: set[int] = set()
        self.lock = threading.Lock()
        self.stopping = False

    def run(self, owner: str, argv: list[str], cwd: Path, env: dict[str, str], stdout: IO[Any] | int, timeout: float, stderr: IO[Any] | int = subprocess.STDOUT) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` as the leader of a new process group and wait; what the group
        left running when its leader exits is ended too. Raises Interrupted when
        ``stop`` ended it, TimeoutExpired (after ending it) past ``timeout`` seconds."""
        with self.lock:
            if self.stopping:
                raise Interrupted(owner)
            proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=stdout, stderr=stderr, text=True, start_new_session=True)
            self.live[proc.pid] = owner
        try:
            if self.on_start is not None:
                self.on_start(owner, proc.pid, start_time(proc.pid))
            try:
                out, err = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                end_group(proc.pid)
                proc.communicate()
                raise
        finally:
            with self.lock:
                self.live.pop(proc.pid, None)
            if proc.returncode is None:  # an exception above: never leave the group behind
                end_group(proc.pid)
                proc.wait()
            elif group_alive(proc.pid):
                end_group(proc.pid, grace=1.0)  # what the run left running in its group
        if proc.pid in self.ended and proc.returncode not in (0, 1):  # 0, 1: it finished before the stop
            raise Interrupted(owner)
        return subprocess.CompletedProcess(argv, proc.returncode, out or "", err or "")

    def stop(self, grace: float = 5.0) -> list[str]:
        """End every running child's group; the owners whose runs were ended."""
        with self.lock:
            self.stopping = True
            live = dict(self.live)
            self.ended.update(live)
        threads = [threading.Thread(target=end_group, args=(pgid, grace)) for pgid in live]
        for t in threads:
            t.start()
        for t in threads:
            t.join(grace + 5)
        return sorted(set(live.values()))
