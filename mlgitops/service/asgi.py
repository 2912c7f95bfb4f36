"""One way to serve an ASGI app (uvicorn on a socket we bind ourselves)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Callable

from uvicorn.protocols.http.h11_impl import H11Protocol

from mlgitops.errors import InputError


class HeadDeadline(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request head.

    uvicorn times out idle keep-alive connections only: a client that opens a
    connection and sends nothing, or its headers a byte at a time, holds the connection
    for ever. Here a timer is armed when the connection is made and after each response,
    and cancelled once a whole request head has arrived; when it fires the client gets
    408 and the connection is closed. (The body has its own deadline, in the app.)
    """

    header_timeout: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer: asyncio.TimerHandle | None = None
        self._arm()

    def _arm(self) -> None:
        self._cancel()
        self._waiting_after = self.cycle  # a new cycle object means the head arrived
        self._head_timer = self.loop.call_later(self.header_timeout, self._expired)

    def _cancel(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _check(self) -> None:
        if self._head_timer is not None and self.cycle is not self._waiting_after:
            self._cancel()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._check()

    def on_response_complete(self) -> None:
        self._arm()  # the next request on this connection gets a head deadline too
        super().on_response_complete()
        self._check()  # a pipelined request may have started already

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)

    def _expired(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.cycle is not self._waiting_after:
            return
        # Written by hand: h11 will not frame a response before it has seen a request.
        body = json.dumps({"error": f"the request head did not arrive within {self.header_timeout:g} s"}).encode()
        head = f"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
        self.transport.write(head.encode() + body)
        self.transport.close()


def bind_server(app: Any, host: str, port: int, ready: Callable[[int], None] | None = None, header_timeout: float | None = None) -> tuple[Any, Any, int]:
    """(uvicorn server, bound socket, port): ``server.run(sockets=[sock])`` serves until
    ``server.should_exit`` is set; ``ready(port)`` is called once it is listening.

    The socket is bound here, not by uvicorn, so that port 0 (any free port) can be
    told to the caller and a port in use is an InputError (exit 2), not a traceback.
    With ``header_timeout``, each request head must arrive within that many seconds
    (408 otherwise; HTTP/1.1 by h11); without, uvicorn's default protocol serves.
    """
    import socket

    import uvicorn

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", hint="pick another --port (0: any free port), or stop what uses it") from None
    # Listening from here on: a client that connects before uvicorn's startup finished
    # waits in the backlog instead of being refused (callers post right after starting).
    sock.listen(2048)
    bound = sock.getsockname()[1]
    protocol: Any = "auto" if header_timeout is None else type("HeadDeadline", (HeadDeadline,), {"header_timeout": header_timeout})
    server = uvicorn.Server(uvicorn.Config(app, http=protocol, log_level="warning", access_log=False, timeout_graceful_shutdown=2))
    if ready is not None:
        started = server.startup

        async def startup(sockets: Any = None) -> None:
            await started(sockets)
            ready(bound)

        server.startup = startup  # type: ignore[method-assign]
    return server, sock, bound
