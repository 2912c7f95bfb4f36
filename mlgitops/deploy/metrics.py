"""Prometheus metrics of `mlops serve`, exposed on ``GET /metrics``.

Each server has its own ``CollectorRegistry`` (not prometheus-client's global one), so
several servers in one process (the tests, a bench) never share or clash on a series.

* ``mlops_serve_requests_total{route}``: answered requests, by route template
  (``/v2/models/{name}/infer``, not the raw path: one series per route, whatever the
  clients send); ``/metrics`` itself is not counted;
* ``mlops_serve_errors_total{route,code}``: the answers with a status >= 400;
* ``mlops_serve_request_duration_seconds{route}``: a latency histogram;
* ``mlops_serve_model_info{environment,model,version,sha256}``: the model served now;
* ``mlops_serve_swaps_total``: models swapped in after a pin changed (not the first load);
* ``mlops_serve_degraded``: 1 while a new pin is refused (``/healthz`` says why), else 0.
"""

from __future__ import annotations

import time
from typing import Any, Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.exposition import choose_encoder

# A model answers one row in well under a millisecond (bench/RESULTS.md); the default
# buckets start at 5 ms and would put every request in the first one.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)

Endpoint = Callable[[Any], Awaitable[Any]]


class ServeMetrics:
    """The metrics of one server, in a registry of its own."""

    def __init__(self, environment: str, degraded: Callable[[], bool] | None = None) -> None:
        self.environment = environment
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("mlops_serve_requests", "Requests answered, by route.", ["route"], registry=self.registry)
        self.errors = Counter("mlops_serve_errors", "Requests answered with a status >= 400, by route and status.", ["route", "code"], registry=self.registry)
        self.latency = Histogram("mlops_serve_request_duration_seconds", "Time to answer a request, by route.", ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.model = Info("mlops_serve_model", "The model being served.", registry=self.registry)
        self.swaps = Counter("mlops_serve_swaps", "Models swapped in after the manifest's pin changed.", registry=self.registry)
        self.degraded = Gauge("mlops_serve_degraded", "1 while a new pin is refused and the previous model serves, else 0.", registry=self.registry)
        if degraded is not None:
            self.degraded.set_function(lambda: 1.0 if degraded() else 0.0)

    def serving(self, name: str, version: int | None, sha256: str) -> None:
        """The model served from now on (the first load or a swap)."""
        self.model.info({"environment": self.environment, "model": name, "version": "" if version is None else str(version), "sha256": sha256})

    def swapped(self, name: str, version: int | None, sha256: str) -> None:
        self.swaps.inc()
        self.serving(name, version, sha256)

    def instrument(self, route: str, endpoint: Endpoint) -> Endpoint:
        """``endpoint`` with its requests, errors and latency counted under ``route``.

        The route's series exist from the start (at 0), as Prometheus advises, and are
        looked up once here rather than on every request."""
        requests, latency = self.requests.labels(route), self.latency.labels(route)

        async def counted(request: Any) -> Any:
            start = time.perf_counter()
            status = 500  # an endpoint that raises is answered 500 by Starlette
            try:
                response = await endpoint(request)
                status = response.status_code
                return response
            finally:
                requests.inc()
                if status >= 400:
                    self.errors.labels(route, str(status)).inc()
                latency.observe(time.perf_counter() - start)

        counted.__name__ = getattr(endpoint, "__name__", "endpoint")
        return counted

    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """(body, content type): the format the ``Accept`` header asks for (OpenMetrics
        for a Prometheus server, which asks for it), else the text format 0.0.4."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type
