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
