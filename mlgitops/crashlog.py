"""The log of an unexpected error (exit 3), written so that it cannot fail itself.

Whatever raised may be odd: an exception whose ``str()`` raises or runs to megabytes
(a message built from a PR's data), a command line with undecodable bytes, a cache
folder that is read-only or missing, no home directory. Each step degrades instead
of raising, so the user still gets one line, an exit 3 and, where any folder is
writable, a log (issue 11).
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import traceback
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Callable

LOGGED_PACKAGES = ("mlgitops", "prefect", "pandas", "scikit-learn", "numpy", "pydantic", "PyGithub", "onnxruntime", "skl2onnx")
SHOWN_CHARS = 500  # of the exception's text on the terminal and in an alert
LOGGED_CHARS = 1_000_000  # of the traceback in the log
ARG_CHARS, ARGS = 200, 50  # of the command line in the log


def safe_text(value: object, limit: int = SHOWN_CHARS) -> str:
    """``str(value)`` cut to ``limit`` characters; a placeholder when ``str`` itself fails."""
    try:
        text = str(value)
    except Exception as exc:  # noqa: BLE001 - an object's __str__ may do anything
        return f"<str() failed: {type(exc).__name__}>"
    if not isinstance(text, str):  # pragma: no cover - str() always returns str
        return "<not text>"
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def redacted(argv: list[str]) -> list[str]:
    """The command line with any --token value hidden (the log may be shared), each
    argument and their number cut."""
    out, hide = [], False
    for arg in argv[:ARGS]:
        arg = safe_text(arg, ARG_CHARS)
        if hide:
            out.append("***")
            hide = False
        elif arg == "--token":
            out.append(arg)
            hide = True
        elif arg.startswith("--token="):
            out.append("--token=***")
        else:
            out.append(arg)
    if len(argv) > ARGS:
        out.append(f"... ({len(argv) - ARGS} more)")
    return out


def _candidate_dirs() -> list[Path]:
    """The user's cache (XDG_CACHE_HOME, else ~/.cache), then the temp folder."""
    out: list[Path] = []
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except (RuntimeError, KeyError, OSError):  # no HOME and no passwd entry
            base = None
    if base:
        out.append(Path(base) / "mlgitops" / "logs")
    try:
        out.append(Path(tempfile.gettempdir()) / "mlgitops-logs")
    except (OSError, FileNotFoundError):  # pragma: no cover - no usable temp folder at all
        pass
    return out


def _lines(exc: BaseException) -> list[str]:
    def guard(label: str, produce: Callable[[], str]) -> str:
        try:
            return f"{label}{produce()}"
        except Exception as err:  # noqa: BLE001
            return f"{label}<unavailable: {type(err).__name__}>"

    lines = [
        f"mlops crashed at {datetime.now().isoformat(timespec='seconds')}",
        guard("command: ", lambda: " ".join(redacted(list(sys.argv)))),
        guard("python: ", lambda: f"{sys.version.split()[0]} on {platform.platform()}"),
    ]
    for pkg in LOGGED_PACKAGES:
        lines.append(guard(f"{pkg}: ", lambda pkg=pkg: _version(pkg)))
    lines += ["", guard("", lambda: safe_text("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)), LOGGED_CHARS))]
    return lines


def _version(pkg: str) -> str:
    try:
        return version(pkg)
    except Exception:  # noqa: BLE001 - PackageNotFoundError, or broken metadata
        return "not installed"


def write_crash_log(exc: BaseException) -> tuple[Path | None, str]:
    """(the log's path, "") or (None, why no log could be written). Never raises."""
    try:
        text = "\n".join(_lines(exc))
    except Exception as err:  # noqa: BLE001
        text = f"mlops crashed; the details could not be gathered ({type(err).__name__})"
    why = "no folder to write it to"
    for folder in _candidate_dirs():
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"mlops-{datetime.now().strftime('%Y%m%d-%H%M%S-%f')}-{os.getpid()}.log"
            path.write_text(text, encoding="utf-8", errors="backslashreplace")
            return path, ""
        except OSError as err:
            why = f"{folder}: {err.strerror or type(err).__name__}"
    return None, why
