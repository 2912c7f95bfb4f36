"""A Prefect worker's side of a deployment run: a clone of the repository of its own.

The caller (``mlops run --deployment``, ``mlops webhook serve --deployment``) sends the
repository's clone URL and the event, never a path on its disk. The worker keeps one
clone per URL in a worker-local cache (``$MLOPS_WORKER_CACHE``, else
``$XDG_CACHE_HOME/mlgitops/clones``), clones it on first use, fetches it on every run,
and puts its own checkout at the default branch's tip (the trusted code ChatOps decides
with); each run then gets a worktree at the event's commit (``service.delivery``).

Credentials come from the worker, never from the event: ``GITHUB_TOKEN`` in the worker's
environment, else the Prefect Secret block named by ``$MLOPS_GITHUB_TOKEN_BLOCK``
(default ``mlops-github-token``). For an https clone URL the token goes to git as a
per-command header (``http.extraHeader`` through git's GIT_CONFIG_* environment), so it is never
written into the clone's ``.git/config``, which the PR code's worktree could read, nor
put on a command line.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit, urlunsplit

from mlgitops.errors import InputError

TOKEN_BLOCK_ENV = "MLOPS_GITHUB_TOKEN_BLOCK"
DEFAULT_TOKEN_BLOCK = "mlops-github-token"


def cache_root() -> Path:
    explicit = os.environ.get("MLOPS_WORKER_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mlgitops" / "clones"


def enter_worker_cache() -> dict[str, str]:
    """prefect.yaml's pull step: the run's working folder is the worker-local cache,
    which exists on any machine (the deploy folder need not)."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    os.chdir(root)
    return {"directory": str(root)}


def public_url(url: str) -> str:
    """``url`` without any user:password (an origin remote may carry a token)."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https", "ssh", "git") and "@" in parts.netloc:
        host = parts.netloc.rsplit("@", 1)[1]
        keep_user = parts.scheme == "ssh" and ":" not in parts.netloc.rsplit("@", 1)[0]
        netloc = parts.netloc if keep_user else host
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return url


def clone_url_for(root: Path, payload: dict[str, Any]) -> str:
    """The URL workers fetch the repository from: ``$MLOPS_CLONE_URL``, else the
    caller's ``origin`` remote, else the payload's ``repository.clone_url``."""
    url = os.environ.get("MLOPS_CLONE_URL") or ""
    if not url:
        proc = subprocess.run(["git", "remote", "get-url", "origin"], cwd=root, capture_output=True, text=True)
        url = proc.stdout.strip() if proc.returncode == 0 else ""
        if url and "://" not in url and ":" not in url.split("/", 1)[0] and not Path(url).is_absolute():
            url = str((root / url).resolve())  # a relative path remote, as seen from the caller
    if not url:
        url = str((payload.get("repository") or {}).get("clone_url") or "")
    if not url:
        raise InputError(f"no clone URL for the workers: {root} has no `origin` remote and the payload names none", hint="set MLOPS_CLONE_URL=<a URL every worker can fetch> (e.g. https://github.com/OWNER/REPO.git)")
    return public_url(url)


def worker_token() -> str | None:
    """GITHUB_TOKEN from the worker's environment, else the Prefect Secret block."""
    token = os.environ.get("GITHUB_TOKEN")
    if token:
        return token
    name = os.environ.get(TOKEN_BLOCK_ENV, DEFAULT_TOKEN_BLOCK)
    try:
        from prefect.blocks.system import Secret

        value = Secret.load(name).get()
    except Exception:  # noqa: BLE001 - no block (ValueError), no server: no token
        return None
    return str(value) if value else None


def auth_env(url: str, token: str | None) -> dict[str, str]:
    """The token as git configuration for one command, through the environment
    (GIT_CONFIG_COUNT/KEY/VALUE, git >= 2.31): never in the clone's .git/config (the PR's
    worktree could read it) nor on the command line (other users' `ps` could). Only
    over https: a token never goes over plain http, ssh or to a local path."""
    if not token or urlsplit(url).scheme != "https":
        return {}
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader", "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}"}


def _git(cwd: Path, auth: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("GIT_CONFIG_")}, "GIT_TERMINAL_PROMPT": "0", **auth}  # a missing credential fails, never waits for a prompt
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=900)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # two runs on one worker share a clone: one fetch at a time
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def clone_for(url: str, event_name: str, payload: dict[str, Any], token: str | None = None) -> Path:
    """The worker's clone of ``url``, fetched, its checkout at the default branch, with
    what the event needs (a PR's head) fetched too. Raises InputError when git cannot."""
    root = cache_root() / hashlib.sha256(url.encode()).hexdigest()[:16]
    auth = auth_env(url, token)
    with _locked(root.with_suffix(".lock")):
        if not (root / ".git").is_dir():
            made = _git(root.parent, auth, "clone", "--quiet", "--no-checkout", url, str(root))
            if made.returncode != 0:
                raise InputError(f"cannot clone {url} on this worker: {made.stderr.strip()[-500:]}", hint="the worker needs network access to the repository; for a private one, GITHUB_TOKEN in the worker's environment or a Prefect Secret block (see docs/service.md)")
        else:
            _git(root, {}, "remote", "set-url", "origin", url)
            fetched = _git(root, auth, "fetch", "--quiet", "--prune", "origin")
            if fetched.returncode != 0:
                raise InputError(f"cannot fetch {url} on this worker: {fetched.stderr.strip()[-500:]}", hint="the worker needs network access to the repository")
        number = (payload.get("pull_request") or {}).get("number") or ((payload.get("issue") or {}).get("number") if event_name == "issue_comment" else None)
        if number:  # the PR's head, also from a fork (GitHub serves refs/pull/N/head)
            _git(root, auth, "fetch", "--quiet", "origin", f"+refs/pull/{int(number)}/head:refs/remotes/origin/pr/{int(number)}")
        default = str((payload.get("repository") or {}).get("default_branch") or "")
        tip = f"origin/{default}" if default and _git(root, {}, "rev-parse", "--verify", "--quiet", f"origin/{default}").returncode == 0 else "origin/HEAD"
        if _git(root, {}, "rev-parse", "--verify", "--quiet", tip).returncode != 0:
            heads = _git(root, {}, "for-each-ref", "--format=%(refname:short)", "refs/remotes/origin/").stdout.split()
            tip = next((h for h in heads if h.endswith(("/main", "/master"))), heads[0] if heads else "")
        if tip:
            checked = _git(root, {}, "checkout", "--quiet", "--force", "--detach", tip)
            if checked.returncode != 0:
                raise InputError(f"cannot check out {tip} in the worker's clone {root}: {checked.stderr.strip()[-300:]}")
    return root
