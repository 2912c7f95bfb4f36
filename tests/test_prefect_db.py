"""The embedded Prefect server's migrated-database template (mlgitops.service.prefect_db):
when it applies, when it must not, and that a damaged or foreign template is never
used. The real server start from a template: tests/test_cli.py::test_embedded_prefect_server_on_a_fresh_home."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from mlgitops.service import prefect_db


def migrated_like(path: Path, version: str = "3c841a1800a1") -> Path:
    """A small SQLite file shaped like a migrated Prefect database (Alembic's row)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        conn.execute("INSERT INTO alembic_version VALUES (?)", (version,))
        conn.commit()
    return path


def test_the_default_database_and_when_a_setting_takes_over(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert prefect_db.default_database({"PREFECT_HOME": str(home)}) == home / "prefect.db"
    for name in ("PREFECT_API_DATABASE_CONNECTION_URL", "PREFECT_SERVER_DATABASE_CONNECTION_URL", "PREFECT_SERVER_DATABASE_MIGRATE_ON_START"):
        assert prefect_db.default_database({"PREFECT_HOME": str(home), name: "x"}) is None, name
    home.mkdir()
    profiles = home / "profiles.toml"
    profiles.write_text('active = "dev"\n[profiles.dev]\nPREFECT_API_URL = "http://127.0.0.1:4200/api"\n')
    assert prefect_db.default_database({"PREFECT_HOME": str(home)}) == home / "prefect.db"  # no database key
    profiles.write_text('active = "dev"\n[profiles.dev]\nPREFECT_API_DATABASE_CONNECTION_URL = "postgresql+asyncpg://db/prefect"\n')
    assert prefect_db.default_database({"PREFECT_HOME": str(home)}) is None
    assert prefect_db.default_database({"PREFECT_HOME": str(home), "PREFECT_PROFILE": "other"}) == home / "prefect.db"
    profiles.write_text("active = [unclosed\n")
    assert prefect_db.default_database({"PREFECT_HOME": str(home)}) is None  # unreadable: Prefect decides


def test_the_default_matches_prefects_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.settings.models.root import Settings

    for name in [n for n in __import__("os").environ if n.startswith(("PREFECT_SERVER_DATABASE_", "PREFECT_API_DATABASE_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "home"))
    url = Settings().server.database.connection_url.get_secret_value()
    assert url == f"sqlite+aiosqlite:///{prefect_db.default_database({'PREFECT_HOME': str(tmp_path / 'home')})}"


def test_the_template_is_named_by_prefects_version_and_migrations(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    key = prefect_db.template_key()
    assert key is not None and key.startswith(f"prefect-{importlib.metadata.version('prefect')}-") and len(key.rsplit("-", 1)[1]) == 16
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "3.9.0" if name == "prefect" else real(name))
    other = prefect_db.template_key()
    assert other is not None and other.startswith("prefect-3.9.0-") and other.rsplit("-", 1)[1] != key.rsplit("-", 1)[1]


def test_a_sound_template_is_copied_and_migrations_are_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_CACHE_DIR", str(tmp_path / "cache"))
    key = prefect_db.template_key()
    template = migrated_like(prefect_db.template_path(key))
    db = prefect_db.default_database({"PREFECT_HOME": str(tmp_path / "home")})
    assert prefect_db.prepare(db) == ({"PREFECT_SERVER_DATABASE_MIGRATE_ON_START": "false"}, None)
    assert (tmp_path / "home" / "prefect.db").read_bytes() == template.read_bytes()
    assert sorted(p.name for p in (tmp_path / "home").iterdir()) == ["prefect.db"]  # no temporary file left
    # an existing database is never replaced, and nothing is saved over the template
    assert prefect_db.prepare(db) == ({}, None)
    assert prefect_db.prepare(None) == ({}, None)  # a configured database: nothing here applies


@pytest.mark.parametrize("content", ["garbage", "no alembic row", "empty"])
def test_a_damaged_template_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str) -> None:
    monkeypatch.setenv("MLOPS_CACHE_DIR", str(tmp_path / "cache"))
    template = prefect_db.template_path(prefect_db.template_key())
    template.parent.mkdir(parents=True)
    if content == "garbage":
        template.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    elif content == "empty":
        template.write_bytes(b"")
    else:
        with closing(sqlite3.connect(template)) as conn:
            conn.execute("CREATE TABLE flow_run (id TEXT)")
    assert prefect_db.prepare(tmp_path / "home" / "prefect.db") == ({}, template)  # the server migrates; the template is saved anew
    assert not (tmp_path / "home" / "prefect.db").exists()


def test_a_foreign_template_is_never_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_CACHE_DIR", str(tmp_path / "cache"))
    migrated_like(tmp_path / "cache" / "prefect-db" / "prefect-3.4.0-0123456789abcdef.db")
    key = prefect_db.template_key()
    assert prefect_db.prepare(tmp_path / "home" / "prefect.db") == ({}, tmp_path / "cache" / "prefect-db" / f"{key}.db")


def test_a_database_created_meanwhile_is_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another run on the same home created its database between the check and the copy."""
    monkeypatch.setenv("MLOPS_CACHE_DIR", str(tmp_path / "cache"))
    migrated_like(prefect_db.template_path(prefect_db.template_key()))
    db = tmp_path / "home" / "prefect.db"
    real_link = prefect_db.os.link

    def racing_link(src: str, dst: Path) -> None:
        Path(dst).write_bytes(b"the other run's database")
        real_link(src, dst)

    monkeypatch.setattr(prefect_db.os, "link", racing_link)
    assert prefect_db.prepare(db) == ({}, None)
    assert db.read_bytes() == b"the other run's database"
    assert sorted(p.name for p in db.parent.iterdir()) == ["prefect.db"]


def test_saving_keeps_a_self_contained_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    live = migrated_like(tmp_path / "home" / "prefect.db")
    with closing(sqlite3.connect(live)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")  # as Prefect runs it
    template = tmp_path / "cache" / "prefect-db" / "t.db"
    prefect_db.save_template(live, template)
    assert sorted(p.name for p in template.parent.iterdir()) == ["t.db"]  # no -wal/-shm, no temporary file
    with closing(sqlite3.connect(template)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("3c841a1800a1",)]
    prefect_db.save_template(tmp_path / "missing.db", tmp_path / "cache" / "prefect-db" / "u.db")  # best effort: nothing, no error
    assert sorted(p.name for p in template.parent.iterdir()) == ["t.db"]
