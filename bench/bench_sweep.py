"""Benchmark: a sweep's speed-up with 1 vs 2 workers (Prefect threads, and Dask).

Usage (from the repo root, in the project venv):

    python bench/bench_sweep.py                 # 8 candidates, 20,000 x 20 rows
    python bench/bench_sweep.py --rows 50000

Times `mlgitops.train.sweep.run_sweep` (the whole sweep: validation split, N candidate fits
scored on it, the winner refitted on all training rows) against one Prefect test
server started once, for runner threads and dask with workers 1 and 2. The Dask
numbers include starting and stopping its LocalCluster (worker processes), which a
real run pays too. Candidates: RandomForestClassifier (n_jobs=1) over a 2 x 4 grid.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CONFIG = """\
version: 1
name: sweep-bench
data:
  path: data.csv
  target: y
training:
  estimator: sklearn.ensemble.RandomForestClassifier
  params: {{n_estimators: 60, n_jobs: 1, random_state: 0}}
  sweep:
    grid: {{max_depth: [4, 8], min_samples_leaf: [1, 2, 4, 8]}}
    metric: roc_auc
    runner: {runner}
    workers: {workers}
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import warnings

    warnings.filterwarnings("ignore")
    import numpy as np
    import pandas as pd
    from prefect.testing.utilities import prefect_test_harness

    from mlgitops.config.loader import load_config
    from mlgitops.data.load import load_dataset
    from mlgitops.train.sweep import run_sweep

    rng = np.random.default_rng(0)
    X = rng.normal(size=(args.rows, 20))
    y = (X[:, 0] + X[:, 1] * X[:, 2] + rng.normal(scale=0.5, size=args.rows) > 0).astype(int)
    results = []
    with tempfile.TemporaryDirectory() as tmp, prefect_test_harness(server_startup_timeout=120):
        frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(20)]).assign(y=y)
        frame.to_csv(Path(tmp) / "data.csv", index=False)
        for runner in ("threads", "dask"):
            for workers in (1, 2):
                (Path(tmp) / "mlops.yaml").write_text(CONFIG.format(runner=runner, workers=workers))
                cfg = load_config(Path(tmp) / "mlops.yaml")
                dataset = load_dataset(cfg, Path(tmp))
                start = time.perf_counter()
                trained = run_sweep(cfg, dataset)
                seconds = time.perf_counter() - start
                fits = sum(r["seconds"] for r in trained.sweep or [])
                results.append((runner, workers, seconds, fits, trained.description))
    base = {r[0]: r[2] for r in results if r[1] == 1}
    print("| runner | workers | sweep wall time (s) | sum of candidate fit times (s) | speed-up vs 1 worker | winner |")
    print("|--|--:|--:|--:|--:|--|")
    for runner, workers, seconds, fits, description in results:
        print(f"| {runner} | {workers} | {seconds:.2f} | {fits:.2f} | {base[runner] / seconds:.2f}x | {description.split(' (')[0]} |")


if __name__ == "__main__":
    main()
