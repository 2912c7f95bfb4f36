"""The workspace file: many models in one repository.

``mlops-workspace.yaml`` at the repository root lists the models' ``mlops.yaml`` files,
as paths or globs relative to the root::

    models:
      - models/*/mlops.yaml
      - forecasting/mlops.yaml

Read like mlops.yaml (bounded YAML, ``file:line:col`` errors): an entry that names no
file, a glob that matches nothing, a file outside the repository, an unknown key and
two models with the same ``name`` are refused, each with its position. Without
``--config``, the commands that handle events (``mlops run``, ``mlops deploy``,
``mlops validate``, ``mlops status``) handle every model it lists.
"""

from __future__ import annotations

import difflib
import glob as globlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlgitops.errors import ConfigError

WORKSPACE_FILE = "mlops-workspace.yaml"
KEYS = ("version", "models")
HINT = "list each model's mlops.yaml, e.g. `models: [models/*/mlops.yaml]` (paths and globs relative to the repository root; docs/configuration.md, 'Many models')"
SKIPPED = {".git", ".mlops"}  # never models: git's own folder, the tool's cache and worktrees
_MAGIC = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Member:
    """One model of the workspace: its mlops.yaml and the entry that listed it."""

    rel: str  # mlops.yaml's path relative to the root (posix)
    path: Path
    where: str  # mlops-workspace.yaml:LINE:COL of the entry


@dataclass(frozen=True)
class Workspace:
    root: Path
    path: Path
    members: tuple[Member, ...]


def find_workspace(root: Path) -> Path | None:
    """The workspace file at the repository root, if there is one."""
    path = root / WORKSPACE_FILE
    return path if path.is_file() else None


def load_workspace(root: Path, path: Path | None = None) -> Workspace:
    """Read and check the workspace file (its entries, not yet the configs they name)."""
    from mlgitops.config.positions import YamlLimitError, YamlSyntaxError, check_size, load_with_positions

    path = path or root / WORKSPACE_FILE
    shown = WORKSPACE_FILE if path == root / WORKSPACE_FILE else str(path)
    try:
        check_size(path.stat().st_size)
        text = path.read_text(encoding="utf-8")
        data, positions = load_with_positions(text)
    except FileNotFoundError:
        raise ConfigError([f"{shown}: file not found"], hint=HINT) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{shown}: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from None
    except YamlLimitError as exc:
        raise ConfigError([f"{shown}:{exc.line}:{exc.column}: {exc.problem}"], hint=exc.hint) from None
    except YamlSyntaxError as exc:
        raise ConfigError([f"{shown}:{exc.line}:{exc.column}: invalid YAML: {exc.problem}"], hint=HINT) from None

    def at(*keys: Any) -> str:
        line, col = positions.value(keys)
        return f"{shown}:{line}:{col}"

    problems = [f"{shown}:{line}:{col}: {'.'.join(map(str, dup))}: duplicate key (the earlier one would be ignored)" for dup, (line, col) in positions.duplicates]
    if not isinstance(data, dict):
        got = "nothing" if data is None else f"a {type(data).__name__}"
        raise ConfigError([f"{shown}:1:1: expected a mapping with `models:` (a list of mlops.yaml paths or globs), got {got}"], hint=HINT)
    for key in data:
        if key not in KEYS:
            line, col = positions.key((key,))
            guess = difflib.get_close_matches(str(key), KEYS, n=1)
            problems.append(f"{shown}:{line}:{col}: unknown key {key!r}; " + (f"did you mean {guess[0]!r}?" if guess else f"expected one of {', '.join(KEYS)}"))
    if "version" in data and (data["version"] != 1 or isinstance(data["version"], bool)):
        problems.append(f"{at('version')}: version: expected 1, got {data['version']!r}")
    entries = data.get("models")
    members: list[Member] = []
    if "models" not in data:
        problems.append(f"{shown}:1:1: models: required key is missing")
    elif not isinstance(entries, list) or not entries:
        problems.append(f"{at('models')}: models: expected a non-empty list of mlops.yaml paths or globs, got {entries!r}")
    else:
        seen: set[str] = set()
        for i, entry in enumerate(entries):
            where = at("models", i)
            if not isinstance(entry, str) or not entry.strip():
                problems.append(f"{where}: models[{i}]: expected a path or glob (text), got {entry!r}")
                continue
            found, why = _expand(root, entry)
            if why:
                problems.append(f"{where}: models[{i}]: {why}")
                continue
            for rel in found:
                if rel not in seen:  # the same file through two entries is one model
                    seen.add(rel)
                    members.append(Member(rel, root / rel, where))
    if problems:
        raise ConfigError(problems, hint=HINT)
    return Workspace(root, path, tuple(members))


def _expand(root: Path, entry: str) -> tuple[list[str], str]:
    """The files ``entry`` names, relative to ``root`` (sorted), or why none."""
    if Path(entry).is_absolute() or entry.startswith("~"):
        return [], f"{entry!r} is absolute; write it relative to the repository root"
    if ".." in Path(entry).parts:
        return [], f"{entry!r} leaves the repository root ('..'); models live inside the repository"
    real_root = root.resolve()
    if not _MAGIC.search(entry):
        target = root / entry
        if target.is_dir():
            return [], f"{entry!r} is a folder; name its mlops.yaml (e.g. {entry.rstrip('/')}/mlops.yaml)"
        if not target.is_file():
            return [], f"{entry!r} does not exist"
        if not target.resolve().is_relative_to(real_root):
            return [], f"{entry!r} resolves outside the repository (a symlink)"
        return [Path(entry).as_posix().removeprefix("./")], ""
    found = []
    for hit in sorted(globlib.glob(entry, root_dir=root, recursive=True)):
        rel = Path(hit)
        if SKIPPED & set(rel.parts) or not (root / rel).is_file():
            continue
        if not (root / rel).resolve().is_relative_to(real_root):
            continue
        found.append(rel.as_posix())
    if not found:
        return [], f"{entry!r} matches no file"
    return found, ""


def load_members(ws: Workspace) -> list[Any]:
    """Each member's LoadedConfig, in the workspace's order. Every member's problems are
    reported together; two models with one ``name`` are refused with both positions
    (their status contexts, comments and promotion branches would collide)."""
    from mlgitops.config.loader import load_config

    loaded, problems, hint = [], [], None
    for member in ws.members:
        try:
            loaded.append(load_config(member.path, display=member.rel))
        except ConfigError as exc:
            problems += exc.problems
            hint = hint or exc.hint
    problems += duplicate_names(loaded)
    if problems:
        raise ConfigError(problems, hint=hint or "each model in a workspace needs its own `name:` in its mlops.yaml")
    return loaded


def duplicate_names(configs: list[Any]) -> list[str]:
    """Problems for models that share a name (or whose name cannot be a branch part)."""
    problems = []
    first: dict[str, Any] = {}
    for cfg in configs:
        name = cfg.config.name
        if name.endswith(".lock") or ".." in name or name.endswith("."):
            problems.append(f"{cfg.where('name')}: name: {name!r} cannot name a git branch (its promotion branch is mlops/deploy/{name}/ENV); rename the model")
        if name in first:
            other = first[name]
            problems.append(f"{cfg.where('name')}: name: {name!r} is also the name of {other.where('name')}; each model in a workspace needs its own name (status contexts, comments and promotion branches are per name)")
        else:
            first[name] = cfg
    return problems


def is_member(root: Path, config_path: Path) -> bool:
    """Whether ``config_path`` is a model of the workspace at ``root`` (no workspace: False).
    Such a model keeps its workspace identity when a command names it with --config:
    its promotion branches are mlops/deploy/<name>/<env>, its status mlops/gate/<name>."""
    path = find_workspace(root)
    if path is None:
        return False
    target = Path(config_path).resolve()
    ws = load_workspace(root, path)
    if not any(m.path.resolve() == target for m in ws.members):
        return False
    from mlgitops.config.loader import parse_config
    from mlgitops.config.positions import MAX_BYTES

    configs = []
    for member in ws.members:  # its branches and contexts are per name: two models with one name are refused
        try:  # parse_config, not load_config: loading configures alerts, and this command's model is another
            if member.path.stat().st_size <= MAX_BYTES:
                configs.append(parse_config(member.path.read_text(encoding="utf-8"), member.path, member.rel))
        except (ConfigError, OSError, UnicodeDecodeError):
            continue  # another model's own problem is not this command's
    problems = duplicate_names(configs)
    if problems:
        raise ConfigError(problems, hint="each model in a workspace needs its own `name:` in its mlops.yaml")
    return True


def workspace_root(repo: str | Path | None, config: str | Path | None = None) -> Path | None:
    """The repository root when a command handles a workspace, else None: no ``--config``
    and mlops-workspace.yaml at the root, or ``--config`` naming that file (what the
    GitHub Actions pass as their ``config`` input)."""
    from mlgitops.errors import GitError, InputError
    from mlgitops.gitrepo import repo_root

    if config is not None and Path(config).name != WORKSPACE_FILE:
        return None
    start = Path(repo or ".").resolve()
    try:
        root = repo_root(start)
    except GitError:
        root = start
    if config is not None:
        named = Path(config) if Path(config).is_absolute() else Path.cwd() / config
        if named.resolve() != (root / WORKSPACE_FILE).resolve():
            raise InputError(f"{config}: a workspace file is read at the repository root ({root / WORKSPACE_FILE})", hint=f"move it to the root, or pass no --config in {root}")
        if not named.is_file():
            raise ConfigError([f"{WORKSPACE_FILE}: file not found"], hint=HINT)
    return root if find_workspace(root) is not None else None
