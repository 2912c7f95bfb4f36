"""Sweeps: several candidates trained at once on a Prefect task runner, the best kept.

Every candidate (the grid's combinations over ``training.params``, then the listed
``candidates``) is fitted on the training rows minus a seeded validation split and
scored there by one metric; the holdout is never looked at, so choosing cannot
flatter the gates. The winner is then fitted on all the training rows: that is the
model the run evaluates on the holdout, gates, exports and caches (its cache key
covers the sweep, so an unchanged sweep reruns nothing).

Concurrency is Prefect's: a ThreadPoolTaskRunner (``runner: threads``; scikit-learn
releases the GIL in its heavy loops), or prefect-dask's DaskTaskRunner (``runner:
dask``) on a local cluster of worker processes or an existing scheduler (``address``).
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import replace
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from mlgitops.config.loader import Config, LoadedConfig
from mlgitops.data.load import Dataset
from mlgitops.errors import TrainingError
from mlgitops.train.metrics import METRICS
from mlgitops.train.training import Trained, build_pipeline, fit_estimator, seeded_split


def expand(cfg: LoadedConfig) -> list[dict[str, Any]]:
    """The candidates, in order: the grid's combinations, then the listed ones. Each
    starts from training.params, except a listed candidate naming another estimator
    (those parameters were written for training.estimator); ``inherited`` says which
    it took from there, for the comment."""
    t = cfg.config.training
    sweep = t.sweep
    assert sweep is not None and t.estimator is not None
    out: list[dict[str, Any]] = []
    if sweep.grid:
        names = list(sweep.grid)
        for values in itertools.product(*(sweep.grid[n] for n in names)):
            out.append({"estimator": t.estimator, "params": {**t.params, **dict(zip(names, values))}, "varied": dict(zip(names, values))})
    for c in sweep.candidates:
        other = c.estimator is not None and c.estimator != t.estimator  # training.params were written for training.estimator
        base = {} if other else t.params
        out.append({"estimator": c.estimator or t.estimator, "params": {**base, **c.params}, "varied": {**({"estimator": c.estimator} if other else {}), **c.params}})
    for c in out:
        c["inherited"] = {k: v for k, v in c["params"].items() if k not in c["varied"]}
    return out


def selection_metric(cfg: LoadedConfig, task_kind: str) -> str:
    sweep = cfg.config.training.sweep
    assert sweep is not None
    if sweep.metric:
        return sweep.metric
    gated = list(cfg.gated_metrics())
    return gated[0] if gated else cfg.metric_names(task_kind)[0]


def validation_split(cfg: LoadedConfig, dataset: Dataset) -> tuple[Dataset, Any]:
    sweep = cfg.config.training.sweep
    assert sweep is not None
    fit_part, val = seeded_split(dataset.train, dataset.target, dataset.task, sweep.validation_size, cfg.config.data.holdout.seed)
    return replace(dataset, train=fit_part), val


def fit_and_score(cfg: LoadedConfig, part: Dataset, val: Any, candidate: dict[str, Any], metric: str, seed: int | None = None) -> dict[str, Any]:
    """One candidate: fitted on ``part``, scored on ``val``; failures are a row, not a crash.
    ``seed``: the random_state of an estimator that takes one and was given none."""
    from mlgitops.train.evaluate import evaluate

    row = {"estimator": candidate["estimator"], "params": candidate["varied"], "inherited": candidate["inherited"], "score": None, "seconds": None, "error": None}
    start = time.perf_counter()
    try:
        model = build_pipeline(cfg, part, candidate["estimator"], candidate["params"], seed)
        model.fit(part.X_train, part.y_train)
        score = evaluate(model, val, part.features, part.target, part.task, part.labels, [metric]).metrics.get(metric)
        row["score"] = None if score is None or not math.isfinite(score) else float(score)
        if row["score"] is None:
            row["error"] = f"{metric} could not be computed on the validation rows"
    except TrainingError as exc:
        row["error"] = exc.message.split(": ", 2)[-1]
    except Exception as exc:  # noqa: BLE001 - a candidate's own failure is reported in its row
        row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    row["seconds"] = round(time.perf_counter() - start, 3)
    return row


train_one = task(name="train-sweep-candidate", cache_policy=NO_CACHE)(fit_and_score)


@flow(name="sweep", validate_parameters=False)  # plain objects (frames, config), not JSON
def sweep_flow(cfg: LoadedConfig, part: Dataset, val: Any, candidates: list[dict[str, Any]], metric: str, seed: int | None = None) -> list[dict[str, Any]]:
    futures = [train_one.with_options(task_run_name=f"candidate-{i + 1}").submit(cfg, part, val, c, metric, seed) for i, c in enumerate(candidates)]
    return [f.result() for f in futures]


def task_runner(cfg: LoadedConfig, trusted: Config | None = None) -> Any:
    """Prefect's task runner for the sweep. A Dask scheduler ``address`` is used only
    when ``trusted`` (the base ref's config on a pull request) names the same one: the
    client unpickles what the scheduler sends back, so a PR must not pick the scheduler."""
    sweep = cfg.config.training.sweep
    assert sweep is not None
    if sweep.address and (trusted is None or trusted.training.sweep is None or trusted.training.sweep.address != sweep.address):
        raise TrainingError(
            f"{cfg.where('training', 'sweep', 'address')}: training.sweep.address: {sweep.address} is not the scheduler the base ref's config names, so it is not used: "
            "a Dask client runs what the scheduler sends back, and a pull request must not choose it",
            hint="merge the address into the base branch first (it then applies to pull requests), or drop it to use a local cluster",
        )
    if sweep.runner == "dask":
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError:
            raise TrainingError(f"{cfg.where('training', 'sweep', 'runner')}: training.sweep.runner: dask needs prefect-dask", hint="pip install prefect-dask (it comes with mlgitops; reinstall it)") from None
        quiet_dask()
        if sweep.address:
            return DaskTaskRunner(address=sweep.address)
        # No dashboard, and nothing on 8787 (the webhook service's default port): a Dask
        # scheduler always serves HTTP (health, metrics), even without a dashboard, on
        # 8787 unless told otherwise; here on a free loopback port, like the workers.
        quiet_http = {"dashboard": False, "dashboard_address": "127.0.0.1:0"}
        return DaskTaskRunner(cluster_class="distributed.LocalCluster", cluster_kwargs={"n_workers": sweep.workers, "threads_per_worker": 1, "processes": True, "host": "127.0.0.1", "dashboard_address": None, "scheduler_kwargs": quiet_http})
    from prefect.task_runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner(max_workers=sweep.workers)


def quiet_dask() -> None:
    """Dask's INFO and WARNING lines (cluster and worker start, addresses, shutdown) stay out of the output
    unless MLOPS_VERBOSE=1: here through the loggers, in the worker processes (they
    start later and read Dask's config from the environment) through DASK_LOGGING__*."""
    import logging
    import os

    if os.environ.get("MLOPS_VERBOSE"):
        return
    # ERROR, not WARNING: a loaded machine gets "Worker process still alive after 4.0
    # seconds, killing" at every cluster shutdown, which says nothing about the run.
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "error")
    for name in ("distributed", "distributed.scheduler", "distributed.nanny", "distributed.worker", "distributed.core", "distributed.http.proxy"):
        logging.getLogger(name).setLevel(logging.ERROR)


def run_sweep(cfg: LoadedConfig, dataset: Dataset, trusted: Config | None = None, seed: int | None = None) -> Trained:
    """Train every candidate, keep the best on the validation split (``trusted``: see
    :func:`task_runner`). ``seed``: every candidate's random_state when it takes one and
    was given none (so the choice is the same on every run)."""
    sweep = cfg.config.training.sweep
    assert sweep is not None
    started = time.perf_counter()
    candidates = expand(cfg)
    metric = selection_metric(cfg, dataset.task)
    part, val = validation_split(cfg, dataset)
    rows = sweep_flow.with_options(task_runner=task_runner(cfg, trusted))(cfg, part, val, candidates, metric, seed)
    scored = [(i, r) for i, r in enumerate(rows) if r["score"] is not None]
    if not scored:
        first = next((r["error"] for r in rows if r["error"]), "no score")
        raise TrainingError(f"{cfg.where('training', 'sweep')}: training.sweep: none of the {len(rows)} candidates could be trained and scored; the first said: {first}", hint="check the grid's parameter names and values against the estimator")
    better = 1 if METRICS[metric].higher_is_better else -1
    best_i, best = max(scored, key=lambda ir: (better * ir[1]["score"], -ir[0]))  # ties: the earlier candidate
    for i, row in enumerate(rows):
        row.update(candidate=i + 1, chosen=i == best_i, metric=metric)
    final = fit_estimator(cfg, dataset, best["estimator"], candidates[best_i]["params"], seed)
    shown = ", ".join(f"{k}={v}" for k, v in best["params"].items()) or "the base parameters"
    description = f"{best['estimator']} with {shown} (best of {len(rows)} by {metric} on a {sweep.validation_size:.0%} validation split, {sweep.runner} x{sweep.workers})"
    ranked = sorted(rows, key=lambda r: (r["score"] is None, -better * (r["score"] or 0.0), r["candidate"]))
    return Trained(final.model, time.perf_counter() - started, description, sweep=ranked, params=candidates[best_i]["params"], estimator=best["estimator"], notes=final.notes)
