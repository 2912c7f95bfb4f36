"""Benchmark: `mlops serve` under a bounded loopback load, /predict and the V2 protocol.

Usage (from the repo root, in the project venv; about 2 minutes):

    python bench/bench_serve.py                        # 4,000 requests per route, 8 clients
    python bench/bench_serve.py --requests 1000 --clients 1
    python bench/bench_serve.py --source HEAD --baseline HEAD~3   # an A/B of two commits

It builds a throwaway repo with the bundled example, deploys it to staging the way a
user does (`mlops run`, merge, `mlops deploy`, merge the promotion PR), starts
`mlops serve staging` as its own process on a free loopback port, then sends a fixed
number of single-row requests from N client threads over keep-alive connections to
``POST /predict`` and to the Open Inference Protocol's ``POST /v2/models/{name}/infer``
(the same row as one FP32 tensor per column, JSON). ``--baseline REV`` also serves the
same repo from that git revision, for the routes it answers; ``--source REV`` runs this
side (and the demo's deploy) from a revision rather than the working tree. A revision
is laid out as the installed package (``git archive``; flows/ and templates/ under
mlgitops/) and put first on PYTHONPATH. The load is split into ``--rounds`` rounds that alternate
between servers and routes, so a machine whose load changes meanwhile (other jobs on
the same cores) weighs on every column alike.

It reports, per server and route, requests per second, p50 / p99 / max latency and
errors; it checks that both routes give the same answer and that the server's own
``/metrics`` counted every request (the load, 50 warm-up requests per round and the
one check). Every loop is bounded by the request count; nothing leaves 127.0.0.1.
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
ROOT = Path(__file__).resolve().parents[1]


def checkout(rev: str, dest: Path) -> str:
    """The package at git revision ``rev``, laid out as installed, under ``dest``."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", rev, "mlgitops", "flows", "templates", "mlops.yaml"], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    (dest / "flows").rename(dest / "mlgitops" / "flows")  # [tool.setuptools.package-dir] in pyproject.toml
    (dest / "templates").rename(dest / "mlgitops" / "templates")
    return str(dest)


def source_env(source: str | None) -> dict[str, str]:
    """The environment that imports ``mlgitops`` from ``source`` (a tree) first."""
    env = dict(os.environ)
    if source:
        env["PYTHONPATH"] = source + os.pathsep + env.get("PYTHONPATH", "")
    return env


SOURCE: str | None = None  # --source


def sh(*args: str, cwd: Path) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=source_env(SOURCE))
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done.stdout


def deployed_demo(tmp: Path) -> Path:
    repo = tmp / "demo"
    sh(PY, "-m", "mlgitops", "demo", "--dir", str(repo), cwd=tmp)
    sh("git", "checkout", "--quiet", "main", cwd=repo)
    sh("git", "merge", "--no-ff", "--quiet", "demo/deeper-trees", "-m", "Merge pull request #1 from demo/deeper-trees", cwd=repo)
    sh(PY, "-m", "mlgitops", "deploy", cwd=repo)
    sh("git", "merge", "--no-ff", "--quiet", "mlops/deploy-staging", "-m", "Merge pull request #2 from mlops/deploy-staging", cwd=repo)
    return repo


def start_server(repo: Path, source: str | None) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([PY, "-m", "mlgitops", "serve", "staging", "--port", "0", "--poll", "5"], cwd=repo, stderr=subprocess.PIPE, text=True, env=source_env(source))
    line = proc.stderr.readline()  # "serving ... on http://127.0.0.1:PORT ..."
    found = re.search(r"127\.0\.0\.1:(\d+)", line)
    if not found:
        proc.kill()
        raise SystemExit(f"mlops serve did not start: {line}{proc.stderr.read()}")
    return proc, int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=4000, help="per server and route")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--source", metavar="REV", help="run this side (and the demo's deploy) from a git revision rather than the working tree")
    parser.add_argument("--baseline", metavar="REV", help="a git revision to serve beside this one")
    args = parser.parse_args()
    global SOURCE

    from sklearn.datasets import load_breast_cancer

    row = load_breast_cancer(as_frame=True).frame.drop(columns="target").iloc[0].to_dict()
    servers: dict[str, tuple[subprocess.Popen[str], int]] = {}
    with tempfile.TemporaryDirectory(prefix="mlops-bench-serve-") as tmp_name:
        SOURCE = checkout(args.source, Path(tmp_name) / "source") if args.source else None
        baseline = checkout(args.baseline, Path(tmp_name) / "baseline") if args.baseline else None
        repo = deployed_demo(Path(tmp_name))
        try:
            servers["this tree"] = start_server(repo, SOURCE)
            if baseline:
                servers["baseline"] = start_server(repo, baseline)
            port = servers["this tree"][1]
            health = json.loads(_request(port, "GET", "/healthz")[1])
            name = health["model"]
            routes = {
                "POST /predict": ("/predict", json.dumps({"instances": [row]})),
                "POST /v2/models/{name}/infer": (f"/v2/models/{name}/infer", json.dumps({"inputs": [{"name": c, "shape": [1, 1], "datatype": "FP32", "data": [v]} for c, v in row.items()]})),
            }
            predicted = json.loads(_request(port, "POST", *routes["POST /predict"])[1])["predictions"]
            inferred = json.loads(_request(port, "POST", *routes["POST /v2/models/{name}/infer"])[1])
            assert [o["data"] for o in inferred["outputs"] if o["name"] == "label"] == [predicted], (predicted, inferred)
            plan = [(server, label) for server, (_, p) in servers.items() for label, (path, body) in routes.items() if _request(p, "POST", path, body)[0] == 200]
            results: dict[tuple[str, str], tuple[list[float], int, float]] = {key: ([], 0, 0.0) for key in plan}
            for round_ in range(args.rounds):  # bounded
                for server, label in plan if round_ % 2 == 0 else plan[::-1]:  # neither side always goes first
                    latencies, errors, wall = _load(servers[server][1], *routes[label], args.requests // args.rounds, args.clients)
                    old = results[(server, label)]
                    results[(server, label)] = (old[0] + latencies, old[1] + errors, old[2] + wall)
            metrics = _request(port, "GET", "/metrics")[1].decode()
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(timeout=10)
    counted = {m.group(1): int(float(m.group(2))) for m in re.finditer(r'^mlops_serve_requests_total\{route="([^"]+)"\} (\S+)$', metrics, re.M)}
    print(f"served: {health['model']} v{health['version']} ({health['sha256'][:12]}), {os.cpu_count()} cores, {args.rounds} rounds")
    print("| server | route | requests | clients | requests/s | p50 (ms) | p99 (ms) | max (ms) | errors |")
    print("|---|---|--:|--:|--:|--:|--:|--:|--:|")
    for (server, label), (latencies, errors, wall) in results.items():
        latencies.sort()
        p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1e3  # noqa: E731
        print(f"| {server} | `{label}` | {len(latencies)} | {args.clients} | {len(latencies) / wall:,.0f} | {p(0.5):.2f} | {p(0.99):.2f} | {latencies[-1] * 1e3:.2f} | {errors} |")
        if server == "this tree":
            route = label.split(" ", 1)[1]
            sent = len(latencies) + 50 * args.rounds + 2  # the load, the warm-ups, the check and the probe
            assert counted.get(route) == sent, f"/metrics counted {counted.get(route)} requests on {route}, the bench sent {sent}"
    print("/metrics counted every request sent to this tree's server")


def _load(port: int, path: str, body: str, requests: int, clients: int) -> tuple[list[float], int, float]:
    """(latencies, errors, wall seconds) of ``requests`` POSTs from ``clients`` threads,
    after 50 warm-up requests (those are counted by the server, not here)."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    per_client = requests // clients

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine = []
        for _ in range(per_client):  # bounded
            start = time.perf_counter()
            conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
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
        _request(port, "POST", path, body)
    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors[0], time.perf_counter() - start


def _request(port: int, method: str, path: str, body: str | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


if __name__ == "__main__":
    main()
