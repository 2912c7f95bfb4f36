"""Run the PR loop for one event: plan from fingerprints, reuse or run the flow, publish.

Data flows one way: config -> event -> plan -> flow (tasks) -> report -> forge.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

from .config import LoadedConfig
from .errors import EXIT_GATE_FAILED, EXIT_OK, ConfigError
from .events import Event
from .forges import CommentRef, Forge
from . import gitrepo
from .gitrepo import git
from .plan import RunPlan, make_plan
from .render import marker, render_comment, run_templates
from .report import Report
from .store import Store

PREFECT_DEFAULTS = {
    # Quiet, offline-friendly defaults; any value the user exported wins.
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_UI_ENABLED": "false",
    "PREFECT_SERVER_UI_ENABLED": "false",
}


@dataclass
class Outcome:
    report: Report
    comment: CommentRef
    exit_code: int


def _cached_report(plan: RunPlan, store: Store) -> Report | None:
    if plan.retrain:
        return None
    raw = store.get_run(plan.run_key)
    if raw is None:
        return None
    # The models must still be there: a cleaned cache means a real run.
    if store.get_model_meta(plan.candidate.key) is None:
        return None
    if plan.baseline.side is not None and store.get_model_meta(plan.baseline.side.key) is None:
        return None
    if (raw.get("export") or {}).get("status") in ("ok", "parity_failed") and store.get_onnx(plan.candidate.key) is None:
        return None  # the deploy needs the very bytes the report names
    try:
        return Report.from_dict(raw)
    except (TypeError, KeyError):
        return None


def run_flow(plan: RunPlan, store: Store) -> Report:
    for key, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(key, value)
    from . import prefect_server

    server = prefect_server.start()  # boots on the other core while we import below
    prefect_server.import_prefect()  # never reads prefect.toml / .env from the checkout
    from mlgitops.flows.pull_request import pull_request_flow

    import pandas  # noqa: F401  (warm the imports the tasks need while the server boots)
    import sklearn.model_selection  # noqa: F401

    cfg = plan.candidate.cfg.config
    if server is not None:
        # The embedded server takes seconds to boot (a new database migrates): the
        # heavy imports of later tasks are free while we wait for it.
        if cfg.export.onnx:
            import onnxruntime  # noqa: F401
            import skl2onnx  # noqa: F401
        if cfg.drift is not None or cfg.data.contract is not None:
            import evidently  # noqa: F401

    if server is not None:
        server.wait()

    if not os.environ.get("MLOPS_VERBOSE"):
        # Our own errors reach the user once, as one clear message from the CLI;
        # Prefect would also log them with a traceback. The run's state still
        # records the failure in the Prefect API. MLOPS_VERBOSE=1 shows everything.
        for name in ("prefect.task_runs", "prefect.flow_runs"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    return pull_request_flow(plan, store)


def render(report: Report, cfg: LoadedConfig, plan: RunPlan) -> str:
    """The comment body; a broken override template is the user's input (exit 2).
    On a run with a base commit the templates are the base ref's (render.run_templates)."""
    import jinja2

    templates = run_templates(cfg, plan.baseline.cfg, plan.event.base_sha, plan.root, plan.config_rel)
    try:
        return render_comment(report, templates=templates)
    except jinja2.TemplateError as exc:
        import traceback

        # Jinja puts template lines into the traceback; syntax errors carry them directly.
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.endswith(".j2")]
        lineno = getattr(exc, "lineno", None) or (frames[-1].lineno if frames else None)
        line = f" line {lineno}" if lineno else ""
        name = Path(getattr(exc, "filename", None) or (frames[-1].filename if frames else "pr_comment.md.j2")).name
        raise ConfigError(
            [f"{templates.where}: report.templates: template {name}{line} failed: {exc.message or exc}"],
            hint="templates see `report` (see `mlops run --json`), `marker`, `gate_cells`, `failed_gates`, `footer`",
        ) from None


def publish(report: Report, body: str, event: Event, forge: Forge) -> CommentRef:
    """The comment, then the final status. The status is set even when the comment
    fails, so `mlops/gate` never stays pending on a finished run. A merge queue run
    has no pull request to comment on: its status and check run are its result."""
    if event.kind == "merge_group":
        if event.head_sha:
            forge.set_status(event.head_sha, "success" if report.passed else "failure", f"mlops: {report.summary}", summary=body)
        return CommentRef(None, None, False)
    try:
        ref = forge.upsert_comment(event, marker(report.name), body)
    except Exception:
        if event.head_sha:
            try:
                forge.set_status(event.head_sha, "success" if report.passed else "failure", f"mlops: {report.summary} (the PR comment could not be written)", summary=body)
            except Exception:  # noqa: BLE001 - the comment's error is the one to report
                pass
        raise
    if event.head_sha:
        state = "success" if report.passed else "failure"
        forge.set_status(event.head_sha, state, f"mlops: {report.summary}", summary=body)
    return ref


def deliver(report: Report, body: str, event: Event, forge: Forge) -> CommentRef:
    """Step summary and outputs (on Actions) whatever happens, then the forge; a
    read-only token (a fork's pull request) degrades to the summary and exit code."""
    from . import actions_runtime
    from .forges.github import ReadOnly

    actions_runtime.append_summary(f"{queue_line(event)}\n\n{body}" if event.kind == "merge_group" else body)
    ref = CommentRef(None, None, False)
    try:
        ref = publish(report, body, event, forge)
    except ReadOnly as exc:
        ref = CommentRef(None, None, False, f"read-only token (e.g. a pull request from a fork): the report is in the step summary and the exit code; GitHub refused a write ({exc.message})")
    finally:
        metrics = {row.name: row.candidate for row in report.metrics}
        drift_html = (report.drift or {}).get("html") or ""
        actions_runtime.set_outputs({"verdict": report.verdict, "summary": report.summary, "metrics": json.dumps(metrics, sort_keys=True), "comment-url": ref.url or "", "drift-report": drift_html})
    return ref


def queue_line(event: Event) -> str:
    """What a merge queue run did, in one line (the step summary, the terminal)."""
    pr = f" (PR #{event.queue_pr})" if event.queue_pr is not None else ""
    sha, base = (event.head_sha or "?")[:7], (event.base_sha or "?")[:7]
    return f"merge queue: gated `{event.head_ref}`{pr} at {sha} against `{event.base_ref}` at {base}; the result is the `mlops/gate` status and check run on {sha}, no PR comment is written"


def _pending(forge: Forge, event: Event) -> None:
    """Best effort: a failure here must not stop training; a bad token must."""
    from .forges.github import ForgeAuthError, ForgeError

    if forge.shows_pending and event.head_sha:
        try:
            forge.set_status(event.head_sha, "pending", "mlops: training and evaluating")
        except ForgeAuthError:
            raise
        except ForgeError:
            pass  # reported when the results are delivered


def compute_report(cfg: LoadedConfig, plan: RunPlan, store: Store, forge: Forge | None = None) -> Report:
    """The report for ``plan``: reused when every input is unchanged, else the flow runs.

    Nothing lands in `.mlops/` unless the run produced a report that renders. An
    untrusted run with a credential in reach trains, unpickles and scores in a
    secret-less child (:mod:`mlgitops.compute_child`); this process only reads the
    cached report (JSON) and sets the pending status.
    """
    started = time.perf_counter()
    event = plan.event
    report = _cached_report(plan, store)
    if report is not None:
        report = replace(report, event=event.to_dict(), reused=True, timings=report.timings | {"total": round(time.perf_counter() - started, 3)})
        report.candidate = replace(report.candidate, ref=event.head_ref, sha=event.head_sha)
        report.baseline = replace(report.baseline, ref=event.base_ref, sha=event.base_sha)
        report.notes = [n for n in report.notes if not n.startswith(DIRTY_PREFIX)] + uncommitted_notes(plan)
        return report
    if forge is not None:
        _pending(forge, event)
    from . import compute_child
    from .actions_runtime import group

    with group(f"mlops: train and evaluate {cfg.config.name}"):
        if not store.trusted and compute_child.wanted(cfg, plan, forge):
            report = compute_child.compute(cfg, plan)
            report.timings["total"] = round(time.perf_counter() - started, 3)
            return report
        return fresh_report(cfg, plan, store, started)


def fresh_report(cfg: LoadedConfig, plan: RunPlan, store: Store, started: float) -> Report:
    """Run the flow for ``plan`` and stage and commit its report (in this process: the
    trusted deploy, an untrusted run with nothing to protect, or the compute child)."""
    if plan.retrain:  # the retrained model (and its export) replace the cached ones
        store.replacing.add(plan.candidate.key)
    try:
        report = run_flow(plan, store)
        report.timings["total"] = round(time.perf_counter() - started, 3)
        report.notes = [n for n in report.notes if not n.startswith(DIRTY_PREFIX)] + uncommitted_notes(plan)
        render(report, cfg, plan)  # a broken override template fails before anything lands in .mlops/
        store.stage_run(plan.run_key, report.to_dict())
        store.commit()
        gitrepo.HASHES.save()
    finally:
        store.discard()
    return report


def run_pull_request(cfg: LoadedConfig, root: Path, config_rel: str, event: Event, forge: Forge, retrain: str | None = None) -> Outcome:
    """The PR flow end to end; ``retrain`` (why) trains the candidate afresh, ignoring the cache."""
    store = Store(root, trusted=False)  # a pull request, a local branch or `/mlops retrain`: the branch's code runs
    gitrepo.HASHES = gitrepo.HashCache(store.dir / "cache" / "hashes.json")
    plan = replace(make_plan(cfg, root, config_rel, event), retrain=retrain)
    report = compute_report(cfg, plan, store, forge)
    published = publish_candidate(cfg, plan, store, report)
    if published:
        report.notes = [*report.notes, published]
    ref = deliver(report, render(report, cfg, plan), event, forge)
    if not report.passed:
        from . import alerts

        where = f"PR #{event.pr_number}" if event.pr_number is not None else f"`{event.head_ref or event.head_sha or 'HEAD'}`"
        failed = [g for g in report.gates if not g.passed]
        alerts.send("gate_failure", f"gate failed on {where}: {report.summary}", [g.message for g in failed], ref.url)
        drifted = [g for g in failed if g.metric == "drift"]
        if drifted:
            alerts.send("drift", f"training data drifted on {where}", [g.message for g in drifted], ref.url)
    return Outcome(report, ref, EXIT_OK if report.passed else EXIT_GATE_FAILED)


def publish_candidate(cfg: LoadedConfig, plan: RunPlan, store: Store, report: Report) -> str:
    """Publish the candidate to the registry the **base ref** names (a pull request that
    changes ``registry.url`` must not send the job's registry credentials elsewhere);
    with no base commit (a local branch run) the working tree's config names it."""
    from .candidates import publish
    from .deploy import registry_for
    from .errors import InputError

    trusted = cfg if plan.event.base_sha is None else plan.baseline.cfg
    if trusted is None:
        return "candidate not published: the registry is taken from the base ref's mlops.yaml, and the base ref has none"
    try:
        registry = registry_for(trusted)
    except InputError as exc:
        return f"candidate not published: {exc.message.splitlines()[0]}"
    return publish(registry, cfg.config.name, plan.candidate.key, store, report, plan.event)


DIRTY_PREFIX = "uncommitted changes in "


def uncommitted_notes(plan: RunPlan) -> list[str]:
    """The candidate is the working tree: say when it differs from the head commit."""
    data = plan.candidate.cfg.config.data
    config_dir = Path(plan.config_rel).parent
    local = [*plan.candidate.code_files, *[p for p in (data.path, data.holdout.path) if p and not p.startswith("sklearn:")]]
    paths = [plan.config_rel, *[(config_dir / p).as_posix() for p in local if not Path(p).is_absolute()]]
    out = git(plan.root, "diff", "--name-only", "HEAD", "--", *paths, check=False)
    dirty = sorted({line for line in out.splitlines() if line.strip()})
    return [f"{DIRTY_PREFIX}{', '.join(dirty)} are included in the candidate"] if dirty else []
