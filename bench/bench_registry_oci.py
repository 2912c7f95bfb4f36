"""Benchmark: the OCI registry backend vs oras-py's own client, pushing and pulling one
big blob.

Usage (from the repo root, in the project venv with the test extras and Debian's
``docker-registry`` installed; under a minute):

    python bench/bench_registry_oci.py                 # 50 MB, 7 repeats
    python bench/bench_registry_oci.py --mb 50 --repeat 11

Against the CNCF distribution registry on 127.0.0.1 (started here with the tests'
configuration: filesystem storage in a temp folder; stopped after), fresh random bytes
for every push (so both sides really upload: the registry skips a blob it has) are

* pushed: ``Registry(OciBackend(url)).put_object(data)`` (sha256 of the bytes, HEAD of
  the ``sha256-<hex>`` tag, HEAD of the blob, POST + PUT of the upload, PUT of the
  tagged manifest) vs ``oras.provider.Registry.push(target, files=[path])`` from a file
  already on disk (oras hashes the file, HEADs the blob, POST + PUT, uploads the config,
  PUTs the manifest). Writing the bytes to that file is *not* timed: oras is given its
  best case;
* pulled: ``Registry.read_object(sha)`` (GET of the blob, then the sha256 check, bytes
  in memory) vs ``oras.provider.Registry.pull(target, outdir)`` (GET of the manifest,
  GET of the blob streamed to a file);
* broken down: sha256 of the bytes and one ``has_blob`` HEAD (a miss), timed alone.

The two sides alternate within each repeat (ours first on even repeats, oras first on
odd ones) so a slow phase of the machine hits both; the median of the repeats is
reported. Printed as a Markdown table for bench/RESULTS-registry-oci.md. Target: the
registry adds <= 10% to push and to pull.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
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
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    import oras.logger
    import oras.provider
    import oras.version

    from mlgitops.deploy.registry import Registry
    from mlgitops.deploy.registry.oci import OciBackend
    from tests.fixtures_oci import CREDENTIAL_VARS, _serve

    for name in CREDENTIAL_VARS:
        os.environ.pop(name, None)
    oras.logger.setup_logger(quiet=True)
    size = args.mb * 2**20
    with tempfile.TemporaryDirectory(prefix="bench-oci-") as tmp:
        work = Path(tmp)
        os.environ["HOME"] = str(work)  # no ~/.docker/config.json from the developer
        (work / "server").mkdir()
        server_gen = _serve(work / "server", auth=False)
        host = next(server_gen)
        try:
            reg = Registry(OciBackend(f"oci://{host}/bench/registry"))
            client = oras.provider.Registry(insecure=True)
            target = f"{host}/bench/oras"
            blob = work / "blob.bin"

            # warm both clients (connection, config blob) outside the timings
            reg.read_object(reg.put_object(b"warm"))
            blob.write_bytes(b"warm")
            client.push(target=f"{target}:warm", files=[str(blob)], disable_path_validation=True, quiet=True)

            samples: dict[str, list[float]] = {k: [] for k in ("push registry", "push oras", "pull registry", "pull oras", "sha256", "has_blob (miss)")}
            for i in range(args.repeat):
                ours_data, oras_data = os.urandom(size), os.urandom(size)
                blob.write_bytes(oras_data)
                sha = hashlib.sha256(ours_data).hexdigest()
                order = ["registry", "oras"] if i % 2 == 0 else ["oras", "registry"]
                for side in order:
                    if side == "registry":
                        samples["push registry"].append(timed(lambda: reg.put_object(ours_data)))
                    else:
                        samples["push oras"].append(timed(lambda: client.push(target=f"{target}:r{i}", files=[str(blob)], disable_path_validation=True, quiet=True)))
                for side in order:
                    if side == "registry":
                        got: dict[str, bytes] = {}
                        samples["pull registry"].append(timed(lambda: got.setdefault("b", reg.read_object(sha))))
                        assert got["b"] == ours_data
                    else:
                        out = work / f"pulled-{i}"
                        files: list[str] = []
                        samples["pull oras"].append(timed(lambda: files.extend(client.pull(target=f"{target}:r{i}", outdir=str(out)))))
                        assert [Path(f).stat().st_size for f in files] == [size]
                        Path(files[0]).unlink()
                samples["sha256"].append(timed(lambda: hashlib.sha256(ours_data).hexdigest()))
                samples["has_blob (miss)"].append(timed(lambda: reg.backend.has_blob("0" * 64)))
        finally:
            server_gen.close()
        registry_version = subprocess.run(["docker-registry", "--version"], capture_output=True, text=True).stdout.strip()

    med = {k: statistics.median(v) for k, v in samples.items()}
    mb = args.mb
    import requests

    print(f"Machine: {os.cpu_count()} cores; Python {platform.python_version()}, oras-py {oras.version.__version__}, requests {requests.__version__}, {registry_version}. {mb} MB of random bytes, median of {args.repeat} repeats.\n")
    print("| operation | oras-py alone (s) | registry (s) | overhead | registry MB/s |")
    print("|---|--:|--:|--:|--:|")
    for op in ("push", "pull"):
        base, ours = med[f"{op} oras"], med[f"{op} registry"]
        print(f"| {op} {mb} MB | {base:.3f} | {ours:.3f} | {100 * (ours - base) / base:+.1f}% | {mb / ours:.0f} |")
    print(f"\nWhere the registry's time goes, besides the transfer: sha256 of {mb} MB {med['sha256'] * 1000:.0f} ms (push and pull), the HEAD of `has_blob` {med['has_blob (miss)'] * 1000:.1f} ms (push).")
    print("\nall samples (s): " + "; ".join(f"{k}: {', '.join(f'{x:.3f}' for x in v)}" for k, v in samples.items()))


if __name__ == "__main__":
    main()
