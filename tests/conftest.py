from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.helpers import EXAMPLE, GitRepo

# Real registry servers on 127.0.0.1 (moto S3, the CNCF distribution registry)
pytest_plugins = ["tests.fixtures_s3", "tests.fixtures_oci"]

# Quiet Prefect in tests the way the CLI does.
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def _drop_host_credentials() -> list[str]:
    """Drop the host's credential-like variables (by name, as `mlops` judges them) before
    any test runs. `mlops` computes an untrusted run in a secret-less child whenever such
    a variable is set (issue 11), and a host variable as harmless as tox's
    TOX_TESTENV_PASSENV (it contains PASS) would otherwise switch every run of the suite
    onto that path, a few seconds each, and leave the in-process path untested. The
    tests that exercise the child set a credential or MLOPS_ISOLATE themselves; no test
    needs, or may leak to a stand-in, a real token of the developer's."""
    from mlgitops.run.compute_child import _secret_name

    dropped = sorted(name for name in os.environ if _secret_name(name))
    for name in dropped:
        del os.environ[name]
    os.environ.pop("MLOPS_ISOLATE", None)
    return dropped


DROPPED_HOST_CREDENTIALS = _drop_host_credentials()


@pytest.fixture(autouse=True)
def _isolated_cache_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Crash logs go to a temp XDG cache, never the developer's home."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    # `--event-path` honours GITHUB_EVENT_NAME (issue 11): the suite's own Actions job
    # (push or pull_request) must not rename the payloads the tests hand to `mlops run`.
    monkeypatch.delenv("GITHUB_EVENT_NAME", raising=False)


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """One Prefect test server for the session; its URL for subprocess runs."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield str(PREFECT_API_URL.value())


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return GitRepo(tmp_path / "repo")


@pytest.fixture
def example_repo(repo: GitRepo) -> GitRepo:
    """main holds the bundled example pipeline."""
    repo.gen({"mlops.yaml": EXAMPLE})
    repo.commit("Add the model pipeline")
    return repo


class Cli:
    """Runs `mlops` in-process (click's CliRunner) against the session's Prefect server."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, cwd: Path) -> object:
        from mlgitops.cli import main

        old = Path.cwd()
        os.chdir(cwd)
        try:
            return self.runner.invoke(main, list(args), catch_exceptions=False)
        finally:
            os.chdir(old)


@pytest.fixture
def cli(prefect_api: str) -> Cli:
    return Cli()


@pytest.fixture
def cli_noprefect() -> Cli:
    return Cli()
