"""The untrusted part of a pull-request run, in a secret-less child process.

A pull request's code does not only run as its training command: the pickle that
command writes is unpickled to score it, and so is any pickle cached under `.mlops/`
by an earlier untrusted run (a planted one, under the webhook service). Unpickling
runs code. So for an untrusted run (``Store(root, trusted=False)``: a pull request, a
local branch, `/mlops retrain`) everything that trains, unpickles or scores runs in a
child started here, whose environment holds no credential; the parent, which holds
``GITHUB_TOKEN`` (under the webhook service also its secret, alert URLs, registry
keys), only plans, reads the cached report (JSON), sets the pending status, publishes
the candidate's bytes, renders with the base ref's templates and delivers.

When: whenever this process has a credential in reach (:func:`credentials_in_reach`:
a forge other than the local files, which holds a token; a credential-like variable
per :mod:`mlgitops.run.childenv`; the configured alert webhook's variable), or
``MLOPS_ISOLATE=1``. A run with no secret in reach has nothing to protect and computes
in-process. Not always, because the child re-imports what the run needs: +0.2 s per
run in a warm process and +0.4 s for a new `mlops run` on the example pipeline, but 7 s
of imports where drift or a data contract loads Evidently; always isolating took the
suite from 533 s to 741 s on 2 cores (numbers in bench/RESULTS-compute-child.md). On
Actions (`GITHUB_TOKEN`), under the webhook service (its secret, the token) and with
``--token`` the child is always used.

The protocol (one function each side, :func:`compute` and :func:`main`):

* parent -> child, on stdin: a pickle of ``{"cfg", "plan", "hashes", "result",
  "prefect_parent"}``. A pickle goes the safe way only: from the more trusted process
  to the less trusted one, through a pipe nobody else can write. The plan is the parent's (no credential
  is needed to rebuild it: a remote pinned baseline was fetched with the parent's
  registry credentials into the local cache, which the plan names). Under a Prefect
  deployment (the ``mlops-event`` flow runs `mlops run` in the worker's process) the
  flow run this process is in goes too, its secrets masked
  (``FlowRunContext.serialize(include_secrets=False)``), so the child's pull-request
  flow is recorded as its subflow, as when it ran in-process.
* child -> parent: ``result.json`` in a private temp folder, read as JSON only (its
  size bounded): ``{"report": Report.to_dict()}``, or ``{"error": {class, exit_code,
  message, hint, problems}}`` for one of our errors (re-raised as the same class, so
  the user sees the same message, hint and exit code), or ``{"crash": {type, text,
  traceback}}`` for a bug (re-raised as an exception of the same type name whose cause
  carries the child's traceback, so the CLI's crash log shows it; exit 3). A child
  that ends without a result (killed, or PR code calling ``os._exit``) is exit 3 too.
* the child's stdout and stderr are relayed to this process's stderr (stdout stays
  pure for ``mlops run --json``).

The child dies with the parent: it shares the parent's process group (so the webhook
service's group kill and a terminal's Ctrl-C reach it and its training command), asks
Linux for a parent-death signal and watches its parent; SIGTERM ends it through an
exception, so its training command is killed and its temp folders are removed. The
parent stops it (TERM, then KILL after a grace) on any exception, Ctrl-C included.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from mlgitops.run import childenv
from mlgitops.errors import MlopsError

if TYPE_CHECKING:  # pragma: no cover
    from mlgitops.config.loader import LoadedConfig
    from mlgitops.forges import Forge
    from mlgitops.plan.decide import RunPlan
    from mlgitops.report.model import Report

ISOLATE_ENV = "MLOPS_ISOLATE"
# Credentials childenv's name parts miss (AWS_SECRET_ACCESS_KEY, GOOGLE_APPLICATION_CREDENTIALS
# and AZURE_CLIENT_SECRET it catches; AZURE_STORAGE_CONNECTION_STRING it does not).
EXTRA_CREDENTIAL_PARTS = ("CONNECTION_STRING", "CONN_STR", "CERTIFICATE")
# Besides childenv's allow-list, what the compute needs that is not a credential.
PASSED_PREFIXES = ("PREFECT_", "MLOPS_")
PASSED = frozenset(
    {
        "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_RUNTIME_DIR",
        # A remote Prefect API may sit behind a proxy or a private CA (a proxy URL with
        # a user:password part is dropped below).
        "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "no_proxy", "all_proxy",
        "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
    }
)  # fmt: skip
# A URL with a user:password part, e.g. a database URL in a Prefect setting.
URL_USERINFO = re.compile(r"://[^/\s@]*:[^/\s@]*@")
RESULT_MAX_BYTES = 64 << 20  # a report is kilobytes; the child is untrusted
STOP_GRACE_S = 10  # after SIGTERM, before SIGKILL
RELAY_JOIN_S = 5  # for the relay to drain once the child has exited
WATCH_INTERVAL_S = 0.5
# `-I` (isolated mode): neither the working directory (a pull request's checkout) nor
# PYTHONPATH nor the user's site-packages is on sys.path. The folder that holds the
# parent's own mlgitops is added when it is not already there (an editable install's
# finder or a source checkout), so the child runs the parent's code.
_BOOT = "import sys; p = sys.argv[1]; p in sys.path or sys.path.insert(0, p); from mlgitops.run.compute_child import main; main()"


class ComputeCrashed(Exception):
    """The child failed unexpectedly (exit 3). Re-raised under the child's exception's
    type name (a subclass made on the fly), so the terminal line reads as it did when
    the run computed in-process."""


class ChildTraceback(Exception):
    """The child's traceback, as the ``__cause__`` of the exception raised here: the
    crash log then shows where the child failed (as concurrent.futures does)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return "in the compute process:\n" + self.text


# -- when ----------------------------------------------------------------------------
def _secret_name(name: str) -> bool:
    return childenv.credential_like(name) or any(part in name.upper() for part in EXTRA_CREDENTIAL_PARTS)


def _alert_names(cfg: LoadedConfig, plan: RunPlan) -> set[str]:
    configs = [cfg, plan.candidate.cfg, plan.baseline.cfg]
    return {c.config.alerts.webhook_env for c in configs if c is not None and c.config.alerts.webhook_env}


def credentials_in_reach(cfg: LoadedConfig, plan: RunPlan, forge: Forge | None, environ: Mapping[str, str] | None = None) -> list[str]:
    """What this process holds that PR code must not reach (names, never values)."""
    from mlgitops.forges.local import LocalForge

    environ = os.environ if environ is None else environ
    held = sorted(n for n, v in environ.items() if v and (_secret_name(n) or (n.startswith("MLFLOW_") and URL_USERINFO.search(v))))
    held += sorted(n for n in _alert_names(cfg, plan) if environ.get(n) and n not in held)
    if forge is not None and not isinstance(forge, LocalForge):
        held.append(f"a {type(forge).__name__} token")
    return held


def wanted(cfg: LoadedConfig, plan: RunPlan, forge: Forge | None, environ: Mapping[str, str] | None = None) -> bool:
    """Whether this untrusted run computes in a child: a credential is in reach, or
    MLOPS_ISOLATE=1 (there is no way to turn it off while a credential is in reach)."""
    environ = os.environ if environ is None else environ
    forced = (environ.get(ISOLATE_ENV) or "").strip().lower() in ("1", "true", "yes", "on")
    return forced or bool(credentials_in_reach(cfg, plan, forge, environ))


# -- the child's environment ------------------------------------------------------------
def training_env_names(plan: RunPlan) -> list[str]:
    """The ``training.env`` names the training commands of this run may receive (each
    side's, as :func:`childenv.effective_names` decides): the child must hold them to
    pass them on; nothing else credential-like."""
    names: list[str] = []
    for side in (plan.candidate, plan.baseline.side):
        if side is None:
            continue
        trusted = side.trusted.training.env if side.trusted is not None else None
        names += childenv.effective_names(side.cfg.config.training.env, trusted)[0]
    return list(dict.fromkeys(names))


def environment(cfg: LoadedConfig, plan: RunPlan, api_url: str | None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """childenv's allow-list and the run's ``training.env`` names, plus the non-secret
    ``PREFECT_*``/``MLOPS_*`` settings and XDG folders; ``PREFECT_API_URL`` is the
    API this process would use (it may live in Prefect's settings, not the environment)."""
    environ = os.environ if environ is None else environ
    listed = training_env_names(plan)
    alerts = _alert_names(cfg, plan)
    env = childenv.child_env(listed, {}, environ)
    for name, value in environ.items():
        if name in env or name in alerts or _secret_name(name) or URL_USERINFO.search(value):
            continue
        if name.startswith(PASSED_PREFIXES) or name in PASSED:
            env[name] = value
    env.pop("PREFECT_API_URL", None)
    if api_url:
        env["PREFECT_API_URL"] = api_url
    env.pop(ISOLATE_ENV, None)  # the child computes; it never isolates again
    return env


def _api_url() -> str | None:
    """The Prefect API this process would use, or None (the child then boots its own
    embedded server, see :mod:`mlgitops.service.prefect_server`)."""
    from mlgitops.service.prefect_server import configured_api_url

    return configured_api_url()


# -- parent side -------------------------------------------------------------------------
def compute(cfg: LoadedConfig, plan: RunPlan) -> Report:
    """The report of ``plan`` computed by a secret-less child (see the module's doc).
    Raises the child's MlopsError as the same class, message and hint; a crash or a
    child that ends without a result raises an exception the CLI maps to exit 3."""
    from mlgitops import gitrepo
    from mlgitops.run.debris import owned_prefix

    childenv.make_undumpable()  # the child is same-uid: it must not read /proc/<ppid>/environ or memory
    package_dir = str(Path(__file__).resolve().parents[2])  # the folder holding mlgitops/
    with tempfile.TemporaryDirectory(prefix=owned_prefix("stage")) as tmp:
        result = Path(tmp) / "result.json"
        hashes = gitrepo.HASHES.entries if gitrepo.HASHES.dirty else {}
        request = {"cfg": cfg, "plan": plan, "hashes": hashes, "result": str(result), "prefect_parent": _prefect_parent()}
        payload = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
        pdeathsig = "1" if threading.current_thread() is threading.main_thread() else "0"
        argv = [sys.executable, "-I", "-c", _BOOT, package_dir, str(os.getpid()), pdeathsig]
        env = environment(cfg, plan, _api_url())
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=str(plan.root))
        relay = _Relay(proc.stdout)
        try:
            try:
                assert proc.stdin is not None
                proc.stdin.write(payload)
                proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass  # the child ended before reading: its exit status tells
            code = proc.wait()
        except BaseException:
            _stop(proc)
            raise
        finally:
            relay.join()
        return _outcome(result, code, relay.tail())


def _prefect_parent() -> bytes | None:
    """The Prefect flow run this process runs in (a deployment's ``mlops-event``), with
    its secrets masked, for the child to run the pull-request flow as its subflow."""
    if "prefect.context" not in sys.modules:
        return None  # not in a flow run (and no need to import Prefect to know it)
    import cloudpickle  # Prefect's own dependency, which ships contexts to its task runners
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    return None if ctx is None else cloudpickle.dumps(ctx.serialize(include_secrets=False))


class _Relay:
    """Copies the child's output to this process's stderr as it comes (read in chunks:
    PR code may print a line of any length); keeps the last lines for a crash report."""

    TAIL_CHARS = 4000

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.last = ""
        self.out = sys.stderr  # the stderr at call time (click's CliRunner replaces it)
        self.thread = threading.Thread(target=self._run, name="mlops-compute-relay", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        fd = self.stream.fileno()
        while True:  # ends at EOF, when the child and anything it left holding the pipe are gone
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            text = chunk.decode("utf-8", "replace")
            self.last = (self.last + text)[-self.TAIL_CHARS :]
            try:
                self.out.write(text)
                self.out.flush()
            except (OSError, ValueError):  # a closed stderr: keep draining the pipe
                pass

    def join(self) -> None:
        # A process the child left behind may keep the pipe open: wait a little, then
        # stop listening (the thread is a daemon and the pipe is closed below).
        self.thread.join(RELAY_JOIN_S)
        if not self.thread.is_alive():
            self.stream.close()

    def tail(self) -> str:
        return self.last


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """TERM (the child turns it into an exception: its training command is killed and
    its temp folders removed), then KILL after a grace."""
    if proc.poll() is not None:
        return
    try:
        proc.terminate()
        proc.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    except BaseException:  # a second Ctrl-C while we wait: no grace left
        proc.kill()
        proc.wait()
        raise


def _outcome(result: Path, code: int, tail: str) -> Report:
    from mlgitops.report.model import Report

    how = f"killed by {signal.Signals(-code).name}" if code < 0 and -code in signal.valid_signals() else f"exit status {code}"
    try:
        size = result.stat().st_size
    except OSError:
        raise _died(f"the compute process ended ({how}) without a result", tail) from None
    if size > RESULT_MAX_BYTES:
        raise _died(f"the compute process returned {size:,} bytes, more than a report can be ({RESULT_MAX_BYTES:,})", tail)
    try:
        raw = json.loads(result.read_bytes())
        if not isinstance(raw, dict):
            raise ValueError("not an object")
        if "report" in raw:
            return Report.from_dict(raw["report"])
        if "error" in raw:
            raise _error(raw["error"])
        if "crash" in raw:
            crash = raw["crash"]
            raise _crashed(str(crash["type"]), str(crash["text"]), str(crash["traceback"]))
    except (MlopsError, ComputeCrashed):
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the child wrote, it is data
        raise _died(f"the compute process ({how}) returned a result that is not a report ({type(exc).__name__}: {exc})", tail) from None
    raise _died(f"the compute process ({how}) returned a result that is not a report", tail)


def _error(raw: dict[str, Any]) -> MlopsError:
    """One of our errors, rebuilt as the class the child raised (or its nearest base
    here), with the same message, hint, problems and exit code."""
    from mlgitops import errors

    name, message, hint, problems = raw.get("class"), str(raw["message"]), raw.get("hint"), raw.get("problems")
    hint = str(hint) if hint is not None else None
    if isinstance(problems, list):
        exc: MlopsError = errors.ConfigError([str(p) for p in problems], hint)
    else:
        cls = getattr(errors, str(name), None)
        if not (isinstance(cls, type) and issubclass(cls, MlopsError)) or cls is errors.ConfigError:
            cls = errors.InputError if raw.get("exit_code") == errors.EXIT_INVALID_INPUT else MlopsError
        exc = cls(message, hint)
    code = raw.get("exit_code")
    if isinstance(code, int) and code != exc.exit_code and code in (errors.EXIT_INVALID_INPUT, errors.EXIT_INTERNAL):
        exc.exit_code = code
    return exc


def _crashed(type_name: str, text: str, child_traceback: str) -> ComputeCrashed:
    name = re.sub(r"\W", "_", type_name)[:100] or "Exception"
    if not name[0].isalpha():
        name = f"E{name}"
    cls = type(name, (ComputeCrashed,), {"__module__": __name__})
    exc = cls(text)
    exc.__cause__ = ChildTraceback(child_traceback)
    return exc


def _died(message: str, tail: str) -> ComputeCrashed:
    exc = ComputeCrashed(message)
    exc.__cause__ = ChildTraceback(f"the last output of the compute process:\n{tail}" if tail else "the compute process printed nothing")
    return exc


# -- child side ---------------------------------------------------------------------------
def main() -> None:
    """The child's entry (``python -I -c _BOOT PKGDIR PARENT_PID PDEATHSIG``): die with
    the parent, read the request from stdin, compute, write the result file."""
    parent, pdeathsig = int(sys.argv[2]), sys.argv[3] == "1"
    signal.signal(signal.SIGTERM, _terminated)
    if pdeathsig:
        from mlgitops.service.prefect_server import _set_pdeathsig

        _set_pdeathsig(signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(0)
    threading.Thread(target=_watch_parent, args=(parent,), name="mlops-parent-watch", daemon=True).start()
    request = pickle.loads(sys.stdin.buffer.read())  # from the parent, through a pipe: trusted
    result = Path(request["result"])
    try:
        out: dict[str, Any] = {"report": _compute(request).to_dict()}
    except MlopsError as exc:
        out = {"error": {"class": type(exc).__name__, "exit_code": exc.exit_code, "message": exc.message, "hint": exc.hint, "problems": getattr(exc, "problems", None)}}
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which logs it (exit 3)
        from mlgitops.crashlog import LOGGED_CHARS, safe_text

        out = {"crash": {"type": type(exc).__name__, "text": safe_text(exc), "traceback": safe_text("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)), LOGGED_CHARS)}}
    tmp = result.with_name(result.name + ".tmp")
    tmp.write_text(json.dumps(out, default=str))
    os.replace(tmp, result)
    sys.stdout.flush()
    sys.stderr.flush()


def _compute(request: dict[str, Any]) -> Report:
    from mlgitops import gitrepo
    from mlgitops.run.compute import fresh_report
    from mlgitops.plan.store import Store

    cfg, plan = request["cfg"], request["plan"]
    store = Store(plan.root, trusted=False)
    gitrepo.HASHES = gitrepo.HashCache(store.dir / "cache" / "hashes.json")
    if request.get("hashes"):
        gitrepo.HASHES.entries.update(request["hashes"])
        gitrepo.HASHES.dirty = True
    started = time.perf_counter()
    if not request.get("prefect_parent"):
        return fresh_report(cfg, plan, store, started)
    from mlgitops.service.prefect_server import import_prefect

    import_prefect()  # first: Prefect must not read prefect.toml / .env from the checkout
    from prefect.context import hydrated_context

    with hydrated_context({"flow_run_context": pickle.loads(request["prefect_parent"])}):
        return fresh_report(cfg, plan, store, started)


def _terminated(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _watch_parent(parent: int) -> None:
    """Poll: once the parent is gone (we are re-parented), end as on SIGTERM."""
    while os.getppid() == parent:
        time.sleep(WATCH_INTERVAL_S)
    os.kill(os.getpid(), signal.SIGTERM)
