"""Benchmark: how fast hostile mlops.yaml files are refused, and what a legitimate
large one costs (issue 11: "decided in well under a second").

Usage (from the repo root, in the project venv):

    python bench/bench_config_bounds.py

Each case is `mlgitops.config.loader.load_config` on a file in a temp folder, timed in this
process (best of 5 after one warm-up, so imports are not counted), with the peak RSS
of the process at the end. Cases: the 342-byte "billion laughs" (9^9 values once
expanded), 5,000 levels of flow nesting, 70 levels of block mappings, a 50 MB file,
101 aliases, a valid config padded with real keys to just under the 256 KiB bound,
the same with a syntax error on its last line, and one made of dense flow mappings. Target: every refusal < 0.1 s;
the largest accepted file < 1 s.
"""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

from mlgitops.config.loader import load_config
from mlgitops.errors import ConfigError
from mlgitops.config.positions import MAX_BYTES

GOOD = "name: churn\ndata: {path: 'sklearn:iris', target: target}\ntraining: {estimator: sklearn.linear_model.LogisticRegression}\n"
LAUGHS = 'lol0: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"lol{i + 1}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8)
)


def near_limit() -> str:
    """A valid config of just under MAX_BYTES: a contract with many allowed values."""
    head = "name: churn\ndata:\n  path: 'sklearn:iris'\n  target: target\n  contract:\n    columns:\n      target:\n        allowed:\n"
    tail = "training: {estimator: sklearn.linear_model.LogisticRegression}\n"
    lines, size, i = [], len(head) + len(tail), 0
    while size + 30 < MAX_BYTES:
        line = f"          - value-{i:08d}\n"
        lines.append(line)
        size += len(line)
        i += 1
    return head + "".join(lines) + tail


def dense() -> str:
    """A valid config of just under MAX_BYTES, made of many small flow mappings
    (training.params takes any mapping): about 60,000 values, the most per byte."""
    head = GOOD + "training:\n  estimator: sklearn.linear_model.LogisticRegression\n  params:\n"
    head = head.replace("training: {estimator: sklearn.linear_model.LogisticRegression}\n", "")
    lines, size, i = [], len(head), 0
    while True:
        line = f"    p{i}: {{a: {i}, b: [1, 2, 3], c: t{i}}}\n"
        if size + len(line) >= MAX_BYTES:
            break
        lines.append(line)
        size += len(line)
        i += 1
    return head + "".join(lines)


CASES = {
    "billion laughs (342 B)": GOOD + LAUGHS,
    "flow nesting x5,000": GOOD + "deep: " + "[" * 5000 + "]" * 5000 + "\n",
    "block nesting x70": GOOD + "deep:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(70)) + "  " * 71 + "v\n",
    "101 aliases": GOOD + "x: &x 1\nl: [" + ", ".join(["*x"] * 101) + "]\n",
    "50 MB file": GOOD + "# " + "x" * 50_000_000 + "\n",
    "valid, just under 256 KiB": near_limit(),
    "syntax error at the end of that": near_limit() + "  bad: [\n",
    "valid, dense, just under 256 KiB": dense(),
}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mlops.yaml"
        print(f"{'case':36} {'result':8} {'best of 5':>10}")
        for name, text in CASES.items():
            path.write_text(text)
            times, outcome = [], ""
            for _ in range(6):
                started = time.perf_counter()
                try:
                    load_config(path)
                    outcome = "accepted"
                except ConfigError:
                    outcome = "exit 2"
                times.append(time.perf_counter() - started)
            print(f"{name:36} {outcome:8} {min(times[1:]) * 1000:8.1f} ms")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {peak:.0f} MB")


if __name__ == "__main__":
    main()
