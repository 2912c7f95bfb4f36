"""GitHub Actions runner conventions: workflow commands and environment files.

Escaping follows actions/toolkit (`command.ts`, `file-command.ts`), as recorded in
../shared/github/actions/runtime-conventions.json. Everything is a no-op off Actions.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import uuid
from typing import Iterator, TextIO

#: Where workflow commands go. The runner reads commands on stdout and stderr alike;
#: the CLI switches to stderr when stdout carries --json.
STREAM: TextIO = sys.stdout

_LOCATION = re.compile(r"^(?:error: )?(?P<file>[^:\n]+):(?P<line>\d+):(?P<col>\d+): (?P<msg>.*)$")


def on_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def command(name: str, message: str, out: TextIO | None = None, **props: object) -> None:
    params = ",".join(f"{k}={escape_property(str(v))}" for k, v in props.items() if v is not None)
    stream = out or STREAM
    stream.write(f"::{name}{' ' + params if params else ''}::{escape_data(message)}\n")
    stream.flush()


def mask(secret: str | None) -> None:
    """Ask the runner to hide ``secret`` in every later log line."""
    if secret and on_actions():
        command("add-mask", secret)


@contextlib.contextmanager
def group(title: str) -> Iterator[None]:
    """A collapsible log group on Actions; nothing elsewhere."""
    if not on_actions():
        yield
        return
    STREAM.write(f"::group::{escape_data(title)}\n")
    STREAM.flush()
    try:
        yield
    finally:
        STREAM.write("::endgroup::\n")
        STREAM.flush()


def annotate_errors(text: str, out: TextIO | None = None) -> None:
    """One ``::error file=..,line=..,col=..::`` per ``file:line:col: message`` line."""
    if not on_actions():
        return
    for line in text.splitlines():
        m = _LOCATION.match(line)
        if m:
            command("error", m["msg"], out, file=m["file"].split("@", 1)[0], line=m["line"], col=m["col"], title="mlops")
        elif line.startswith("error: "):
            command("error", line.removeprefix("error: "), out, title="mlops")


def set_outputs(values: dict[str, str]) -> None:
    """Append step outputs to $GITHUB_OUTPUT (multi-line safe, toolkit delimiter)."""
    path = os.environ.get("GITHUB_OUTPUT")
    if not path:
        return
    chunks = []
    for name, value in values.items():
        delimiter = f"ghadelimiter_{uuid.uuid4()}"
        if delimiter in value or delimiter in name:  # pragma: no cover - a UUID clash
            raise ValueError("output collides with its delimiter")
        chunks.append(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("".join(chunks))


def append_summary(markdown: str) -> None:
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(markdown.rstrip("\n") + "\n")
