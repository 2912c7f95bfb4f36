"""Which forge a run talks to: local files and git branches, or GitHub through PyGithub
(GITHUB_API_URL, so GitHub Enterprise works). ``auto`` means GitHub on an Actions runner
with a token, else local."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from mlgitops.errors import InputError


def _token(token: str | None) -> str | None:
    return token or os.environ.get("GITHUB_TOKEN") or None


def _github(name: str, token: str, branch: str | None = None) -> Any:
    from mlgitops.forges import actions_runtime
    from mlgitops.forges.github import GitHubForge

    actions_runtime.mask(token)
    interval = float(os.environ.get("MLOPS_GITHUB_WRITE_INTERVAL", "1.0"))
    return GitHubForge(name, token, os.environ.get("GITHUB_API_URL"), seconds_between_writes=interval, seconds_between_requests=min(interval, 0.25), **({"branch": branch} if branch else {}))


def wants_github(kind: str, token: str | None) -> bool:
    from mlgitops.forges import actions_runtime

    return kind == "github" or (kind == "auto" and actions_runtime.on_actions() and bool(_token(token)))


def pull_request_forge(kind: str, token: str | None, event: Any, root: Path) -> Any:
    """Where a pull-request (or merge queue) run's comment and status go."""
    from mlgitops.forges import actions_runtime
    from mlgitops.forges.local import LocalForge

    token = _token(token)
    github = kind == "github" or (kind == "auto" and actions_runtime.on_actions() and token and event.kind in ("pull_request", "merge_group"))
    if not github:
        return LocalForge(root)
    if not token:
        raise InputError("--forge github needs a token", hint="set GITHUB_TOKEN (in Actions: `env: GITHUB_TOKEN: ${{ github.token }}`) or pass --token")
    actions_runtime.mask(token)
    repo_name = event.repo or os.environ.get("GITHUB_REPOSITORY")
    if not repo_name or (event.pr_number is None and event.kind != "merge_group"):
        raise InputError("--forge github needs a pull_request event naming the repository and PR (or a merge_group event)", hint="run it for a pull_request or merge_group payload (--event-path, or GITHUB_EVENT_PATH on Actions)")
    return _github(repo_name, token)


def chat_forge(kind: str, token: str | None, event: Any, root: Path) -> tuple[Any, bool]:
    """(the forge a ChatOps command answers on, whether it is GitHub)."""
    from mlgitops.forges.local import LocalForge

    if not wants_github(kind, token):
        return LocalForge(root), False
    token = _token(token)
    if not token:
        raise InputError("--forge github needs a token", hint="set GITHUB_TOKEN or pass --token")
    name = event.repo or os.environ.get("GITHUB_REPOSITORY")
    if not name:
        raise InputError("the issue_comment payload names no repository: set GITHUB_REPOSITORY=OWNER/NAME")
    return _github(name, token), True


def forge_maker(cfg: Any, root: Path, kind: str, token: str | None) -> Callable[[str | None, str | None], Any]:
    """Builds the forge of a repository: (OWNER/NAME or folder, or None for this one; branch)."""
    from mlgitops.forges.local import LocalRepoForge
    from mlgitops.gitrepo import repo_root

    token = _token(token)
    use_github = wants_github(kind, token)

    def make(repo: str | None, branch: str | None) -> Any:
        if use_github:
            if not token:
                raise InputError("--forge github needs a token", hint="set GITHUB_TOKEN or pass --token")
            name = repo or os.environ.get("GITHUB_REPOSITORY")
            if not name:
                raise InputError("--forge github needs the repository: set GITHUB_REPOSITORY=OWNER/NAME")
            return _github(name, token, branch)
        if repo is None:
            return LocalRepoForge(root, branch)
        other = Path(repo) if Path(repo).is_absolute() else (cfg.root / repo)
        if not other.is_dir():
            raise InputError(f"{cfg.display}: deploy.environments: manifest repository {repo!r} is not a folder here ({other})", hint="for the local forge, `repo:` is a path to a git clone; on GitHub it is OWNER/NAME")
        return LocalRepoForge(repo_root(other), branch)

    return make


def deploy_targets(cfg: Any, root: Path, kind: str, token: str | None) -> dict[str, Any]:
    """Each environment's manifest forge: local git branches, or GitHub pull requests.
    A workspace's model (listed in mlops-workspace.yaml) promotes on its own branches."""
    from mlgitops.config.workspace import is_member
    from mlgitops.deploy.promote import targets

    found = targets(cfg, root, forge_maker(cfg, root, kind, token))
    if is_member(root, cfg.path):
        for target in found.values():
            target.model = cfg.config.name
    return found
