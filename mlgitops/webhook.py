"""`mlops webhook serve`: GitHub's webhook deliveries, verified, deduplicated, handed off.

A delivery is, in order:

1. bounded: a body over ``max_body`` bytes (GitHub sends at most 25 MB) is 413, read
   no further;
2. verified: ``X-Hub-Signature-256`` must be ``sha256=`` + HMAC-SHA256(secret, raw body),
   compared in constant time (``hmac.compare_digest``) *before* the body is parsed;
   unsigned, tampered and wrong-secret deliveries are 401 and leave no trace;
3. deduplicated by ``X-GitHub-Delivery`` in a SQLite table (a primary key, so two
   copies racing in are told apart atomically): a copy is 200 ``duplicate``;
4. answered at once: 202 with the delivery id, while a dispatcher runs the flow (a
   local run in the embedded default, a Prefect deployment run when one is
   configured). A full queue is 503 with Retry-After and the id is forgotten, so
   GitHub's redelivery is accepted later.

``GET /deliveries/{id}`` tells what became of a delivery; ``GET /healthz`` the queue.
The secret comes from the environment only and is never printed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

MAX_BODY = 25 * 1024 * 1024  # GitHub caps webhook payloads at 25 MB
HANDLED = ("pull_request", "push", "issue_comment")
SIGNATURE = "x-hub-signature-256"


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


class DeliveryLog:
    """Seen deliveries and what became of them, in SQLite (one row per delivery id)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._local = threading.local()
        with self._db() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS deliveries (id TEXT PRIMARY KEY, event TEXT, action TEXT, received_at TEXT, status TEXT, detail TEXT, exit_code INTEGER, finished_at TEXT)")

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

    def get(self, delivery_id: str) -> dict[str, Any] | None:
        row = self._db().execute("SELECT id, event, action, received_at, status, detail, exit_code, finished_at FROM deliveries WHERE id = ?", (delivery_id,)).fetchone()
        if row is None:
            return None
        return dict(zip(("id", "event", "action", "received_at", "status", "detail", "exit_code", "finished_at"), row))

    def unfinished(self) -> list[tuple[str, str, str | None]]:
        """Deliveries a stopped service accepted but never finished: (id, event, action)."""
        return self._db().execute("SELECT id, event, action FROM deliveries WHERE status IN ('queued', 'running') ORDER BY received_at").fetchall()

    def counts(self) -> dict[str, int]:
        return dict(self._db().execute("SELECT status, COUNT(*) FROM deliveries GROUP BY status").fetchall())


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def spool_path(spool: Path, delivery_id: str) -> Path:
    return spool / ("".join(c if c.isalnum() or c in "-_" else "_" for c in delivery_id) + ".json")


def resume(log: DeliveryLog, dispatcher: Any, spool: Path) -> list[str]:
    """Queue again what a stopped service had accepted but not finished (its payload
    is still in the spool); forget the rest, so GitHub's redelivery is taken."""
    requeued = []
    for delivery_id, event, action in log.unfinished():
        path = spool_path(spool, delivery_id)
        if path.is_file():
            log.update(delivery_id, "queued", "requeued after a restart")  # before a worker can take it
            if dispatcher.submit(Delivery(delivery_id, event, action, path)):
                requeued.append(delivery_id)
                continue
        log.forget(delivery_id)
    return requeued


def make_app(secret: bytes, log: DeliveryLog, dispatcher: Dispatcher, spool: Path, max_body: int = MAX_BODY) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    spool.mkdir(parents=True, exist_ok=True)

    def answer(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        return JSONResponse(body, status_code=status, headers=headers)

    async def receive(request: Request) -> Any:
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > max_body):
            return answer(413, {"error": f"body over {max_body} bytes"})
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body:
                return answer(413, {"error": f"body over {max_body} bytes"})
            chunks.append(chunk)
        body = b"".join(chunks)
        if not verified(secret, body, request.headers.get(SIGNATURE)):
            why = "missing" if not request.headers.get(SIGNATURE) else "does not match"
            return answer(401, {"error": f"X-Hub-Signature-256 {why}: the delivery is not from a webhook with this secret"})
        event = request.headers.get("x-github-event") or ""
        delivery_id = request.headers.get("x-github-delivery") or ""
        if not event or not delivery_id or len(delivery_id) > 100:
            return answer(400, {"error": "a delivery needs the X-GitHub-Event and X-GitHub-Delivery headers"})
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return answer(400, {"error": f"body is not JSON: {exc}", "hint": "set the webhook's content type to application/json"})
        if not isinstance(payload, dict):
            return answer(400, {"error": "body must be a JSON object"})
        action = payload.get("action") if isinstance(payload.get("action"), str) else None
        if event == "ping":
            return answer(200, {"status": "pong", "zen": payload.get("zen")})
        if not log.claim(delivery_id, event, action):
            return answer(200, {"status": "duplicate", "delivery": delivery_id})
        if event not in HANDLED:
            log.update(delivery_id, "ignored", f"event {event!r} starts no flow (handled: {', '.join(HANDLED)})")
            return answer(202, {"status": "ignored", "delivery": delivery_id, "reason": f"event {event!r} starts no flow"})
        path = spool_path(spool, delivery_id)
        path.write_bytes(body)
        if not dispatcher.submit(Delivery(delivery_id, event, action, path)):
            log.forget(delivery_id)  # GitHub's redelivery will be taken
            path.unlink(missing_ok=True)
            return answer(503, {"error": "the run queue is full; redeliver later"}, {"Retry-After": "60"})
        return answer(202, {"status": "queued", "delivery": delivery_id, "event": event})

    async def delivery_status(request: Request) -> Any:
        row = log.get(request.path_params["delivery_id"])
        return answer(200, row) if row is not None else answer(404, {"error": "no such delivery"})

    async def healthz(request: Request) -> Any:
        return answer(200, {"status": "ok", **dispatcher.stats(), "deliveries": log.counts()})

    return Starlette(routes=[Route("/", receive, methods=["POST"]), Route("/webhook", receive, methods=["POST"]), Route("/deliveries/{delivery_id}", delivery_status), Route("/healthz", healthz)])


class LocalDispatcher:
    """The embedded default: ``workers`` threads run ``mlops run`` for each delivery in
    a detached worktree of the clone at ``root`` (the payload's commit), sharing the
    clone's `.mlops/` cache; at most ``queue`` deliveries wait."""

    def __init__(self, root: Path, log: DeliveryLog, run: Callable[[Delivery], tuple[int | None, str]] | None = None, workers: int = 1, queue: int = 100, forge: str = "github") -> None:
        import queue as queue_mod

        self.log = log
        self.run = run or (lambda d: run_delivery(root, d, forge))
        self.jobs: Any = queue_mod.Queue(maxsize=queue)
        self.running = 0
        self.started = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._work, daemon=True, name=f"mlops-webhook-{i}") for i in range(workers)]
        for t in self.threads:
            t.start()

    def submit(self, delivery: Delivery) -> bool:
        import queue as queue_mod

        try:
            self.jobs.put_nowait(delivery)
            return True
        except queue_mod.Full:
            return False

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {"queued": self.jobs.qsize(), "running": self.running, "runs_started": self.started}

    def _work(self) -> None:
        while True:
            delivery = self.jobs.get()
            with self.lock:
                self.running += 1
                self.started += 1
            self.log.update(delivery.id, "running")
            try:
                code, detail = self.run(delivery)
                self.log.update(delivery.id, "ignored" if code is None else ("done" if code in (0, 1) else "failed"), detail, code)
            except Exception as exc:  # noqa: BLE001 - one bad delivery must not stop the worker
                self.log.update(delivery.id, "failed", f"{type(exc).__name__}: {exc}", 3)
            finally:
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


def deployment_runner(deployment: str, root: Path, forge: str = "github") -> Callable[[Delivery], tuple[int | None, str]]:
    """A run that hands the delivery to Prefect workers: it creates a flow run of the
    deployment (``mlops-event``, see prefect.yaml) with the payload and returns; the
    worker checks the payload's commit out of the clone at ``root`` and runs it there
    (flows/entry.py), with the same refusals as a local run (see ``refusal``)."""

    def run(delivery: Delivery) -> tuple[int | None, str]:
        from .prefect_deploy import submit_deployment

        payload = json.loads(delivery.payload_path.read_text())
        flow_run = submit_deployment(deployment, {"event_name": delivery.event, "payload": payload, "repo": str(root), "config": None, "forge": forge})
        return 0, f"handed to Prefect: flow run {flow_run} of {deployment}"

    return run


def refusal(root: Path, event: str, payload: dict[str, Any], forge: str) -> str | None:
    """Why a delivery must not run here, or None. A service holds a token: a fork's
    code never runs with it, and ChatOps needs a real permission source."""
    if event == "pull_request":
        pr = payload.get("pull_request") or {}
        head_repo = (pr.get("head") or {}).get("repo")
        base_repo = ((pr.get("base") or {}).get("repo") or {}).get("full_name") or (payload.get("repository") or {}).get("full_name")
        if head_repo is None or (isinstance(head_repo, dict) and head_repo.get("full_name") != base_repo):
            fork = head_repo.get("full_name") if isinstance(head_repo, dict) else "a deleted fork"
            return f"pull request from a fork ({fork}): its code is not run with this service's token"
    if event == "issue_comment" and forge == "local" and not (root / ".mlops" / "forge" / "collaborators.json").is_file():
        return "ChatOps from a delivery needs --forge github (permissions asked of GitHub) or .mlops/forge/collaborators.json"
    return None


def _child(args: list[str]) -> list[str]:
    # -I: the installed mlgitops, never a `mlgitops/` (or `click.py`) in the checkout's folder
    return [sys.executable, "-I", "-m", "mlgitops", *args]


@contextmanager
def checkout(root: Path, sha: str | None, label: str) -> Iterator[Path]:
    """A temporary detached worktree of the clone at ``sha`` (HEAD when None), sharing
    the clone's `.mlops/` cache; removed afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix="mlops-delivery-"))
    tree = tmp / "checkout"
    try:
        made = git_at(root, "worktree", "add", "--quiet", "--detach", str(tree), sha or "HEAD")
        if made.returncode != 0:
            raise RuntimeError(f"git worktree add failed for {label}: {made.stderr.strip()}")
        (root / ".mlops").mkdir(exist_ok=True)
        if not (tree / ".mlops").exists():
            (tree / ".mlops").symlink_to(root / ".mlops", target_is_directory=True)  # one cache for all runs
        yield tree
    finally:
        git_at(root, "worktree", "remove", "--force", str(tree))
        shutil.rmtree(tmp, ignore_errors=True)


def git_at(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)


def has_origin(root: Path) -> bool:
    return git_at(root, "remote", "get-url", "origin").returncode == 0


def prepare(root: Path, event: str, payload: dict[str, Any], tag: str) -> tuple[str | None, list[str], str]:
    """(commit to run at or None for the clone's HEAD, extra `mlops run` args, error).

    With an ``origin``, its branches are fetched first, the commit too when missing,
    and a PR is compared with ``origin/<base>`` (the clone's own branch may be stale)."""
    origin = has_origin(root)
    if origin:
        git_at(root, "fetch", "--quiet", "origin")
    if event == "pull_request":
        pr = payload.get("pull_request") or {}
        sha, number, base = (pr.get("head") or {}).get("sha"), pr.get("number"), (pr.get("base") or {}).get("ref")
        if sha and not _has_commit(root, sha) and origin and number:
            git_at(root, "fetch", "--quiet", "origin", f"+refs/pull/{number}/head:refs/mlops/{tag}")
        if not sha or not _has_commit(root, sha):
            return None, [], f"commit {str(sha)[:7]} of PR #{number} is not in the clone at {root}" + ("" if origin else " (it has no origin to fetch from)")
        return sha, (["--base", f"origin/{base}"] if origin and base and _has_commit(root, f"origin/{base}") else []), ""
    if event == "push":
        sha = payload.get("after")
        if sha and not _has_commit(root, sha):
            return None, [], f"commit {str(sha)[:7]} of the push is not in the clone at {root}"
        return sha, [], ""
    return None, [], ""


def _has_commit(root: Path, rev: str) -> bool:
    return git_at(root, "cat-file", "-e", f"{rev}^{{commit}}").returncode == 0


def run_delivery(root: Path, delivery: Delivery, forge: str = "github") -> tuple[int | None, str]:
    """`mlops run` for one delivery; (exit code, or None when it was not run; detail)."""
    payload = json.loads(delivery.payload_path.read_text())
    why = refusal(root, delivery.event, payload, forge)
    if why:
        return None, why
    logs = root / ".mlops" / "webhook" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{delivery.payload_path.stem}.log"
    base_args = ["run", "--event-path", str(delivery.payload_path), "--event-name", delivery.event, "--forge", forge]
    env = {**os.environ, "GITHUB_EVENT_NAME": delivery.event, "GITHUB_REPOSITORY": (payload.get("repository") or {}).get("full_name") or os.environ.get("GITHUB_REPOSITORY", "")}
    for key in ("GITHUB_EVENT_PATH", "MLOPS_DEPLOYMENT"):
        env.pop(key, None)
    with open(log_path, "w") as out:

        def run(args: list[str], cwd: Path) -> int:
            return subprocess.run(_child(args), cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=3600).returncode

        if delivery.event == "issue_comment":
            # Decide in the clone (trusted code, the default branch) before any PR code
            # is checked out; only an accepted retrain runs at the PR's head.
            check = subprocess.run(_child([*base_args, "--check-command"]), cwd=root, env=env, capture_output=True, text=True, timeout=600)
            out.write(check.stdout + check.stderr)
            issue = payload.get("issue") or {}
            if check.returncode == 0 and check.stdout.startswith("accepted retrain") and issue.get("number"):
                if has_origin(root):
                    git_at(root, "fetch", "--quiet", "origin", f"+refs/pull/{issue['number']}/head:refs/mlops/{delivery.payload_path.stem}")
                head = git_at(root, "rev-parse", f"refs/mlops/{delivery.payload_path.stem}").stdout.strip() or None
                with checkout(root, head, f"PR #{issue['number']}") as tree:
                    code = run(base_args, tree)
                git_at(root, "update-ref", "-d", f"refs/mlops/{delivery.payload_path.stem}")
            else:
                code = run(base_args, root)
            return code, f"mlops run exited {code}; log: {log_path}"
        sha, extra, error = prepare(root, delivery.event, payload, delivery.payload_path.stem)
        if error:
            out.write(error + "\n")
            return 2, error
        try:
            with checkout(root, sha, delivery.id) as tree:
                code = run([*base_args, *extra], tree)
        finally:
            git_at(root, "update-ref", "-d", f"refs/mlops/{delivery.payload_path.stem}")
    return code, f"mlops run exited {code}; log: {log_path}"
