"""mlops.yaml (and a deployment manifest) is PR input: alias bombs, deep nesting and
oversize files are exit 2 with a clear message, refused before anything is expanded;
the crash handler survives whatever the failing code raises (issue 11)."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import GitRepo

BIN = Path(sys.executable).parent
GOOD = "name: churn\ndata: {path: 'sklearn:iris', target: target}\ntraining: {estimator: sklearn.linear_model.LogisticRegression}\n"

# The classic "billion laughs": 9 levels of 9 aliases, 9^9 = 387 million values once
# expanded, in 342 bytes. PyYAML composes it as shared nodes; expanding it is the attack.
LAUGHS = 'lol0: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"lol{i + 1}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8)
)
BOMB_HINT = '  hint: an alias bomb ("billion laughs") or close to one: write the values out\n'
DEPTH_HINT = "  hint: flatten the structure; a config needs a few levels\n"
MAX_BYTES = 256 * 1024  # the documented bound on mlops.yaml


def _limited(seconds: int = 60) -> dict[str, object]:
    """A child that cannot take the machine down on the code before the fix: 2 GiB of
    address space (it took 3 GB in 20 s) and a hang guard."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    return {"preexec_fn": cap, "timeout": seconds, "capture_output": True, "text": True}


def test_alias_bomb_in_mlops_yaml_is_exit_2_before_expanding(tmp_path: Path) -> None:
    (tmp_path / "mlops.yaml").write_text(GOOD + LAUGHS)
    proc = subprocess.run([str(BIN / "mlops"), "validate"], cwd=tmp_path, **_limited())  # type: ignore[call-overload]
    assert (proc.returncode, proc.stderr) == (2, "error: mlops.yaml:8:11: aliases expand to more than 10,000 values (at *d)\n" + BOMB_HINT)


def test_alias_bomb_in_a_manifest_is_refused_before_ruamel_expands_it(tmp_path: Path) -> None:
    manifest = "model:\n  uri: models/m.onnx\n  sha256: " + "a" * 64 + "\n  metrics:\n" + "".join("    " + line + "\n" for line in LAUGHS.splitlines())
    (tmp_path / "production.yaml").write_text(manifest)
    code = (
        "import sys; from pathlib import Path; from mlgitops.deploy.manifest import ManifestError, read_pin\n"
        "try:\n    read_pin(Path(sys.argv[1]).read_text(), 'deploy/production.yaml')\n"
        "except ManifestError as exc:\n    print(exc.render()); sys.exit(2)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "production.yaml")], **_limited())  # type: ignore[call-overload]
    assert (proc.returncode, proc.stdout) == (2, "deploy/production.yaml:9:15: aliases expand to more than 10,000 values (at *d)\n" + BOMB_HINT)


ALIASES = {
    "101 aliases": (
        "x: &x 1\nl: [" + ", ".join(["*x"] * 101) + "]\n",
        "mlops.yaml:5:405: more than 100 aliases (*x is one too many)\n  hint: aliases are meant for a few shared blocks; write the values out\n",
    ),
    "an alias inside its own anchor": (
        "loop: &a [1, *a]\n",
        "mlops.yaml:4:14: alias *a refers to a block that contains it\n  hint: an alias must name a block that is complete before it\n",
    ),
    "depth through aliases": (
        "a: &a " + "[" * 40 + "1" + "]" * 40 + "\nb: " + "[" * 30 + "*a" + "]" * 30 + "\n",
        "mlops.yaml:5:34: nested deeper than 64 levels (through *a)\n" + DEPTH_HINT,
    ),
}


@pytest.mark.parametrize("case", list(ALIASES))
def test_alias_abuse_is_exit_2(cli_noprefect, tmp_path: Path, case: str) -> None:
    extra, expected = ALIASES[case]
    (tmp_path / "mlops.yaml").write_text(GOOD + extra)
    result = cli_noprefect("validate", cwd=tmp_path)
    assert (result.exit_code, result.stderr) == (2, "error: " + expected)


def test_100_aliases_are_still_fine(cli_noprefect, tmp_path: Path) -> None:
    """The near miss: shared values are what anchors are for."""
    allowed = "[&v 0, " + ", ".join(["*v"] * 100) + "]"
    text = f"name: churn\ndata: {{path: 'sklearn:iris', target: target, contract: {{columns: {{target: {{allowed: {allowed}}}}}}}}}\ntraining: {{estimator: sklearn.linear_model.LogisticRegression}}\n"
    (tmp_path / "mlops.yaml").write_text(text)
    result = cli_noprefect("validate", cwd=tmp_path)
    assert result.exit_code == 0, result.output


DEEP = {
    "block mappings": (
        "deep:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(70)) + "  " * 71 + "v\n",
        "mlops.yaml:67:127: nested deeper than 64 levels\n" + DEPTH_HINT,
    ),
    # libyaml's scanner stops first, at 1,000 levels: that is the position given.
    "flow sequences, 5,000 deep": ("deep: " + "[" * 5000 + "]" * 5000 + "\n", "mlops.yaml:4:1006: nested deeper than 64 levels\n" + DEPTH_HINT),
}


@pytest.mark.parametrize("case", list(DEEP))
def test_deep_nesting_is_exit_2_not_a_recursion_error(cli_noprefect, tmp_path: Path, case: str) -> None:
    extra, expected = DEEP[case]
    (tmp_path / "mlops.yaml").write_text(GOOD + extra)
    result = cli_noprefect("validate", cwd=tmp_path)
    assert (result.exit_code, result.stderr) == (2, "error: " + expected)


def _padded(size: int) -> str:
    """A valid config of exactly ``size`` bytes (a long comment makes up the rest)."""
    head = GOOD + "# "
    return head + "x" * (size - len(head) - 1) + "\n"


def test_oversize_mlops_yaml_is_refused_before_reading(cli_noprefect, tmp_path: Path) -> None:
    (tmp_path / "mlops.yaml").write_text(_padded(MAX_BYTES + 1))
    result = cli_noprefect("validate", cwd=tmp_path)
    assert (result.exit_code, result.stderr) == (
        2,
        "error: mlops.yaml:1:1: the file is 262,145 bytes; at most 256 KiB (262,144 bytes) is read\n  hint: a config is a few KiB: keep data in files that data.path names\n",
    )


def test_a_config_of_exactly_the_limit_is_read(cli_noprefect, tmp_path: Path) -> None:
    (tmp_path / "mlops.yaml").write_text(_padded(MAX_BYTES))
    result = cli_noprefect("validate", cwd=tmp_path)
    assert result.exit_code == 0, result.output


def test_the_base_refs_deeply_nested_config_means_no_baseline(repo: GitRepo) -> None:
    """The base side parses a committed mlops.yaml too: same bounds, no RecursionError."""
    from mlgitops.plan.decide import plan_baseline

    repo.gen({"mlops.yaml": GOOD + DEEP["block mappings"][0]}).commit("base")
    plan = plan_baseline(repo.path, "mlops.yaml", "main", repo.git("rev-parse", "HEAD"))
    assert (plan.kind, plan.note) == ("none", "the mlops.yaml on `main` is invalid, so it has no baseline (mlops.yaml@main:67:127: nested deeper than 64 levels)")


class _Nasty(Exception):
    def __str__(self) -> str:
        raise RuntimeError("str() of this exception fails")


@pytest.mark.parametrize("exc", [_Nasty(), RuntimeError("A" * 5_000_000)], ids=["str raises", "5 MB message"])
def test_the_crash_handler_survives_odd_exceptions_and_an_unwritable_log_dir(cli_noprefect, tmp_path: Path, monkeypatch, exc: Exception) -> None:
    import mlgitops.data.check

    def boom(cfg: object) -> None:
        raise exc

    (tmp_path / "mlops.yaml").write_text(GOOD)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # mkdir under a file fails
    monkeypatch.setattr(mlgitops.data.check, "check_data", boom)
    result = cli_noprefect("validate", cwd=tmp_path)
    assert result.exit_code == 3
    first, second, *rest = result.stderr.splitlines()
    assert len(first) < 600 and first.startswith(f"internal error: {type(exc).__name__}: ")
    assert second.startswith("  a log with versions and the traceback is at ")
    log = Path(second.split(" is at ", 1)[1])
    assert not log.is_relative_to(blocker) and log.is_file()
    assert "python: " in log.read_text()
