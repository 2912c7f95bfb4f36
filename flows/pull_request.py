"""The pull-request flow: data -> candidate -> baseline -> same-holdout scores -> gates -> report.

Each step is one Prefect task wrapping a plain function from ``mlgitops.run.steps``;
the functions are unit-tested directly, the flow is tested under Prefect's harness.
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from mlgitops.run import steps as pipeline
from mlgitops.data.contract import Check, contract_gates
from mlgitops.data.dvc import versions as dvc_versions
from mlgitops.data.load import Dataset
from mlgitops.data.drift import ColumnDrift, DriftResult, drift_gates
from mlgitops.deploy.export_step import ExportOutcome, export_gate, export_model
from mlgitops.train.gates import check_gates
from mlgitops.train.curves import roc_curves
from mlgitops.deploy.history import baseline_history
from mlgitops.plan.decide import RunPlan
from mlgitops.report.model import ModelInfo, Report, config_changes, metric_rows, summarize
from mlgitops.plan.store import Store

# Our own content-addressed cache decides reuse; Prefect's input hashing of
# DataFrames and models would only cost time.
step = task(cache_policy=NO_CACHE)


@step(name="load-data")
def load_data(plan: RunPlan) -> Dataset:
    return pipeline.load_candidate_data(plan.candidate)


@step(name="check-contract")
def check_data_contract(plan: RunPlan, dataset: Dataset) -> list[Check]:
    return pipeline.contract_checks(plan.candidate.cfg, dataset)


@step(name="data-drift")
def check_drift(plan: RunPlan, dataset: Dataset, store: Store) -> dict[str, Any]:
    return pipeline.data_drift(plan, dataset, store)


@step(name="train-candidate")
def train_candidate(plan: RunPlan, dataset: Dataset, store: Store) -> pipeline.ModelOutcome:
    return pipeline.obtain_model(plan.candidate, dataset, plan.candidate.cfg.root, store, reuse=not plan.retrain)


@step(name="evaluate-candidate")
def evaluate_candidate(outcome: pipeline.ModelOutcome, dataset: Dataset, metric_names: list[str], plan: RunPlan) -> Any:
    return pipeline.evaluate_candidate(outcome, dataset, metric_names, plan.candidate.cfg)


@step(name="export-onnx")
def export_onnx(plan: RunPlan, outcome: pipeline.ModelOutcome, dataset: Dataset, store: Store) -> ExportOutcome:
    return export_model(plan.candidate.cfg, plan.candidate.key, outcome.model, outcome.meta, dataset, store, plan.event.head_sha, reuse=outcome.cached)


@step(name="obtain-baseline")
def obtain_baseline(plan: RunPlan, store: Store, dataset: Dataset) -> tuple[pipeline.ModelOutcome | None, str]:
    return pipeline.obtain_baseline(plan, store, dataset)


@step(name="evaluate-baseline")
def evaluate_baseline(outcome: pipeline.ModelOutcome, dataset: Dataset, metric_names: list[str]) -> tuple[Any, str]:
    return pipeline.score_baseline(outcome, dataset, metric_names)


@flow(name="mlops-pull-request", log_prints=False, validate_parameters=False)
def pull_request_flow(plan: RunPlan, store: Store) -> Report:
    """Train and gate the candidate of one pull request; return the report (plain data)."""
    started = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = round(now - since, 3)
        return now

    t = time.perf_counter()
    dataset = load_data(plan)
    t = lap("load_data", t)
    cfg = plan.candidate.cfg
    names = cfg.metric_names(dataset.task)
    checks = check_data_contract(plan, dataset) if cfg.config.data.contract is not None else None
    if checks is not None:
        t = lap("check_contract", t)
    drift = check_drift(plan, dataset, store) if cfg.config.drift is not None else None
    if drift is not None:
        t = lap("drift", t)
    previous = store.get_model_meta(plan.candidate.key) if plan.retrain else None
    candidate = train_candidate(plan, dataset, store)
    t = lap("train_candidate", t)
    cand_eval = evaluate_candidate(candidate, dataset, names, plan)
    t = lap("evaluate_candidate", t)
    exported = export_onnx(plan, candidate, dataset, store)
    t = lap("export_onnx", t)
    base_outcome, base_failure = obtain_baseline(plan, store, dataset)
    t = lap("baseline", t)
    base_metrics: dict[str, float | None] | None = None
    comparable = False
    scored_on = None
    base_note = plan.baseline.note if not base_failure else base_failure
    notes = list(dataset.notes)
    if plan.retrain:
        notes.append(pipeline.retrain_note(plan.retrain, previous, candidate.meta, names))
    excluded = 0
    compared = dataset  # the holdout rows both models are scored on
    if base_outcome is not None:
        # Holdout rows the baseline trained on: counted exactly; under the hash split
        # both models are compared without them (issue 14).
        seen, unknown = pipeline.holdout_overlap(plan, base_outcome, dataset)
        seen_note = pipeline.overlap_note(plan, seen, unknown)
        compared = dataset
        if seen is not None and seen.count and cfg.config.data.holdout.kind == "hash":
            excluded = seen.count
            compared = pipeline.without_rows(dataset, seen.seen)
            if len(compared.holdout):
                cand_eval = evaluate_candidate(pipeline.ModelOutcome(candidate.model, {}, False), compared, names, plan)
                if pipeline.repeat_count(candidate.meta) > 1:  # only the first seed's model is kept
                    notes.append(f"Without those {excluded} row(s) the candidate is scored as its first seed's model, not the mean of its training.repeats; the range shown is over the whole holdout.")
        if len(compared.holdout):
            base_eval, why = evaluate_baseline(base_outcome, compared, names)
        else:
            base_eval, why = None, f"all {len(dataset.holdout)} holdout rows were in its training data"
        if seen_note and (base_eval is not None or excluded):  # a baseline not scored here needs no overlap note
            notes.append(seen_note)
        if base_eval is not None:
            base_metrics, scored_on, comparable = base_eval.metrics, "the candidate's holdout" if not excluded else f"the candidate's holdout without the {excluded} row(s) it trained on", True
            base_repeats = pipeline.repeat_count(base_outcome.meta)
            if base_repeats > 1:
                means = pipeline.recorded_repeat_metrics(plan, base_outcome, names)
                if means is not None:
                    base_metrics = means
                    notes.append(f"Baseline metrics are the mean of its {base_repeats} trainings (training.repeats), scored on this same holdout.")
                else:
                    notes.append(f"The baseline was trained {base_repeats} times (training.repeats) on another holdout; it is scored here as its first seed's model.")
        else:
            base_metrics = pipeline.recorded_metrics(base_outcome.meta, names)
            scored_on = "its own holdout (recorded)"
            notes.append(f"Baseline metrics are those recorded when it was trained, on another holdout, so relative gates are skipped: {why}.")
        t = lap("evaluate_baseline", t)
    gates = check_gates(cfg.gated_metrics(), cand_eval.metrics, base_metrics if comparable else None, "no baseline scored on this holdout" if base_metrics else "no baseline")
    if checks is not None:
        gates[:0] = contract_gates(checks, cfg.config.data.contract.on_violation == "fail")
    if drift is not None:
        gates += drift_gates(None if "unavailable" in drift else DriftResult(**{**drift, "columns": [ColumnDrift(**c) for c in drift["columns"]]}), cfg.config.drift)
    onnx_gate = export_gate(exported)
    if onnx_gate is not None:
        gates.append(onnx_gate)
    verdict, summary = summarize(gates)
    charts = None
    if cfg.config.report.charts:  # numbers only; report/charts.py writes the Mermaid
        models = [("baseline", base_outcome.model, list(base_outcome.meta.get("features") or []))] if comparable and base_outcome is not None else []
        models.append(("candidate", candidate.model, dataset.features))
        roc = roc_curves(compared.holdout, dataset.target, dataset.labels, models) if dataset.task == "classification" else None
        charts = {"history": baseline_history(plan), "roc": roc}
    notes += list(candidate.meta.get("seeding") or [])  # how the candidate was seeded (train.seeding)
    base_side = plan.baseline.side
    event = plan.event
    cand_meta = candidate.meta
    report = Report(
        name=cfg.config.name,
        task=dataset.task,
        task_reason=dataset.task_reason,
        verdict=verdict,
        summary=summary,
        event=event.to_dict(),
        metrics=metric_rows(names, cand_eval.metrics, base_metrics, gates, cand_eval.unavailable),
        gates=gates,
        candidate=ModelInfo(
            role="candidate",
            source="cache" if candidate.cached else "trained",
            ref=event.head_ref,
            sha=event.head_sha,
            key=plan.candidate.key,
            train_seconds=cand_meta.get("train_seconds"),
            trained_with=cand_meta.get("trained_with"),
            data_sha256=dataset.fingerprint,
            code_sha256=plan.candidate.code_sha,
            code_files=plan.candidate.code_files,
            scored_on="the candidate's holdout",
        ),
        baseline=ModelInfo(
            role="baseline",
            source="none" if base_outcome is None else ("manifest" if plan.baseline.kind == "manifest" else ("cache" if base_outcome.cached else "trained")),
            ref=event.base_ref,
            sha=event.base_sha,
            key=base_side.key if base_side else None,
            train_seconds=base_outcome.meta.get("train_seconds") if base_outcome else None,
            trained_with=base_outcome.meta.get("trained_with") if base_outcome else None,
            data_sha256=(base_outcome.meta.get("data_sha256") if base_outcome else None),
            code_sha256=base_side.code_sha if base_side else None,
            code_files=base_side.code_files if base_side else [],
            scored_on=scored_on,
            note=base_note,
            version=plan.baseline.manifest.get("version"),
        ),
        config_changes=config_changes(plan.baseline.cfg.config if plan.baseline.cfg else None, cfg.config),
        data={
            "source": cfg.config.data.path,
            "sha256": dataset.fingerprint,
            "holdout_source": pipeline.holdout_source(cfg.config.data.holdout),
            "train_rows": len(dataset.train),
            "holdout_rows": len(dataset.holdout),
            **({"excluded_rows": excluded} if excluded else {}),
            "features": len(dataset.features),
            "target": dataset.target,
            **dvc_versions(cfg, plan.root, plan.config_rel, event.base_sha),  # DVC-tracked data: both sides' md5
        },
        confusion=cand_eval.confusion,
        notes=notes,
        export=exported.to_dict(),
        contract=[c.to_dict() for c in checks] if checks is not None else None,
        drift=drift,
        sweep=cand_meta.get("sweep"),
        repeats=pipeline.repeat_spread(cand_meta),
        reproducibility=cand_meta.get("reproducibility"),
        charts=charts,
        timings=timings | {"total": round(time.perf_counter() - started, 3)},
    )
    return report
