"""Our errors to exit codes, everywhere a command runs: the CLI, the webhook's child, the
Prefect entry flow. An MlopsError is its message (file:line:col, hint) and its class's
exit code; anything else is exit 3 with a crash log. Alerts go out in both cases."""

from __future__ import annotations

from typing import Callable

from mlgitops.errors import EXIT_INTERNAL, ConfigError, MlopsError

MAX_SHOWN_PROBLEMS = 50  # a config with thousands of mistakes gets the first ones
PROBLEM_CHARS = 2_000  # one problem line (it may quote a key the user wrote)

Echo = Callable[..., None]  # echo(text, err=False), as click.echo


def _click_echo(text: str, err: bool = False) -> None:
    import click

    click.echo(text, err=err)


def format_error(exc: MlopsError) -> str:
    """``error: <file:line:col>: <key>: <what>`` per problem, then the hint."""
    problems = exc.problems if isinstance(exc, ConfigError) else [exc.message]
    shown = [p if len(p) <= PROBLEM_CHARS else p[:PROBLEM_CHARS] + "..." for p in problems[:MAX_SHOWN_PROBLEMS]]
    if len(problems) > MAX_SHOWN_PROBLEMS:
        shown.append(f"... and {len(problems) - MAX_SHOWN_PROBLEMS} more problem(s)")
    text = "\n".join(f"error: {p}" for p in shown)
    return text + (f"\n  hint: {exc.hint}" if exc.hint else "")


def call_guarded(command: str, fn: Callable[[], int], echo: Echo | None = None) -> int:
    """Run ``fn`` (a command's work) and return its exit code, our errors mapped to theirs.
    Re-raises only what must end the process (KeyboardInterrupt, click's own exits)."""
    from mlgitops.forges import alerts

    say = echo or _click_echo
    alerts.reset()
    try:
        code = fn()
    except MlopsError as exc:
        from mlgitops.forges.actions_runtime import annotate_errors

        text = format_error(exc)
        annotate_errors(text)  # ::error file=mlops.yaml,line=N:: on an Actions runner
        say(text, err=True)
        alerts.send("run_failure", f"`mlops {command}` failed (exit {exc.exit_code})", text.splitlines()[:5])
        _alert_notes(say)
        return exc.exit_code
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - the one place that catches everything
        if _is_click_exit(exc):
            raise
        _crashed(command, exc, say)
        return EXIT_INTERNAL
    _alert_notes(say)
    return code


def _is_click_exit(exc: Exception) -> bool:
    import click

    return isinstance(exc, (click.exceptions.Exit, click.ClickException))


def _crashed(command: str, exc: Exception, say: Echo) -> None:
    """Exit 3's message, log and alert; nothing here may raise (see crashlog)."""
    from mlgitops.crashlog import safe_text, write_crash_log

    log, why = write_crash_log(exc)
    where = f"a log with versions and the traceback is at {log}\n  please attach it when reporting the problem" if log else f"no log could be written ({why})"
    try:
        say(f"internal error: {type(exc).__name__}: {safe_text(exc)}\n  {where}", err=True)
    except Exception:  # noqa: BLE001 - e.g. a closed stderr; the exit code still tells
        pass
    try:
        from mlgitops.forges import alerts

        alerts.send("run_failure", f"`mlops {command}` crashed (exit 3): {type(exc).__name__}", [safe_text(exc, 300)])
        _alert_notes(say)
    except Exception:  # noqa: BLE001 - an alert is best effort; exit 3 is what counts
        pass


def _alert_notes(say: Echo) -> None:
    from mlgitops.forges import alerts

    for note in alerts.NOTES:
        say(f"note: {note}", err=True)
    alerts.NOTES.clear()
