"""A pull request cannot configure Prefect inside `mlops`: Prefect reads `prefect.toml`
and `.env` from the working directory at import, and a logging config named there is
run through `logging.config.dictConfig`, whose `()` factories call any callable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EVIL_LOGGING = """\
version: 1
handlers:
  evil:
    (): subprocess.getoutput
    cmd: "touch PWNED"
root:
  handlers: [evil]
"""

# What `mlops` does before its first Prefect import, then what a flow run does
# (Prefect sets up logging from its settings when a flow starts).
FIXED = (
    "from mlgitops.service.prefect_server import import_prefect; import_prefect()\n"
    "from prefect.settings import get_current_settings\n"
    "print(get_current_settings().logging.config_path)\n"
    "from prefect.logging.configuration import setup_logging; setup_logging()\n"
)
PLAIN = FIXED.replace("from mlgitops.service.prefect_server import import_prefect; import_prefect()\n", "import prefect\n")


def _checkout(tmp_path: Path, kind: str) -> Path:
    pr = tmp_path / "pr"
    pr.mkdir()
    (pr / "evil.yml").write_text(EVIL_LOGGING)
    if kind == "prefect.toml":
        (pr / "prefect.toml").write_text('[logging]\nconfig_path = "evil.yml"\n')
    else:
        (pr / ".env").write_text("PREFECT_LOGGING_CONFIG_PATH=evil.yml\n")
    return pr


def _run(code: str, cwd: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_the_attack_is_real_with_a_plain_prefect_import(tmp_path: Path) -> None:
    pr = _checkout(tmp_path, "prefect.toml")
    proc = _run(PLAIN, pr, tmp_path)
    assert proc.stdout.splitlines()[0] == "evil.yml"
    assert (pr / "PWNED").exists()


@pytest.mark.parametrize("kind", ["prefect.toml", ".env"])
def test_mlops_imports_prefect_without_the_checkouts_settings(tmp_path: Path, kind: str) -> None:
    pr = _checkout(tmp_path, kind)
    proc = _run(FIXED, pr, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == str(tmp_path / "prefect-home" / "logging.yml")
    assert not (pr / "PWNED").exists()
    assert Path.cwd() != pr  # the test process itself never moved


def test_every_prefect_entry_imports_it_safely() -> None:
    """The places `mlops` first imports Prefect go through import_prefect()."""
    root = Path(__file__).resolve().parents[2] / "mlgitops"
    runner = (root / "run" / "compute.py").read_text()
    assert runner.index("prefect_server.import_prefect()") < runner.index("from mlgitops.flows.pull_request import")
    deploy = (root / "service" / "prefect_deploy.py").read_text()
    assert deploy.count("import_prefect()") == deploy.count("from prefect.deployments import run_deployment") + deploy.count("from prefect.client.orchestration import get_client") == 4
