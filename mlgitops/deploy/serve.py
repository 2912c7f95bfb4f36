"""`mlops serve ENV`: answer predictions from the ONNX model an environment's manifest pins.

* the artifact is loaded only when its sha256 matches the pin (else refused);
* a watcher re-reads the manifest every ``poll`` seconds and swaps the model in when
  the pin changes (a bad new pin keeps the old model serving and shows on /healthz);
  pins may name any registry backend (``mlgitops.deploy.fetch``: s3://, oci://, files), read
  through the local content-addressed cache. The watcher is its own thread, so a slow
  or unreachable registry delays only the next swap, never a request, nor a clean stop;
* ``GET /healthz`` reports the served version; ``POST /predict`` takes
  ``{"instances": [{column: value, ...}, ...]}`` (or one object) and returns labels,
  and class probabilities for classifiers;
* the Open Inference Protocol v2 (``/v2/...``, in ``mlgitops.deploy.serve_v2``) answers
  the same rows as typed column tensors;
* ``GET /metrics``: Prometheus metrics (``mlgitops.deploy.metrics``).

Starlette + uvicorn (both already installed with Prefect) serve it.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from mlgitops.errors import InputError
from mlgitops.deploy.manifest import ManifestError, Pin, read_pin

MAX_BODY = 8 * 1024 * 1024
MAX_ROWS = 10_000


@dataclass
class Loaded:
    pin: Pin
    model: Any  # export.OnnxModel
    loaded_at: str
    manifest_sha: str


@dataclass
class ModelHolder:
    """The model being served, swapped atomically when the manifest's pin changes."""

    env: str
    read_manifest: Callable[[], str | None]  # the manifest's current text
    where: str
    uri_base: Path
    cache: Path | None = None  # the fetch cache (default: mlgitops.deploy.fetch.cache_root())
    #: a manifest whose pin failed is tried again after this many seconds, not at every
    #: poll: a pin with the wrong sha256 would otherwise download the model every poll
    retry_after: float = 30.0
    current: Loaded | None = None
    last_error: str = ""
    checked_at: str = ""
    loading: str = ""  # the pin being fetched right now, shown on /healthz
    lock: threading.Lock = field(default_factory=threading.Lock)
    _failed: tuple[str, float] | None = None  # (manifest sha256, time.monotonic()) of the last failure

    def load(self, initial: bool = False) -> bool:
        """Read the manifest; load the pinned model if it changed. True when swapped."""
        from mlgitops.deploy.onnx import OnnxModel
        from mlgitops.deploy.fetch import fetch_pinned

        self.checked_at = _now()
        try:
            text = self.read_manifest()
        except Exception as exc:  # noqa: BLE001 - unreadable manifest: keep serving, say why
            self.last_error = f"{self.where}: cannot read the manifest: {type(exc).__name__}: {exc}"
            if initial:
                raise InputError(self.last_error) from None
            return False
        digest = hashlib.sha256((text or "").encode()).hexdigest()
        if self.current is not None and digest == self.current.manifest_sha:
            self.last_error = ""  # e.g. a broken pin was reverted to the one being served
            self._failed = None
            return False
        if not initial and self._failed is not None and self._failed[0] == digest and time.monotonic() - self._failed[1] < self.retry_after:
            return False  # the same failing pin: last_error still says why
        try:
            pin = read_pin(text, self.where)
            if pin is None:
                raise ManifestError(f"{self.where}: pins no model (model.uri and model.sha256)", hint=f"merge a promotion PR for {self.env} first")
            if self.current is not None and pin.sha256 == self.current.pin.sha256:
                self.current = Loaded(pin, self.current.model, self.current.loaded_at, digest)
                self.last_error = ""
                self._failed = None
                return False
            if pin.format != "onnx":
                raise ManifestError(f"{self.where}: model.format is {pin.format!r}; mlops serve runs ONNX models", hint="deploy a version registered with ONNX")
            self.loading = f"{pin.short()} from {pin.uri} (since {_now()})"
            try:
                data = fetch_pinned(pin, self.uri_base, self.where, self.cache)
            except InputError:
                raise
            except Exception as exc:  # noqa: BLE001 - an SDK's own error type (botocore, oras): the registry's reason
                raise InputError(f"{self.where}: model.uri: cannot fetch {pin.uri}: {type(exc).__name__}: {exc}") from None
            finally:
                self.loading = ""
            model = OnnxModel(data)
        except InputError as exc:
            self._fail(digest, exc.message)
            if initial:
                raise
            return False
        except Exception as exc:  # noqa: BLE001 - onnxruntime rejecting a file is a bad pin, not a crash
            self._fail(digest, f"{self.where}: the pinned artifact cannot be loaded by ONNX Runtime: {type(exc).__name__}: {exc}")
            if initial:
                raise InputError(self.last_error) from None
            return False
        with self.lock:
            self.current = Loaded(pin, model, _now(), digest)
        self.last_error = ""
        self._failed = None
        return True

    def _fail(self, digest: str, message: str) -> None:
        self.last_error = message
        self._failed = (digest, time.monotonic())

    def health(self) -> dict[str, Any]:
        cur = self.current
        body: dict[str, Any] = {"status": "ok" if not self.last_error else "degraded"}
        if cur is not None:
            body.update(model=cur.pin.name, version=cur.pin.version, sha256=cur.pin.sha256)
        body.update(environment=self.env, manifest=self.where, checked_at=self.checked_at)
        if cur is not None:
            body.update(uri=cur.pin.uri, loaded_at=cur.loaded_at, features=cur.model.features)
        if self.last_error:
            body["error"] = self.last_error
        if self.loading:
            body["loading"] = self.loading
        return body


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def rows_from(payload: Any, features: list[str]) -> tuple[list[dict[str, Any]] | None, str]:
    if isinstance(payload, dict) and "instances" in payload:
        rows = payload["instances"]
    elif isinstance(payload, dict):
        rows = [payload]
    else:
        rows = payload
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        return None, 'expected {"instances": [{"column": value, ...}, ...]} with at least one row'
    if len(rows) > MAX_ROWS:
        return None, f"at most {MAX_ROWS} rows per request, got {len(rows)}"
    for i, row in enumerate(rows):
        missing = [f for f in features if f not in row]
        if missing:
            return None, f"instances[{i}] lacks column(s) {', '.join(map(repr, missing[:5]))}" + (" ..." if len(missing) > 5 else "")
    return rows, ""


def predict(loaded: Loaded, rows: list[dict[str, Any]]) -> dict[str, Any]:
    model = loaded.model
    labels, proba = model.run_records(rows)
    out: dict[str, Any] = {"model": loaded.pin.name, "version": loaded.pin.version, "sha256": loaded.pin.sha256, "predictions": model.labels(labels)}
    if model.classes_ is not None and proba is not None:
        out["probabilities"] = [{str(c): round(float(p), 6) for c, p in zip(model.classes_, row)} for row in proba]
    return out


async def read_body(request: Any) -> tuple[bytes | None, Any]:
    """(the request body, None), or (None, a 413 response) past MAX_BODY."""
    from starlette.responses import JSONResponse

    too_big = JSONResponse({"error": f"request body over {MAX_BODY} bytes"}, status_code=413)
    try:
        size = int(request.headers.get("content-length") or 0)
    except ValueError:
        size = 0  # h11 has already refused a malformed Content-Length
    if size > MAX_BODY:
        return None, too_big
    raw = await request.body()
    if len(raw) > MAX_BODY:
        return None, too_big
    return raw, None


def make_app(holder: ModelHolder, poll: float, metrics: Any = None) -> Any:
    """The Starlette app; ``metrics`` (a ``ServeMetrics``) is made here when not given."""
    import json

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from mlgitops.deploy import serve_v2
    from mlgitops.deploy.metrics import ServeMetrics

    if metrics is None:
        metrics = ServeMetrics(holder.env, degraded=lambda: bool(holder.last_error))
    if holder.current is not None:
        metrics.serving(serve_v2.model_name(holder, holder.current), holder.current.pin.version, holder.current.pin.sha256)

    async def healthz(request: Request) -> JSONResponse:
        body = holder.health()
        return JSONResponse(body, status_code=200 if holder.current is not None else 503)

    async def predict_route(request: Request) -> JSONResponse:
        loaded = holder.current
        if loaded is None:
            return JSONResponse({"error": holder.last_error or "no model loaded"}, status_code=503)
        raw, refused = await read_body(request)
        if refused is not None:
            return refused
        try:
            payload = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: nested too deep
            return JSONResponse({"error": f"body is not JSON: {exc}"}, status_code=400)
        rows, why = rows_from(payload, loaded.model.features)
        if rows is None:
            return JSONResponse({"error": why, "features": loaded.model.features}, status_code=422)
        try:
            return JSONResponse(predict(loaded, rows))
        except Exception as exc:  # noqa: BLE001 - a value ONNX Runtime rejects is the client's input
            return JSONResponse({"error": f"cannot score these rows: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}, status_code=422)

    def watch(stop: threading.Event) -> None:
        # A thread of its own, not asyncio.to_thread: a fetch stuck on a dead registry
        # must not hold the event loop's executor, whose threads a stopping server joins.
        while not stop.wait(poll):  # bounded by the server's life: stop is set on shutdown
            try:
                if holder.load() and holder.current is not None:
                    metrics.swapped(serve_v2.model_name(holder, holder.current), holder.current.pin.version, holder.current.pin.sha256)
            except Exception as exc:  # noqa: BLE001 - the watcher must outlive any one bad read
                holder.last_error = f"{holder.where}: reload failed: {type(exc).__name__}: {exc}"

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: Any):  # type: ignore[no-untyped-def]
        stop = threading.Event()
        thread = threading.Thread(target=watch, args=(stop,), name=f"mlops-serve-watch-{holder.env}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()  # a load in progress finishes in the background (daemon thread)

    async def metrics_route(request: Request) -> Response:
        body, content_type = metrics.exposition(request.headers.get("accept"))
        return Response(body, media_type=content_type)

    routes = [
        Route("/healthz", metrics.instrument("/healthz", healthz)),
        Route("/predict", metrics.instrument("/predict", predict_route), methods=["POST"]),
        *serve_v2.routes(holder, read_body, metrics.instrument, MAX_ROWS),
        Route("/metrics", metrics_route),  # not counted: a scrape would change what it reads
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.metrics = metrics
    return app


def make_server(holder: ModelHolder, host: str, port: int, poll: float, ready: Callable[[int], None] | None = None) -> tuple[Any, Any, int]:
    """(uvicorn server, bound socket, port): ``server.run(sockets=[sock])`` serves until
    ``server.should_exit`` is set. ``ready(port)`` is called once it is listening."""
    from mlgitops.service.asgi import bind_server

    # A client that never finishes its request head is closed after 10 s (a slowloris
    # would otherwise hold a connection, and its memory, for ever).
    return bind_server(make_app(holder, poll), host, port, ready, header_timeout=10.0)


def serve(holder: ModelHolder, host: str, port: int, poll: float, ready: Callable[[int], None] | None = None) -> None:
    """Run the server until stopped (Ctrl-C)."""
    server, sock, _ = make_server(holder, host, port, poll, ready)
    server.run(sockets=[sock])
