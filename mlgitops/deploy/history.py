"""The versions an environment ran, read from its manifest's git history.

Every promotion is a merged commit that rewrites the manifest's pin (its version,
sha256 and the metrics recorded when the version was registered), so the manifest's
history on the base ref is the deployment history: no registry access, no
credentials, the same on every runner with the repository's history (the workflow
checks out with ``fetch-depth: 0``; a shallow clone sees only the current pin).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

MAX_VERSIONS = 5  # the last deployed versions a chart shows
MAX_COMMITS = 200  # the manifest commits read, newest first


def deployed_versions(root: Path, sha: str, manifest_rel: str, limit: int = MAX_VERSIONS) -> list[dict[str, Any]]:
    """The last ``limit`` distinct models pinned in ``manifest_rel`` as of commit ``sha``,
    oldest version first: ``{version, sha256, label, metrics, registered_at}``. Pins that
    cannot be read (hand edits, other formats) are passed over; no history is ``[]``."""
    from mlgitops.deploy.manifest import ManifestError, read_pin
    from mlgitops.errors import GitError
    from mlgitops.gitrepo import git

    try:
        commits = git(root, "log", f"-n{MAX_COMMITS}", "--format=%H", sha, "--", manifest_rel).split()
    except GitError:
        return []
    found: dict[tuple[Any, str], dict[str, Any]] = {}
    order: list[tuple[Any, str]] = []
    for commit in commits:
        text = git(root, "show", f"{commit}:{manifest_rel}", check=False)
        if not text:
            continue  # deleted in this commit
        try:
            pin = read_pin(text, f"{manifest_rel}@{commit[:7]}")
        except ManifestError:
            continue
        if pin is None:
            continue
        ident = (pin.version, pin.sha256)
        if ident in found:
            continue  # newest first: a rollback's older pin was recorded already
        metrics = {k: float(v) for k, v in pin.metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
        found[ident] = {
            "version": pin.version,
            "sha256": pin.sha256,
            "label": f"v{pin.version}" if pin.version is not None else pin.sha256[:7],
            "metrics": metrics,
            "registered_at": pin.lineage.get("registered_at"),
        }
        order.append(ident)
        if len(order) == limit:
            break
    picked = [found[i] for i in order]
    if all(p["version"] is not None for p in picked):
        return sorted(picked, key=lambda p: p["version"])
    return picked[::-1]  # deployment order, oldest first


def baseline_history(plan: Any) -> dict[str, Any] | None:
    """The deployed history of the environment the baseline comes from (the base ref's
    ``deploy.baseline``, else its first environment), or None when there is none."""
    cfg = plan.baseline.cfg
    sha = plan.event.base_sha
    if cfg is None or sha is None or not cfg.config.deploy.environments:
        return None
    deploy = cfg.config.deploy
    env = deploy.baseline or next(iter(deploy.environments))
    target = deploy.environments.get(env)
    if target is None or target.repo:
        return None  # the manifest's history is another repository's
    rel = (Path(plan.config_rel).parent / target.manifest).as_posix()
    versions = deployed_versions(plan.root, sha, rel)
    if not versions:
        return None
    return {"env": env, "manifest": target.manifest, "ref": plan.event.base_ref or sha[:7], "versions": versions}
