"""The webhook service's HTTP side: refuse early, hold little, let nobody linger.

A POST is, in order:

1. judged on its head alone, before a byte of the body is read (and the connection
   closed after the answer): no well-formed ``X-Hub-Signature-256`` is 401, a
   Content-Length over ``max_body`` (GitHub sends at most 25 MB) is 413, no
   ``X-GitHub-Event``/``X-GitHub-Delivery`` is 400; a client with ``per_client`` bodies
   still arriving is 429, and ``unfinished`` bodies arriving in all is 503 (both with
   Retry-After);
2. streamed: each chunk goes into an HMAC-SHA256 and a bounded buffer (memory up to
   ``memory_buffer`` bytes, then an unnamed temporary file); a body growing past
   ``max_body`` is 413, one not complete within ``body_timeout`` seconds is 408;
3. verified (constant time) before it is parsed: a wrong signature is 401 and leaves
   no trace; JSON nested deeper than ``max_depth`` is 400, like any invalid JSON;
4. handed to the delivery log and dispatcher (``webhook``): 202, 200 duplicate, 503
   when the run queue is full.

The request head has its own deadline in the HTTP protocol (``asgi.bind_server``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import math
import re
import tempfile
from collections import Counter
from contextlib import asynccontextmanager
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import Any, AsyncIterator

from mlgitops.service.webhook import HANDLED, MAX_BODY, SIGNATURE, Delivery, DeliveryLog, Dispatcher, spool_path

Answer = tuple[int, dict[str, Any], dict[str, str]]
WELL_FORMED = re.compile(r"sha256=[0-9a-fA-F]{64}")


@dataclass(frozen=True)
class Limits:
    """What one request may take; see the module docstring."""

    max_body: int = MAX_BODY
    body_timeout: float = 30.0
    per_client: int = 8
    unfinished: int = 64
    max_depth: int = 400  # well inside the ~1,000 levels at which Python's json raises RecursionError
    memory_buffer: int = 256 * 1024


# Hand-written, as no well-kept library bounds nesting before parsing: the stdlib
# parser recurses (RecursionError near 1,000 levels, a 500), and streaming parsers
# (ijson) would add a C dependency for one number. Strings are dropped first (an
# escaped quote does not end one; an unterminated one runs to the end), then only
# brackets are left to count; possessive quantifiers keep the regex linear.
_STRINGS = re.compile(rb'"(?:[^"\\]++|\\.?)*+(?:"|\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def nesting(body: bytes) -> int:
    """How deep arrays and objects nest in a JSON text (brackets inside strings do not
    count); for invalid JSON, at least as deep as a parser would go before failing."""
    brackets = _STRINGS.sub(b"", body).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def too_deep(body: bytes, limit: int) -> bool:
    if body.count(b"[") + body.count(b"{") <= limit:  # the common case, at C speed
        return False
    return nesting(body) > limit


def client_key(host: str) -> str:
    """Whom a per-client cap counts: the address, or its /64 for IPv6 (one host is
    commonly handed a whole /64, so single addresses would not limit anybody)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class Intake:
    """``POST /webhook`` as a plain ASGI app (Starlette's Request would read the body
    before we could refuse it, and could not time it out)."""

    def __init__(self, secret: bytes, log: DeliveryLog, dispatcher: Dispatcher, spool: Path, limits: Limits) -> None:
        self.secret, self.log, self.dispatcher, self.spool, self.limits = secret, log, dispatcher, spool, limits
        self.arriving: Counter[str] = Counter()  # bodies still arriving, per client
        self.retry_after = str(math.ceil(limits.body_timeout))  # by then every slot taken now is free

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        from starlette.datastructures import Headers

        headers = Headers(scope=scope)
        client = client_key((scope.get("client") or ("unknown", 0))[0])
        refused = self.judge_head(headers) or self.judge_load(client)
        if refused is not None:
            return await respond(scope, receive, send, refused, close=True)
        self.arriving[client] += 1
        try:
            body = await self.read_body(receive, headers)
        finally:  # the slot is for arriving bodies: free it before the (slower) parsing
            self.arriving[client] -= 1
            if not self.arriving[client]:
                del self.arriving[client]
        if body is None:  # the client went away
            return
        if isinstance(body, tuple):
            return await respond(scope, receive, send, body, close=body[0] != 401)  # 401 here: the whole body was read
        # Parsing a large body takes a moment: not on the loop every connection shares.
        answer = await asyncio.get_running_loop().run_in_executor(None, self.accept, body, headers["x-github-event"], headers["x-github-delivery"])
        await respond(scope, receive, send, answer)

    def judge_load(self, client: str) -> Answer | None:
        """429 or 503 when too many bodies are arriving (from ``client``, or in all)."""
        if self.arriving[client] >= self.limits.per_client:
            return 429, {"error": f"{self.limits.per_client} deliveries from {client} are still arriving; retry later"}, {"Retry-After": self.retry_after}
        if sum(self.arriving.values()) >= self.limits.unfinished:
            return 503, {"error": f"{self.limits.unfinished} deliveries are still arriving; retry later"}, {"Retry-After": self.retry_after}
        return None

    def judge_head(self, headers: Any) -> Answer | None:
        """The refusals decided from the request head alone."""
        header = headers.get(SIGNATURE)
        if not header or not WELL_FORMED.fullmatch(header.strip()):
            why = "missing" if not header else "is not sha256=<64 hex digits>"
            return 401, {"error": f"X-Hub-Signature-256 {why}: the delivery is not from a webhook with this secret"}, {}
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limits.max_body):
            return 413, {"error": f"body over {self.limits.max_body} bytes"}, {}
        delivery_id = headers.get("x-github-delivery") or ""
        if not headers.get("x-github-event") or not delivery_id or len(delivery_id) > 100:
            return 400, {"error": "a delivery needs the X-GitHub-Event and X-GitHub-Delivery headers"}, {}
        return None

    async def read_body(self, receive: Any, headers: Any) -> bytes | Answer | None:
        """The verified body; or the refusal; or None when the client went away."""
        mac = hmac.new(self.secret, digestmod=hashlib.sha256)
        with tempfile.SpooledTemporaryFile(max_size=self.limits.memory_buffer, dir=self.spool) as buffer:
            size = 0
            try:
                async with asyncio.timeout(self.limits.body_timeout):
                    more = True
                    while more:
                        message = await receive()
                        if message["type"] == "http.disconnect":
                            return None
                        chunk, more = message.get("body", b""), bool(message.get("more_body"))
                        size += len(chunk)
                        if size > self.limits.max_body:
                            return 413, {"error": f"body over {self.limits.max_body} bytes"}, {}
                        mac.update(chunk)
                        buffer.write(chunk)
            except TimeoutError:
                return 408, {"error": f"the body did not arrive within {self.limits.body_timeout:g} s"}, {}
            if not hmac.compare_digest("sha256=" + mac.hexdigest(), headers[SIGNATURE].strip().lower()):
                return 401, {"error": "X-Hub-Signature-256 does not match: the delivery is not from a webhook with this secret"}, {}
            buffer.seek(0)
            return buffer.read()

    def accept(self, body: bytes, event: str, delivery_id: str) -> Answer:
        """A verified body: parse, deduplicate, spool and hand on."""
        if too_deep(body, self.limits.max_depth):
            return 400, {"error": f"body nests arrays and objects deeper than {self.limits.max_depth} levels"}, {}
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return 400, {"error": f"body is not JSON: {exc}", "hint": "set the webhook's content type to application/json"}, {}
        if not isinstance(payload, dict):
            return 400, {"error": "body must be a JSON object"}, {}
        action = payload.get("action") if isinstance(payload.get("action"), str) else None
        if event == "ping":
            return 200, {"status": "pong", "zen": payload.get("zen")}, {}
        if not self.log.claim(delivery_id, event, action):
            return 200, {"status": "duplicate", "delivery": delivery_id}, {}
        if event not in HANDLED:
            self.log.update(delivery_id, "ignored", f"event {event!r} starts no flow (handled: {', '.join(HANDLED)})")
            return 202, {"status": "ignored", "delivery": delivery_id, "reason": f"event {event!r} starts no flow"}, {}
        path = spool_path(self.spool, delivery_id)
        path.write_bytes(body)
        if not self.dispatcher.submit(Delivery(delivery_id, event, action, path)):
            self.log.forget(delivery_id)  # GitHub's redelivery will be taken
            path.unlink(missing_ok=True)
            return 503, {"error": "the run queue is full; redeliver later"}, {"Retry-After": "60"}
        return 202, {"status": "queued", "delivery": delivery_id, "event": event}, {}


async def respond(scope: dict[str, Any], receive: Any, send: Any, answer: Answer, close: bool = False) -> None:
    """Send ``answer``; ``close`` ends the connection after it (a body left unread, or a
    client that was too slow, does not get to keep it)."""
    from starlette.responses import JSONResponse

    status, body, headers = answer
    await JSONResponse(body, status_code=status, headers={**headers, **({"Connection": "close"} if close else {})})(scope, receive, send)


def make_app(secret: bytes, log: DeliveryLog, dispatcher: Dispatcher, spool: Path, limits: Limits = Limits(), stop_grace: float = 5.0) -> Any:
    """The service's ASGI app. Its shutdown stops ``dispatcher`` (in-flight runs are
    ended and resumed on the next start)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    spool.mkdir(parents=True, exist_ok=True)
    intake = Intake(secret, log, dispatcher, spool, limits)

    async def delivery_status(request: Request) -> Any:
        row = log.get(request.path_params["delivery_id"])
        return JSONResponse(row) if row is not None else JSONResponse({"error": "no such delivery"}, status_code=404)

    async def healthz(request: Request) -> Any:
        return JSONResponse({"status": "ok", **dispatcher.stats(), "arriving": sum(intake.arriving.values()), "deliveries": log.counts()})

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield
        await asyncio.get_running_loop().run_in_executor(None, dispatcher.stop, stop_grace)

    return Starlette(routes=[Route("/", intake, methods=["POST"]), Route("/webhook", intake, methods=["POST"]), Route("/deliveries/{delivery_id}", delivery_status), Route("/healthz", healthz)], lifespan=lifespan)
