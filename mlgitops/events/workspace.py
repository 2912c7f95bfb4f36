"""The handlers for a workspace (mlops-workspace.yaml, no --config): every model it lists.

The dispatcher's handlers call these when :meth:`Context.workspace` finds the file:
a pull request (or merge queue group, or local branch) runs the models whose
fingerprint changed (:mod:`mlgitops.run.workspace`); a push to the default branch
deploys each model on its own promotion branch per environment
(``mlops/deploy/<model>/<env>``); ``/mlops retrain`` retrains every model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlgitops.events.outcome import Context, Outcome


def pull_request(event: Any, ctx: Context, ws: Any, retrain: str | None = None, forge: Any = None) -> Outcome:
    """Every model whose fingerprint changed (all of them for a ``retrain``); ``forge``:
    where comments and statuses go (default: the pull request's, as ``ctx`` says)."""
    from mlgitops.config.workspace import load_members
    from mlgitops.forges.factory import pull_request_forge
    from mlgitops.forges.local import LocalForge
    from mlgitops.run.runner import queue_line
    from mlgitops.run.workspace import run_workspace_pr

    configs = load_members(ws)  # every config valid, names unique: else exit 2 before anything runs
    forge = forge or pull_request_forge(ctx.forge, ctx.token, event, ws.root)
    run = run_workspace_pr(configs, ws.root, event, forge, ctx.forge, ctx.token, retrain)
    queue = event.kind == "merge_group"
    where = None
    if not queue and isinstance(forge, LocalForge) and any(m.comment for m in run.models):
        where = str((forge.dir / event.pr_key / "comments.json").relative_to(ws.root))
    notes = [n for n in [*(m.comment.note for m in run.models if m.comment), *getattr(forge, "warnings", [])] if n]
    verdict = "pass" if run.passed else "fail"
    # The action's outputs over the workspace (each model's run wrote its own first; these win):
    # metrics per model, and no single comment URL or drift report to name.
    metrics = {m.name: {row.name: row.candidate for row in m.report.metrics} for m in run.models if m.report is not None}
    outputs = {"verdict": verdict, "summary": run.summary, "metrics": json.dumps(metrics, sort_keys=True), "comment-url": "", "drift-report": ""}
    message = f"{verdict.upper()} workspace: {run.summary}"
    return Outcome(run.exit_code, "merge_group" if queue else "pull_request", message=message, where=where, queue_line=queue_line(event) if queue else None, notes=notes, outputs=outputs, models=run.models)


@dataclass
class DeployRun:
    """One model's deploy in a workspace."""

    name: str
    config_rel: str
    exit_code: int
    result: Any = None  # deploy.promote.Outcome
    error: str = ""  # the error as the terminal shows it


def deploy(event: Any, ctx: Context, ws: Any) -> Outcome:
    """Each model in turn (registry writes and promotion branches stay ordered): its own
    promotion PR per environment, on mlops/deploy/<model>/<env>."""
    from mlgitops.config.workspace import load_members
    from mlgitops.deploy.ops import deploy_model
    from mlgitops.forges.factory import deploy_targets
    from mlgitops.run.workspace import _describe, worst

    configs = load_members(ws)
    runs: list[DeployRun] = []
    for cfg in configs:
        rel = Path(cfg.path).resolve().relative_to(ws.root.resolve()).as_posix()
        try:
            targets = deploy_targets(cfg, ws.root, ctx.forge, ctx.token)  # members: mlops/deploy/<name>/<env>
            result = deploy_model(cfg, ws.root, rel, event, ctx.forge, targets)
            runs.append(DeployRun(cfg.config.name, rel, result.exit_code, result))
        except Exception as exc:  # noqa: BLE001 - one model's failure; the others still deploy
            code, _line, text = _describe(exc)
            runs.append(DeployRun(cfg.config.name, rel, code, error=text))
    code = worst([r.exit_code for r in runs])
    failed = [r.name for r in runs if r.exit_code]
    message = f"workspace deploy: {len(failed)} of {len(runs)} models failed: {', '.join(failed)}" if failed else f"workspace deploy: {len(runs)} models done"
    outputs = {"deploy-message": "; ".join(f"{r.name}: {r.result.message if r.result else r.error.splitlines()[0]}" for r in runs)}
    return Outcome(code, "deploy", message=message, outputs=outputs, models=runs)
