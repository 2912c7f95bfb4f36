"""Benchmark: `mlops run` vs a plain scikit-learn script doing the same work.

Usage (from the repo root, in the project venv):

    python bench/bench_pr_run.py                 # example + 1,000,000 x 20 table
    python bench/bench_pr_run.py --small-only    # example only (about 2 minutes)

For each dataset it builds a git repo whose PR branch changes one parameter, then times:

* plain: a script that loads the data, splits it, trains the base and the PR model
  and scores both on the same holdout (the work `mlops run` does, nothing else);
* `mlops run` with a fresh PREFECT_HOME (a new CI runner), with a PREFECT_HOME whose
  database exists, and with PREFECT_API_URL at a running `prefect server`;
* the cached no-op rerun, and `mlops validate`.

Every timed command is a new process, measured wall-clock. Results are printed as a
Markdown table to paste into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

PY = sys.executable
MLOPS = [PY, "-m", "mlgitops"]

PLAIN = textwrap.dedent(
    """
    import sys, time
    import pandas as pd
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score, log_loss, precision_score, recall_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler
    from {module} import {cls}

    source = sys.argv[1]
    if source.startswith("sklearn:"):
        from sklearn.datasets import load_breast_cancer
        df = load_breast_cancer(as_frame=True).frame
    else:
        df = pd.read_csv(source)
    X, y = df.drop(columns=["target"]), df["target"]
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size={size}, random_state={seed}, stratify=y)
    for params in ({base}, {pr}):
        model = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), {cls}(**params)).fit(Xtr, ytr)
        pred, proba = model.predict(Xte), model.predict_proba(Xte)[:, 1]
        print(accuracy_score(yte, pred), precision_score(yte, pred), recall_score(yte, pred), f1_score(yte, pred), roc_auc_score(yte, proba), log_loss(yte, proba))
    """
)


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def make_repo(root: Path, config: str, change: tuple[str, str], extra: dict[str, Path] | None = None) -> Path:
    repo = root / "repo"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "bench")
    git(repo, "config", "user.email", "bench@example.invalid")
    (repo / "mlops.yaml").write_text(config)
    (repo / ".gitignore").write_text(".mlops/\ndata/\n")
    for rel, src in (extra or {}).items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        os.link(src, repo / rel)
    git(repo, "add", "mlops.yaml", ".gitignore")
    git(repo, "commit", "-qm", "base")
    git(repo, "checkout", "-qb", "pr")
    (repo / "mlops.yaml").write_text(config.replace(*change))
    git(repo, "commit", "-qam", "pr")
    return repo


def timed(cmd: list[str], cwd: Path, env: dict[str, str], ok: tuple[int, ...] = (0, 1)) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return elapsed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrefectServer:
    """A real `prefect server start` on loopback, for the running-server case."""

    def __init__(self, home: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api"
        env = dict(os.environ, PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_UI_ENABLED="false")
        env.pop("PREFECT_API_URL", None)
        self.proc = subprocess.Popen([PY, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(self.port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise SystemExit("prefect server did not start within 120 s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def bench_case(name: str, repo: Path, plain_args: list[str], plain_code: str, server: PrefectServer, reps: int, work: Path) -> list[tuple[str, str, float]]:
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    base_env |= {"PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    script = work / f"plain_{name}.py"
    script.write_text(plain_code)
    rows: list[tuple[str, str, float]] = []

    def record(label: str, samples: list[float]) -> None:
        rows.append((name, label, statistics.median(samples)))
        print(f"  {name:10s} {label:45s} median {statistics.median(samples):7.2f} s  runs {', '.join(f'{s:.2f}' for s in samples)}", flush=True)

    record("plain scikit-learn script", [timed([PY, str(script), *plain_args], repo, base_env, ok=(0,)) for _ in range(reps)])
    fresh = []
    for _ in range(reps):
        shutil.rmtree(repo / ".mlops", ignore_errors=True)
        home = Path(tempfile.mkdtemp(prefix="prefect-home-", dir=work))
        fresh.append(timed([*MLOPS, "run", "--base", "main"], repo, base_env | {"PREFECT_HOME": str(home)}))
    record("mlops run, fresh PREFECT_HOME", fresh)
    warm_home = Path(tempfile.mkdtemp(prefix="prefect-home-", dir=work))
    shutil.rmtree(repo / ".mlops", ignore_errors=True)
    timed([*MLOPS, "run", "--base", "main"], repo, base_env | {"PREFECT_HOME": str(warm_home)})  # creates the database
    warm = []
    for _ in range(reps):
        shutil.rmtree(repo / ".mlops", ignore_errors=True)
        warm.append(timed([*MLOPS, "run", "--base", "main"], repo, base_env | {"PREFECT_HOME": str(warm_home)}))
    record("mlops run, PREFECT_HOME with database", warm)
    served = []
    for _ in range(reps):
        shutil.rmtree(repo / ".mlops", ignore_errors=True)
        served.append(timed([*MLOPS, "run", "--base", "main"], repo, base_env | {"PREFECT_API_URL": server.url}))
    record("mlops run, PREFECT_API_URL at running server", served)
    record("mlops run, cached no-op rerun", [timed([*MLOPS, "run", "--base", "main"], repo, base_env | {"PREFECT_API_URL": server.url}) for _ in range(max(reps, 3))])
    record("mlops validate", [timed([*MLOPS, "validate"], repo, base_env, ok=(0,)) for _ in range(max(reps, 3))])
    return rows


EXAMPLE_CFG = """\
name: bench
data: {{path: '{path}', target: target, holdout: {{size: 0.25, seed: 7}}}}
training:
  estimator: {estimator}
  params: {params}
gates:
  accuracy: {{min: 0.5}}
  f1: {{max_drop: 0.5}}
"""


def write_big_csv(path: Path, rows: int, cols: int) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, cols)).astype("float32")
    w = rng.normal(size=cols)
    y = (X @ w + rng.normal(0, 1.0, rows) > 0).astype(int)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(cols)])
    frame["target"] = y
    frame.to_csv(path, index=False, float_format="%.4f")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small-only", action="store_true")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mlops-bench-"))
    server = PrefectServer(work / "server-home")
    rows: list[tuple[str, str, float]] = []
    try:
        example = make_repo(
            work / "example",
            EXAMPLE_CFG.format(path="sklearn:breast_cancer", estimator="sklearn.ensemble.RandomForestClassifier", params="{n_estimators: 60, max_depth: 2, random_state: 0}"),
            ("max_depth: 2", "max_depth: 6"),
        )
        code = PLAIN.format(module="sklearn.ensemble", cls="RandomForestClassifier", size=0.25, seed=7, base="dict(n_estimators=60, max_depth=2, random_state=0)", pr="dict(n_estimators=60, max_depth=6, random_state=0)")
        rows += bench_case("example", example, ["sklearn:breast_cancer"], code, server, args.reps, work)
        if not args.small_only:
            big = work / "big.csv"
            write_big_csv(big, 1_000_000, 20)
            print(f"  1M x 20 CSV: {big.stat().st_size / 1e6:.0f} MB", flush=True)
            repo = make_repo(
                work / "big",
                EXAMPLE_CFG.format(path="data/big.csv", estimator="sklearn.linear_model.LogisticRegression", params="{C: 1.0, max_iter: 200}"),
                ("C: 1.0", "C: 0.1"),
                {"data/big.csv": big},
            )
            code = PLAIN.format(module="sklearn.linear_model", cls="LogisticRegression", size=0.25, seed=7, base="dict(C=1.0, max_iter=200)", pr="dict(C=0.1, max_iter=200)")
            rows += bench_case("1M x 20", repo, [str(repo / "data/big.csv")], code, server, max(1, args.reps - 1), work)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    print("\n| data | command | median wall (s) | overhead vs plain (s) | ratio |\n|---|---|--:|--:|--:|")
    plain = {d: s for d, label, s in rows if label.startswith("plain")}
    for data, label, secs in rows:
        over = secs - plain[data]
        print(f"| {data} | {label} | {secs:.2f} | {'' if label.startswith(('plain', 'mlops validate', 'mlops run, cached')) else f'{over:+.2f}'} | {'' if label.startswith(('plain', 'mlops validate', 'mlops run, cached')) else f'{secs / plain[data]:.2f}x'} |")


if __name__ == "__main__":
    main()
