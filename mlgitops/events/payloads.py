"""What happened: one typed event, from local git state or a GitHub payload file.

Payloads are read tolerantly (``.get`` everywhere): deliveries from older GitHub
versions lack fields added later, and we only need a few.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlgitops.errors import EventError
from mlgitops.gitrepo import current_branch, git, resolve

PR_ACTIONS_THAT_RUN = ("opened", "synchronize", "reopened")
# A merge queue asks for checks on its temporary branch (gh-readonly-queue/<base>/pr-N-<sha>)
# with checks_requested; destroyed only says the group is gone (merged, dequeued, invalidated).
MERGE_GROUP_ACTIONS_THAT_RUN = ("checks_requested",)
_QUEUE_PR = re.compile(r"(?:^|/)pr-(\d+)-[0-9a-f]+$")

# GitHub Security Lab's "pwn request": pull_request_target runs with a write token and
# the base repository's secrets, so checking out and running the PR's code there hands
# both to whoever opened the PR. The pull-request flow runs PR code: refused outright.
REFUSED_EVENTS = {
    "pull_request_target": "pull_request_target is refused: it runs with a write token and secrets on the base repository, and this flow would run the PR's code there (a \"pwn request\"); trigger mlops on pull_request instead",
}


ZERO_SHA = "0" * 40


@dataclass(frozen=True)
class Event:
    """One event, whatever its source. Fields an event kind lacks stay None."""

    kind: str  # pull_request | push | issue_comment | workflow_dispatch | schedule | local | ...
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
    ref: str | None = None  # push / dispatch: refs/heads/main, refs/tags/v1
    deleted: bool = False  # push that deletes the ref
    comment_id: int | None = None
    comment_body: str | None = None
    actor_is_bot: bool = False
    issue_number: int | None = None  # issue_comment: the issue or PR commented on
    reason: str | None = None  # merge_group destroyed: merged | dequeued | invalidated

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

    @property
    def queue_pr(self) -> int | None:
        """merge_group: the PR the queue's branch (gh-readonly-queue/main/pr-12-<sha>) was
        made for, read from its name (the payload names no PR); None when it does not say."""
        match = _QUEUE_PR.search(self.head_ref or "") if self.kind == "merge_group" else None
        return int(match.group(1)) if match else None

    @property
    def ref_type(self) -> str | None:
        if not self.ref:
            return None
        return "tag" if self.ref.startswith("refs/tags/") else "branch"

    def should_run(self) -> tuple[bool, str]:
        """Whether the pull-request flow runs for this event, else a one-line reason."""
        if self.kind == "local":
            return True, ""
        if self.kind == "pull_request":
            if self.action in PR_ACTIONS_THAT_RUN or self.action is None:
                return True, ""
            if self.action == "closed":
                what = "merged" if self.merged else "closed without merging"
                return False, f"PR #{self.pr_number} was {what}; the pull-request flow runs on {', '.join(PR_ACTIONS_THAT_RUN)}"
            return False, f"pull_request action {self.action!r} needs no run (runs on {', '.join(PR_ACTIONS_THAT_RUN)})"
        if self.kind == "push":
            if self.deleted:
                return False, f"push deleted {self.ref}; nothing to run"
            if self.ref_type == "tag":
                return False, f"tag push {self.ref}; nothing to run"
            return False, f"push to {self.ref}: the pull-request flow runs on pull_request events; the deploy flow on pushes to {self.default_branch or 'main'}"
        if self.kind == "merge_group":
            if self.action in MERGE_GROUP_ACTIONS_THAT_RUN:
                return True, ""
            why = f" ({self.reason})" if self.reason else ""
            return False, f"merge queue group {self.head_ref or '?'} {self.action or 'event'}{why}; the gate runs on {', '.join(MERGE_GROUP_ACTIONS_THAT_RUN)}"
        if self.kind == "issue_comment":
            where = f"PR #{self.pr_number}" if self.pr_number is not None else "an issue"
            return False, f"comment on {where}: comments run ChatOps commands, not the pull-request flow"
        return False, f"event {self.kind!r} does not trigger the pull-request flow"


def _pull_request(payload: dict[str, Any], common: dict[str, Any], path: Path) -> Event:
    pr = payload.get("pull_request")
    if not isinstance(pr, dict):
        raise EventError(f"{path}: a pull_request event must have a 'pull_request' object")
    base, head = _obj(pr, "base"), _obj(pr, "head")
    number = pr.get("number", payload.get("number"))
    if not isinstance(number, int) or not base.get("ref") or not head.get("sha"):
        raise EventError(f"{path}: pull_request payload lacks number, base.ref or head.sha")
    # A fork's head repo differs from the base repo; a deleted fork leaves head.repo null.
    base_repo = _obj(base, "repo").get("full_name") or common["repo"]
    head_repo = _obj(head, "repo").get("full_name")
    fork = ("repo" in head and head["repo"] is None) or bool(head_repo and base_repo and head_repo != base_repo)
    return Event(
        kind="pull_request",
        action=payload.get("action"),
        pr_number=number,
        base_ref=base.get("ref"),
        base_sha=base.get("sha"),
        head_ref=head.get("ref"),
        head_sha=head.get("sha"),
        fork=fork,
        merged=bool(pr.get("merged")),
        **common,
    )


def _push(payload: dict[str, Any], common: dict[str, Any], path: Path) -> Event:
    ref = payload.get("ref")
    if not isinstance(ref, str):
        raise EventError(f"{path}: a push event must have a 'ref'")
    after = payload.get("after")
    deleted = bool(payload.get("deleted")) or after == ZERO_SHA
    return Event(kind="push", ref=ref, head_sha=None if deleted else after, base_sha=payload.get("before"), head_ref=ref.removeprefix("refs/heads/"), deleted=deleted, **common)


def _issue_comment(payload: dict[str, Any], common: dict[str, Any], path: Path) -> Event:
    issue, comment = _obj(payload, "issue"), _obj(payload, "comment")
    on_pr = isinstance(issue.get("pull_request"), dict)
    number = issue.get("number")
    if not isinstance(number, int):
        raise EventError(f"{path}: an issue_comment event must have issue.number")
    user = _obj(comment, "user")
    return Event(
        kind="issue_comment",
        action=payload.get("action"),
        pr_number=number if on_pr else None,
        issue_number=number,
        comment_id=comment.get("id") if isinstance(comment.get("id"), int) else None,
        comment_body=comment.get("body") if isinstance(comment.get("body"), str) else None,
        actor_is_bot=user.get("type") == "Bot" or str(user.get("login") or "").endswith("[bot]"),
        **{**common, "actor": user.get("login") or common["actor"]},
    )


def _merge_group(payload: dict[str, Any], common: dict[str, Any], path: Path) -> Event:
    group = payload.get("merge_group")
    if not isinstance(group, dict):
        raise EventError(f"{path}: a merge_group event must have a 'merge_group' object")
    action = payload.get("action") if isinstance(payload.get("action"), str) else None
    fields = {k: group.get(k) if isinstance(group.get(k), str) else None for k in ("head_sha", "head_ref", "base_sha", "base_ref")}
    if action in MERGE_GROUP_ACTIONS_THAT_RUN and not (fields["head_sha"] and fields["base_ref"]):
        raise EventError(f"{path}: merge_group payload lacks merge_group.head_sha or merge_group.base_ref")
    reason = payload.get("reason") if isinstance(payload.get("reason"), str) else None
    short = {k: v.removeprefix("refs/heads/") if v else None for k, v in fields.items() if k.endswith("_ref")}
    # ref keeps the queue's full ref (refs/heads/gh-readonly-queue/...); head_ref and
    # base_ref are branch names, as a pull_request's are (localize resolves them).
    return Event(kind="merge_group", action=action, ref=fields["head_ref"], head_ref=short["head_ref"], head_sha=fields["head_sha"], base_ref=short["base_ref"], base_sha=fields["base_sha"], reason=reason, **common)


def _dispatch(kind: str) -> Any:
    def parse(payload: dict[str, Any], common: dict[str, Any], path: Path) -> Event:
        ref = payload.get("ref") if isinstance(payload.get("ref"), str) else None
        return Event(kind=kind, ref=ref, head_ref=ref.removeprefix("refs/heads/") if ref else None, action=payload.get("action"), **common)

    return parse


PARSERS = {
    "pull_request": _pull_request,
    "push": _push,
    "issue_comment": _issue_comment,
    "merge_group": _merge_group,
    "workflow_dispatch": _dispatch("workflow_dispatch"),
    "schedule": _dispatch("schedule"),
}


def _guess_name(payload: dict[str, Any]) -> str:
    """The event name from the payload's shape, for files given without a name."""
    if isinstance(payload.get("pull_request"), dict):
        return "pull_request"
    if isinstance(payload.get("comment"), dict) and isinstance(payload.get("issue"), dict):
        return "issue_comment"
    if isinstance(payload.get("merge_group"), dict):
        return "merge_group"
    if "pusher" in payload or ("before" in payload and "after" in payload and "ref" in payload):
        return "push"
    if "workflow" in payload and "inputs" in payload:
        return "workflow_dispatch"
    if "schedule" in payload:
        return "schedule"
    return "unknown"


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
    """Parse a GitHub webhook payload (the file Actions names in GITHUB_EVENT_PATH).

    ``name`` is the event name (GITHUB_EVENT_NAME / X-GitHub-Event); without it the
    payload's shape decides. Events we do not handle parse to their bare kind.
    """
    if name in REFUSED_EVENTS:
        raise EventError(REFUSED_EVENTS[name])
    payload = _load_payload(path)
    repository, sender = _obj(payload, "repository"), _obj(payload, "sender")
    common = {"repo": repository.get("full_name"), "default_branch": repository.get("default_branch") or repository.get("master_branch"), "actor": sender.get("login")}
    kind = name or _guess_name(payload)
    parser = PARSERS.get(kind)
    if parser is None:
        return Event(kind=kind, action=payload.get("action") if isinstance(payload.get("action"), str) else None, **common)
    return parser(payload, common, path)


def localize(event: Event, root: Path) -> Event:
    """Fill shas the payload names from the local clone; the base tip wins over a stale base.sha."""
    what = f"merge queue group {event.head_ref}" if event.kind == "merge_group" else f"PR #{event.pr_number}"
    base_sha = resolve(root, event.base_ref) if event.base_ref else None
    named = event.base_sha if event.base_sha and resolve(root, event.base_sha) else None
    # A merge queue's base_sha is exactly what its group was built on: it wins when present.
    base_sha = (named or base_sha) if event.kind == "merge_group" else (base_sha or named)
    if event.base_ref and base_sha is None:
        raise EventError(f"base ref {event.base_ref!r} of {what} is not in {root}", hint="fetch it first (actions/checkout with fetch-depth: 0)")
    head = resolve(root, "HEAD")
    if event.head_sha and head and event.head_sha != head:
        # actions/checkout of a pull_request checks out the merge commit: head is its 2nd parent
        second_parent = resolve(root, "HEAD^2")
        if second_parent != event.head_sha:
            raise EventError(
                f"the checkout (HEAD {head[:7]}) is not {what}'s head {event.head_sha[:7]} nor a merge of it",
                hint="check out the PR's head (or its merge commit; for a merge queue, the group's head_sha) before running, so the status lands on the commit that was evaluated",
            )
    head_sha = event.head_sha or head
    return Event(**{**event.to_dict(), "base_sha": base_sha, "head_sha": head_sha})


def checked_out_push(root: Path) -> Event:
    """The push `mlops deploy` stands for: the checked-out commit on its branch."""
    from mlgitops.gitrepo import current_branch

    branch = current_branch(root)
    return Event(kind="push", head_sha=resolve(root, "HEAD"), head_ref=branch, ref=f"refs/heads/{branch or 'HEAD'}")
