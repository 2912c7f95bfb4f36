"""Benchmark: `mlops serve` under a bounded loopback load.

Usage (from the repo root, in the project venv; about 1 minute):

    python bench/bench_serve.py                        # 4,000 requests, 8 clients
    python bench/bench_serve.py --requests 1000 --clients 4

It builds a throwaway repo with the bundled example, deploys it to staging the way a
user does (`mlops run`, merge, `mlops deploy`, merge the promotion PR), starts
`mlops serve staging` as its own process on a free loopback port, then sends a fixed
number of single-row POST /predict requests from N client threads over keep-alive
connections. It reports requests per second, p50 / p99 / max latency and errors.
Every loop is bounded by the request count; nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PY = sys.executable


def sh(*args: str, cwd: Path) -> str:
    return subprocess.run(args, cwd=cwd, check=True, capture_output=True, text=True).stdout


def deployed_demo(tmp: Path) -> Path:
    repo = tmp / "demo"
    sh(PY, "-m", "mlgitops", "demo", "--dir", str(repo), cwd=tmp)
    sh("git", "checkout", "--quiet", "main", cwd=repo)
    sh("git", "merge", "--no-ff", "--quiet", "demo/deeper-trees", "-m", "Merge pull request #1 from demo/deeper-trees", cwd=repo)
    sh(PY, "-m", "mlgitops", "deploy", cwd=repo)
    sh("git", "merge", "--no-ff", "--quiet", "mlops/deploy-staging", "-m", "Merge pull request #2 from mlops/deploy-staging", cwd=repo)
    return repo


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mlops-bench-serve-") as tmp_name:
        tmp = Path(tmp_name)
        repo = deployed_demo(tmp)
        proc = subprocess.Popen([PY, "-m", "mlgitops", "serve", "staging", "--port", "0", "--poll", "5"], cwd=repo, stderr=subprocess.PIPE, text=True)
        try:
            line = proc.stderr.readline()  # "serving ... on http://127.0.0.1:PORT ..."
            port = int(re.search(r"127\.0\.0\.1:(\d+)", line).group(1))
            health = json.loads(_request(port, "GET", "/healthz")[1])
            from sklearn.datasets import load_breast_cancer

            row = load_breast_cancer(as_frame=True).frame.drop(columns="target").iloc[0].to_dict()
            body = json.dumps({"instances": [row]})
            latencies: list[float] = []
            errors = [0]
            lock = threading.Lock()
            per_client = args.requests // args.clients

            def client() -> None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                mine = []
                for _ in range(per_client):  # bounded
                    start = time.perf_counter()
                    conn.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
                    resp = conn.getresponse()
                    resp.read()
                    mine.append(time.perf_counter() - start)
                    if resp.status != 200:
                        with lock:
                            errors[0] += 1
                conn.close()
                with lock:
                    latencies.extend(mine)

            for _ in range(50):  # warm-up
                _request(port, "POST", "/predict", body)
            threads = [threading.Thread(target=client) for _ in range(args.clients)]
            start = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - start
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1e3  # noqa: E731
    print(f"served: {health['model']} v{health['version']} ({health['sha256'][:12]}), {os.cpu_count()} cores")
    print("| requests | clients | requests/s | p50 (ms) | p99 (ms) | max (ms) | errors |")
    print("|--:|--:|--:|--:|--:|--:|--:|")
    print(f"| {len(latencies)} | {args.clients} | {len(latencies) / wall:,.0f} | {p(0.5):.2f} | {p(0.99):.2f} | {latencies[-1] * 1e3:.2f} | {errors[0]} |")


def _request(port: int, method: str, path: str, body: str | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


if __name__ == "__main__":
    main()
