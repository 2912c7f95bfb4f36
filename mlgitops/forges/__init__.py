"""Forges: where comments and statuses go. A Protocol plus a registry (STYLE.md #6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

GATE_CONTEXT = "mlops/gate"


@dataclass(frozen=True)
class CommentRef:
    id: int
    url: str
    created: bool  # False: an existing comment was updated


class Forge(Protocol):
    """What a flow needs from a code host. GitHub and local implement it."""

    name: str
    #: remote forges show "pending" while a run is going; the local one writes at the end only
    shows_pending: bool

    def upsert_comment(self, pr_key: str, marker: str, body: str) -> CommentRef:
        """Edit the comment holding ``marker`` on the PR, or create it."""
        ...

    def set_status(self, sha: str, state: str, description: str, context: str = GATE_CONTEXT) -> None:
        """Set the commit status ``context`` on ``sha`` (pending | success | failure | error)."""
        ...
