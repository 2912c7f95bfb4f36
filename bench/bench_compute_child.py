"""What computing a pull request in a secret-less child costs (mlgitops.run.compute_child).

    python bench/bench_compute_child.py [--runs 3]

Two set-ups, each timed with the compute in-process and in the child, on the example
pipeline (`sklearn:breast_cancer`, a PR that changes max_depth; both models trained,
`.mlops/` removed before every run), against one `prefect server start` on loopback:

* **new process**: `mlops run --base main` as a user or CI runs it; the child is used
  when GITHUB_TOKEN is set (a dummy value; the local forge);
* **warm process**: `run_pull_request` called again and again in one process that has
  imported everything already, as the test suite's in-process (CliRunner) runs do;
  the child is forced with MLOPS_ISOLATE=1.

Prints a Markdown table of medians.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers import EXAMPLE, GitRepo  # noqa: E402


def make_repo(where: Path) -> GitRepo:
    repo = GitRepo(where)
    repo.gen({"mlops.yaml": EXAMPLE}).commit("base")
    repo.branch("pr").edit("mlops.yaml", "max_depth: 2", "max_depth: 6").commit("deeper")
    return repo


def new_process(repo: GitRepo, api: str, token: bool, runs: int) -> list[float]:
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_TOKEN", "MLOPS_ISOLATE")}
    env["PREFECT_API_URL"] = api
    if token:
        env["GITHUB_TOKEN"] = "ghp_" + "0" * 36
    mlops = str(Path(sys.executable).with_name("mlops"))
    out = []
    for _ in range(runs):
        shutil.rmtree(repo.path / ".mlops", ignore_errors=True)
        start = time.perf_counter()
        proc = subprocess.run([mlops, "run", "--base", "main"], cwd=repo.path, env=env, capture_output=True, text=True)
        out.append(time.perf_counter() - start)
        assert proc.returncode in (0, 1), proc.stderr
    return out


def warm_process(repo: GitRepo, isolate: bool, runs: int) -> list[float]:
    from mlgitops.config.loader import load_config
    from mlgitops.events.payloads import local_event
    from mlgitops.forges.local import LocalForge
    from mlgitops.run.runner import run_pull_request

    if isolate:
        os.environ["MLOPS_ISOLATE"] = "1"
    else:
        os.environ.pop("MLOPS_ISOLATE", None)
    out = []
    for _ in range(runs):
        shutil.rmtree(repo.path / ".mlops", ignore_errors=True)
        cfg = load_config(repo.path / "mlops.yaml", display="mlops.yaml")
        start = time.perf_counter()
        run_pull_request(cfg, repo.path, "mlops.yaml", local_event(repo.path, "main"), LocalForge(repo.path))
        out.append(time.perf_counter() - start)
    os.environ.pop("MLOPS_ISOLATE", None)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    os.environ.pop("GITHUB_TOKEN", None)
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from mlgitops.service import prefect_server

    os.environ.pop("PREFECT_API_URL", None)
    server = prefect_server.EmbeddedServer()
    server.wait()
    os.environ["PREFECT_API_URL"] = server.url
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            repo = make_repo(Path(tmp) / "repo")
            old = os.getcwd()
            os.chdir(repo.path)
            try:
                warm_process(repo, False, 1)  # imports, Prefect client: paid once, as in the suite
                rows.append(("warm process (suite's CliRunner runs)", warm_process(repo, False, args.runs), warm_process(repo, True, args.runs)))
                rows.append(("new process (`mlops run`)", new_process(repo, server.url, False, args.runs), new_process(repo, server.url, True, args.runs)))
            finally:
                os.chdir(old)
    finally:
        server.stop()
    print("| set-up | in-process median (s) | child median (s) | cost of the child (s) |\n|---|--:|--:|--:|")
    for name, plain, child in rows:
        a, b = statistics.median(plain), statistics.median(child)
        print(f"| {name} | {a:.2f} | {b:.2f} | +{b - a:.2f} |")
    print(f"\nruns: {args.runs} each; raw: " + "; ".join(f"{n}: {[round(x, 2) for x in p]} vs {[round(x, 2) for x in c]}" for n, p, c in rows))


if __name__ == "__main__":
    main()
