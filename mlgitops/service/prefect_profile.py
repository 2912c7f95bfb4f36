"""The active Prefect profile, read without importing Prefect (which takes seconds):
what the embedded server (:mod:`mlgitops.service.prefect_server`) and its database
template (:mod:`mlgitops.service.prefect_db`) need to know of Prefect's settings."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def prefect_home(env: Mapping[str, str]) -> Path:
    return Path(env.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()


def active_profile(env: Mapping[str, str]) -> dict[str, Any] | None:
    """The active Prefect profile's settings, read without importing Prefect: {} when
    there is no profiles file or profile, None when the file cannot be read."""
    path = Path(env.get("PREFECT_PROFILES_PATH") or prefect_home(env) / "profiles.toml").expanduser()
    if not path.is_file():
        return {}
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError):
        return None
    active = env.get("PREFECT_PROFILE") or doc.get("active") or "ephemeral"
    settings = (doc.get("profiles") or {}).get(active) or {}
    return settings if isinstance(settings, dict) else None
