"""Benchmark: the PR flow's drift step on 1,000,000 x 20, with and without sampling.

Usage (from the repo root, in the project venv):

    python bench/bench_drift.py                  # sample 50,000 rows per side (the default)
    python bench/bench_drift.py --sample 0       # every row (Evidently on 1M x 20: slow)

Each measurement runs in a fresh process: it builds a reference and a current table of
1,000,000 rows x 20 float columns (3 of them shifted in the current one), then times
`mlgitops.drift.compute_drift` (Evidently's DataDriftPreset on the sampled rows) and
reads the process's peak RSS. The tables themselves take 2 x 160 MB; the report says
how much the drift step adds on top. Target: <= 10 s and <= 500 MB peak.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, resource, sys, time, warnings
warnings.filterwarnings("ignore")
sys.path.insert(0, {root!r})
import numpy as np, pandas as pd
rows, cols, sample = {rows}, 20, {sample}
rng = np.random.default_rng(0)
names = [f"x{{i}}" for i in range(cols)]
reference = pd.DataFrame(rng.normal(size=(rows, cols)), columns=names)
current = pd.DataFrame(rng.normal(size=(rows, cols)), columns=names)
current[["x0", "x1", "x2"]] += 0.5
import evidently  # imported before timing: the flow imports it once per run
from mlgitops.drift import compute_drift
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
result, snapshot = compute_drift(reference, current, names, sample, 0, "bench")
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"seconds": seconds, "peak_mb": peak / 1024, "before_mb": before / 1024, "drifted": [c.column for c in result.columns if c.drifted], "methods": sorted({{c.method for c in result.columns}})}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs = []
    for _ in range(args.repeat):
        out = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT), rows=args.rows, sample=args.sample)], capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    runs.sort(key=lambda r: r["seconds"])
    mid = runs[len(runs) // 2]
    print(f"| rows x cols | sample per side | drift step (s, median of {len(runs)}) | peak RSS (MB) | RSS before the step (MB) | drifted columns found | methods |")
    print("|--:|--:|--:|--:|--:|--|--|")
    print(f"| {args.rows:,} x 20 | {args.sample or 'all'} | {mid['seconds']:.2f} | {max(r['peak_mb'] for r in runs):.0f} | {mid['before_mb']:.0f} | {', '.join(mid['drifted'])} | {', '.join(mid['methods'])} |")


if __name__ == "__main__":
    main()
