"""`mlops webhook serve` under abuse: one test per attack, against the real service on
127.0.0.1 over real sockets (issue 11).

The service runs as a process (its memory is read from /proc, it is sent signals), with
short deadlines set by the tests; every wait is bounded.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.helpers import GitRepo

SECRET = b"abuse-test-secret"
MB = 1024 * 1024
GITHUB_MAX_PAYLOAD = 25 * MB  # "Payloads are capped at 25 MB" (GitHub docs, webhook events and payloads)
ISSUE_BODY = 20 * MB  # the attack as reported: 20 MB bodies, left unfinished
HEADER_TIMEOUT, BODY_TIMEOUT = 1, 2  # seconds, short for the tests; the defaults are 10 and 30
PER_CLIENT, UNFINISHED = 2, 4

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and uses 127.0.0.N source addresses")


def sign(body: bytes) -> str:
    return "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()


class Service:
    """`mlops webhook serve` as a process; ``boot`` replaces the command it starts."""

    def __init__(self, repo: Path, tmp: Path, *options: str, boot: str | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "MLOPS_", "RUNNER_"))}
        env.update(MLOPS_WEBHOOK_SECRET=SECRET.decode(), TMPDIR=str(tmp))
        args = ["webhook", "serve", "--port", "0", "--repo", str(repo), "--forge", "local", *options]
        argv = [sys.executable, "-c", boot, *args] if boot else [sys.executable, "-m", "mlgitops", *args]
        self.proc = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
        self.said: list[str] = []
        for _ in range(20):  # bounded: a few lines come before the address
            line = self.proc.stderr.readline()
            self.said.append(line)
            if not line or "webhook service on http://127.0.0.1:" in line:
                break
        assert "webhook service on" in self.said[-1], self.said
        self.port = int(self.said[-1].split("http://127.0.0.1:")[1].split("/")[0])
        threading.Thread(target=lambda: self.said.extend(self.proc.stderr), daemon=True).start()

    def connect(self, source: str = "127.0.0.1") -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10, source_address=(source, 0))

    def post(self, body: bytes, event: str = "push", delivery: str = "d-1") -> tuple[int, dict]:
        headers = {"Content-Type": "application/json", "X-GitHub-Event": event, "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": sign(body)}
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/webhook", data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as resp:
            return json.loads(resp.read())

    def memory(self, field: str = "VmRSS") -> int:
        """Bytes of the service's resident memory (``VmHWM``: its peak so far)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise AssertionError(field)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def head(headers: dict[str, str], path: str = "/webhook") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()


def delivery_head(length: int | None, signature: str | None, delivery: str = "d-x", chunked: bool = False) -> bytes:
    headers = {"Content-Type": "application/json", "X-GitHub-Event": "push", "X-GitHub-Delivery": delivery}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    if chunked:
        headers["Transfer-Encoding"] = "chunked"
    elif length is not None:
        headers["Content-Length"] = str(length)
    return head(headers)


def answer(sock: socket.socket, timeout: float = 10) -> tuple[int, dict, dict[str, str], bool]:
    """(status, JSON body, headers, whether the server then closed the connection)."""
    sock.settimeout(timeout)
    resp = http.client.HTTPResponse(sock, method="POST")
    resp.begin()
    body = json.loads(resp.read())
    try:
        closed = sock.recv(1) == b""
    except ConnectionResetError:
        closed = True
    except socket.timeout:
        closed = False
    sock.close()
    return resp.status, body, {k.lower(): v for k, v in resp.getheaders()}, closed


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("webhook-abuse")
    repo = GitRepo(tmp / "repo")
    repo.gen({"README.md": "x\n"}).commit("init")
    options = ["--record-only", "--header-timeout", str(HEADER_TIMEOUT), "--body-timeout", str(BODY_TIMEOUT), "--max-unfinished-per-client", str(PER_CLIENT), "--max-unfinished", str(UNFINISHED)]
    svc = Service(repo.path, tmp, *options)
    # Warm up every path a delivery takes (a body big enough to go to a temporary file).
    warm = json.dumps({"after": "0" * 40, "padding": "x" * MB}).encode()
    assert svc.post(warm, delivery="warm-up")[0] == 202
    yield svc
    svc.stop()


def test_unsigned_20_mb_bodies_are_refused_before_a_byte_is_read(service: Service) -> None:
    """The attack: 8 unsigned 20 MB bodies, a few KB sent of each. Each is 401 at once
    and its connection closed; the service reads none of them."""
    before = service.memory()
    socks = [service.connect() for _ in range(8)]
    for i, sock in enumerate(socks):
        signature = None if i % 2 else "sha1=" + "0" * 40  # missing, or not an X-Hub-Signature-256
        sock.sendall(delivery_head(ISSUE_BODY, signature, f"unsigned-{i}") + b"{" * 4096)
    answers = [answer(sock) for sock in socks]
    assert answers[1][:2] == (401, {"error": "X-Hub-Signature-256 missing: the delivery is not from a webhook with this secret"})
    assert answers[0][:2] == (401, {"error": "X-Hub-Signature-256 is not sha256=<64 hex digits>: the delivery is not from a webhook with this secret"})
    assert [(status, closed) for status, _, _, closed in answers] == [(401, True)] * 8
    assert service.memory() - before < 4 * MB  # not one of the bodies is held


def test_stalled_20_mb_bodies_hold_no_memory_are_capped_and_cut_at_the_deadline(service: Service) -> None:
    """Signed-looking 20 MB bodies sent but for their last KB, then stalled: the service
    streams them through the HMAC and a bounded buffer (its peak memory grows by far
    less than one such body), refuses more of them per client (429) and in all (503),
    and answers each 408 once the body deadline passes."""
    body = b"x" * ISSUE_BODY
    signature = sign(body)
    baseline = service.memory()
    sources = ["127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.4"]  # 127.0.0.2 at its cap of 2, 4 in all
    socks = [service.connect(source) for source in sources]
    for i, sock in enumerate(socks):
        sock.sendall(delivery_head(ISSUE_BODY, signature, f"stall-{i}"))
    deadline = time.monotonic() + BODY_TIMEOUT  # bounded: they are cut off by then
    while service.get("/healthz")["arriving"] < len(socks) and time.monotonic() < deadline:
        time.sleep(0.02)
    over_client, over_all = service.connect("127.0.0.2"), service.connect("127.0.0.5")
    for sock in (over_client, over_all):
        sock.sendall(delivery_head(ISSUE_BODY, signature, "one-too-many"))
    status, said, headers, closed = answer(over_client)
    assert (status, said, headers["retry-after"], closed) == (429, {"error": f"{PER_CLIENT} deliveries from 127.0.0.2 are still arriving; retry later"}, str(BODY_TIMEOUT), True)
    status, said, headers, closed = answer(over_all)
    assert (status, said, headers["retry-after"], closed) == (503, {"error": f"{UNFINISHED} deliveries are still arriving; retry later"}, str(BODY_TIMEOUT), True)

    def send(sock: socket.socket) -> None:
        try:
            sock.sendall(body[:-1024])  # all but the last KB, then nothing
        except OSError:
            pass  # cut off (408) while still sending: the answers below say so

    senders = [threading.Thread(target=send, args=(sock,)) for sock in socks]
    for t in senders:
        t.start()
    for t in senders:
        t.join(30)
    answers = [answer(sock, timeout=BODY_TIMEOUT + 10) for sock in socks]
    assert [(status, said, closed) for status, said, _, closed in answers] == [(408, {"error": f"the body did not arrive within {BODY_TIMEOUT} s"}, True)] * 4
    peak = service.memory("VmHWM")
    assert peak - baseline < 16 * MB, f"the service's peak memory grew by {(peak - baseline) / MB:.0f} MB"
    assert service.get("/healthz")["arriving"] == 0


def test_a_stalled_five_byte_body_is_408_at_the_deadline(service: Service) -> None:
    sock = service.connect()
    sock.sendall(delivery_head(100, sign(b"x" * 100), "five-bytes") + b'{"a":')
    assert answer(sock, timeout=BODY_TIMEOUT + 10)[::3] == (408, True)


def test_stalled_request_heads_are_408_and_closed(service: Service) -> None:
    """uvicorn has no deadline for a request head: a connection that sends nothing, or
    half its headers, would be held for ever."""
    silent, half = service.connect(), service.connect()
    half.sendall(b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nX-GitHub-Event: pu")
    for sock in (silent, half):
        status, said, _, closed = answer(sock, timeout=HEADER_TIMEOUT + 10)
        assert (status, said, closed) == (408, {"error": f"the request head did not arrive within {HEADER_TIMEOUT} s"}, True)


def test_bodies_over_githubs_25_mb_are_413_declared_or_streamed(service: Service) -> None:
    """Declared: refused from the head. Streamed (chunked, no length): cut off once past
    the limit. Exactly 25 MB is still taken in."""
    declared = service.connect()
    declared.sendall(delivery_head(GITHUB_MAX_PAYLOAD + 1, "sha256=" + "0" * 64, "too-big"))
    assert answer(declared)[::3] == (413, True)
    exact = service.connect()
    exact.sendall(delivery_head(GITHUB_MAX_PAYLOAD, "sha256=" + "0" * 64, "just-fits"))
    streamed = service.connect()
    streamed.sendall(delivery_head(None, "sha256=" + "0" * 64, "streamed", chunked=True))
    chunk = b"x" * MB
    try:
        for _ in range(GITHUB_MAX_PAYLOAD // MB + 2):  # bounded: 27 MB at most
            streamed.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    except OSError:
        pass  # the service closed it after answering
    status, said, _, closed = answer(streamed)
    assert (status, said, closed) == (413, {"error": f"body over {GITHUB_MAX_PAYLOAD} bytes"}, True)
    exact.sendall(b"x" * 10)  # not refused for its size: it stalls into the body deadline
    assert answer(exact, timeout=BODY_TIMEOUT + 10)[0] == 408


def nested(depth: int) -> bytes:
    return b'{"after": "' + b"0" * 40 + b'", "deep": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


def test_deeply_nested_signed_json_is_400_not_a_crash(service: Service) -> None:
    """Python's json raises RecursionError near 1,000 levels (a 500 before); the service
    refuses anything deeper than 400 levels as it refuses invalid JSON."""
    status, said = service.post(nested(100_000), delivery="deep")
    assert (status, said) == (400, {"error": "body nests arrays and objects deeper than 400 levels"})
    assert service.post(nested(401), delivery="deep-401") == (400, {"error": "body nests arrays and objects deeper than 400 levels"})
    assert service.post(nested(400), delivery="deep-400")[0] == 202
    assert service.post(b'{"s": "\\"' + b"[" * 5000 + b'", "after": "x"}', delivery="brackets-in-a-string")[0] == 202  # no levels


def test_delivery_ids_that_differ_only_in_punctuation_keep_their_own_payloads(tmp_path: Path) -> None:
    """``a/b`` and ``a_b`` once mapped to one spool file: the second overwrote the first's
    payload, which then ran with the wrong event."""
    from tests.test_webhook import Service as InProcess

    seen: dict[str, bytes] = {}
    gate = threading.Event()

    def run(delivery: Any) -> tuple[int, str]:
        assert gate.wait(30)
        seen[delivery.id] = delivery.payload_path.read_bytes()
        return 0, "read"

    svc = InProcess(tmp_path, run)
    try:
        bodies = {"a/b": b'{"after": "1", "n": 1}', "a_b": b'{"after": "2", "n": 2}', "../a.b": b'{"after": "3", "n": 3}'}
        for delivery, body in bodies.items():
            assert svc.post(body, event="push", delivery=delivery)[0] == 202
        spooled = [p for p in (tmp_path / "payloads").iterdir() if p.suffix == ".json"]
        assert sorted(p.read_bytes() for p in spooled) == sorted(bodies.values())  # three files, inside the spool
        gate.set()
        assert svc.dispatcher.drain(30)
        assert seen == bodies
    finally:
        gate.set()
        svc.stop()


# The service as users run it, but its `mlops run` child replaced by a stand-in that
# records each run, starts a grandchild (as a training command would) and, while the
# hold file exists, keeps running.
BOOT = """
import sys
import mlgitops.service.webhook
mlgitops.service.webhook._child = lambda: [sys.executable, {fake!r}]
from mlgitops.cli import main
main(sys.argv[1:], prog_name="mlops")
"""
FAKE_RUN = """
import os, pathlib, subprocess, sys, time
grandchild = subprocess.Popen(["sleep", "60"])
with open({runs!r}, "a") as out:
    out.write(f"{{os.getpid()}} {{grandchild.pid}} {{os.getcwd()}}\\n")
deadline = time.monotonic() + 60  # bounded, should a test fail to end it
while pathlib.Path({hold!r}).exists() and time.monotonic() < deadline:
    time.sleep(0.05)
"""


class Runs:
    """The stand-in's record of its runs: ``child grandchild worktree`` a line."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.log, self.hold = tmp, tmp / "runs.txt", tmp / "hold"
        self.hold.touch()
        fake = tmp / "fake_run.py"
        fake.write_text(FAKE_RUN.format(runs=str(self.log), hold=str(self.hold)))
        self.boot = BOOT.format(fake=str(fake))

    def end(self) -> None:
        """Whatever happened in the test: no stand-in run is left running."""
        self.hold.unlink(missing_ok=True)
        for line in self.lines():
            for pid in map(int, line[:2]):
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)

    def lines(self) -> list[list[str]]:
        return [line.split() for line in self.log.read_text().splitlines()] if self.log.is_file() else []

    def wait(self, count: int) -> list[str]:
        deadline = time.monotonic() + 30
        while len(self.lines()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.lines()) == count
        return self.lines()[-1]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie has ended; only its parent has not looked yet


def leftovers(tmp: Path) -> list[str]:
    """What is left in the service's own folder for run worktrees."""
    return sorted(p.name for base in tmp.glob("mlops-webhook-*/*") for p in base.iterdir())


def push(repo: GitRepo, svc: Service, delivery: str) -> None:
    body = json.dumps({"ref": "refs/heads/main", "after": repo.git("rev-parse", "HEAD"), "repository": {"full_name": "acme/models"}}).encode()
    assert svc.post(body, delivery=delivery) == (202, {"status": "queued", "delivery": delivery, "event": "push"})


def finished(svc: Service, delivery: str) -> dict:
    deadline = time.monotonic() + 30
    while (row := svc.get(f"/deliveries/{delivery}"))["status"] not in ("done", "failed", "ignored") and time.monotonic() < deadline:
        time.sleep(0.05)
    return row


@pytest.fixture
def runs(tmp_path: Path) -> Iterator[Runs]:
    runs = Runs(tmp_path)
    yield runs
    runs.end()


def test_sigterm_ends_the_running_delivery_and_a_restart_runs_it_once(tmp_path: Path, runs: Runs) -> None:
    """Before: the child was orphaned and kept running, its worktree stayed, and the
    restart ran the delivery again alongside it."""
    repo = GitRepo(tmp_path / "repo")
    repo.gen({"README.md": "x\n"}).commit("init")
    svc = Service(repo.path, tmp_path, "--stop-grace", "1", boot=runs.boot)
    try:
        push(repo, svc, "d-term")
        child, grandchild, tree = runs.wait(1)
        assert alive(int(child)) and alive(int(grandchild)) and Path(tree).is_dir()
        svc.proc.send_signal(signal.SIGTERM)
        svc.proc.wait(timeout=30)
    finally:
        svc.stop()
    assert not alive(int(child)) and not alive(int(grandchild))
    assert not Path(tree).exists() and leftovers(tmp_path) == [] and repo.git("worktree", "list").count("\n") == 0
    assert list(tmp_path.glob("mlops-webhook-*/*")) == []  # its folder for worktrees too
    from mlgitops.service.webhook import DeliveryLog

    row = DeliveryLog(repo.path / ".mlops" / "webhook" / "deliveries.sqlite").get("d-term")
    assert (row["status"], row["detail"]) == ("interrupted", "the service stopped during the run; a restart runs it again once")
    runs.hold.unlink()
    again = Service(repo.path, tmp_path, boot=runs.boot)
    try:
        assert "requeued 1 delivery(ies) a previous run accepted but did not finish\n" in again.said
        row = finished(again, "d-term")
        assert (row["status"], row["exit_code"]) == ("done", 0)
    finally:
        again.stop()
    assert len(runs.lines()) == 2  # the interrupted run and one more
    assert leftovers(tmp_path) == [] and repo.git("worktree", "list").count("\n") == 0


def test_a_restart_after_the_service_was_killed_ends_the_leftover_run_first(tmp_path: Path, runs: Runs) -> None:
    """SIGKILL gives the service no chance to end its child (it runs on, in its own
    process group): the next start ends that group and removes the worktree before it
    runs the delivery again, once."""
    repo = GitRepo(tmp_path / "repo")
    repo.gen({"README.md": "x\n"}).commit("init")
    svc = Service(repo.path, tmp_path, boot=runs.boot)
    try:
        push(repo, svc, "d-kill")
        child, grandchild, tree = runs.wait(1)
        svc.proc.kill()
        svc.proc.wait(timeout=30)
    finally:
        svc.stop()
    assert alive(int(child)) and alive(int(grandchild)) and Path(tree).is_dir()
    again = Service(repo.path, tmp_path, "--stop-grace", "1", boot=runs.boot)
    try:
        assert not alive(int(child)) and not alive(int(grandchild)) and not Path(tree).exists()  # before it serves
        runs.hold.unlink()
        row = finished(again, "d-kill")
        assert (row["status"], row["exit_code"]) == ("done", 0)
    finally:
        again.stop()
    assert len(runs.lines()) == 2
    assert leftovers(tmp_path) == [] and repo.git("worktree", "list").count("\n") == 0


def test_a_delivery_interrupted_twice_is_not_run_a_third_time(tmp_path: Path) -> None:
    from mlgitops.service.webhook import DeliveryLog, resume, spool_path

    class Taker:
        taken: list[str] = []

        def submit(self, delivery: Any) -> bool:
            self.taken.append(delivery.id)
            return True

    log, spool, taker = DeliveryLog(tmp_path / "d.sqlite"), tmp_path / "payloads", Taker()
    spool.mkdir()
    assert log.claim("twice", "push", None)
    spool_path(spool, "twice").write_text("{}")
    log.update("twice", "interrupted")
    assert resume(log, taker, spool, grace=0) == ["twice"]  # the first restart runs it again
    log.update("twice", "interrupted")  # and the service is stopped during that run too
    assert resume(log, taker, spool, grace=0) == [] and taker.taken == ["twice"]
    row = log.get("twice")
    assert (row["status"], row["detail"]) == ("failed", "the run was interrupted twice by a service stop; not run again (see its log)")
    assert not spool_path(spool, "twice").exists()
