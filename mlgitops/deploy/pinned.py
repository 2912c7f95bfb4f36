"""The model an environment pins, for deploy targets: `mlops pull` and `mlops serve`.

A source is ENV of mlops.yaml (its manifest, in its repository) or a ``--manifest``
file, read from the working tree or at a git ``--ref``."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from mlgitops.errors import GitError, InputError


@dataclass
class PinnedSource:
    name: str  # the environment
    read: Callable[[], str | None]  # the manifest's current text, or None
    where: str  # the manifest as messages name it
    uri_base: Path  # the folder relative file pins are relative to


def pinned_source(env: str | None, manifest: str | None, ref: str | None, config: str | None, repo: str | None) -> PinnedSource:
    """ENV of mlops.yaml, or a ``--manifest`` file; at ``ref`` when given."""
    if manifest:
        path = Path(manifest).expanduser()
        path = path if path.is_absolute() else Path.cwd() / path
        name, where, uri_base = env or path.stem, manifest, Path.cwd()
    else:
        if not env:
            raise InputError("which environment? give ENV (one of deploy.environments in mlops.yaml) or --manifest FILE", hint="e.g. `mlops pull production --to out/` or `mlops pull --manifest deploy/production.yaml --to out/`")
        from mlgitops.config.loader import load_config
        from mlgitops.config.locate import find_config
        from mlgitops.deploy.promote import environment

        _root, cpath, rel = find_config(repo, config)
        cfg = load_config(cpath, display=rel)
        spec = environment(cfg, env)
        base = (Path(spec.repo) if spec.repo and Path(spec.repo).is_absolute() else cfg.root / spec.repo) if spec.repo else cfg.root
        path = base / spec.manifest
        name, where, uri_base = env, spec.manifest, cfg.root
    if ref is None:
        def read() -> str | None:
            return path.read_text(encoding="utf-8") if path.is_file() else None

        return PinnedSource(name, read, where, uri_base)
    top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=path.parent if path.parent.is_dir() else Path.cwd(), capture_output=True, text=True)
    if top.returncode != 0:
        raise GitError(f"--ref {ref}: {where} is not inside a git repository", hint="drop --ref to read the file as it is")
    toplevel = Path(top.stdout.strip()).resolve()
    try:
        rel_path = path.resolve().relative_to(toplevel).as_posix()
    except ValueError:
        raise GitError(f"--ref {ref}: {where} is outside the git repository {toplevel}", hint="drop --ref to read the file as it is") from None

    def read_at_ref() -> str | None:
        proc = subprocess.run(["git", "show", f"{ref}:{rel_path}"], cwd=toplevel, capture_output=True, text=True)
        return proc.stdout if proc.returncode == 0 else None

    return PinnedSource(name, read_at_ref, f"{where}@{ref}", uri_base)


def pull_to(source: PinnedSource, to: str) -> str:
    """Write the pinned ONNX model and pin.json into ``to``, each whole or not at all;
    nothing is written when the model cannot be fetched or fails its hash."""
    from datetime import datetime, timezone

    from mlgitops.deploy.fetch import fetch_pinned
    from mlgitops.deploy.manifest import ManifestError, read_pin
    from mlgitops.deploy.registry.backends import _atomic_write

    name, where = source.name, source.where
    try:
        text = source.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{where}: cannot read the manifest: {type(exc).__name__}: {exc}") from None
    if text is None:
        raise ManifestError(f"{where}: no such manifest", hint="check the path (and --ref); promotion PRs create it")
    pin = read_pin(text, where)
    if pin is None:
        raise ManifestError(f"{where}: pins no model (model.uri and model.sha256)", hint=f"merge a promotion PR for {name} first")
    if pin.format != "onnx":
        raise ManifestError(f"{where}: model.format is {pin.format!r}; mlops pull writes ONNX models", hint="deploy a version registered with ONNX")
    data = fetch_pinned(pin, source.uri_base, where)
    out = Path(to)
    record = {"name": pin.name, "version": pin.version, "sha256": pin.sha256, "uri": pin.uri, "pulled_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "environment": name, "manifest": where}
    try:
        _atomic_write(out / "model.onnx", data)  # the model first: pin.json names what is there
        _atomic_write(out / "pin.json", (json.dumps(record, indent=2) + "\n").encode())
    except OSError as exc:
        raise InputError(f"--to {to}: cannot write the model there: {type(exc).__name__}: {exc}", hint="pick a folder this user can write") from None
    version = f" v{pin.version}" if pin.version is not None else ""
    return f"pulled {pin.name or name}{version} (sha256 {pin.sha256[:12]}) to {out / 'model.onnx'}"


def serve_pinned(source: PinnedSource, host: str, port: int, poll: float, say: Callable[[str], None]) -> None:
    """Serve the pinned model (``deploy.serve``), swapping in each new pin; ``say`` gets
    the line that tells where it listens."""
    from mlgitops.deploy.serve import ModelHolder, serve

    holder = ModelHolder(source.name, source.read, source.where, source.uri_base)
    holder.load(initial=True)
    pin = holder.current.pin if holder.current else None

    def ready(bound: int) -> None:
        say(f"serving {(pin.name if pin else None) or source.name} {pin.short() if pin else ''} for {source.name} on http://{host}:{bound} (POST /predict, GET /healthz; Open Inference Protocol v2 under /v2; Prometheus GET /metrics); watching {source.where} every {poll:g} s")

    serve(holder, host, port, poll, ready)
