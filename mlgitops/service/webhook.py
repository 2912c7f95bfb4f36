"""`mlops webhook serve`: GitHub's webhook deliveries, verified, deduplicated, run once.

The HTTP side (limits, deadlines, signature checked while the body streams in) is in
``webhook_http``; this module keeps what happens to a verified delivery:

1. deduplicated by ``X-GitHub-Delivery`` in a SQLite table (a primary key, so two
   copies racing in are told apart atomically): a copy is 200 ``duplicate``;
2. spooled under a name derived from the sha256 of its id (ids are free text: ``a/b``
   and ``a_b`` must not share a file), and answered at once (202) while a dispatcher
   runs the flow (a local run in the embedded default, a Prefect deployment run when
   one is configured). A full queue is 503 with Retry-After and the id is forgotten, so
   GitHub's redelivery is accepted later;
3. run with `mlops run` in a temporary worktree, its child the leader of its own
   process group (recorded in the log), so a stopping service ends the whole tree and
   removes the worktree, and a restarted one can tell a leftover run apart.

``GET /deliveries/{id}`` tells what became of a delivery; ``GET /healthz`` the queue.
The secret comes from the environment only and is never printed.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import re
import shutil
import sqlite3
import stat
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Callable, Protocol

from mlgitops.errors import InputError
from mlgitops.service.delivery import git_at, run_event
from mlgitops.service.procs import Children, Interrupted, end_recorded_group

MAX_BODY = 25 * 1024 * 1024  # GitHub caps webhook payloads at 25 MB
HANDLED = ("pull_request", "push", "issue_comment", "merge_group")
SIGNATURE = "x-hub-signature-256"
UNFINISHED = ("queued", "running", "interrupted")


def signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verified(secret: bytes, body: bytes, header: str | None) -> bool:
    """Constant-time check of GitHub's ``X-Hub-Signature-256`` header."""
    if not header or not header.startswith("sha256="):
        return False
    return hmac.compare_digest(signature(secret, body).encode(), header.strip().encode())


@dataclass(frozen=True)
class Delivery:
    id: str
    event: str
    action: str | None
    payload_path: Path


class Dispatcher(Protocol):
    """Hands a verified, new delivery to whatever runs flows; returns at once."""

    def submit(self, delivery: Delivery) -> bool:
        """False when it cannot take more now (the caller answers 503)."""
        ...

    def stats(self) -> dict[str, Any]: ...

    def stop(self, grace: float = 5.0) -> None:
        """End what runs (it is resumed on the next start); take nothing more."""
        ...


COLUMNS = ("id", "event", "action", "received_at", "status", "detail", "exit_code", "finished_at")
# Added after the first release; an older log gets them on open.
RUN_COLUMNS = {"pgid": "INTEGER", "pg_start": "TEXT", "resumed": "INTEGER NOT NULL DEFAULT 0"}


class DeliveryLog:
    """Seen deliveries and what became of them, in SQLite (one row per delivery id)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._local = threading.local()
        with self._db() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS deliveries (id TEXT PRIMARY KEY, event TEXT, action TEXT, received_at TEXT, status TEXT, detail TEXT, exit_code INTEGER, finished_at TEXT)")
            have = {row[1] for row in db.execute("PRAGMA table_info(deliveries)")}
            for name, kind in RUN_COLUMNS.items():
                if name not in have:
                    db.execute(f"ALTER TABLE deliveries ADD COLUMN {name} {kind}")

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self._local.db = db
        return db

    def claim(self, delivery_id: str, event: str, action: str | None) -> bool:
        """Record a new delivery; False when this id was seen before."""
        cur = self._db().execute(
            "INSERT OR IGNORE INTO deliveries (id, event, action, received_at, status) VALUES (?, ?, ?, ?, 'queued')",
            (delivery_id, event, action, _now()),
        )
        return cur.rowcount == 1

    def forget(self, delivery_id: str) -> None:
        self._db().execute("DELETE FROM deliveries WHERE id = ?", (delivery_id,))

    def update(self, delivery_id: str, status: str, detail: str = "", exit_code: int | None = None) -> None:
        finished = _now() if status in ("done", "failed", "ignored") else None
        self._db().execute("UPDATE deliveries SET status = ?, detail = ?, exit_code = ?, finished_at = ? WHERE id = ?", (status, detail, exit_code, finished, delivery_id))

    def started(self, delivery_id: str, pgid: int, pg_start: str | None) -> None:
        """A child of this delivery runs as process group ``pgid`` (its leader started at
        ``pg_start``): what a restarted service must end before running it again."""
        self._db().execute("UPDATE deliveries SET pgid = ?, pg_start = ? WHERE id = ?", (pgid, pg_start, delivery_id))

    def requeued(self, delivery_id: str) -> None:
        self._db().execute("UPDATE deliveries SET status = 'queued', detail = 'requeued after a restart', resumed = 1, pgid = NULL, pg_start = NULL WHERE id = ?", (delivery_id,))

    def get(self, delivery_id: str) -> dict[str, Any] | None:
        row = self._db().execute(f"SELECT {', '.join(COLUMNS)} FROM deliveries WHERE id = ?", (delivery_id,)).fetchone()
        return None if row is None else dict(zip(COLUMNS, row))

    def unfinished(self) -> list[tuple[str, str, str | None, str, int | None, str | None, int]]:
        """Deliveries a stopped service accepted but never finished:
        (id, event, action, status, pgid, pg_start, resumed)."""
        marks = ", ".join("?" * len(UNFINISHED))
        return self._db().execute(f"SELECT id, event, action, status, pgid, pg_start, resumed FROM deliveries WHERE status IN ({marks}) ORDER BY received_at", UNFINISHED).fetchall()

    def counts(self) -> dict[str, int]:
        return dict(self._db().execute("SELECT status, COUNT(*) FROM deliveries GROUP BY status").fetchall())


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def spool_path(spool: Path, delivery_id: str) -> Path:
    """The payload file of a delivery: named by the sha256 of its id, so no two ids
    share a file (the id itself stays in the log)."""
    return spool / (hashlib.sha256(delivery_id.encode("utf-8", "surrogatepass")).hexdigest() + ".json")


def resume(log: DeliveryLog, dispatcher: Dispatcher, spool: Path, grace: float = 5.0) -> list[str]:
    """Queue again what a stopped service had accepted but not finished (its payload
    is still in the spool); forget the rest, so GitHub's redelivery is taken.

    A delivery that was running is first made sure to run no more: its recorded process
    group is ended (a service killed outright leaves it running). It is queued again
    once only; found unfinished a second time it is marked failed, never run a third time."""
    requeued = []
    for delivery_id, event, action, status, pgid, pg_start, resumed in log.unfinished():
        if status != "queued":
            if not end_recorded_group(pgid, pg_start, grace):
                log.update(delivery_id, "failed", f"the run was interrupted and its process group {pgid} could not be ended; not run again", None)
                continue
            if resumed:
                log.update(delivery_id, "failed", "the run was interrupted twice by a service stop; not run again (see its log)", None)
                spool_path(spool, delivery_id).unlink(missing_ok=True)
                continue
        path = spool_path(spool, delivery_id)
        if path.is_file():
            log.requeued(delivery_id)  # before a worker can take it
            if dispatcher.submit(Delivery(delivery_id, event, action, path)):
                requeued.append(delivery_id)
                continue
        log.forget(delivery_id)
        path.unlink(missing_ok=True)
    return requeued


def lock_state(state: Path) -> IO[str]:
    """Hold the service's lock on ``state`` for as long as the returned file is open: two
    services on one clone would run each delivery twice and prune each other's worktrees."""
    state.mkdir(parents=True, exist_ok=True)
    handle = open(state / "service.lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        pid = handle.read().strip() or "?"
        handle.close()
        raise InputError(f"another webhook service (pid {pid}) serves this clone ({state})", hint="stop it first, or serve another clone with --repo") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def worktree_base(root: Path) -> Path:
    """The service's own folder for run worktrees (outside the clone, so a worktree's
    `.mlops` link never points into a folder that holds it): private to this user,
    one per clone, so a restart can remove what a killed service left."""
    top = Path(tempfile.gettempdir()) / f"mlops-webhook-{os.getuid()}"
    try:
        top.mkdir(mode=0o700)
    except FileExistsError:
        pass
    info = top.lstat()
    # A name in a shared /tmp can be taken first by another user (or be a symlink).
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise InputError(f"{top} is not a private folder of this user", hint="remove it, or point TMPDIR at a folder only you can write")
    base = top / hashlib.sha256(str(root).encode()).hexdigest()[:16]
    base.mkdir(exist_ok=True)
    return base


def prune_worktrees(root: Path, base: Path) -> int:
    """Remove the worktrees (and their temporary refs) a stopped service left behind;
    how many folders were removed."""
    removed = 0
    for leftover in sorted(base.iterdir()) if base.is_dir() else []:
        git_at(root, "worktree", "remove", "--force", str(leftover / "checkout"))
        shutil.rmtree(leftover, ignore_errors=True)
        removed += 1
    git_at(root, "worktree", "prune")
    refs = git_at(root, "for-each-ref", "--format=%(refname)", "refs/mlops/").stdout.split()
    for ref in refs:
        if RUN_REF.fullmatch(ref):
            git_at(root, "update-ref", "-d", ref)
    return removed


RUN_REF = re.compile(r"refs/mlops/[0-9a-f]{64}")  # run_delivery's refs: the spool name


class LocalDispatcher:
    """The embedded default: ``workers`` threads run ``mlops run`` for each delivery in
    a detached worktree of the clone at ``root`` (the payload's commit, under
    ``worktrees``), sharing the clone's `.mlops/` cache; at most ``queue`` deliveries wait.
    ``stop`` ends the runs' process groups; what was running is marked ``interrupted``."""

    def __init__(self, root: Path, log: DeliveryLog, run: Callable[[Delivery], tuple[int | None, str]] | None = None, workers: int = 1, queue: int = 100, forge: str = "github", worktrees: Path | None = None) -> None:
        import queue as queue_mod

        self.log = log
        self.children = Children(on_start=log.started)
        self.worktrees = worktrees
        self.run = run or (lambda d: run_delivery(root, d, forge, self.children, worktrees))
        self.jobs: Any = queue_mod.Queue(maxsize=queue)
        self.running = 0
        self.started = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._work, daemon=True, name=f"mlops-webhook-{i}") for i in range(workers)]
        for t in self.threads:
            t.start()

    def submit(self, delivery: Delivery) -> bool:
        import queue as queue_mod

        if self.stopping.is_set():
            return False
        try:
            self.jobs.put_nowait(delivery)
            return True
        except queue_mod.Full:
            return False

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {"queued": self.jobs.qsize(), "running": self.running, "runs_started": self.started}

    def _work(self) -> None:
        import queue as queue_mod

        while not self.stopping.is_set():
            try:
                delivery = self.jobs.get(timeout=0.2)
            except queue_mod.Empty:
                continue
            if self.stopping.is_set():  # left queued (and spooled): the next start runs it
                self.jobs.task_done()
                break
            with self.lock:
                self.running += 1
                self.started += 1
            self.log.update(delivery.id, "running")
            keep = False
            try:
                code, detail = self.run(delivery)
                self.log.update(delivery.id, "ignored" if code is None else ("done" if code in (0, 1) else "failed"), detail, code)
            except Interrupted:
                keep = True  # its payload stays in the spool for the resume
                self.log.update(delivery.id, "interrupted", "the service stopped during the run; a restart runs it again once")
            except Exception as exc:  # noqa: BLE001 - one bad delivery must not stop the worker
                self.log.update(delivery.id, "failed", f"{type(exc).__name__}: {exc}", 3)
            finally:
                if not keep:
                    delivery.payload_path.unlink(missing_ok=True)  # the spool holds waiting deliveries only
                with self.lock:
                    self.running -= 1
                self.jobs.task_done()

    def drain(self, timeout: float = 60.0) -> bool:
        """Wait (bounded) until every queued delivery has run."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.jobs.unfinished_tasks == 0:
                    return True
            time.sleep(0.05)
        return False

    def stop(self, grace: float = 5.0) -> None:
        """Take no more; end the running children's process groups (TERM, KILL after
        ``grace``) and wait (bounded) for the workers to remove their worktrees."""
        self.stopping.set()
        self.children.stop(grace)
        for t in self.threads:
            t.join(grace + 10)
        if self.worktrees is not None:
            try:
                self.worktrees.rmdir()  # empty by now; a next start makes it again
            except OSError:
                pass  # not empty: a worker did not finish in time; the next start prunes it


def deployment_runner(deployment: str, root: Path, forge: str = "github", log: DeliveryLog | None = None, wait_seconds: float = 3600, stopping: Any = None) -> Callable[[Delivery], tuple[int | None, str]]:
    """A run that hands the delivery to Prefect workers: it creates a flow run of the
    deployment (``mlops-event``, see prefect.yaml) with the payload and the repository's
    clone URL, records the flow run's id at ``/deliveries/ID`` at once, and waits for the
    run's end: the delivery's status, exit code and finish time are the run's own."""

    def run(delivery: Delivery) -> tuple[int | None, str]:
        from mlgitops.service.prefect_deploy import event_parameters, submit_deployment, wait_for

        payload = json.loads(delivery.payload_path.read_text())
        flow_run = submit_deployment(deployment, event_parameters(root, delivery.event, payload, None, forge))
        if log is not None:
            log.update(delivery.id, "running", f"Prefect flow run {flow_run} of {deployment}")
        code, line = wait_for(flow_run, deployment, wait_seconds, stopping=stopping)
        return code, line

    return run


def _child() -> list[str]:
    # -I: the installed mlgitops, never a `mlgitops/` (or `click.py`) in the checkout's folder.
    # The child enters through the dispatcher's one documented door (events.dispatch.child_main).
    return [sys.executable, "-I", "-m", "mlgitops.events.dispatch"]


def run_delivery(root: Path, delivery: Delivery, forge: str = "github", children: Children | None = None, worktrees: Path | None = None) -> tuple[int | None, str]:
    """One delivery, its event handled by a child process (the dispatcher); (exit code,
    or None when it was not run; detail). Each child runs as its own process group
    through ``children`` (ended by its ``stop``, which makes this raise Interrupted)."""
    children = children or Children()
    payload = json.loads(delivery.payload_path.read_text())
    tag = delivery.payload_path.stem  # the sha256 of the id: safe in a file name and a ref
    logs = root / ".mlops" / "webhook" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{tag}.log"
    env = {**os.environ, "GITHUB_EVENT_NAME": delivery.event, "GITHUB_REPOSITORY": (payload.get("repository") or {}).get("full_name") or os.environ.get("GITHUB_REPOSITORY", "")}
    for key in ("GITHUB_EVENT_PATH", "MLOPS_DEPLOYMENT"):
        env.pop(key, None)
    with open(log_path, "w") as out:

        def execute(request: dict[str, Any], cwd: Path) -> int:
            out.flush()
            argv = [*_child(), json.dumps(request)]
            return children.run(delivery.id, argv, cwd, env, out, timeout=600 if request.get("check_only") else 3600).returncode

        code, why = run_event(root, delivery.event, payload, delivery.payload_path, forge, execute, tag, worktrees)
        if why and code is not None:
            out.write(why + "\n")
    if code is None:
        return None, why
    return code, why or f"mlops run exited {code}; log: {log_path}"
