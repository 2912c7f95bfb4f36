"""Paths named in mlops.yaml stay inside the repository (issue 11).

A pull request can edit mlops.yaml. ``data.path: /etc/passwd``, ``../../secrets.csv``
or a committed symlink that points out of the checkout would make the runner read
files that are not the project's, and error messages could echo them back. So every
path field must resolve, symlinks followed, inside the repository. The operator (never
mlops.yaml) may lift the rule for trusted repositories with ``MLOPS_ALLOW_OUTSIDE_PATHS=1``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlgitops.config.loader import Config

ALLOW_ENV = "MLOPS_ALLOW_OUTSIDE_PATHS"
HINT = (
    "paths in mlops.yaml are relative to its folder and must stay inside the repository, symlinks included: "
    f"move the file into the repository (an operator can allow outside paths for trusted repositories with {ALLOW_ENV}=1)"
)
SHOWN_CHARS = 80  # a path the PR wrote is shown, but never at any length


def outside_allowed() -> bool:
    """The operator's opt-in: set in the environment, never read from mlops.yaml."""
    return os.environ.get(ALLOW_ENV) == "1"


def repository_root(folder: Path) -> Path:
    """The nearest folder at or above ``folder`` holding ``.git`` (a clone's folder or a
    worktree's file), resolved; ``folder`` itself outside git. No git process is run:
    `mlops validate` stays fast and works without git."""
    folder = folder.resolve()
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists():
            return candidate
    return folder


def path_fields(cfg: "Config") -> list[tuple[tuple[Any, ...], str]]:
    """(key path, value) of every field of ``cfg`` that names a file or folder here."""
    data = cfg.data
    out: list[tuple[tuple[Any, ...], str]] = []
    if not data.path.startswith("sklearn:"):
        out.append((("data", "path"), data.path))
    if data.holdout.path:
        out.append((("data", "holdout", "path"), data.holdout.path))
    out += [(("training", "code", i), entry) for i, entry in enumerate(cfg.training.code)]
    if cfg.report.templates:
        out.append((("report", "templates"), cfg.report.templates))
    for name, env in cfg.deploy.environments.items():
        if env.repo is None:  # a manifest in another repository is relative to that one
            out.append((("deploy", "environments", name, "manifest"), env.manifest))
            out += [(("deploy", "environments", name, "files", i, "path"), f.path) for i, f in enumerate(env.files)]
    if cfg.drift is not None and cfg.drift.reference not in ("deployed", "base"):
        out.append((("drift", "reference"), cfg.drift.reference))
    return out


def escape(rel: str, base: Path, roots: list[Path]) -> str | None:
    """Why ``rel`` (relative to ``base``) resolves outside every folder of ``roots``
    (resolved already), or None when it stays inside one (or the operator allows it)."""
    if outside_allowed():
        return None
    if Path(rel).is_absolute():
        return "an absolute path"
    try:
        target = (base / rel).resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return "its symlinks do not resolve"
    if any(target == root or target.is_relative_to(root) for root in roots):
        return None
    return "'..' leads out of it" if ".." in Path(rel).parts else "a symlink leads out of it"


def shown(rel: str) -> str:
    """``rel`` quoted for a message, cut to :data:`SHOWN_CHARS`."""
    return repr(rel if len(rel) <= SHOWN_CHARS else rel[:SHOWN_CHARS] + "...")


def outside_problems(cfg: "Config", base: Path) -> list[tuple[tuple[Any, ...], str]]:
    """(key path, message) for each path field of ``cfg`` (relative to ``base``, the
    folder of mlops.yaml) that leaves the repository."""
    roots = [repository_root(base)]
    out = []
    for key, rel in path_fields(cfg):
        why = escape(rel, base, roots)
        if why is not None:
            out.append((key, f"{shown(rel)} is outside the repository ({why})"))
    return out
