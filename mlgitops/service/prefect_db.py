"""A migrated database for the embedded Prefect server's first start.

On a new ``PREFECT_HOME`` the embedded server (:mod:`mlgitops.service.prefect_server`)
spends about 4 s of its ~9 s start running Prefect's SQLite migrations (Alembic, CPU
bound): the critical path of a PR run on a fresh runner (bench/RESULTS.md, "A fresh
runner"). The migrations give the same database every time for one Prefect release,
so the first migration's result is kept as a template in the user cache
(``$MLOPS_CACHE_DIR``/``$XDG_CACHE_HOME``/mlgitops/prefect-db/) and later new homes
start from a copy of it, with Prefect's migrate-on-start turned off.

Used only when the server would use Prefect's default database (no database setting in
the environment or the active profile) and that file does not exist yet. The template
is named by the installed Prefect's version and the list of its SQLite migration
files, so another Prefect never uses it; one that fails SQLite's integrity check, or
lacks Alembic's version row, is ignored (the server then migrates as usual).
Hand-written: Prefect has no option to start from a pre-migrated database.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import sqlite3
import tempfile
from contextlib import closing
from pathlib import Path

from mlgitops.service.prefect_profile import active_profile, prefect_home

MIGRATE_OFF = {"PREFECT_SERVER_DATABASE_MIGRATE_ON_START": "false"}
_DB_SETTING = ("PREFECT_SERVER_DATABASE_", "PREFECT_API_DATABASE_")


def default_database(env: dict[str, str]) -> Path | None:
    """The SQLite file Prefect would use by default under ``env``, or None when a
    database setting is configured (environment or active profile): then nothing here
    applies. Prefect's default is ``sqlite+aiosqlite:///{PREFECT_HOME}/prefect.db``."""
    if any(name.startswith(_DB_SETTING) for name in env):
        return None
    profile = active_profile(env)
    if profile is None or any(str(key).upper().startswith(_DB_SETTING) for key in profile):
        return None  # unreadable profiles (Prefect decides), or a database set there
    return prefect_home(env) / "prefect.db"


def template_key() -> str | None:
    """Prefect's version and its SQLite migrations' file names, hashed; None when
    Prefect or its migrations cannot be found (without importing Prefect)."""
    try:
        version = importlib.metadata.version("prefect")
        spec = importlib.util.find_spec("prefect")
    except (importlib.metadata.PackageNotFoundError, ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "server" / "database" / "_migrations" / "versions" / "sqlite"
    try:
        names = sorted(p.name for p in folder.iterdir() if p.suffix == ".py")
    except OSError:
        return None
    if not names:
        return None
    digest = hashlib.sha256("\n".join([version, *names]).encode()).hexdigest()[:16]
    return f"prefect-{version}-{digest}"


def template_path(key: str) -> Path:
    from mlgitops.deploy.fetch import cache_root

    return cache_root() / "prefect-db" / f"{key}.db"


def _sound(path: Path) -> bool:
    """An SQLite file that passes its integrity check and has Alembic's version row."""
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            if conn.execute("PRAGMA integrity_check").fetchone() != ("ok",):
                return False
            return conn.execute("SELECT count(*) FROM alembic_version").fetchone()[0] == 1
    except sqlite3.Error:
        return False


def prepare(db: Path | None) -> tuple[dict[str, str], Path | None]:
    """Before the server starts on ``db`` (:func:`default_database`, None when it does
    not apply): (extra environment, where to save a template after the server migrated).
    Copies a sound template to a missing database and turns migrate-on-start off; else
    asks for the template to be saved."""
    key = template_key() if db is not None else None
    if db is None or key is None or db.exists():
        return {}, None
    template = template_path(key)
    if not template.is_file() or not _sound(template):
        return {}, template
    db.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".mlops-prefect-db-", dir=db.parent)
    os.close(fd)
    try:
        shutil.copyfile(template, tmp)
        try:
            os.link(tmp, db)  # only if nobody created it meanwhile (another run on this home)
        except FileExistsError:
            return {}, None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return dict(MIGRATE_OFF), None


def save_template(db: Path, template: Path) -> None:
    """After the server migrated ``db`` (and answered its health check): a consistent
    copy (SQLite's online backup) becomes the template. Best effort."""
    try:
        template.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".db", dir=template.parent)
        os.close(fd)
        try:
            with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as src, closing(sqlite3.connect(tmp)) as dst:
                src.backup(dst)
                dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file (Prefect turns WAL on again)
            if _sound(Path(tmp)):
                os.replace(tmp, template)
        finally:
            for leftover in (tmp, f"{tmp}-wal", f"{tmp}-shm"):
                Path(leftover).unlink(missing_ok=True)
    except (OSError, sqlite3.Error):
        pass  # no template: the next new home migrates, as Prefect does
