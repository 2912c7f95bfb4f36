"""`mlops gc --local-cache`: this machine's cache of fetched models, pruned by last use.

Every reader of a remote pin (serve, pull, deploy, status, monitor) goes through the
content-addressed cache in :func:`mlgitops.deploy.fetch.cache_root` (``objects/ab/<sha256>``);
a cache hit refreshes the entry's modification time, so an entry's mtime is its last
use. Pruning removes entries unused for longer than the given age (a removed model is
fetched and verified again on its next use: nothing is lost but a download) and the
embedded Prefect server's database templates of other Prefect releases
(:mod:`mlgitops.service.prefect_db`). Nothing else in that folder is touched.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

_ENTRY = re.compile(r"[0-9a-f]{64}")


def prune(root: Path, older_than_days: float, now: float | None = None) -> dict[str, Any]:
    """Remove cached objects unused for more than ``older_than_days`` days, and
    database templates of other Prefect releases; the counts and bytes freed."""
    from mlgitops.service.prefect_db import template_key

    cutoff = (time.time() if now is None else now) - older_than_days * 86400
    removed = kept = freed = 0
    for entry in sorted((root / "objects").glob("??/*")):
        if not (_ENTRY.fullmatch(entry.name) and entry.parent.name == entry.name[:2] and entry.is_file()):
            continue  # not ours (a temporary file being written, or anything else)
        stat = entry.stat()
        if stat.st_mtime >= cutoff:
            kept += 1
            continue
        entry.unlink(missing_ok=True)
        removed += 1
        freed += stat.st_size
    current = f"{template_key()}.db"
    stale = [p for p in sorted((root / "prefect-db").glob("prefect-*.db")) if p.name != current]
    for path in stale:
        freed += path.stat().st_size
        path.unlink(missing_ok=True)
    return {"cache": str(root), "older_than_days": older_than_days, "objects_removed": removed, "objects_kept": kept, "templates_removed": len(stale), "bytes_freed": freed}
