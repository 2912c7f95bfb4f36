"""Forges: where comments and statuses go. A Protocol plus a registry (STYLE.md #6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..events import Event

GATE_CONTEXT = "mlops/gate"


@dataclass(frozen=True)
class CommentRef:
    id: int | None
    url: str | None
    created: bool  # False: an existing comment was updated (or, if skipped, left alone)
    note: str = ""  # e.g. why nothing was written (stale run, read-only token)


@dataclass(frozen=True)
class PullRef:
    number: int
    url: str
    created: bool  # False: the existing PR for this branch was updated
    changed: bool = True  # False: the branch already held exactly these changes


@dataclass(frozen=True)
class IssueRef:
    number: int
    url: str
    created: bool  # False: the open issue was updated


class Forge(Protocol):
    """What a flow needs from a code host. GitHub and local implement it."""

    name: str
    #: remote forges show "pending" while a run is going; the local one writes at the end only
    shows_pending: bool

    def upsert_comment(self, event: "Event", marker: str, body: str) -> CommentRef:
        """Edit the PR comment holding ``marker``, or create it; never leave two."""
        ...

    def set_status(self, sha: str, state: str, description: str, summary: str | None = None, context: str = GATE_CONTEXT) -> None:
        """Set ``context`` on ``sha``: pending | success | failure | error (+ a Markdown summary)."""
        ...


class DeployForge(Protocol):
    """What promotions need: read a file on a branch, open-or-update one PR per branch."""

    name: str

    def default_branch(self) -> str: ...

    def read_file(self, branch: str, path: str) -> str | None:
        """The file's text on ``branch``, or None when it does not exist there."""
        ...

    def upsert_pull(self, base: str, head: str, files: dict[str, str | bytes], title: str, body: str) -> PullRef:
        """Point ``head`` at ``base`` plus ``files`` (path -> new text) and open its PR,
        or update the one already open for ``head``."""
        ...

    def open_pulls(self, head: str) -> list[dict]:
        """Open PRs from branch ``head``: number, head, title, url."""
        ...

    def close_pull(self, number: int, comment: str) -> None:
        """Close PR ``number`` with a comment saying why."""
        ...
