"""Benchmark: the PR flow's drift step on 1,000,000 x 20, as the flow runs it.

Usage (from the repo root, in the project venv):

    python bench/bench_drift.py                  # sample 50,000 rows per side (the default)
    python bench/bench_drift.py --format parquet # the reference file as Parquet
    python bench/bench_drift.py --sample 0       # every row (Evidently on 1M x 20: slow)
    python bench/bench_drift.py --current file   # the current side streamed from a file too

A setup process writes the reference table (1,000,000 rows x 20 float columns) to a
file, as the deployed model's training data is a file in git. Each measurement then
runs in a fresh process: it builds the current table in memory (the PR's training data,
which the flow holds anyway: 160 MB; 3 of its columns shifted), then times the drift
step: `mlgitops.data.drift.sample_file` streams a seeded sample of the reference file
(never the whole file in memory) and `mlgitops.data.drift.compute_drift` runs Evidently's
DataDriftPreset on the sampled rows. It reports the process's peak RSS, which
includes the libraries (pandas, scikit-learn, Evidently) and the current table.
With ``--current file`` the current table is a file sampled the same way: the drift
computation on two 1M x 20 tables alone. Target: <= 10 s and <= 500 MB peak.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SETUP = """
import sys
import numpy as np, pandas as pd
rows, path, seed, shift = {rows}, {path!r}, {seed}, {shift}
rng = np.random.default_rng(seed)
frame = pd.DataFrame(rng.normal(size=(rows, 20)), columns=[f"x{{i}}" for i in range(20)])
if shift:
    frame[["x0", "x1", "x2"]] += 0.5
frame.to_parquet(path) if path.endswith(".parquet") else frame.to_csv(path, index=False)
"""

CHILD = """
import json, resource, sys, time, warnings
warnings.filterwarnings("ignore")
sys.path.insert(0, {root!r})
from pathlib import Path
import numpy as np, pandas as pd
rows, cols, sample = {rows}, 20, {sample}
rng = np.random.default_rng(1)
names = [f"x{{i}}" for i in range(cols)]
current_file = {current_file!r}
if not current_file:
    current = pd.DataFrame(rng.normal(size=(rows, cols)), columns=names)
    current[["x0", "x1", "x2"]] += 0.5
import evidently  # imported before timing: the flow imports it once per run
from mlgitops.data.drift import compute_drift, sample_file
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
reference = sample_file(Path({path!r}), None, sample, 0)
if current_file:
    current = sample_file(Path(current_file), None, sample, 1)
read = time.perf_counter() - start
result, snapshot = compute_drift(reference, current, names, sample, 0, "bench")
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"seconds": seconds, "read": read, "peak_mb": peak / 1024, "before_mb": before / 1024, "rows": result.reference_rows, "drifted": [c.column for c in result.columns if c.drifted], "methods": sorted({{c.method for c in result.columns}})}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--format", choices=["csv", "parquet"], default="csv")
    parser.add_argument("--current", choices=["memory", "file"], default="memory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / f"reference.{args.format}")
        subprocess.run([sys.executable, "-c", SETUP.format(rows=args.rows, path=path, seed=0, shift=False)], check=True)
        current_file = ""
        if args.current == "file":
            current_file = str(Path(tmp) / f"current.{args.format}")
            subprocess.run([sys.executable, "-c", SETUP.format(rows=args.rows, path=current_file, seed=1, shift=True)], check=True)
        runs = []
        for _ in range(args.repeat):
            out = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT), rows=args.rows, sample=args.sample, path=path, current_file=current_file)], capture_output=True, text=True, check=True)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    runs.sort(key=lambda r: r["seconds"])
    mid = runs[len(runs) // 2]
    print(f"| rows x cols | files | current side | sample per side | drift step (s, median of {len(runs)}) | of which reading the reference (s) | peak RSS (MB) | RSS before the step (MB) | drifted columns found | methods |")
    print("|--:|--|--|--:|--:|--:|--:|--:|--|--|")
    print(f"| {args.rows:,} x 20 | {args.format} | {'in memory (the training data)' if args.current == 'memory' else 'a file, sampled'} | {args.sample or 'all'} | {mid['seconds']:.2f} | {mid['read']:.2f} | {max(r['peak_mb'] for r in runs):.0f} | {mid['before_mb']:.0f} | {', '.join(mid['drifted'])} | {', '.join(mid['methods'])} |")


if __name__ == "__main__":
    main()
