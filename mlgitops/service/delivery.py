"""One delivery of an event, wherever it runs: the webhook service (a child process per
delivery) and the Prefect entry flow (in the worker's process) both come here.

The steps: refuse what must not run (a fork's PR with a token in reach, ChatOps without
a permission source); for a comment, decide in the clone (trusted code) before any PR
code is checked out, and check out the PR's head only for an accepted ``retrain``; for
everything else, fetch and check out the payload's commit in a temporary worktree.
Then ``execute(request, tree)`` runs the dispatcher (``mlgitops.events.dispatch``) on a
request naming the checkout, the payload and the forge, and returns its exit code.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

Execute = Callable[[dict[str, Any], Path], int]


def run_event(root: Path, event_name: str, payload: dict[str, Any], payload_path: Path, forge: str, execute: Execute, tag: str, worktrees: Path | None = None, config: str | None = None) -> tuple[int | None, str]:
    """(exit code, or None when it was not run; why it was not run or did not start).

    ``tag`` names the temporary ref a PR's head is fetched into (safe in a ref name);
    ``config``: an mlops.yaml path inside ``root``, mapped into the checkout."""
    why = refusal(root, event_name, payload, forge)
    if why:
        return None, why
    ref = f"refs/mlops/{tag}"
    with tempfile.TemporaryDirectory(prefix="mlops-result-") as tmp:
        result = Path(tmp) / "result.json"

        def run_in(tree: Path, **extra: Any) -> int:
            request = {"root": str(tree), "event_path": str(payload_path), "event_name": event_name, "forge": forge, "result": str(result), "config": _config_in(config, root, tree), **extra}
            return execute(request, tree)

        try:
            if event_name == "issue_comment":
                code = run_in(root, check_only=True)
                said = json.loads(result.read_text()) if result.is_file() else {}
                issue = payload.get("issue") or {}
                if code == 0 and said.get("decision") == "run" and said.get("command") == "retrain" and issue.get("number"):
                    if has_origin(root):
                        git_at(root, "fetch", "--quiet", "origin", f"+refs/pull/{issue['number']}/head:{ref}")
                    head = git_at(root, "rev-parse", "--verify", "--quiet", ref).stdout.strip() or git_at(root, "rev-parse", "--verify", "--quiet", f"refs/remotes/origin/pr/{int(issue['number'])}").stdout.strip()
                    if not head and has_origin(root):  # never the default branch in the PR's place
                        return 2, f"the head of PR #{issue['number']} could not be fetched into the clone at {root}"
                    with checkout(root, head or None, f"PR #{issue['number']}", worktrees) as tree:
                        return run_in(tree), ""
                return run_in(root), ""
            sha, base, error = prepare(root, event_name, payload, tag)
            if error:
                return 2, error
            with checkout(root, sha, tag, worktrees) as tree:
                return run_in(tree, base=base), ""
        finally:
            git_at(root, "update-ref", "-d", ref)


def _config_in(config: str | None, root: Path, tree: Path) -> str | None:
    if not config:
        return None
    path = Path(config)
    return str(tree / path.relative_to(root)) if path.is_absolute() and path.is_relative_to(root) else config


def refusal(root: Path, event: str, payload: dict[str, Any], forge: str) -> str | None:
    """Why a delivery must not run here, or None. A service holds a token: a fork's
    code never runs with it, and ChatOps needs a real permission source."""
    if event == "pull_request":
        pr = payload.get("pull_request") or {}
        head_repo = (pr.get("head") or {}).get("repo")
        base_repo = ((pr.get("base") or {}).get("repo") or {}).get("full_name") or (payload.get("repository") or {}).get("full_name")
        if head_repo is None or (isinstance(head_repo, dict) and head_repo.get("full_name") != base_repo):
            fork = head_repo.get("full_name") if isinstance(head_repo, dict) else "a deleted fork"
            return f"pull request from a fork ({fork}): its code is not run with this service's token"
    if event == "issue_comment" and forge == "local" and not (root / ".mlops" / "forge" / "collaborators.json").is_file():
        return "ChatOps from a delivery needs --forge github (permissions asked of GitHub) or .mlops/forge/collaborators.json"
    return None


@contextmanager
def checkout(root: Path, sha: str | None, label: str, base: Path | None = None) -> Iterator[Path]:
    """A temporary detached worktree of the clone at ``sha`` (HEAD when None), in a new
    folder under ``base`` (the system's temp folder when None), sharing the clone's
    `.mlops/` cache; removed afterwards, whatever happened."""
    tmp = Path(tempfile.mkdtemp(prefix="mlops-delivery-", dir=base))
    tree = tmp / "checkout"
    try:
        made = git_at(root, "worktree", "add", "--quiet", "--detach", str(tree), sha or "HEAD")
        if made.returncode != 0:
            raise RuntimeError(f"git worktree add failed for {label}: {made.stderr.strip()}")
        (root / ".mlops").mkdir(exist_ok=True)
        if not (tree / ".mlops").exists():
            (tree / ".mlops").symlink_to(root / ".mlops", target_is_directory=True)  # one cache for all runs
        yield tree
    finally:
        git_at(root, "worktree", "remove", "--force", str(tree))
        shutil.rmtree(tmp, ignore_errors=True)


def git_at(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)


def has_origin(root: Path) -> bool:
    return git_at(root, "remote", "get-url", "origin").returncode == 0


def prepare(root: Path, event: str, payload: dict[str, Any], tag: str) -> tuple[str | None, str | None, str]:
    """(commit to run at or None for the clone's HEAD, the base to compare with or None
    for the payload's, error).

    With an ``origin``, its branches are fetched first, the commit too when missing,
    and a PR is compared with ``origin/<base>`` (the clone's own branch may be stale)."""
    origin = has_origin(root)
    if origin:
        git_at(root, "fetch", "--quiet", "origin")
    if event == "pull_request":
        pr = payload.get("pull_request") or {}
        sha, number, base = (pr.get("head") or {}).get("sha"), pr.get("number"), (pr.get("base") or {}).get("ref")
        if sha and not _has_commit(root, sha) and origin and number:
            git_at(root, "fetch", "--quiet", "origin", f"+refs/pull/{number}/head:refs/mlops/{tag}")
        if not sha or not _has_commit(root, sha):
            return None, None, f"commit {str(sha)[:7]} of PR #{number} is not in the clone at {root}" + ("" if origin else " (it has no origin to fetch from)")
        return sha, (f"origin/{base}" if origin and base and _has_commit(root, f"origin/{base}") else None), ""
    if event == "merge_group":  # the queue's commit lives on a gh-readonly-queue/... branch, fetched above
        group = payload.get("merge_group") or {}
        sha = group.get("head_sha")
        if not sha or not _has_commit(root, sha):
            return None, None, f"commit {str(sha)[:7]} of merge queue group {group.get('head_ref')} is not in the clone at {root}" + ("" if origin else " (it has no origin to fetch from)")
        return sha, None, ""
    if event == "push":
        sha = payload.get("after")
        if sha and not _has_commit(root, sha):
            return None, None, f"commit {str(sha)[:7]} of the push is not in the clone at {root}"
        return sha, None, ""
    return None, None, ""


def _has_commit(root: Path, rev: str) -> bool:
    return git_at(root, "cat-file", "-e", f"{rev}^{{commit}}").returncode == 0
