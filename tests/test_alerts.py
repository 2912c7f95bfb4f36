"""Alerts: Slack-compatible JSON to a webhook on a local HTTP receiver, with retries."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest

from tests.helpers import EXAMPLE, GitRepo


class Receiver:
    """A webhook endpoint on 127.0.0.1 that can fail its first N deliveries."""

    def __init__(self, fail_first: int = 0, status: int = 500) -> None:
        self.received: list[dict[str, Any]] = []
        self.attempts = 0
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.attempts += 1
                if outer.attempts <= fail_first:
                    self.send_response(status)
                    self.send_header("Retry-After", "0")
                    self.end_headers()
                    return
                outer.received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/secret-token-xyz"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    r = Receiver(fail_first=2)
    monkeypatch.setenv("TEAM_WEBHOOK", r.url)
    yield r
    r.stop()


def with_alerts(text: str) -> str:
    return text + "alerts:\n  webhook_env: TEAM_WEBHOOK\n  retries: 3\n"


def test_a_failed_gate_alerts_after_retries(cli, repo: GitRepo, receiver: Receiver) -> None:
    repo.gen({"mlops.yaml": with_alerts(EXAMPLE)}).commit("base")
    repo.branch("worse").edit("mlops.yaml", "sklearn.ensemble.RandomForestClassifier", "sklearn.dummy.DummyClassifier").edit("mlops.yaml", "    n_estimators: 60\n    max_depth: 2\n    random_state: 0\n", "    strategy: prior\n").commit()
    result = cli("run", "--base", "main", cwd=repo.path)
    assert result.exit_code == 1
    assert receiver.attempts == 3 and len(receiver.received) == 1  # two 500s, then delivered
    alert = receiver.received[0]
    assert alert["text"].startswith(":x: *breast-cancer*: gate failed on `worse`: ")
    assert alert["blocks"][0]["type"] == "section" and "accuracy" in alert["blocks"][1]["text"]["text"]
    assert "secret-token-xyz" not in result.output


def test_a_failed_run_alerts_and_an_unreachable_webhook_is_a_note(cli_noprefect, repo: GitRepo, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    repo.gen({"mlops.yaml": with_alerts(EXAMPLE).replace("path: sklearn:breast_cancer", "path: data/missing.csv")}).commit("base")
    result = cli_noprefect("run", "--base", "main", cwd=repo.path)
    assert result.exit_code == 2
    assert receiver.received[0]["text"].startswith(":rotating_light: *breast-cancer*: `mlops run` failed (exit 2)")
    monkeypatch.setenv("TEAM_WEBHOOK", "http://127.0.0.1:9/unreachable-secret")  # nothing listens on port 9
    again = cli_noprefect("run", "--base", "main", cwd=repo.path)
    assert again.exit_code == 2
    assert "note: alert not sent: the webhook ($TEAM_WEBHOOK) failed 4 times (last: ConnectionRefusedError)" in again.output
    assert "unreachable-secret" not in again.output


def test_a_webhook_url_without_scheme_is_a_note_not_a_crash(cli_noprefect, repo: GitRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEAM_WEBHOOK", "hooks.slack.com/services/T0/B0/SECRET-abc")
    repo.gen({"mlops.yaml": with_alerts(EXAMPLE).replace("path: sklearn:breast_cancer", "path: data/missing.csv")}).commit("base")
    result = cli_noprefect("run", "--base", "main", cwd=repo.path)
    assert result.exit_code == 2
    assert "note: alert not sent: $TEAM_WEBHOOK is not a usable URL (ValueError)" in result.output
    assert "SECRET-abc" not in result.output


def test_a_redirecting_webhook_is_not_counted_as_delivered() -> None:
    from types import SimpleNamespace

    from mlgitops.forges import alerts
    from mlgitops.config.loader import Alerts

    class Redirect(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            self.send_response(302)
            self.send_header("Location", "/elsewhere")
            self.end_headers()

        do_GET = do_POST

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        import os

        os.environ["REDIRECT_HOOK"] = f"http://127.0.0.1:{server.server_address[1]}/hook"
        alerts.reset()
        alerts.configure(SimpleNamespace(config=SimpleNamespace(alerts=Alerts(webhook_env="REDIRECT_HOOK", retries=0), name="m")))
        assert alerts.send("drift", "t", []) is False
        assert alerts.NOTES == ["alert not sent: the webhook ($REDIRECT_HOOK) answered HTTP 302"]
    finally:
        os.environ.pop("REDIRECT_HOOK", None)
        alerts.reset()
        server.shutdown()
        server.server_close()
