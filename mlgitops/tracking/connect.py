"""Reaching MLflow: the server is ``MLFLOW_TRACKING_URI`` and its credentials MLflow's
own variables (``MLFLOW_TRACKING_USERNAME``/``PASSWORD``/``TOKEN``), read by MLflow's
client from this process's environment; mlops.yaml names only the experiment.

MLflow is imported here only, lazily (the ``mlflow`` extra). Its client retries a
server that is down for minutes and phones home at import: a quick ``/health`` probe
decides "down" first, and the defaults below (any value the user exported wins) keep
a run short, offline and its stdout pure (``mlops run --json``)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

URI_ENV = "MLFLOW_TRACKING_URI"
DEFAULTS = {
    "MLFLOW_DISABLE_TELEMETRY": "true",  # an offline runner would wait on it at import
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
}
HEALTH_TIMEOUT_S = 5.0
USERINFO = re.compile(r"(://)[^/@\s]*@")
INSTALL_HINT = "pip install 'mlgitops[mlflow]'"


class Unavailable(Exception):
    """MLflow cannot be used for this run: why, in one line."""


@dataclass
class Server:
    uri: str
    client: Any  # mlflow.MlflowClient

    @property
    def shown(self) -> str:
        return shown_uri(self.uri)

    def run_url(self, experiment_id: str, run_id: str) -> str | None:
        """The run's page in the MLflow UI (an HTTP server only)."""
        if not self.uri.startswith(("http://", "https://")):
            return None
        return f"{self.shown.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def shown_uri(uri: str) -> str:
    """``uri`` without a ``user:password@`` part (it goes into comments and logs)."""
    return USERINFO.sub(r"\1", uri)


def tracking_uri(environ: Mapping[str, str] | None = None) -> str | None:
    environ = os.environ if environ is None else environ
    return (environ.get(URI_ENV) or "").strip() or None


def probe(uri: str, timeout: float = HEALTH_TIMEOUT_S) -> None:
    """Raise :class:`Unavailable` unless an HTTP tracking server answers ``/health``."""
    if not uri.startswith(("http://", "https://")):
        return  # a local store (file:, sqlite:): MLflow's client reaches it itself
    url = f"{shown_uri(uri).rstrip('/')}/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - the operator's own server
            resp.read(64)
    except urllib.error.HTTPError as exc:
        raise Unavailable(f"the MLflow tracking server {shown_uri(uri)} answered /health with HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        why = getattr(exc, "reason", None) or exc
        raise Unavailable(f"the MLflow tracking server {shown_uri(uri)} did not answer ({why})") from None


def connect(environ: Mapping[str, str] | None = None) -> Server:
    """A client for the server in ``MLFLOW_TRACKING_URI``; :class:`Unavailable` when it
    is unset, not installed or down."""
    uri = tracking_uri(environ)
    if uri is None:
        raise Unavailable(f"{URI_ENV} is not set, so there is no MLflow server to log to")
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)
    probe(uri)
    try:
        from mlflow import MlflowClient
    except ImportError:
        raise Unavailable(f"the mlflow package is not installed ({INSTALL_HINT})") from None
    return Server(uri, MlflowClient(tracking_uri=uri, registry_uri=uri))


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """MLflow's client prints links and progress: to stderr, at warning level."""
    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        logger.setLevel(level)


def failure(exc: BaseException) -> str:
    """One line for an MLflow error, credentials redacted."""
    from mlgitops.run.childenv import redact

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return redact(shown_uri(text))[:300]
