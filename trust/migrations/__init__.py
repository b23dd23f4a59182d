"""Alembic migrations of every package, applied by ``trustctl init``.

Each package that owns tables keeps its revisions in ``<package>/migrations/versions/``.
Every chain of revisions has its own branch label (the first revision of a chain
has ``down_revision = None`` and ``branch_labels = ("<chain>",)``), so packages
add migrations without touching each other's; ``upgrade("heads")`` applies all.
A revision that needs another chain's tables says so with ``depends_on``.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from trust.db import Database
from trust.errors import MigrationRequired

_ROOT = Path(__file__).resolve().parent.parent.parent
PACKAGES = ("trust", "keystore", "ca", "timestamp", "seals", "api")


def version_locations() -> list[str]:
    return [str(d) for d in (_ROOT / p / "migrations" / "versions" for p in PACKAGES) if d.is_dir()]


def alembic_config(db: Database) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).resolve().parent))
    cfg.set_main_option("version_locations", " ".join(version_locations()))
    cfg.set_main_option("path_separator", "space")
    cfg.attributes["engine"] = db.engine
    return cfg


def upgrade(db: Database) -> None:
    """Apply every pending migration of every package."""
    if not version_locations():
        return
    command.upgrade(alembic_config(db), "heads")


def pending(db: Database) -> set[str]:
    """Heads of the migration scripts that the database has not reached."""
    if not version_locations():
        return set()
    script = ScriptDirectory.from_config(alembic_config(db))
    with db.engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    wanted = set(script.get_heads())
    if not current:
        return wanted
    # A database head that is ahead of or equal to a script head satisfies it.
    return {h for h in wanted if not any(h == c or h in _ancestors(script, c) for c in current)}


def _ancestors(script: ScriptDirectory, rev: str) -> set[str]:
    return {r.revision for r in script.walk_revisions(base="base", head=rev)}


def check_current(db: Database) -> None:
    """Refuse to start on an unapplied migration, with a message that says what to run."""
    missing = pending(db)
    if missing:
        raise MigrationRequired(
            "database schema is not up to date (pending: "
            + ", ".join(sorted(missing))
            + "); run `trustctl init` to apply the migrations"
        )
