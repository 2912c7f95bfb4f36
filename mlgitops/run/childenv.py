"""What a child process that runs PR code may see, and what its output may carry.

A pull request's training command is the PR author's code. It starts with a small
allow-listed environment, never the tool's own (which holds ``GITHUB_TOKEN``, the alert
webhook URL, cloud keys...): the names below, plus those the trusted config lists under
``training.env``. Its output tail, which goes into error messages, comments and alerts,
has the values of the parent's credentials redacted. The parent itself is made
non-dumpable so that a same-uid child cannot read them from ``/proc/<ppid>/environ``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import sys
from collections.abc import Iterable, Mapping

# Not secrets, and what interpreters, BLAS libraries and CI-aware scripts need.
ALLOWED = frozenset(
    {
        "PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "NO_COLOR", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TEMP", "TMP",
        "PYTHONHASHSEED", "PYTHONIOENCODING", "PYTHONUTF8", "PYTHONDONTWRITEBYTECODE", "PYTHONWARNINGS", "PYTHONPATH", "PYTHONNOUSERSITE",
        "VIRTUAL_ENV", "CONDA_PREFIX", "LD_LIBRARY_PATH", "SOURCE_DATE_EPOCH",
        "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "CUDA_VISIBLE_DEVICES",
        "CI", "GITHUB_ACTIONS",
    }
)  # fmt: skip
ALLOWED_PREFIXES = ("LC_",)
# A name containing one of these is treated as a credential: passed only when a trusted
# config lists it, and its value redacted from output. Substrings, not words, so the rule
# fails closed (APIKEY, PGPASSFILE and SLACK_HOOK_URL all match).
CREDENTIAL_PARTS = ("TOKEN", "SECRET", "PASS", "KEY", "CRED", "AUTH", "HOOK", "PRIVATE", "SESSION", "COOKIE", "SIGNATURE", "DSN")
# Token formats GitHub documents (classic/fine-grained PATs, app, OAuth, refresh tokens).
GITHUB_TOKEN_RE = re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})")
REDACTED = "***"
MIN_SECRET_LEN = 6  # shorter values ("1", "true") would redact ordinary words


def credential_like(name: str) -> bool:
    """True when ``name`` looks like it holds a secret."""
    upper = name.upper()
    return any(part in upper for part in CREDENTIAL_PARTS)


def effective_names(own: Iterable[str], trusted: Iterable[str] | None) -> tuple[list[str], list[str]]:
    """The ``training.env`` names in force, and the ones withheld.

    ``trusted`` is the trusted config's list (the base ref's on a pull request): it
    alone applies. Without one, the run's own list applies minus credential-like names.
    """
    if trusted is not None:
        return list(dict.fromkeys(trusted)), []
    own = list(dict.fromkeys(own))
    return [n for n in own if not credential_like(n)], [n for n in own if credential_like(n)]


def child_env(listed: Iterable[str], extra: Mapping[str, str], parent: Mapping[str, str] | None = None) -> dict[str, str]:
    """The allow-listed part of ``parent`` (default: this process), the ``listed`` names, then ``extra``."""
    parent = os.environ if parent is None else parent
    wanted = set(listed)
    env = {k: v for k, v in parent.items() if (k in ALLOWED or k.startswith(ALLOWED_PREFIXES) or k in wanted)}
    env.update(extra)
    return env


SEED_RANGE = 2**32  # what PYTHONHASHSEED, NumPy's RandomState and scikit-learn's random_state accept


def seed_env(seed: int) -> dict[str, str]:
    """The variables that hand a training command its seed: ``MLOPS_SEED`` (for the
    script to use) and ``PYTHONHASHSEED`` (so str/bytes hashing, and with it set
    iteration order, is the same on every run)."""
    value = str(seed % SEED_RANGE)
    return {"MLOPS_SEED": value, "PYTHONHASHSEED": value}


def redact(text: str, parent: Mapping[str, str] | None = None, also: Iterable[str] = ()) -> str:
    """``text`` without the values of the parent's credential-like variables (and of the
    names in ``also``, e.g. the alert webhook's), nor anything shaped like a GitHub token."""
    parent = os.environ if parent is None else parent
    values = {parent[n] for n in parent if credential_like(n)} | {parent[n] for n in also if n in parent}
    for value in sorted((v for v in values if len(v) >= MIN_SECRET_LEN), key=len, reverse=True):
        text = text.replace(value, REDACTED)
    return GITHUB_TOKEN_RE.sub(REDACTED, text)


PR_SET_DUMPABLE = 4


def make_undumpable() -> bool:
    """Best effort, Linux only: forbid same-uid processes to read this one's memory and
    ``/proc/<pid>/environ`` (root with CAP_SYS_PTRACE still can). Returns whether it took.

    Hand-written with ctypes: the standard library has no prctl, and python-prctl
    would be a compiled dependency for one call.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False
