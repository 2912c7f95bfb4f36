"""CLI latency before/after a refactor: `mlops --help`, `mlops validate`, and a no-op
rerun of `mlops run` (the cached report republished, no Prefect), each in a new process.

    python bench/bench_cli_latency.py [--python OTHER_VENV/bin/python ...] [--repeats 7]

Each interpreter given (default: this one) runs the same three commands in the same
throwaway repository (a copy of the bundled example, its PR branch already run once),
interleaved, ``--repeats`` times; prints the median and min wall time per command.
Used for issue 13 (packages by stage, one dispatcher): before = the commit before the
move installed in a second venv, after = this checkout.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _time(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{argv} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--python", action="append", default=None, help="interpreters to compare (default: this one)")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    pythons = args.python or [sys.executable]
    with tempfile.TemporaryDirectory() as tmp:
        demo = Path(tmp) / "demo"
        subprocess.run([pythons[0], "-m", "mlgitops", "demo", "--dir", str(demo)], check=True, capture_output=True, cwd=tmp)  # not this checkout: -m puts the cwd first on sys.path
        commands = {"--help": ["--help"], "validate": ["validate"], "run (no-op rerun)": ["run", "--base", "main"]}
        results: dict[tuple[str, str], list[float]] = {}
        for py in pythons:  # warm each interpreter's caches (bytecode, the run cache) once
            for argv in commands.values():
                _time([py, "-m", "mlgitops", *argv], demo)
        for _ in range(args.repeats):
            for py in pythons:
                for name, argv in commands.items():
                    results.setdefault((py, name), []).append(_time([py, "-m", "mlgitops", *argv], demo))
    print(f"| command | {' | '.join(pythons)} |")
    print(f"|---|{'---|' * len(pythons)}")
    for name in commands:
        cells = [f"{statistics.median(results[(py, name)]):.2f} s (min {min(results[(py, name)]):.2f})" for py in pythons]
        print(f"| `mlops {' '.join(commands[name])}` | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
