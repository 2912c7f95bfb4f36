"""The webhook intake's edges that a real server rarely shows (issue 15, item 7): the
ASGI app driven directly with hand-written ``receive``/``send``, so each case is exact
and takes milliseconds.

- a client that disconnects mid-body gets no answer and leaves no trace;
- ``http.request`` messages without ``body`` or ``more_body`` (the ASGI spec makes both
  optional, defaulting to ``b""`` and ``False``; uvicorn always sends both, other
  servers need not);
- a body that does not arrive within ``body_timeout`` is 408 with its exact text and
  the connection closed;
- a body over ``memory_buffer`` bytes is buffered in a temporary file in the spool
  folder, one of exactly ``memory_buffer`` bytes in memory.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest

from mlgitops.service.http import Intake, Limits
from mlgitops.service.webhook import Delivery, DeliveryLog, signature, spool_path

SECRET = b"intake-edges-secret"
BODY = json.dumps({"action": "opened", "pad": "x" * 200}).encode()


class Dispatcher:
    """Takes every delivery and runs nothing."""

    def __init__(self) -> None:
        self.taken: list[str] = []

    def submit(self, delivery: Delivery) -> bool:
        self.taken.append(delivery.id)
        return True

    def stats(self) -> dict[str, Any]:
        return {}

    def stop(self, grace: float = 5.0) -> None:
        pass


def intake(tmp_path: Path, **limits: Any) -> Intake:
    spool = tmp_path / "payloads"
    spool.mkdir(exist_ok=True)
    return Intake(SECRET, DeliveryLog(tmp_path / "deliveries.sqlite"), Dispatcher(), spool, Limits(**limits))


def scope(body: bytes = BODY, delivery: str = "d-1") -> dict[str, Any]:
    headers = {"x-hub-signature-256": signature(SECRET, body), "x-github-event": "pull_request", "x-github-delivery": delivery, "content-type": "application/json"}
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http", "path": "/webhook", "raw_path": b"/webhook", "query_string": b"", "root_path": "", "headers": [(k.encode(), v.encode()) for k, v in headers.items()], "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8080)}


def post(app: Intake, messages: list[dict[str, Any]], within: float = 5.0, **head: Any) -> tuple[list[dict[str, Any]], int]:
    """Run one request through ``app``: ``receive`` hands out ``messages``, then waits
    forever (a client that sends nothing more), as a server's receive does. Returns
    what the app sent and how many messages it asked for."""
    asked = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal asked
        asked += 1
        if asked <= len(messages):
            return messages[asked - 1]
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def main() -> None:
        await asyncio.wait_for(app(scope(**head), receive, send), within)  # a mutant that never ends fails here

    asyncio.run(main())
    return sent, asked


def answer(sent: list[dict[str, Any]]) -> tuple[int, dict[str, Any], dict[str, str]]:
    start, body = sent
    assert (start["type"], body["type"]) == ("http.response.start", "http.response.body")
    return start["status"], json.loads(body["body"]), {k.decode(): v.decode() for k, v in start["headers"] if k != b"content-length"}


def test_a_client_that_disconnects_mid_body_gets_no_answer_and_leaves_no_trace(tmp_path: Path) -> None:
    app = intake(tmp_path)
    sent, asked = post(app, [{"type": "http.request", "body": BODY[:100], "more_body": True}, {"type": "http.disconnect"}])
    assert (sent, asked) == ([], 2)
    assert app.log.counts() == {} and app.dispatcher.taken == [] and list(app.spool.iterdir()) == []
    assert app.arriving == {}  # its slot is free again


def test_a_disconnect_before_any_body_gets_no_answer(tmp_path: Path) -> None:
    app = intake(tmp_path)
    assert post(app, [{"type": "http.disconnect"}]) == ([], 1)
    assert app.log.counts() == {}


def test_request_messages_without_body_or_more_body_keys_take_the_spec_defaults(tmp_path: Path) -> None:
    """ASGI: ``body`` defaults to b"" and ``more_body`` to False. A last message with
    neither key ends the body; a first one with only ``more_body`` adds nothing."""
    app = intake(tmp_path)
    messages = [{"type": "http.request", "more_body": True}, {"type": "http.request", "body": BODY[:100], "more_body": True}, {"type": "http.request", "body": BODY[100:], "more_body": True}, {"type": "http.request"}]
    sent, asked = post(app, messages)
    assert answer(sent) == (202, {"status": "queued", "delivery": "d-1", "event": "pull_request"}, {"content-type": "application/json"})
    assert asked == 4  # nothing asked after the message without more_body
    assert app.dispatcher.taken == ["d-1"] and spool_path(app.spool, "d-1").read_bytes() == BODY


def test_a_whole_body_in_one_message_without_more_body(tmp_path: Path) -> None:
    app = intake(tmp_path)
    sent, asked = post(app, [{"type": "http.request", "body": BODY}], delivery="d-2")
    assert (answer(sent)[:2], asked) == ((202, {"status": "queued", "delivery": "d-2", "event": "pull_request"}), 1)


def test_a_body_not_complete_within_body_timeout_is_408_and_closed(tmp_path: Path) -> None:
    app = intake(tmp_path, body_timeout=0.25)
    sent, asked = post(app, [{"type": "http.request", "body": BODY[:100], "more_body": True}], within=3.0)
    assert answer(sent) == (408, {"error": "the body did not arrive within 0.25 s"}, {"content-type": "application/json", "connection": "close"})
    assert asked == 2 and app.log.counts() == {} and app.arriving == {}


def test_a_body_over_memory_buffer_is_buffered_in_the_spool_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """memory_buffer bytes stay in memory; one byte more goes to an (unnamed) temporary
    file in the spool folder, not in the system's temporary folder."""
    made: list[Any] = []
    real = tempfile.TemporaryFile

    def recorded(*args: Any, **kwargs: Any) -> Any:
        made.append(kwargs.get("dir"))
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "TemporaryFile", recorded)
    app = intake(tmp_path, memory_buffer=len(BODY))
    sent, _ = post(app, [{"type": "http.request", "body": BODY[:100], "more_body": True}, {"type": "http.request", "body": BODY[100:]}], delivery="e-1")
    assert answer(sent)[0] == 202 and made == []  # exactly memory_buffer bytes: in memory

    app = intake(tmp_path, memory_buffer=len(BODY) - 1)
    sent, _ = post(app, [{"type": "http.request", "body": BODY[:100], "more_body": True}, {"type": "http.request", "body": BODY[100:]}], delivery="e-2")
    assert answer(sent)[0] == 202 and made == [app.spool]  # one byte more: on disk, in the spool folder
    assert app.dispatcher.taken == ["e-2"] and spool_path(app.spool, "e-2").read_bytes() == BODY
