"""A pull request (or merge queue group, or local branch) in a workspace: many models.

Each model whose fingerprint changed between the base and the head
(:mod:`mlgitops.plan.changed`) runs the ordinary PR flow; an unchanged one is not
trained, and its status says so. Statuses: ``mlops/gate/<name>`` per model, then the
aggregate ``mlops/gate`` (what branch protection requires): failure when any model
failed, its description naming them. Comments: one sticky comment per model (the
marker carries the model's name), so each stays within GitHub's 65,536 characters and
a rerun of one model updates only its own. Exit code: the worst over the models.

Changed models are computed in parallel in a bounded pool of **processes**
(``min(cores, changed models)``, ``MLOPS_WORKSPACE_JOBS`` overrides; 1 model: in this
process). Processes, not threads: training is CPU-bound Python (the GIL), and a run
holds process-wide state (stdout redirection while Prefect runs, the hash cache, the
seeding environment). Each process pays Prefect's import floor (about 3 s), so a
single changed model never starts a pool. The embedded Prefect server, when one is
needed, is started here once and shared. Only the computing is parallel: comments and
statuses are delivered from this process, one model after another (the local forge's
files are read-modify-write, and GitHub's secondary rate limits dislike bursts).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlgitops.errors import EXIT_INTERNAL, EXIT_OK, MlopsError
from mlgitops.forges import GATE_CONTEXT, CommentRef

JOBS_ENV = "MLOPS_WORKSPACE_JOBS"


def model_context(name: str) -> str:
    """A workspace model's status context."""
    return f"{GATE_CONTEXT}/{name}"


@dataclass
class ModelRun:
    name: str
    config_rel: str
    state: str  # passed | failed | unchanged | error
    exit_code: int
    message: str  # one line: the verdict, why unchanged, or the error
    report: Any = None  # the Report, when the model ran
    comment: CommentRef | None = None
    error: str = ""  # the error as the terminal shows it (error: ..., hint: ...)


@dataclass
class WorkspaceRun:
    models: list[ModelRun]
    exit_code: int
    passed: bool
    summary: str  # the aggregate status's description (without the "mlops: " prefix)


def jobs(changed: int) -> int:
    """How many processes compute changed models at once."""
    raw = os.environ.get(JOBS_ENV, "").strip()
    if raw.isdigit() and int(raw) > 0:
        return min(int(raw), changed)
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, changed))


def worst(codes: list[int]) -> int:
    """The exit code over models: invalid input or internal error over a failed gate over 0."""
    return max(codes, default=EXIT_OK)


def aggregate(models: list[ModelRun]) -> tuple[bool, str]:
    """The aggregate ``mlops/gate``: (passed, description)."""
    bad = [m for m in models if m.state in ("failed", "error")]
    total = len(models)
    if bad:
        names = ", ".join(m.name + (" (error)" if m.state == "error" else "") for m in bad)
        return False, f"{len(bad)} of {total} model{'s' if total != 1 else ''} failed: {names}"
    ran = sum(m.state == "passed" for m in models)
    unchanged = total - ran
    parts = ([f"{ran} passed"] if ran else []) + ([f"{unchanged} unchanged"] if unchanged else [])
    return True, (f"all {total} models pass" if total != 1 else "the 1 model passes") + f" ({', '.join(parts)})"


def _describe(exc: BaseException) -> tuple[int, str, str]:
    """(exit code, one line, the terminal's text) for a model's error; a crash gets its log."""
    from mlgitops.guard import format_error

    if isinstance(exc, MlopsError):
        text = format_error(exc)
        return exc.exit_code, text.splitlines()[0].removeprefix("error: "), text
    from mlgitops.crashlog import safe_text, write_crash_log

    log, why = write_crash_log(exc)
    where = f"a log with versions and the traceback is at {log}" if log else f"no log could be written ({why})"
    line = f"internal error: {type(exc).__name__}: {safe_text(exc)}"
    return EXIT_INTERNAL, line, f"{line}\n  {where}"


def _prepare_member(job: dict[str, Any]) -> dict[str, Any]:
    """In a pool process: one model's report and comment body (nothing is delivered)."""
    from mlgitops.config.loader import load_config
    from mlgitops.events.payloads import Event
    from mlgitops.forges.factory import pull_request_forge
    from mlgitops.report.model import Report  # noqa: F401 - imported before Prefect quiets stdout
    from mlgitops.run.runner import prepare

    if job.get("prefect_api"):
        os.environ["PREFECT_API_URL"] = job["prefect_api"]
    try:
        root = Path(job["root"])
        cfg = load_config(Path(job["path"]), display=job["rel"])
        event = Event(**job["event"])
        forge = pull_request_forge(job["forge"], job["token"], event, root)
        report, body = prepare(cfg, root, job["rel"], event, forge, job["retrain"], job["context"])
        return {"report": report.to_dict(), "body": body}
    except Exception as exc:  # noqa: BLE001 - reported per model, with its exit code
        code, line, text = _describe(exc)
        return {"error": [code, line, text]}


def run_workspace_pr(configs: list[Any], root: Path, event: Any, forge: Any, forge_kind: str, token: str | None, retrain: str | None = None) -> WorkspaceRun:
    """The PR flow for every model of the workspace (``configs``: LoadedConfig each)."""
    from mlgitops.plan.changed import model_change

    base_label = event.base_ref or (event.base_sha or "")[:7]
    rel_of = {id(c): Path(c.path).resolve().relative_to(root.resolve()).as_posix() for c in configs}
    results: dict[str, ModelRun] = {}
    changed: list[Any] = []
    for cfg in configs:
        name = cfg.config.name
        try:
            change = model_change(cfg, root, rel_of[id(cfg)], event.base_sha, base_label)
        except Exception as exc:  # noqa: BLE001 - one model's problem (a missing data file) is its own
            code, line, text = _describe(exc)
            results[name] = ModelRun(name, rel_of[id(cfg)], "error", code, line, error=text)
            continue
        if change.changed or retrain:
            changed.append(cfg)
        else:
            results[name] = ModelRun(name, rel_of[id(cfg)], "unchanged", EXIT_OK, change.why)
    sha = event.head_sha
    if sha and forge.shows_pending and changed:
        _quietly(forge.set_status, sha, "pending", f"mlops: training {len(changed)} of {len(configs)} models", context=GATE_CONTEXT)
    for run in results.values():  # unchanged (success) and errors, before the long part
        if sha:
            state = "success" if run.state == "unchanged" else "error"
            _quietly(forge.set_status, sha, state, f"mlops: {run.message}", context=model_context(run.name))
    for cfg, outcome in _compute(changed, root, event, forge, forge_kind, token, retrain):
        name = cfg.config.name
        results[name] = _deliver(cfg, rel_of[id(cfg)], outcome, event, forge)
    ordered = [results[c.config.name] for c in configs]
    passed, summary = aggregate(ordered)
    from mlgitops.forges import actions_runtime

    actions_runtime.append_summary(f"### {'✅' if passed else '❌'} mlops workspace: {summary}\n\n{_summary_table(ordered)}")  # on Actions: after each model's report
    if sha:
        from mlgitops.forges.github import ReadOnly

        try:
            forge.set_status(sha, "success" if passed else "failure", f"mlops: {summary}", summary=_summary_table(ordered), context=GATE_CONTEXT)
        except ReadOnly:
            pass  # a fork's read-only token: each model's run already said so; the exit code and step summary remain
    return WorkspaceRun(ordered, worst([m.exit_code for m in ordered]), passed, summary)


def _quietly(fn: Any, *args: Any, **kwargs: Any) -> None:
    """A status that is not the final word: a forge hiccup must not stop the run; a bad token must."""
    from mlgitops.forges.github import ForgeAuthError, ForgeError

    try:
        fn(*args, **kwargs)
    except ForgeAuthError:
        raise
    except ForgeError:
        pass


def _compute(changed: list[Any], root: Path, event: Any, forge: Any, forge_kind: str, token: str | None, retrain: str | None) -> list[tuple[Any, dict[str, Any]]]:
    """Each changed model's prepared report ({report, body} or {error}), in order."""
    from mlgitops.run.runner import prepare

    if not changed:
        return []
    workers = jobs(len(changed))
    if workers == 1:
        out = []
        for cfg in changed:
            rel = Path(cfg.path).resolve().relative_to(root.resolve()).as_posix()
            try:
                report, body = prepare(cfg, root, rel, event, forge, retrain, model_context(cfg.config.name))
                out.append((cfg, {"report": report, "body": body}))
            except Exception as exc:  # noqa: BLE001 - reported per model, with its exit code
                out.append((cfg, {"error": list(_describe(exc))}))
        return out
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from mlgitops.report.model import Report
    from mlgitops.service import prefect_server

    prefect_server.start()  # one embedded server for every process (when no API is configured)
    api = prefect_server.configured_api_url()
    jobs_ = [
        {
            "root": str(root), "path": str(cfg.path), "rel": Path(cfg.path).resolve().relative_to(root.resolve()).as_posix(),
            "event": event.to_dict(), "forge": forge_kind, "token": token, "retrain": retrain,
            "context": model_context(cfg.config.name), "prefect_api": api,
        }
        for cfg in changed
    ]  # fmt: skip
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        done = list(pool.map(_prepare_member, jobs_))
    out = []
    for cfg, result in zip(changed, done):
        if "report" in result:
            result = {"report": Report.from_dict(result["report"]), "body": result["body"]}
        out.append((cfg, result))
    return out


def _deliver(cfg: Any, rel: str, prepared: dict[str, Any], event: Any, forge: Any) -> ModelRun:
    """One model's comment and status (``mlops/gate/<name>``), from this process."""
    from mlgitops.forges import alerts
    from mlgitops.run.runner import finish

    name = cfg.config.name
    context = model_context(name)
    if "error" in prepared:
        code, line, text = prepared["error"]
        if event.head_sha:
            _quietly(forge.set_status, event.head_sha, "error", f"mlops: {line}", context=context)
        return ModelRun(name, rel, "error", code, line, error=text)
    alerts.configure(cfg)  # this model's alert settings for its gate failure
    try:
        outcome = finish(prepared["report"], prepared["body"], event, forge, context)
    except Exception as exc:  # noqa: BLE001 - the comment of one model; the others still land
        code, line, text = _describe(exc)
        return ModelRun(name, rel, "error", code, line, prepared["report"], error=text)
    report = outcome.report
    return ModelRun(name, rel, "passed" if report.passed else "failed", outcome.exit_code, report.summary, report, outcome.comment)


def _summary_table(models: list[ModelRun]) -> str:
    """The aggregate check run's summary: one row per model."""
    icon = {"passed": "✅", "failed": "❌", "unchanged": "➖", "error": "⚠️"}
    rows = [f"| {icon[m.state]} `{m.name}` | `{m.config_rel}` | {m.state} | {m.message.replace('|', '/')} |" for m in models]
    return "\n".join(["| model | config | state | result |", "|---|---|---|---|", *rows])
