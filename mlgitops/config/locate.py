"""Where mlops.yaml is: the repository root and the config path, from --repo/--config."""

from __future__ import annotations

from pathlib import Path


def find_config(repo: str | Path | None, config: str | Path | None) -> tuple[Path, Path, str]:
    """(repo root, config path, config path relative to the root)."""
    from mlgitops.gitrepo import repo_root

    start = Path(repo or ".").resolve()
    if config:
        cpath = Path(config)
        cpath = cpath if cpath.is_absolute() else (Path.cwd() / cpath)
        root = repo_root(cpath.parent if cpath.parent.exists() else start)
    else:
        root = repo_root(start)
        cpath = root / "mlops.yaml"
    try:
        rel = cpath.resolve().relative_to(root).as_posix()
    except ValueError:
        rel = cpath.name
    return root, cpath, rel
