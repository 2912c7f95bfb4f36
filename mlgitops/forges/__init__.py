"""Forges: where comments and statuses go. A Protocol plus a registry (STYLE.md #6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from mlgitops.events.payloads import Event

GATE_CONTEXT = "mlops/gate"

# GitHub's limits on what we post, in characters (Python str length, as GitHub counts
# characters, not bytes). Every body is fitted with ``fit`` in the forge, the one place
# all writes pass, so no caller (or commenter) can make GitHub answer 422.
BODY_LIMIT = 65_536  # issue/PR comments, issue and PR bodies: GitHub's 422 says "body is too long (maximum is 65536 characters)"
CHECK_TEXT_LIMIT = 65_535  # check run output.summary and output.text: maxLength in GitHub's OpenAPI description
STATUS_DESCRIPTION_LIMIT = 140  # commit status description: "description is too long (maximum is 140 characters)"
TITLE_LIMIT = 256  # issue and PR titles: "title is too long (maximum is 256 characters)"


def fit(text: str, limit: int, tail: str = "") -> str:
    """``text`` followed by ``tail`` in at most ``limit`` characters.

    Too long, ``text`` is cut and ends with a visible note (just "…" under short
    limits); ``tail`` (a hidden marker the forge finds its comment by) always stays
    whole. A Markdown code fence left open by the cut is closed, so the note shows.
    """
    if len(text) + len(tail) <= limit:
        return text + tail
    if limit < 1000:
        return text[: max(0, limit - len(tail) - 1)] + "…" + tail
    note = f"\n\n> ⚠️ Cut here: longer than GitHub's {limit:,}-character limit.\n"
    kept = text[: limit - len(tail) - len(note) - 4]
    fence = None
    for line in kept.splitlines():
        token = line.lstrip()[:3]
        if token in ("```", "~~~") and fence in (None, token):
            fence = None if fence else token
    if fence:
        kept += "\n" + fence
    return kept + note + tail


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
