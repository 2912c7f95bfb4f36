"""Benchmark: a PR run through a Prefect deployment (a worker) vs the same run in-process.

Usage (from the repo root, in the project venv; about 3 minutes):

    python bench/bench_deployment.py
    python bench/bench_deployment.py --poll 10     # the worker's default polling interval

Starts a real `prefect server` (temporary PREFECT_HOME) on a free loopback port, creates
the `mlops` process work pool, deploys prefect.yaml and starts one worker polling every
--poll seconds, in a folder of its own with its own clone cache (MLOPS_WORKER_CACHE). A
temp git repo holds the bundled example and a PR branch, pushed to a bare repository
(its `origin`: the clone URL the worker gets). Each case runs --repeat times (median),
alternating:

* local: `mlops run --event-path pr.json` with PREFECT_API_URL at that server;
* deployment: the same with `--deployment mlops-event/mlops-event` (create the flow
  run, a worker picks it up, starts a process, fetches its clone, runs the event in a
  worktree at the PR's head, reports back).

"trained" clears the model cache before each run (`.mlops/cache`, in the caller's
checkout and in the worker's clone); "cached" leaves it; "cold worker" also deletes the
worker's clone cache (the worker clones the repository, then trains). Then the
clone/fetch step alone (service.worker.clone_for), cold and warm.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PAYLOAD = ROOT / "tests" / "github" / "webhooks" / "octokit-webhooks" / "api.github.com" / "pull_request" / "opened.payload.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--poll", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home, repo = Path(tmp) / "prefect-home", Path(tmp) / "repo"
        port = free_port()
        api = f"http://127.0.0.1:{port}/api"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "MLOPS_"))}
        env.update(PREFECT_HOME=str(home), PREFECT_API_URL=api, PREFECT_WORKER_QUERY_SECONDS=str(args.poll), PREFECT_LOGGING_LEVEL="WARNING")
        server = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        worker = None
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(f"{api}/health", timeout=2):
                        break
                except OSError:
                    time.sleep(0.5)
            for cmd in (["work-pool", "create", "mlops", "--type", "process"], ["--no-prompt", "deploy", "--all"]):
                subprocess.run([str(BIN / "prefect"), *cmd], cwd=ROOT, env=env, capture_output=True, check=True)
            wcache = Path(tmp) / "worker" / "cache"
            wcache.parent.mkdir()
            wenv = {**env, "MLOPS_WORKER_CACHE": str(wcache)}
            wenv.pop("PREFECT_LOGGING_LEVEL")
            worker = subprocess.Popen([str(BIN / "prefect"), "worker", "start", "--pool", "mlops", "--type", "process"], cwd=wcache.parent, env=wenv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            repo.mkdir()
            git(repo, "init", "--quiet", "-b", "main")
            git(repo, "config", "user.email", "bench@example.com")
            git(repo, "config", "user.name", "bench")
            (repo / "mlops.yaml").write_text((ROOT / "mlops.yaml").read_text())
            git(repo, "add", "-A")
            git(repo, "commit", "--quiet", "-m", "model")
            git(repo, "checkout", "--quiet", "-b", "feature")
            (repo / "mlops.yaml").write_text((ROOT / "mlops.yaml").read_text().replace("max_depth: 2", "max_depth: 3"))
            git(repo, "commit", "--quiet", "-am", "deeper")
            origin = Path(tmp) / "origin.git"
            subprocess.run(["git", "clone", "--quiet", "--bare", str(repo), str(origin)], check=True)
            git(repo, "remote", "add", "origin", str(origin))
            payload = json.loads(PAYLOAD.read_text())
            payload["number"] = payload["pull_request"]["number"] = 5
            payload["pull_request"]["head"].update(sha=git(repo, "rev-parse", "HEAD"), ref="feature")
            payload["pull_request"]["base"].update(sha=git(repo, "rev-parse", "main"), ref="main")
            payload["repository"].update(default_branch="main")
            event = Path(tmp) / "pr.json"
            event.write_text(json.dumps(payload))
            times: dict[tuple[str, str], list[float]] = {}
            for cache in ("trained", "cached", "cold worker"):
                for _ in range(args.repeat):
                    for how in ("local", "deployment"):
                        if cache != "cached":
                            shutil.rmtree(repo / ".mlops" / "cache", ignore_errors=True)
                            for clone_cache in wcache.glob("*/.mlops/cache"):
                                shutil.rmtree(clone_cache)
                        if cache == "cold worker":
                            shutil.rmtree(wcache, ignore_errors=True)
                        cmd = [str(BIN / "mlops"), "run", "--event-path", str(event), "--event-name", "pull_request", "--forge", "local"]
                        if how == "deployment":
                            cmd += ["--deployment", "mlops-event/mlops-event", "--wait", "300"]
                        start = time.perf_counter()
                        proc = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True)
                        seconds = time.perf_counter() - start
                        assert proc.returncode in (0, 1), proc.stdout + proc.stderr
                        times.setdefault((cache, how), []).append(seconds)
            clone_times = clone_cost(origin, payload, Path(tmp) / "clone-bench", args.repeat)
        finally:
            for proc in (worker, server):
                if proc is None:
                    continue
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=30)
    print(f"| case | local run (s, median of {args.repeat}) | through the deployment (s) | overhead (s) | worker poll (s) |")
    print("|--|--:|--:|--:|--:|")
    for cache in ("trained", "cached", "cold worker"):
        local, dep = statistics.median(times[(cache, "local")]), statistics.median(times[(cache, "deployment")])
        print(f"| {cache} | {local:.2f} | {dep:.2f} | {dep - local:+.2f} | {args.poll:g} |")


    print()
    print(f"| worker clone cache | clone_for (s, median of {args.repeat}) |")
    print("|--|--:|")
    for state, values in clone_times.items():
        print(f"| {state} | {statistics.median(values):.3f} |")


def clone_cost(origin: Path, payload: dict, cache: Path, repeat: int) -> dict[str, list[float]]:
    """service.worker.clone_for alone: a cold cache (clone) and a warm one (fetch)."""
    from mlgitops.service.worker import clone_for

    os.environ["MLOPS_WORKER_CACHE"] = str(cache)
    out: dict[str, list[float]] = {"cold (git clone)": [], "warm (git fetch)": []}
    for _ in range(repeat):
        shutil.rmtree(cache, ignore_errors=True)
        for state in out:
            start = time.perf_counter()
            clone_for(str(origin), "pull_request", payload)
            out[state].append(time.perf_counter() - start)
    return out


if __name__ == "__main__":
    main()
