"""One way to serve an ASGI app (uvicorn on a socket we bind ourselves)."""

from __future__ import annotations

from typing import Any, Callable

from .errors import InputError


def bind_server(app: Any, host: str, port: int, ready: Callable[[int], None] | None = None) -> tuple[Any, Any, int]:
    """(uvicorn server, bound socket, port): ``server.run(sockets=[sock])`` serves until
    ``server.should_exit`` is set; ``ready(port)`` is called once it is listening.

    The socket is bound here, not by uvicorn, so that port 0 (any free port) can be
    told to the caller and a port in use is an InputError (exit 2), not a traceback.
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
    bound = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=2))
    if ready is not None:
        started = server.startup

        async def startup(sockets: Any = None) -> None:
            await started(sockets)
            ready(bound)

        server.startup = startup  # type: ignore[method-assign]
    return server, sock, bound
