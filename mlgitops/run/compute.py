"""Compute a fresh report in this process: run the pull-request flow, render its comment
(a broken template fails before anything is kept) and commit the report to the store.
The trusted deploy, an untrusted run with nothing to protect, and the secret-less child
(``compute_child``) all come here; ``runner`` decides which."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from mlgitops import gitrepo
from mlgitops.config.loader import LoadedConfig
from mlgitops.errors import ConfigError
from mlgitops.gitrepo import git
from mlgitops.plan.decide import RunPlan
from mlgitops.plan.store import Store
from mlgitops.report.model import Report
from mlgitops.report.render import render_comment, run_templates

PREFECT_DEFAULTS = {
    # Quiet, offline-friendly defaults; any value the user exported wins.
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_UI_ENABLED": "false",
    "PREFECT_SERVER_UI_ENABLED": "false",
}


def run_flow(plan: RunPlan, store: Store) -> Report:
    for key, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(key, value)
    from mlgitops.service import prefect_server

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

    loggers = [logging.getLogger(name) for name in ("prefect.task_runs", "prefect.flow_runs")]
    levels = [logger.level for logger in loggers]
    if not os.environ.get("MLOPS_VERBOSE"):
        # Our own errors reach the user once, as one clear message from the CLI;
        # Prefect would also log them with a traceback. The run's state still
        # records the failure in the Prefect API. MLOPS_VERBOSE=1 shows everything.
        # Restored afterwards: an outer flow (a deployment's entry flow) logs the
        # verdict and its own final state through these loggers.
        for logger in loggers:
            logger.setLevel(logging.CRITICAL)
    try:
        return pull_request_flow(plan, store)
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


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
