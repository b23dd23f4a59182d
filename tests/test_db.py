from sqlalchemy import text

from trust import migrations
from trust.db import Database


def test_engine_round_trip(database_url):
    db = Database(database_url)
    try:
        db.ping()
        with db.session() as s:
            assert s.execute(text("SELECT 1")).scalar() == 1
    finally:
        db.dispose()


def test_sqlite_uses_wal(sqlite_url):
    db = Database(sqlite_url)
    try:
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        db.dispose()


def test_migrations_refuse_then_apply(database_url):
    assert migrations.version_locations(), "no package has migrations"
    db = Database(database_url)
    try:
        try:
            migrations.check_current(db)
        except Exception as exc:  # noqa: BLE001
            assert getattr(exc, "code", None) == "migration_required"
            assert "trustctl init" in str(exc)
        else:
            raise AssertionError("an empty database must be reported as not migrated")
        migrations.upgrade(db)
        migrations.check_current(db)
        migrations.upgrade(db)  # idempotent
        migrations.check_current(db)
    finally:
        db.dispose()
