"""Benchmark: the S3 registry backend vs s3fs alone, pushing and pulling one big blob.

Usage (from the repo root, in the project venv with the test extras; about a minute):

    python bench/bench_registry_s3.py                 # 50 MB, 21 repeats
    python bench/bench_registry_s3.py --mb 50 --repeat 41

Against moto's S3 server on 127.0.0.1 (started here, stopped after), the same random
bytes are

* pushed: ``Registry(FsspecBackend(url)).put_object(data)`` (sha256 of the bytes, a
  HEAD for "already there?", the PUT) vs ``s3fs.pipe_file(path, data)`` (the PUT);
  the object is deleted (untimed) before every push, so both really upload;
* pulled: ``Registry.read_object(sha)`` (GET, then the sha256 check) vs
  ``s3fs.cat_file(path)`` (GET);
* broken down: sha256 of the bytes and one ``has_blob`` HEAD, timed alone;
* registered (informational): ``Registry.register`` of the same file as a new version
  (push + list the versions + the conditional create of the record).

The two sides alternate within each repeat (registry first on even repeats, s3fs first
on odd ones) so a slow phase of the machine hits both; the median of the repeats is
reported, and the best (least disturbed) one. Printed as a Markdown table for bench/RESULTS-registry-s3.md. Target: the
registry adds <= 10% to push and to pull.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=21)
    args = parser.parse_args()

    import fsspec
    import moto
    import s3fs
    from moto.server import ThreadedMotoServer

    from mlgitops.deploy.registry import Registry
    from mlgitops.deploy.registry.fsspec_backend import FsspecBackend
    from tests.fixtures_s3 import make_bucket, s3_env

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        os.environ.clear()
        os.environ.update(s3_env(endpoint, dict(os.environ)))
        bucket = make_bucket(endpoint, "bench-registry")
        url = f"s3://{bucket}/models"
        data = os.urandom(args.mb * 2**20)

        reg = Registry(FsspecBackend(url))
        plain = s3fs.S3FileSystem(skip_instance_cache=True)
        import hashlib

        sha = hashlib.sha256(data).hexdigest()
        reg_path = f"{bucket}/models/objects/{sha[:2]}/{sha}"
        plain_path = f"{bucket}/plain/blob"

        # warm both clients (connection, credentials) outside the timings
        reg.put_object(b"warm")
        plain.pipe_file(f"{bucket}/plain/warm", b"warm")

        samples: dict[str, list[float]] = {k: [] for k in ("push registry", "push s3fs", "pull registry", "pull s3fs", "register", "sha256", "has_blob (miss)")}
        for i in range(args.repeat):
            order = [("registry", reg_path), ("s3fs", plain_path)]
            if i % 2:
                order.reverse()
            for side, path in order:
                plain.rm_file(path) if plain.exists(path) else None
                if side == "registry":
                    samples["push registry"].append(timed(lambda: reg.put_object(data)))
                else:
                    samples["push s3fs"].append(timed(lambda: plain.pipe_file(plain_path, data)))
            for side, _ in order:
                if side == "registry":
                    got = {}
                    samples["pull registry"].append(timed(lambda: got.setdefault("b", reg.read_object(sha))))
                    assert got["b"] == data
                else:
                    got = {}
                    samples["pull s3fs"].append(timed(lambda: got.setdefault("b", plain.cat_file(plain_path))))
                    assert got["b"] == data
            samples["sha256"].append(timed(lambda: hashlib.sha256(data).hexdigest()))
            samples["has_blob (miss)"].append(timed(lambda: reg.backend.has_blob("0" * 64)))
            plain.rm_file(reg_path)
            samples["register"].append(timed(lambda: reg.register("bench", {"onnx": (data, "onnx")}, {}, {"model_key": f"{i:04x}"}, None, [], "classification")))
    finally:
        server.stop()

    med = {k: statistics.median(v) for k, v in samples.items()}
    mb = args.mb
    print(f"Machine: {os.cpu_count()} cores; Python {platform.python_version()}, s3fs {s3fs.__version__}, fsspec {fsspec.__version__}, moto {moto.__version__}. {mb} MB of random bytes, median of {args.repeat} repeats.\n")
    best = {k: min(v) for k, v in samples.items()}
    print("| operation | s3fs alone, median (s) | registry, median (s) | overhead of medians | s3fs alone, best (s) | registry, best (s) | overhead of bests |")
    print("|---|--:|--:|--:|--:|--:|--:|")
    for op in ("push", "pull"):
        base, ours = med[f"{op} s3fs"], med[f"{op} registry"]
        b_base, b_ours = best[f"{op} s3fs"], best[f"{op} registry"]
        print(f"| {op} {mb} MB | {base:.3f} | {ours:.3f} | {100 * (ours - base) / base:+.1f}% | {b_base:.3f} | {b_ours:.3f} | {100 * (b_ours - b_base) / b_base:+.1f}% |")
    print(f"| register a new version of {mb} MB (push + record) |  | {med['register']:.3f} | {100 * (med['register'] - med['push s3fs']) / med['push s3fs']:+.1f}% vs s3fs push |  | {best['register']:.3f} | {100 * (best['register'] - best['push s3fs']) / best['push s3fs']:+.1f}% vs s3fs push |")
    print(f"\nWhere the registry's time goes, besides the s3fs call: sha256 of {mb} MB {med['sha256'] * 1000:.0f} ms (push and pull), the HEAD of `has_blob` {med['has_blob (miss)'] * 1000:.1f} ms (push).")
    print("\nall samples (s): " + "; ".join(f"{k}: {', '.join(f'{x:.3f}' for x in v)}" for k, v in samples.items()))


if __name__ == "__main__":
    main()
