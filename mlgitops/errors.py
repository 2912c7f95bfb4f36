"""One exception base; the exit code travels on the class (see STYLE.md #7).

Exit codes a user (and CI) can rely on:

* 0 - the run finished and every gate passed (or the event needs no run)
* 1 - the run finished and at least one gate failed
* 2 - invalid input: config, data, event payload, or the user's training command
* 3 - internal error: a bug or an environment problem; a log with versions and the
  traceback is written and its path printed
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_GATE_FAILED = 1
EXIT_INVALID_INPUT = 2
EXIT_INTERNAL = 3


class MlopsError(Exception):
    """Base of every error this tool raises on purpose."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        text = self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class InputError(MlopsError):
    """Something the user gave us is wrong; they can fix it."""

    exit_code = EXIT_INVALID_INPUT


class ConfigError(InputError):
    """`mlops.yaml` is malformed or does not match the schema.

    Holds every problem found, each already formatted as
    ``file:line:col: key.path: what was expected, got what``.
    """

    def __init__(self, problems: list[str], hint: str | None = None) -> None:
        self.problems = problems
        super().__init__("\n".join(problems), hint)


class DataError(InputError):
    """The data named by the config cannot be used."""


class TrainingError(InputError):
    """The user's training command or estimator failed."""


class EventError(InputError):
    """The event payload cannot be understood."""


class GitError(InputError):
    """A git ref or repository the run needs is missing."""
