"""The trust ledger: the sha256 of every pickle a trusted run wrote.

A cached ``model.joblib`` is a pickle, and unpickling runs code. Its ``meta.json``
hash proves nothing about who wrote it: whoever can write the cache (a pull request's
job whose cache a later job restores, a delivery of the webhook service sharing one
`.mlops/`) writes both files. So a trusted run (code from the default branch, e.g. the
deploy on a push to it) unpickles only bytes whose sha256 a trusted run recorded here,
in `.mlops/trusted/pickles.json`. Pull-request runs and `/mlops retrain` run the PR's
code and never write this file.

Readers need no lock (the file is replaced atomically); writers merge under an
exclusive lock, so two trusted runs finishing together lose neither's entries. A
damaged file reads as an empty ledger: the worst it costs is a retrain.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

LEDGER_PATH = Path("trusted") / "pickles.json"  # under .mlops/
FORMAT = 1
_SHA256 = re.compile(r"[0-9a-f]{64}")


class TrustLedger:
    """The sha256s of pickles written by trusted runs (``.mlops/trusted/pickles.json``)."""

    def __init__(self, mlops_dir: Path) -> None:
        self.path = mlops_dir / LEDGER_PATH

    def entries(self) -> dict[str, dict[str, Any]]:
        """sha256 -> what recorded it; a missing, unreadable or damaged file is empty."""
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # ValueError: bad JSON or bad UTF-8
            return {}
        pickles = raw.get("pickles") if isinstance(raw, dict) else None
        if not isinstance(pickles, dict):
            return {}
        return {sha: info if isinstance(info, dict) else {} for sha, info in pickles.items() if isinstance(sha, str) and _SHA256.fullmatch(sha)}

    def trusts(self, sha256: str) -> bool:
        return sha256 in self.entries()

    def record(self, pickles: dict[str, str]) -> None:
        """Add ``{sha256: model key}``, merged with what other writers recorded meanwhile."""
        from mlgitops.atomic import atomic_write

        new = {sha: key for sha, key in pickles.items() if _SHA256.fullmatch(sha)}
        if not new:
            return
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._locked():
            merged = self.entries()
            for sha, key in new.items():
                merged.setdefault(sha, {"key": key, "recorded_at": now})
            body = {"format": FORMAT, "about": "sha256 of pickles written by trusted runs; only these are ever unpickled by one", "pickles": dict(sorted(merged.items()))}
            atomic_write(self.path, json.dumps(body, indent=2) + "\n")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # flock from the standard library rather than a locking package: the tool runs
        # on POSIX only (Actions runners, the webhook service's process groups), and a
        # lock on a side file leaves the ledger itself replaceable by rename.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.parent / f".{self.path.name}.lock", "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)  # released when the file closes
            yield
