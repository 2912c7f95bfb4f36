"""pull_request_target is refused, however it is named (issue 11).

GitHub Security Lab's "pwn request": a workflow on pull_request_target runs with a
write token and the base repository's secrets; checking out and running the PR's code
there hands both to whoever opened the PR. Its payload looks exactly like a
pull_request one, so the runner's GITHUB_EVENT_NAME must count even with --event-path.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import GitRepo

REFUSAL = (
    "error: pull_request_target is refused: it runs with a write token and secrets on the base repository, and this flow would run "
    'the PR\'s code there (a "pwn request"); trigger mlops on pull_request instead\n'
)


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    """A pull_request(_target) payload. Its head is not the checkout, so the code before
    the fix stops at that check (exit 2, other words) instead of training."""
    body = {
        "action": "synchronize",
        "number": 12,
        "pull_request": {"number": 12, "base": {"ref": "main"}, "head": {"ref": "changes", "sha": "1" * 40, "repo": {"full_name": "o/r"}}},
        "repository": {"full_name": "o/r", "default_branch": "main"},
    }
    path = tmp_path / "event.json"
    path.write_text(json.dumps(body))
    return path


def test_event_path_honours_github_event_name(cli_noprefect, example_repo: GitRepo, payload: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_EVENT_NAME", "pull_request_target")
    result = cli_noprefect("run", "--event-path", str(payload), cwd=example_repo.path)
    assert (result.exit_code, result.stderr, result.stdout) == (2, REFUSAL, "")
    assert example_repo.mlops_files() == []


def test_an_explicit_event_name_is_refused_too(cli_noprefect, example_repo: GitRepo, payload: Path) -> None:
    result = cli_noprefect("run", "--event-path", str(payload), "--event-name", "pull_request_target", cwd=example_repo.path)
    assert (result.exit_code, result.stderr) == (2, REFUSAL)


def test_the_environment_names_other_events_too(cli_noprefect, example_repo: GitRepo, payload: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A payload shaped like a pull request, on a runner that says `schedule`: no PR flow."""
    monkeypatch.setenv("GITHUB_EVENT_NAME", "schedule")
    result = cli_noprefect("run", "--event-path", str(payload), cwd=example_repo.path)
    assert (result.exit_code, result.stdout) == (0, "nothing to do: event 'schedule' does not trigger the pull-request flow\n")
