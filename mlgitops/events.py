"""What happened: one typed event, from local git state or a GitHub payload file.

Payloads are read tolerantly (``.get`` everywhere): deliveries from older GitHub
versions lack fields added later, and we only need a few.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import EventError
from .gitrepo import current_branch, git, resolve

PR_ACTIONS_THAT_RUN = ("opened", "synchronize", "reopened")


@dataclass(frozen=True)
class Event:
    kind: str  # pull_request | push | local | ...
    action: str | None = None
    repo: str | None = None
    pr_number: int | None = None
    base_ref: str | None = None
    base_sha: str | None = None
    head_ref: str | None = None
    head_sha: str | None = None
    default_branch: str | None = None
    actor: str | None = None
    fork: bool = False
    merged: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def pr_key(self) -> str:
        """Names this PR's files in the local forge: pr-12, or the head branch."""
        if self.pr_number is not None:
            return f"pr-{self.pr_number}"
        raw = self.head_ref or "HEAD"
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in raw)
        if safe != raw:  # feature/x and feature-x must not share a comment
            safe += "-" + hashlib.sha1(raw.encode()).hexdigest()[:6]
        return f"branch-{safe}"

    def should_run(self) -> tuple[bool, str]:
        if self.kind == "local":
            return True, ""
        if self.kind == "pull_request":
            if self.action in PR_ACTIONS_THAT_RUN or self.action is None:
                return True, ""
            return False, f"pull_request action {self.action!r} needs no run (runs on {', '.join(PR_ACTIONS_THAT_RUN)})"
        return False, f"event {self.kind!r} does not trigger the pull-request flow"


def local_event(root: Path, base: str) -> Event:
    """The PR a developer would open from the checked-out branch into ``base``."""
    base_sha = resolve(root, base)
    if base_sha is None:
        raise EventError(f"--base {base}: no such branch or commit in {root}", hint="name the branch the PR targets, e.g. --base main (fetch it first in a shallow clone)")
    head_sha = resolve(root, "HEAD")
    if head_sha is None:
        raise EventError(f"{root}: the repository has no commits yet", hint="commit your project first")
    return Event(kind="local", base_ref=base, base_sha=base_sha, head_ref=current_branch(root), head_sha=head_sha, actor=git(root, "config", "user.name", check=False) or None)


def _load_payload(path: Path) -> dict[str, Any]:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EventError(f"{path}: event payload file not found") from None
    except json.JSONDecodeError as exc:
        raise EventError(f"{path}:{exc.lineno}:{exc.colno}: event payload is not valid JSON: {exc.msg}") from None
    if not isinstance(payload, dict):
        raise EventError(f"{path}: event payload must be a JSON object, got {type(payload).__name__}")
    return payload


def _obj(parent: dict[str, Any], key: str) -> dict[str, Any]:
    """A nested object, or {} when absent or of another shape (old/odd deliveries)."""
    value = parent.get(key)
    return value if isinstance(value, dict) else {}


def event_from_payload(path: Path, name: str | None = None) -> Event:
    """Parse a GitHub webhook payload (the file Actions names in GITHUB_EVENT_PATH)."""
    payload = _load_payload(path)
    repository, sender = _obj(payload, "repository"), _obj(payload, "sender")
    repo = repository.get("full_name")
    default_branch = repository.get("default_branch")
    actor = sender.get("login")
    pr = payload.get("pull_request")
    if name == "pull_request" or (name is None and isinstance(pr, dict)):
        if not isinstance(pr, dict):
            raise EventError(f"{path}: a pull_request event must have a 'pull_request' object")
        base, head = _obj(pr, "base"), _obj(pr, "head")
        number = pr.get("number", payload.get("number"))
        if not isinstance(number, int) or not base.get("ref") or not head.get("sha"):
            raise EventError(f"{path}: pull_request payload lacks number, base.ref or head.sha")
        head_repo = _obj(head, "repo").get("full_name")
        return Event(
            kind="pull_request",
            action=payload.get("action"),
            repo=repo,
            pr_number=number,
            base_ref=base.get("ref"),
            base_sha=base.get("sha"),
            head_ref=head.get("ref"),
            head_sha=head.get("sha"),
            default_branch=default_branch,
            actor=actor,
            fork=bool(head_repo and repo and head_repo != repo),
            merged=bool(pr.get("merged")),
        )
    kind = name or ("push" if "pusher" in payload else "unknown")
    return Event(kind=kind, action=payload.get("action"), repo=repo, default_branch=default_branch, actor=actor, head_sha=payload.get("after"), head_ref=payload.get("ref"))


def localize(event: Event, root: Path) -> Event:
    """Fill shas the payload names from the local clone; the base tip wins over a stale base.sha."""
    base_sha = resolve(root, event.base_ref) if event.base_ref else None
    base_sha = base_sha or (event.base_sha if event.base_sha and resolve(root, event.base_sha) else None)
    if event.base_ref and base_sha is None:
        raise EventError(f"base ref {event.base_ref!r} of PR #{event.pr_number} is not in {root}", hint="fetch it first (actions/checkout with fetch-depth: 0)")
    head = resolve(root, "HEAD")
    if event.head_sha and head and event.head_sha != head:
        # actions/checkout of a pull_request checks out the merge commit: head is its 2nd parent
        second_parent = resolve(root, "HEAD^2")
        if second_parent != event.head_sha:
            raise EventError(
                f"the checkout (HEAD {head[:7]}) is not PR #{event.pr_number}'s head {event.head_sha[:7]} nor a merge of it",
                hint="check out the PR's head (or its merge commit) before running, so the status lands on the commit that was evaluated",
            )
    head_sha = event.head_sha or head
    return Event(**{**event.to_dict(), "base_sha": base_sha, "head_sha": head_sha})
