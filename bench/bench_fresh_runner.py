"""Benchmark: a fresh runner, from nothing to a verdict, pip against uv (issue 15).

Usage (from the repo root; any Python 3.11+ with uv on PATH or beside it):

    python bench/bench_fresh_runner.py                 # pip and uv, cold and warm
    python bench/bench_fresh_runner.py --tools uv      # uv only (under a minute)

What a GitHub runner does before `mlops run` answers, each step a new process:

1. a new empty virtual environment (pip: `python -m venv`; uv: `uv venv`);
2. install this project from a clean clone of HEAD, with the `oci` extra (the
   actions' default), exactly as actions/*/action.yml does (not editable);
3. `mlops demo` in that venv with an empty PREFECT_HOME: a git repo from the bundled
   example, a PR branch, the PR flow (both models trained, the embedded Prefect
   server started on a new database, the comment written).

The download cache is either **cold** (a new empty cache folder: everything is
downloaded from the package index) or **warm** (the folder the cold run filled, as
the actions restore it from actions/cache). Both tools use the public index only
(PIP_CONFIG_FILE=/dev/null, no PIP_* settings), as a GitHub runner does.
Results are printed as a Markdown table for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def uv_binary() -> str:
    beside = Path(sys.executable).with_name("uv")
    found = str(beside) if beside.exists() else shutil.which("uv")
    if not found:
        sys.exit("uv is missing: pip install uv")
    return found


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return took


def clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "PREFECT_", "VIRTUAL_ENV", "PYTHON", "MLOPS_"))}
    env |= {"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PREFECT_HOME": str(home / "prefect"), "XDG_CACHE_HOME": str(home / "xdg")}
    return env


def one(tool: str, cache: Path, source: Path, python: str, work: Path) -> dict[str, float]:
    """One fresh runner: venv, install, `mlops demo`; seconds per step."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = clean_env(work)
    venv = work / "venv"
    spec = f"{source}[oci]"
    if tool == "pip":
        t_venv = timed([python, "-m", "venv", str(venv)], env, work)
        t_install = timed([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--cache-dir", str(cache), spec], env, work)
    else:
        uv = uv_binary()
        t_venv = timed([uv, "venv", "--quiet", "--python", python, str(venv)], env, work)
        compile_flag = ["--compile-bytecode"] if tool == "uv-compile" else []  # pip compiles .pyc at install; uv leaves it to the first import
        t_install = timed([uv, "pip", "install", "--quiet", *compile_flag, "--python", str(venv / "bin" / "python"), "--cache-dir", str(cache), spec], env, work)
    t_demo = timed([str(venv / "bin" / "mlops"), "demo", "--dir", str(work / "demo")], env | {"PATH": f"{venv / 'bin'}:{env['PATH']}"}, work)
    return {"venv": t_venv, "install": t_install, "demo": t_demo}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tools", default="uv,pip", help="comma-separated: pip, uv, uv-compile (uv with --compile-bytecode, as pip does)")
    parser.add_argument("--python", default=shutil.which("python3") or sys.executable, help="the interpreter a runner's setup-python gives")
    args = parser.parse_args()
    args.python = subprocess.run([args.python, "-c", "import sys; print(sys.executable)"], capture_output=True, text=True, check=True).stdout.strip()  # not a pyenv shim
    base = Path(tempfile.mkdtemp(prefix="mlops-fresh-"))
    try:
        source = base / "src"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(source)], check=True)
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=source, capture_output=True, text=True, check=True).stdout.strip()
        rows = []
        for tool in args.tools.split(","):
            cache = base / f"cache-{tool}"  # new and empty: the cold run fills it, the warm run reuses it
            for state in ("cold", "warm"):
                times = one(tool, cache, source, args.python, base / "runner")
                du = subprocess.run(["du", "-sh", str(cache)], capture_output=True, text=True).stdout.split()
                size = du[0] if du else "empty"  # pip here left its --cache-dir uncreated (see bench/RESULTS.md)
                rows.append((tool, state, times, size))
                print(f"{tool} {state}: {times} cache {size}", file=sys.stderr, flush=True)
        print(f"HEAD {head}; python {args.python}; load average {os.getloadavg()[0]:.2f}")
        print()
        print("| installer | download cache | new venv (s) | install (s) | `mlops demo` (s) | total (s) | cache size after |")
        print("|---|---|--:|--:|--:|--:|--:|")
        for tool, state, t, size in rows:
            print(f"| {tool} | {state} | {t['venv']:.1f} | {t['install']:.1f} | {t['demo']:.1f} | {sum(t.values()):.1f} | {size} |")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
