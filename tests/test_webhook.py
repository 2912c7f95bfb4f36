"""`mlops webhook serve`: signed GitHub deliveries over real HTTP (uvicorn on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import pytest

from mlgitops.service.webhook import Delivery, DeliveryLog, LocalDispatcher, signature, spool_path, verified
from mlgitops.service.http import Limits, make_app
from tests.github_standin import SHARED
from tests.helpers import GitRepo
from tests.test_prefect_deploy import pr_payload

SECRET = b"webhook-secret-for-tests"
VECTOR = SHARED / "signatures" / "hmac-test-vector.json"
EXAMPLES = SHARED / "webhooks" / "octokit-webhooks" / "api.github.com"


def test_githubs_published_test_vector() -> None:
    (vector,) = json.loads(VECTOR.read_text())["vectors"]
    secret, body, header = vector["secret"].encode(), vector["payload"].encode(), vector["X-Hub-Signature-256"]
    assert signature(secret, body) == header
    assert verified(secret, body, header)
    assert not verified(b"another secret", body, header)
    assert not verified(secret, b"Hello, World?", header)
    assert not verified(secret, body, header.replace("sha256=", "sha1="))
    assert not verified(secret, body, None) and not verified(secret, body, "")


class Recorder:
    """A run that records what it was handed; ``gate`` holds runs until set."""

    def __init__(self) -> None:
        self.runs: list[str] = []
        self.gate = threading.Event()
        self.gate.set()
        self.lock = threading.Lock()

    def __call__(self, delivery: Delivery) -> tuple[int, str]:
        assert self.gate.wait(30)
        with self.lock:
            self.runs.append(delivery.id)
        return 0, "recorded"


class Service:
    def __init__(self, root: Path, run: Any, queue: int = 100, max_body: int = 1 << 20) -> None:
        from mlgitops.service.asgi import bind_server

        self.log = DeliveryLog(root / "deliveries.sqlite")
        self.dispatcher = LocalDispatcher(root, self.log, run=run, queue=queue)
        app = make_app(SECRET, self.log, self.dispatcher, root / "payloads", Limits(max_body=max_body))
        self.server, sock, self.port = bind_server(app, "127.0.0.1", 0, header_timeout=10)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)

    def post(self, body: bytes, event: str = "pull_request", delivery: str | None = None, sign: bytes | None = SECRET, headers: dict[str, str] | None = None) -> tuple[int, dict, dict]:
        h = {"Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/044aadd", "X-GitHub-Event": event, "X-GitHub-Delivery": delivery or str(uuid.uuid4()), "X-GitHub-Hook-ID": "12312312"}
        if sign is not None:
            h["X-Hub-Signature-256"] = signature(sign, body)
        h.update(headers or {})
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/webhook", data=body, headers=h, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read()), {k.lower(): v for k, v in resp.headers.items()}
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read()), {k.lower(): v for k, v in exc.headers.items()}

    def get(self, path: str) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[Service, Recorder]]:
    recorder = Recorder()
    svc = Service(tmp_path, recorder)
    yield svc, recorder
    recorder.gate.set()
    svc.stop()


def example(event: str, name: str = "opened") -> bytes:
    path = EXAMPLES / event / f"{name}.payload.json"
    return path.read_bytes() if path.is_file() else json.dumps({"action": name, "repository": {"full_name": "acme/models"}}).encode()


def test_forged_unsigned_and_tampered_deliveries_are_401_and_leave_no_trace(service: Any) -> None:
    svc, recorder = service
    body = example("pull_request")
    assert svc.post(body, sign=None)[:2] == (401, {"error": "X-Hub-Signature-256 missing: the delivery is not from a webhook with this secret"})
    assert svc.post(body, sign=b"wrong secret")[:2] == (401, {"error": "X-Hub-Signature-256 does not match: the delivery is not from a webhook with this secret"})
    tampered = svc.post(body.replace(b'"opened"', b'"closed"', 1), headers={"X-Hub-Signature-256": signature(SECRET, body)})
    assert tampered[0] == 401
    assert svc.post(body, headers={"X-Hub-Signature-256": "sha1=" + signature(SECRET, body)[7:]})[0] == 401
    assert svc.log.counts() == {} and recorder.runs == [] and not list((svc.log.path.parent / "payloads").iterdir())


def test_a_delivery_is_answered_at_once_and_run_once(service: Any) -> None:
    svc, recorder = service
    recorder.gate.clear()  # the run cannot finish until the test says so
    body = example("pull_request")
    status, answer, _ = svc.post(body, delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    assert (status, answer) == (202, {"status": "queued", "delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958", "event": "pull_request"})
    assert svc.get("/deliveries/72d3162e-cc78-11e3-81ab-4c9367dc0958")[1]["status"] in ("queued", "running")  # answered before the run ended
    again = svc.post(body, delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    assert again[:2] == (200, {"status": "duplicate", "delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"})
    recorder.gate.set()
    assert svc.dispatcher.drain(30)
    assert recorder.runs == ["72d3162e-cc78-11e3-81ab-4c9367dc0958"]
    row = svc.get("/deliveries/72d3162e-cc78-11e3-81ab-4c9367dc0958")[1]
    assert (row["event"], row["action"], row["status"], row["exit_code"], row["detail"]) == ("pull_request", "opened", "done", 0, "recorded")
    assert svc.get("/deliveries/nope") == (404, {"error": "no such delivery"})
    health = svc.get("/healthz")[1]
    assert health == {"status": "ok", "queued": 0, "running": 0, "runs_started": 1, "arriving": 0, "deliveries": {"done": 1}}


def test_ping_other_events_bad_bodies_and_limits(service: Any, tmp_path: Path) -> None:
    svc, recorder = service
    assert svc.post(json.dumps({"zen": "Design for failure.", "hook_id": 1}).encode(), event="ping")[:2] == (200, {"status": "pong", "zen": "Design for failure."})
    status, answer, _ = svc.post(example("check_run", "completed"), event="check_run", delivery="d-check")
    assert (status, answer["status"]) == (202, "ignored") and svc.log.get("d-check")["status"] == "ignored"
    assert svc.post(b"payload=%7B%7D", headers={"Content-Type": "application/x-www-form-urlencoded"})[:2] == (400, {"error": "body is not JSON: Expecting value: line 1 column 1 (char 0)", "hint": "set the webhook's content type to application/json"})
    assert svc.post(b"{}", headers={"X-GitHub-Delivery": ""})[0] == 400
    # A declared length over the limit is refused before a byte of the body is read.
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", svc.port, timeout=10)
    conn.putrequest("POST", "/webhook")
    for k, v in {"Content-Type": "application/json", "X-GitHub-Event": "push", "X-GitHub-Delivery": "big", "X-Hub-Signature-256": "sha256=" + "0" * 64, "Content-Length": str((1 << 20) + 1)}.items():
        conn.putheader(k, v)
    conn.endheaders()
    resp = conn.getresponse()
    assert (resp.status, json.loads(resp.read())) == (413, {"error": f"body over {1 << 20} bytes"})
    conn.close()
    assert recorder.runs == []


def test_a_full_queue_is_503_and_the_redelivery_is_taken_later(tmp_path: Path) -> None:
    recorder = Recorder()
    recorder.gate.clear()
    svc = Service(tmp_path, recorder, queue=1)
    try:
        body = example("push", "simple") if (EXAMPLES / "push" / "simple.payload.json").is_file() else example("push")
        assert svc.post(body, event="push", delivery="a")[0] == 202  # taken by the worker
        deadline = time.monotonic() + 10
        while svc.dispatcher.stats()["running"] == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert svc.post(body, event="push", delivery="b")[0] == 202  # waits in the queue
        status, answer, headers = svc.post(body, event="push", delivery="c")
        assert (status, answer, headers.get("retry-after")) == (503, {"error": "the run queue is full; redeliver later"}, "60")
        assert svc.log.get("c") is None  # forgotten: not a duplicate next time
        recorder.gate.set()
        assert svc.dispatcher.drain(30)
        assert svc.post(body, event="push", delivery="c")[0] == 202
        assert svc.dispatcher.drain(30) and recorder.runs == ["a", "b", "c"]
    finally:
        recorder.gate.set()
        svc.stop()


def test_a_restart_requeues_what_was_accepted_but_not_run(tmp_path: Path) -> None:
    from mlgitops.service.webhook import resume

    log = DeliveryLog(tmp_path / "deliveries.sqlite")
    spool = tmp_path / "payloads"
    spool.mkdir()
    for delivery_id in ("kept", "lost"):
        assert log.claim(delivery_id, "push", None)
    spool_path(spool, "kept").write_text("{}")  # "lost" has no payload any more
    recorder = Recorder()
    dispatcher = LocalDispatcher(tmp_path, log, run=recorder)
    assert resume(log, dispatcher, spool) == ["kept"]
    assert dispatcher.drain(30) and recorder.runs == ["kept"]
    assert log.get("kept")["status"] == "done" and log.get("lost") is None  # a redelivery of "lost" is taken


def test_a_burst_with_duplicates_and_forgeries_runs_each_delivery_once(service: Any) -> None:
    svc, recorder = service
    body = example("pull_request", "synchronize")
    ids = [f"burst-{i}" for i in range(120)]
    sends = [(i, SECRET) for i in ids] + [(i, SECRET) for i in ids[::3]] + [(f"forged-{i}", b"attacker") for i in range(40)]
    sends.sort(key=lambda s: hash(s[0]) % 97)  # interleaved
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda s: svc.post(body, delivery=s[0], sign=s[1])[:2], sends))
    codes = [a[0] for a in answers]
    assert codes.count(202) == 120 and codes.count(200) == 40 and codes.count(401) == 40
    assert svc.dispatcher.drain(60)
    assert sorted(recorder.runs) == sorted(ids)  # none lost, duplicates run once, forgeries never


def test_cli_refuses_to_start_without_a_secret_or_on_a_busy_port(cli_noprefect: Any, repo: GitRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    repo.gen({"README.md": "x\n"}).commit("init")
    monkeypatch.delenv("MLOPS_WEBHOOK_SECRET", raising=False)
    result = cli_noprefect("webhook", "serve", "--port", "0", cwd=repo.path)
    assert result.exit_code == 2
    assert result.output == "error: the webhook secret is not set: $MLOPS_WEBHOOK_SECRET is empty\n  hint: export MLOPS_WEBHOOK_SECRET=<the secret set on the GitHub webhook> (it is never read from a flag or a file)\n"
    monkeypatch.setenv("MLOPS_WEBHOOK_SECRET", "s3cret-value")
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        no_token = cli_noprefect("webhook", "serve", "--port", str(busy.getsockname()[1]), cwd=repo.path)
        assert "MLOPS_WEBHOOK_SECRET" not in os.environ  # taken out of the environment runs inherit
        monkeypatch.setenv("MLOPS_WEBHOOK_SECRET", "s3cret-value")
        taken = cli_noprefect("webhook", "serve", "--forge", "local", "--port", str(busy.getsockname()[1]), cwd=repo.path)
    finally:
        busy.close()
    assert no_token.exit_code == 2 and "error: --forge github needs GITHUB_TOKEN in the service's environment" in no_token.output
    assert taken.exit_code == 2 and "cannot listen on 127.0.0.1:" in taken.output and "s3cret-value" not in taken.output


def test_real_runs_from_deliveries_a_pull_request_and_a_chatops_comment(prefect_api: str, example_repo: GitRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    """The embedded runner: `mlops run` in a worktree at the payload's commit, the
    clone's `.mlops/` shared; results on the local forge of the clone."""
    repo = example_repo
    repo.branch("feature").edit("mlops.yaml", "max_depth: 2", "max_depth: 3").commit("deeper")
    head = repo.git("rev-parse", "HEAD")
    repo.checkout("main")  # the service's clone sits on main; the run uses the PR's commit
    monkeypatch.setenv("PREFECT_API_URL", prefect_api)
    forge_dir = repo.path / ".mlops" / "forge"
    forge_dir.mkdir(parents=True)
    (forge_dir / "collaborators.json").write_text(json.dumps({"Codertocat": "write"}))  # the local forge's permissions
    for key in ("GITHUB_ACTIONS", "GITHUB_EVENT_PATH", "GITHUB_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    state = repo.path / ".mlops" / "webhook"
    log = DeliveryLog(state / "deliveries.sqlite")
    dispatcher = LocalDispatcher(repo.path, log, forge="local")
    from mlgitops.service.asgi import bind_server

    server, sock, port = bind_server(make_app(SECRET, log, dispatcher, state / "payloads"), "127.0.0.1", 0)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        pr = pr_payload(repo, 41, head)
        comment = json.loads((EXAMPLES / "issue_comment" / "created.1.payload.json").read_text())
        comment["issue"].update(number=41, pull_request={"url": "https://api.github.com/repos/acme/models/pulls/41"})
        comment["comment"].update(id=77, body="/mlops help")
        comment["repository"].update(full_name="acme/models", default_branch="main")
        fork = json.loads(json.dumps(pr))
        fork["pull_request"]["head"]["repo"]["full_name"] = "mallory/models"
        for event, payload, delivery in (("pull_request", pr, "d-pr"), ("issue_comment", comment, "d-chat"), ("pull_request", fork, "d-fork")):
            body = json.dumps(payload).encode()
            req = urllib.request.Request(f"http://127.0.0.1:{port}/webhook", data=body, method="POST", headers={"Content-Type": "application/json", "X-GitHub-Event": event, "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": signature(SECRET, body)})
            with urllib.request.urlopen(req, timeout=10) as resp:
                assert resp.status == 202
        assert dispatcher.drain(300)
        logs = repo.path / ".mlops" / "webhook" / "logs"
        assert log.get("d-pr")["exit_code"] == 0, (logs / f"{spool_path(logs, 'd-pr').stem}.log").read_text()
        assert log.get("d-chat")["exit_code"] == 0, (logs / f"{spool_path(logs, 'd-chat').stem}.log").read_text()
        sticky = (repo.path / ".mlops" / "forge" / "pr-41" / "comment.md").read_text()
        assert "- `training.params.max_depth`: `2` → `3`" in sticky
        statuses = json.loads((repo.path / ".mlops" / "forge" / "statuses" / f"{head}.json").read_text())
        assert statuses["mlops/gate"]["state"] == "success"  # exit code 0 above: the gate passed
        comments = json.loads((repo.path / ".mlops" / "forge" / "pr-41" / "comments.json").read_text())
        assert comments[-1]["body"].startswith("<!-- mlgitops:chatops reply-to=") and " -->\n> `/mlops help`\n\n@Codertocat: Commands" in comments[-1]["body"]
        assert log.get("d-fork")["status"] == "ignored" and log.get("d-fork")["detail"] == "pull request from a fork (mallory/models): its code is not run with this service's token"
        assert not list((state / "payloads").iterdir())  # the spool keeps waiting deliveries only
        assert repo.git("worktree", "list").count("\n") == 0  # the run's worktrees are gone
        assert repo.git("rev-parse", "--abbrev-ref", "HEAD") == "main" and repo.git("status", "--porcelain") in ("", "?? .mlops/")
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_the_service_as_users_run_it_reports_to_github(prefect_api: str, example_repo: GitRepo, tmp_path: Path) -> None:
    """`mlops webhook serve` as a process, its default --forge github, against the GitHub
    stand-in over HTTP: a PR's comment and status, ChatOps answered, a reader refused."""
    import os
    import subprocess
    import sys

    from tests.github_standin import StandIn

    token = "ghs_service_token_321"
    github = StandIn(token=token).start()
    remote = github.add_repo("acme/models")
    remote.collaborators.update({"alice": "write", "carol": "read"})
    repo = example_repo
    repo.branch("feature").edit("mlops.yaml", "max_depth: 2", "max_depth: 3").commit("deeper")
    head = repo.git("rev-parse", "HEAD")
    repo.checkout("main")
    github.add_pull("acme/models", 41, head, repo.git("rev-parse", "main"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "MLOPS_", "RUNNER_"))}
    env.update(MLOPS_WEBHOOK_SECRET=SECRET.decode(), GITHUB_TOKEN=token, GITHUB_API_URL=github.url, PREFECT_API_URL=prefect_api, MLOPS_GITHUB_WRITE_INTERVAL="0")
    service = subprocess.Popen([sys.executable, "-m", "mlgitops", "webhook", "serve", "--port", "0", "--repo", str(repo.path)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        line = service.stderr.readline()
        port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        pr = pr_payload(repo, 41, head)
        sends = [("pull_request", pr, "g-pr")]
        for who, body in (("alice", "/mlops help"), ("carol", "/mlops promote production")):
            cid = github.add_comment("acme/models", 41, body, who)
            comment = json.loads((EXAMPLES / "issue_comment" / "created.1.payload.json").read_text())
            comment["issue"].update(number=41, pull_request={"url": f"{github.url}/repos/acme/models/pulls/41"})
            comment["comment"].update(id=cid, body=body)
            comment["comment"]["user"].update(login=who, type="User")
            comment["repository"].update(full_name="acme/models", default_branch="main")
            sends.append(("issue_comment", comment, f"g-{who}"))
        for event, payload, delivery in sends:
            body = json.dumps(payload).encode()
            req = urllib.request.Request(f"http://127.0.0.1:{port}/webhook", data=body, method="POST", headers={"Content-Type": "application/json", "X-GitHub-Event": event, "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": signature(SECRET, body)})
            with urllib.request.urlopen(req, timeout=10) as resp:
                assert resp.status == 202
        deadline = time.monotonic() + 240  # bounded
        rows: dict[str, dict] = {}
        while time.monotonic() < deadline:
            for _, _, delivery in sends:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/deliveries/{delivery}", timeout=10) as resp:
                    rows[delivery] = json.loads(resp.read())
            if all(r["status"] in ("done", "failed", "ignored") for r in rows.values()):
                break
            time.sleep(0.5)
        logs = repo.path / ".mlops" / "webhook" / "logs"
        assert [rows[d]["exit_code"] for _, _, d in sends] == [0, 0, 0], {p.name: p.read_text() for p in logs.iterdir()}
        mine = [c["body"] for c in sorted(remote.comments.values(), key=lambda c: c["id"]) if c["author"] == github.identity]
        sticky = next(b for b in mine if "<!-- mlgitops:sha=" in b)
        assert f"<!-- mlgitops:sha={head} -->" in sticky and "- `training.params.max_depth`: `2` → `3`" in sticky
        assert [s["state"] for s in remote.statuses[head]] == ["pending", "success"]
        assert any(b.startswith("<!-- mlgitops:chatops reply-to=") and " -->\n> `/mlops help`\n\n@alice: Commands" in b for b in mine)
        assert any(b.startswith("<!-- mlgitops:chatops reply-to=") and " -->\n> `/mlops promote production`\n\n@carol: sorry," in b for b in mine)
        assert sorted(r["content"] for rs in remote.reactions.values() for r in rs) == ["+1", "-1"]
        assert token not in "".join(p.read_text() for p in logs.iterdir())
    finally:
        service.terminate()
        service.wait(timeout=20)
        github.stop()
    assert github.violations == []
