"""Log a pull request's runs to MLflow (``tracking.mlflow``), in the trusted parent.

One MLflow run per model the report scored: the candidate, and the baseline when this
run trained it. Params (the training spec), the holdout metrics exactly as the comment
shows them, tags (git sha, PR, model key and name, data sha256, side, run key), the
ONNX file and the rendered comment as artifacts. Only the parent process, after the
report is built, talks to MLflow: the PR's code (the training command, the compute
child) never holds the MLflow credentials.

A reused report (the inputs are unchanged, :func:`mlgitops.run.runner.compute_report`)
logs nothing new: the runs tagged with its run key are linked again. A server that is
unset, down or refuses the run is one line in the comment; ``required: true`` makes it
a failing gate.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlgitops.tracking.connect import Server, Unavailable, connect, failure, quiet

if TYPE_CHECKING:  # pragma: no cover
    from mlgitops.config.loader import LoadedConfig, MlflowTracking
    from mlgitops.plan.decide import RunPlan
    from mlgitops.plan.store import Store
    from mlgitops.report.model import ModelInfo, Report

TAG = "mlgitops."
RUN_KEY_TAG = TAG + "run_key"
PARAM_VALUE_MAX = 500  # MLflow accepts 6000; a param is for reading
MAX_PARAMS = 90  # log_batch takes 100 params at most


@dataclass
class Tracked:
    """What was logged for one PR run (the comment's links, the artifacts' targets)."""

    server: Server | None
    experiment: str
    runs: list[dict[str, Any]] = field(default_factory=list)  # side, run_id, url


def settings(cfg: LoadedConfig, plan: RunPlan) -> MlflowTracking | None:
    """``tracking.mlflow`` of the trusted config: the base ref's on a pull request (a PR
    must not point the job's MLflow credentials at another experiment), the working
    tree's on a run without a base commit."""
    trusted = cfg if plan.event.base_sha is None else plan.baseline.cfg
    return trusted.config.tracking.mlflow if trusted is not None else None


def track(cfg: LoadedConfig, plan: RunPlan, store: Store, report: Report) -> Tracked | None:
    """Log (or, for a reused report, find) this run's MLflow runs; sets ``report.tracking``
    (and, when the server is required and unreachable, a failing gate). None: not configured."""
    conf = settings(cfg, plan)
    if conf is None:
        return None
    server: Server | None = None
    try:
        with quiet():
            server = connect()
            exp_id = _experiment(server.client, conf.experiment)
            runs = _existing(server, exp_id, plan.run_key) if report.reused else []
            reused = bool(runs)
            if not runs:
                runs = _log(server, exp_id, plan, store, report)
    except Unavailable as exc:
        return _not_logged(report, conf, str(exc))
    except Exception as exc:  # noqa: BLE001 - MLflow's client raises many kinds; the run goes on
        return _not_logged(report, conf, f"MLflow refused the run: {failure(exc)}", server)
    report.tracking = {"experiment": conf.experiment, "server": server.shown, "runs": runs, "reused": reused}
    return Tracked(server, conf.experiment, runs)


def attach_comment(tracked: Tracked | None, body: str, report: Report) -> None:
    """The rendered comment and the report (JSON) as artifacts of each run logged now;
    best effort (the comment is already written)."""
    if tracked is None or tracked.server is None or (report.tracking or {}).get("reused"):
        return
    import json

    from mlgitops.report.render import render_json

    client = tracked.server.client
    try:
        with quiet():
            for run in tracked.runs:
                client.log_text(run["run_id"], body, "report/comment.md")
                client.log_dict(run["run_id"], json.loads(render_json(report)), "report/report.json")
    except Exception as exc:  # noqa: BLE001
        import sys

        print(f"mlops: warning: the report was not attached to the MLflow runs: {failure(exc)}", file=sys.stderr)


# -- internals ------------------------------------------------------------------------
def _not_logged(report: Report, conf: MlflowTracking, why: str, server: Server | None = None) -> Tracked:
    report.tracking = {"experiment": conf.experiment, "runs": [], "error": why, "required": conf.required}
    if conf.required:
        from mlgitops.report.model import summarize
        from mlgitops.train.gates import GateResult

        report.gates = [*report.gates, GateResult("mlflow", "tracking", 0.0, None, False, False, f"MLflow tracking is required (tracking.mlflow.required) and the run was not logged: {why}")]
        report.verdict, report.summary = summarize(report.gates)
    return Tracked(None, conf.experiment)


def _experiment(client: Any, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            raise Unavailable(f"the MLflow experiment {name!r} is deleted; restore it or name another in tracking.mlflow.experiment")
        return found.experiment_id
    try:
        return client.create_experiment(name)
    except Exception:  # noqa: BLE001 - another run created it meanwhile
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def _existing(server: Server, exp_id: str, run_key: str) -> list[dict[str, Any]]:
    """The runs an earlier run with the same inputs logged (candidate first)."""
    found = server.client.search_runs([exp_id], f"tags.`{RUN_KEY_TAG}` = '{run_key}'", max_results=10)
    latest: dict[str, Any] = {}
    for run in sorted(found, key=lambda r: r.info.start_time or 0):
        side = run.data.tags.get(TAG + "side")
        if side in ("candidate", "baseline"):
            latest[side] = run
    return [_link(server, exp_id, side, latest[side].info.run_id) for side in ("candidate", "baseline") if side in latest]


def _link(server: Server, exp_id: str, side: str, run_id: str) -> dict[str, Any]:
    return {"side": side, "run_id": run_id, "url": server.run_url(exp_id, run_id)}


def _sides(plan: RunPlan, report: Report) -> list[tuple[str, ModelInfo, Any]]:
    sides: list[tuple[str, ModelInfo, Any]] = [("candidate", report.candidate, plan.candidate)]
    if report.baseline.source == "trained" and plan.baseline.side is not None:
        sides.append(("baseline", report.baseline, plan.baseline.side))
    return sides


def _log(server: Server, exp_id: str, plan: RunPlan, store: Store, report: Report) -> list[dict[str, Any]]:
    from mlflow.entities import Metric, Param, RunTag

    client = server.client
    event = plan.event
    now = int(time.time() * 1000)
    out = []
    for side, info, side_plan in _sides(plan, report):
        values = {row.name: (row.candidate if side == "candidate" else row.base) for row in report.metrics}
        meta = store.get_model_meta(info.key) or {} if info.key else {}
        tags = {
            "mlflow.runName": f"{report.name} {side} {(info.sha or '')[:7]}".strip(),
            "mlflow.source.git.commit": info.sha or "",
            RUN_KEY_TAG: plan.run_key,
            TAG + "side": side,
            TAG + "model_name": report.name,
            TAG + "model_key": info.key or "",
            TAG + "git_sha": info.sha or "",
            TAG + "ref": info.ref or "",
            TAG + "pr": "" if event.pr_number is None else str(event.pr_number),
            TAG + "data_sha256": info.data_sha256 or "",
            TAG + "data_path": str(report.data.get("source") or ""),
            TAG + "code_sha256": info.code_sha256 or "",
            TAG + "verdict": report.verdict,
            TAG + "source": info.source,
        }
        run = client.create_run(exp_id, tags={k: v for k, v in tags.items() if v != ""})
        run_id = run.info.run_id
        params = _params(side_plan, meta, report)
        metrics = [Metric(name, float(value), now, 0) for name, value in values.items() if value is not None]
        client.log_batch(run_id, metrics=metrics, params=[Param(k, v) for k, v in params.items()], tags=[RunTag(TAG + "holdout_rows", str(report.data.get("holdout_rows")))])
        exported = store.get_onnx(info.key) if info.key else None
        if exported is not None:
            with tempfile.TemporaryDirectory(prefix="mlops-mlflow-") as tmp:
                path = Path(tmp) / "model.onnx"
                path.write_bytes(exported[0])
                client.log_artifact(run_id, str(path), "model")
            client.set_tag(run_id, TAG + "onnx_sha256", exported[1].get("sha256") or "")
        client.set_terminated(run_id, "FINISHED")
        out.append(_link(server, exp_id, side, run_id))
    return out


def _params(side_plan: Any, meta: dict[str, Any], report: Report) -> dict[str, str]:
    """The training spec, flattened: estimator or command, parameters, holdout split."""
    from mlgitops.report.model import flatten

    cfg = side_plan.cfg.config
    spec: dict[str, Any] = {"training": cfg.training.model_dump(mode="json", exclude_none=True, exclude={"env", "timeout"})}
    spec["training"]["params"] = meta.get("params") if isinstance(meta.get("params"), dict) else cfg.training.params
    spec["data"] = {"path": cfg.data.path, "target": cfg.data.target, "holdout": cfg.data.holdout.model_dump(mode="json", exclude_none=True)}
    if meta.get("trained_with"):
        spec["trained_with"] = meta["trained_with"]
    if meta.get("seed") is not None:
        spec["seed"] = meta["seed"]
    flat = {k: v for k, v in flatten(spec).items() if v not in (None, [], {})}
    return {k: str(v)[:PARAM_VALUE_MAX] for k, v in list(sorted(flat.items()))[:MAX_PARAMS]}
