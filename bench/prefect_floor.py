"""Prefect's own floor: import + one flow of 5 trivial tasks + exit, in a new process.

    PREFECT_API_URL=http://127.0.0.1:4200/api python bench/prefect_floor.py

Prints the wall time of each phase; bench/RESULTS.md compares `mlops run` with it.
"""

import atexit
import time

T0 = time.perf_counter()
from prefect import flow, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402

T1 = time.perf_counter()


@task(cache_policy=NO_CACHE)
def step(x: int) -> int:
    return x + 1


@flow
def floor() -> int:
    return sum(step(i) for i in range(5))


floor()
T2 = time.perf_counter()
print(f"import prefect {T1 - T0:.2f} s, flow run {T2 - T1:.2f} s", flush=True)
atexit.register(lambda: print(f"until exit hooks {time.perf_counter() - T0:.2f} s", flush=True))
