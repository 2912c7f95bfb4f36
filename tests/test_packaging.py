"""The wheel, installed in a fresh venv, runs the CLI and the demo; no generic top-level names."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # sdist first, then the wheel from the sdist: what `python -m build` ships.
    subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(REPO_ROOT)], check=True, capture_output=True, text=True)
    (whl,) = out.glob("mlgitops-*.whl")
    return whl


def test_wheel_installs_only_our_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert tops == {"mlgitops", "mlgitops-0.1.0.dist-info"}
    for needed in ("mlgitops/flows/pull_request.py", "mlgitops/templates/pr_comment.md.j2", "mlgitops/examples/mlops.yaml"):
        assert needed in names
    assert zipfile.ZipFile(wheel).read("mlgitops/examples/mlops.yaml") == (REPO_ROOT / "mlops.yaml").read_bytes()
    assert zipfile.ZipFile(wheel).read("mlgitops-0.1.0.dist-info/top_level.txt").decode().split() == ["mlgitops"]


def test_wheel_in_a_fresh_venv_runs_the_cli_and_the_demo(wheel: Path, tmp_path: Path, prefect_api: str) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    site = Path(subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True).stdout.strip())
    # Dependencies come from the test environment (no network needed); mlgitops itself
    # only from the wheel: .pth files of that folder (our editable hook) are not run.
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--quiet", "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True, text=True)
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PATH": f"{env_dir / 'bin'}:{os.environ['PATH']}"}
    where = subprocess.run([py, "-c", "import mlgitops; print(mlgitops.__file__)"], cwd=tmp_path, capture_output=True, text=True, env=env, check=True).stdout
    assert where.startswith(str(site))
    for generic in ("flows", "templates", "actions"):
        probe = subprocess.run([py, "-c", f"import {generic}"], cwd=tmp_path, capture_output=True, text=True, env=env)
        assert probe.returncode != 0, f"{generic} is importable"
    mlops = env_dir / "bin" / "mlops"
    assert subprocess.run([mlops, "--help"], cwd=tmp_path, capture_output=True, text=True, env=env).returncode == 0
    demo = subprocess.run([mlops, "demo", "--dir", str(tmp_path / "demo")], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert demo.returncode == 0, demo.stderr
    assert "### ✅ mlops gate passed: `breast-cancer`" in demo.stdout
    assert "- `training.params.max_depth`: `2` → `6`" in demo.stdout
    assert len(list((tmp_path / "demo" / ".mlops" / "forge").glob("branch-demo-deeper-trees-*/comment.md"))) == 1


def test_dockerfile_copies_what_exists_and_runs_mlops_serve(cli_noprefect) -> None:
    """No Docker daemon here: hold the Dockerfile to the tree and the CLI it calls."""
    import json as _json

    ROOT = REPO_ROOT
    text = (ROOT / "Dockerfile").read_text()
    for line in text.splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), f"Dockerfile copies {source}, which is not in the repo"
    entry = _json.loads(next(l for l in text.splitlines() if l.startswith("ENTRYPOINT "))[len("ENTRYPOINT "):])
    cmd = _json.loads(next(l for l in text.splitlines() if l.startswith("CMD "))[len("CMD "):])
    assert entry[:2] == ["mlops", "serve"]
    result = cli_noprefect(*entry[1:2], "--help", cwd=ROOT)
    for option in entry[2::2]:
        assert option in result.output
    assert cmd == ["staging"]
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv/" in ignored and ".mlops/" in ignored
