"""Run the PR loop for one event: plan from fingerprints, reuse or run the flow, publish.

Data flows one way: config -> event -> plan -> flow (tasks) -> report -> forge.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

from mlgitops.config.loader import LoadedConfig
from mlgitops.errors import EXIT_GATE_FAILED, EXIT_OK
from mlgitops.events.payloads import Event
from mlgitops.forges import GATE_CONTEXT, CommentRef, Forge
from mlgitops import gitrepo
from mlgitops.plan.decide import RunPlan, make_plan
from mlgitops.report.render import marker
from mlgitops.report.model import Report
from mlgitops.plan.store import Store
from mlgitops.run.compute import DIRTY_PREFIX, fresh_report, render, uncommitted_notes

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


def publish(report: Report, body: str, event: Event, forge: Forge, context: str = GATE_CONTEXT) -> CommentRef:
    """The comment, then the final status. The status is set even when the comment
    fails, so `mlops/gate` never stays pending on a finished run. A merge queue run
    has no pull request to comment on: its status and check run are its result.
    ``context``: the status context (a workspace's model: ``mlops/gate/<name>``)."""
    if event.kind == "merge_group":
        if event.head_sha:
            forge.set_status(event.head_sha, "success" if report.passed else "failure", f"mlops: {report.summary}", summary=body, context=context)
        return CommentRef(None, None, False)
    try:
        ref = forge.upsert_comment(event, marker(report.name), body)
    except Exception:
        if event.head_sha:
            try:
                forge.set_status(event.head_sha, "success" if report.passed else "failure", f"mlops: {report.summary} (the PR comment could not be written)", summary=body, context=context)
            except Exception:  # noqa: BLE001 - the comment's error is the one to report
                pass
        raise
    if event.head_sha:
        state = "success" if report.passed else "failure"
        forge.set_status(event.head_sha, state, f"mlops: {report.summary}", summary=body, context=context)
    return ref


def deliver(report: Report, body: str, event: Event, forge: Forge, context: str = GATE_CONTEXT) -> CommentRef:
    """Step summary and outputs (on Actions) whatever happens, then the forge; a
    read-only token (a fork's pull request) degrades to the summary and exit code."""
    from mlgitops.forges import actions_runtime
    from mlgitops.forges.github import ReadOnly

    actions_runtime.append_summary(f"{queue_line(event)}\n\n{body}" if event.kind == "merge_group" else body)
    ref = CommentRef(None, None, False)
    try:
        ref = publish(report, body, event, forge, context)
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


def _pending(forge: Forge, event: Event, context: str = GATE_CONTEXT) -> None:
    """Best effort: a failure here must not stop training; a bad token must."""
    from mlgitops.forges.github import ForgeAuthError, ForgeError

    if forge.shows_pending and event.head_sha:
        try:
            forge.set_status(event.head_sha, "pending", "mlops: training and evaluating", context=context)
        except ForgeAuthError:
            raise
        except ForgeError:
            pass  # reported when the results are delivered


def compute_report(cfg: LoadedConfig, plan: RunPlan, store: Store, forge: Forge | None = None, context: str = GATE_CONTEXT) -> Report:
    """The report for ``plan``: reused when every input is unchanged, else the flow runs.

    Nothing lands in `.mlops/` unless the run produced a report that renders. An
    untrusted run with a credential in reach trains, unpickles and scores in a
    secret-less child (:mod:`mlgitops.run.compute_child`); this process only reads the
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
        _pending(forge, event, context)
    from mlgitops.run import compute_child
    from mlgitops.forges.actions_runtime import group

    with group(f"mlops: train and evaluate {cfg.config.name}"):
        if not store.trusted and compute_child.wanted(cfg, plan, forge):
            report = compute_child.compute(cfg, plan)
            report.timings["total"] = round(time.perf_counter() - started, 3)
            return report
        return fresh_report(cfg, plan, store, started)


def run_pull_request(cfg: LoadedConfig, root: Path, config_rel: str, event: Event, forge: Forge, retrain: str | None = None, context: str = GATE_CONTEXT) -> Outcome:
    """The PR flow end to end; ``retrain`` (why) trains the candidate afresh, ignoring the cache."""
    report, body = prepare(cfg, root, config_rel, event, forge, retrain, context)
    return finish(report, body, event, forge, context)


def prepare(cfg: LoadedConfig, root: Path, config_rel: str, event: Event, forge: Forge, retrain: str | None = None, context: str = GATE_CONTEXT) -> tuple[Report, str]:
    """Plan, reuse or compute, publish the candidate, render: (report, comment body).
    Writes nothing to the forge but the pending status (a workspace runs this for
    several models at once, then delivers each in turn with :func:`finish`)."""
    store = Store(root, trusted=False)  # a pull request, a local branch or `/mlops retrain`: the branch's code runs
    gitrepo.HASHES = gitrepo.HashCache(store.dir / "cache" / "hashes.json")
    plan = replace(make_plan(cfg, root, config_rel, event), retrain=retrain)
    report = compute_report(cfg, plan, store, forge, context)
    published = publish_candidate(cfg, plan, store, report)
    if published:
        report.notes = [*report.notes, published]
    from mlgitops.tracking import mlflow_runs

    tracked = mlflow_runs.track(cfg, plan, store, report)  # here, in the trusted parent: the PR's code never holds MLflow's credentials
    body = render(report, cfg, plan)
    mlflow_runs.attach_comment(tracked, body, report)
    return report, body


def finish(report: Report, body: str, event: Event, forge: Forge, context: str = GATE_CONTEXT) -> Outcome:
    """Deliver a prepared report (comment, then status under ``context``) and alert on a failed gate."""
    ref = deliver(report, body, event, forge, context)
    if not report.passed:
        from mlgitops.forges import alerts

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
    from mlgitops.deploy.candidates import publish
    from mlgitops.deploy.registry.urls import registry_for
    from mlgitops.errors import InputError

    trusted = cfg if plan.event.base_sha is None else plan.baseline.cfg
    if trusted is None:
        return "candidate not published: the registry is taken from the base ref's mlops.yaml, and the base ref has none"
    try:
        registry = registry_for(trusted)
    except InputError as exc:
        return f"candidate not published: {exc.message.splitlines()[0]}"
    return publish(registry, cfg.config.name, plan.candidate.key, store, report, plan.event)
