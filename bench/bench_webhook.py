"""Benchmark: signed deliveries per second `mlops webhook serve` accepts on loopback.

Usage (from the repo root, in the project venv):

    python bench/bench_webhook.py                    # 2,000 deliveries from 8 clients
    python bench/bench_webhook.py --deliveries 5000 --clients 16

The service runs as its own process (`mlops webhook serve --record-only`: verify,
deduplicate, record, queue; no flow runs, so the number is the service's own). The
load is bounded: a fixed list of deliveries, GitHub's own pull_request example
payload (about 30 KB), of which 20% are re-sends of an earlier delivery id and 10%
are signed with the wrong secret, shuffled with a fixed seed and sent over
keep-alive connections. Afterwards the service's /healthz must show exactly one run
started per distinct valid delivery (none lost, duplicates once, forgeries never).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAYLOAD = ROOT / "tests" / "github" / "webhooks" / "octokit-webhooks" / "api.github.com" / "pull_request" / "opened.payload.json"
SECRET = "bench-secret"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from mlgitops.service.webhook import signature

    body = PAYLOAD.read_bytes() if PAYLOAD.is_file() else json.dumps({"action": "opened", "pad": "x" * 30_000}).encode()
    rng = random.Random(0)
    unique = int(args.deliveries * 0.7)
    sends = [(f"d-{i}", SECRET) for i in range(unique)]
    sends += [(f"d-{rng.randrange(unique)}", SECRET) for _ in range(int(args.deliveries * 0.2))]
    sends += [(f"f-{i}", "wrong") for i in range(args.deliveries - len(sends))]
    rng.shuffle(sends)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["git", "init", "--quiet", tmp], check=True)
        env = {**os.environ, "MLOPS_WEBHOOK_SECRET": SECRET}
        proc = subprocess.Popen([sys.executable, "-m", "mlgitops", "webhook", "serve", "--port", "0", "--record-only", "--queue", str(args.deliveries + 1), "--repo", tmp], env=env, stderr=subprocess.PIPE, text=True)
        try:
            line = proc.stderr.readline()
            port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
            chunks = [sends[i :: args.clients] for i in range(args.clients)]

            def client(chunk: list[tuple[str, str]]) -> list[tuple[int, float]]:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                out = []
                for delivery, secret in chunk:
                    headers = {"Content-Type": "application/json", "X-GitHub-Event": "pull_request", "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": signature(secret.encode(), body)}
                    start = time.perf_counter()
                    conn.request("POST", "/webhook", body=body, headers=headers)
                    resp = conn.getresponse()
                    resp.read()
                    out.append((resp.status, time.perf_counter() - start))
                conn.close()
                return out

            start = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                results = [r for chunk in pool.map(client, chunks) for r in chunk]
            elapsed = time.perf_counter() - start
            deadline = time.monotonic() + 60
            while True:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", "/healthz")
                health = json.loads(conn.getresponse().read())
                conn.close()
                if health["queued"] == 0 and health["running"] == 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    codes = [c for c, _ in results]
    lat = sorted(t for _, t in results)
    distinct_valid = len({d for d, s in sends if s == SECRET})
    print("| deliveries | clients | accepted/s | p50 ms | p99 ms | 202 new | 200 duplicate | 401 forged | other | runs started | distinct valid |")
    print("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    print(
        f"| {len(sends):,} | {args.clients} | {len(sends) / elapsed:,.0f} | {statistics.median(lat) * 1000:.1f} | {lat[int(len(lat) * 0.99) - 1] * 1000:.1f} | "
        f"{codes.count(202)} | {codes.count(200)} | {codes.count(401)} | {len(codes) - codes.count(202) - codes.count(200) - codes.count(401)} | {health['runs_started']} | {distinct_valid} |"
    )


if __name__ == "__main__":
    main()
