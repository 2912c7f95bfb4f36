"""Benchmark: ONNX Runtime vs scikit-learn, per supported estimator.

Usage (from the repo root, in the project venv; about 2 minutes):

    python bench/bench_onnx.py              # every estimator in mlgitops.deploy.onnx.SUPPORTED
    python bench/bench_onnx.py --quick      # fewer repetitions

For each estimator the auto pipeline (impute + scale numeric, impute + one-hot text
columns) is fitted on 5,000 rows of mixed data with missing values and exported the
way `mlops run` exports it. Then, on the same machine and thread count:

* single-row latency from a JSON-like record (what a server receives), median of 300
  calls: scikit-learn builds a one-row DataFrame and calls `predict_proba` (`predict`
  for regressors); ONNX is `OnnxModel.run_records`, the path `mlops serve` takes;
* compute only: the same on a prepared one-row DataFrame vs `session.run` on prepared
  inputs (no conversion on either side);
* batch throughput: rows per second scoring one 20,000-row DataFrame, one thread each
  (the serving session uses one intra-op thread).

Printed as a Markdown table for bench/RESULTS.md. Target: ONNX >= 10x faster single-row
for every supported estimator.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_NUM_THREADS", "1")


def frame(n: int, regression: bool, seed: int = 0):  # type: ignore[no-untyped-def]
    """The tests' mixed table (numeric + text columns with gaps); target `y`."""
    from tests.helpers import mixed_frame

    out = mixed_frame(n, seed).rename(columns={"churn": "y"})
    if regression:
        out["y"] = 0.05 * out["age"].fillna(40) + (out["plan"] == "pro") * 1.5 + out["income"].fillna(0) / 1e5
    return out


def timed(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    import pandas as pd

    from mlgitops.deploy import onnx as export
    from mlgitops.config.loader import parse_config
    from mlgitops.train.training import build_pipeline

    singles = 100 if args.quick else 300
    print("| estimator | sklearn 1 row (ms) | ONNX 1 row (ms) | speed-up | compute only: sklearn / ONNX (ms) | speed-up | sklearn batch (rows/s) | ONNX batch (rows/s) |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|")
    worst = float("inf")
    for estimator in [*export.SUPPORTED, "sklearn.neighbors.KNeighborsClassifier"]:
        regression = estimator.endswith(("Regressor", "LinearRegression", "Ridge", "Lasso", "ElasticNet"))
        data = frame(5000, regression)
        features = ["age", "income", "city", "plan"]
        cfg = parse_config(f"data: {{path: d.csv, target: y}}\ntraining: {{estimator: {estimator}}}\n", Path("/nowhere/mlops.yaml"), "mlops.yaml")
        model = build_pipeline(cfg, SimpleNamespace(X_train=data[features], features=features)).fit(data[features], data["y"])
        onnx_model = export.OnnxModel(export.to_onnx(model, data, features, "regression" if regression else "classification").onnx)
        record = {k: (None if v != v else v) for k, v in data[features].iloc[7].to_dict().items()}  # what a server receives
        one = pd.DataFrame.from_records([record], columns=features)
        prepared = export.feeds(onnx_model.inputs, one)
        batch = frame(20000, regression, seed=1)[features]
        score = model.predict if regression or not hasattr(model, "predict_proba") else model.predict_proba
        score(one), onnx_model.run_records([record])  # warm up
        sk_one = timed(lambda: score(pd.DataFrame.from_records([record], columns=features)), singles)
        ox_one = timed(lambda: onnx_model.run_records([record]), singles)
        sk_core = timed(lambda: score(one), singles)
        ox_core = timed(lambda: onnx_model.session.run(None, prepared), singles)
        sk_batch = timed(lambda: score(batch), 3)
        ox_batch = timed(lambda: onnx_model.run(batch), 3)
        listed = estimator in export.SUPPORTED
        if listed:
            worst = min(worst, sk_one / ox_one)
        name = estimator.removeprefix("sklearn.") + ("" if listed else " (not listed)")
        print(f"| {name} | {sk_one * 1e3:.3f} | {ox_one * 1e3:.3f} | {sk_one / ox_one:.1f}x | {sk_core * 1e3:.3f} / {ox_core * 1e3:.3f} | {sk_core / ox_core:.1f}x | {len(batch) / sk_batch:,.0f} | {len(batch) / ox_batch:,.0f} |", flush=True)
    print(f"\nlowest single-row speed-up of a listed estimator: {worst:.1f}x (target >= 10x)")


if __name__ == "__main__":
    main()
