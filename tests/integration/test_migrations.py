"""The Alembic migrations on a real PostgreSQL: up, down, up again, and models == migrations."""

from __future__ import annotations

import enum
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import alembic.command
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from db.engine import create_sync_engine, normalize_url
from db.migrate import current_revision, downgrade, head_revision, upgrade
from db.models import Base

MODEL_TABLES = set(Base.metadata.tables)
REPO_ROOT = Path(__file__).resolve().parents[2]


def _inspect_tables(url: str) -> set[str]:
    engine = create_sync_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return set(sa.inspect(connection).get_table_names())
    finally:
        engine.dispose()


def _plain_postgresql_url(url: str) -> str:
    """The `postgresql://` form a managed service would hand out."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def test_upgrade_downgrade_upgrade(fresh_database: str) -> None:
    assert current_revision(fresh_database) is None

    upgrade(_plain_postgresql_url(fresh_database))  # accepted and normalised to psycopg
    assert _inspect_tables(fresh_database) == MODEL_TABLES | {"alembic_version"}
    assert current_revision(fresh_database) == head_revision()

    downgrade(fresh_database)
    assert _inspect_tables(fresh_database) == {"alembic_version"}
    assert current_revision(fresh_database) is None

    upgrade(fresh_database)
    assert _inspect_tables(fresh_database) == MODEL_TABLES | {"alembic_version"}
    assert current_revision(fresh_database) == head_revision()


def test_upgrade_at_head_is_a_no_op(fresh_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    upgrade(fresh_database)

    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("upgrade ran Alembic although the database was at head")

    monkeypatch.setattr(alembic.command, "upgrade", must_not_run)
    upgrade(fresh_database)
    assert current_revision(fresh_database) == head_revision()


def test_concurrent_upgrades_serialise(fresh_database: str) -> None:
    """A worker and a gateway starting together both call upgrade(url): one migrates."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        for future in [pool.submit(upgrade, fresh_database) for _ in range(3)]:
            future.result(timeout=60)
    assert current_revision(fresh_database) == head_revision()
    assert _inspect_tables(fresh_database) == MODEL_TABLES | {"alembic_version"}


def test_models_match_migrations(fresh_database: str) -> None:
    """Autogenerate finds nothing to do: columns, types, nullability, defaults, keys, indexes."""
    upgrade(fresh_database)
    engine = create_sync_engine(fresh_database, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": True}
            )
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def _database_constraints(url: str) -> tuple[set[tuple[str, str, str]], dict[str, str]]:
    """(table, name, type) of every constraint, and the definition of each CHECK."""
    engine = create_sync_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    """
                    SELECT rel.relname, con.conname, con.contype::text,
                           pg_get_constraintdef(con.oid)
                    FROM pg_constraint con
                    JOIN pg_class rel ON rel.oid = con.conrelid
                    JOIN pg_namespace nsp ON nsp.oid = rel.relnamespace
                    WHERE nsp.nspname = 'public' AND rel.relname <> 'alembic_version'
                      AND con.contype IN ('p', 'u', 'f', 'c')
                    """
                )
            ).all()
    finally:
        engine.dispose()
    found = {(table, name, kind) for table, name, kind, _ in rows}
    checks = {name: definition for _, name, kind, definition in rows if kind == "c"}
    return found, checks


def _model_constraints() -> set[tuple[str, str, str]]:
    kinds = {
        sa.PrimaryKeyConstraint: "p",
        sa.UniqueConstraint: "u",
        sa.ForeignKeyConstraint: "f",
        sa.CheckConstraint: "c",
    }
    expected = set()
    for table in Base.metadata.tables.values():
        for constraint in table.constraints:
            name = constraint.name
            assert isinstance(name, str), f"unnamed constraint on {table.name}"
            expected.add((table.name, name, kinds[type(constraint)]))
    return expected


def test_constraint_names_and_enum_checks_match(fresh_database: str) -> None:
    """What autogenerate cannot see: CHECK constraints, and the values each status column
    accepts. Adding a value to an enum without a migration fails here."""
    upgrade(fresh_database)
    found, checks = _database_constraints(fresh_database)
    assert found == _model_constraints()

    enum_columns = [
        (table.name, column.type)
        for table in Base.metadata.tables.values()
        for column in table.columns
        if isinstance(column.type, sa.Enum)
    ]
    assert enum_columns
    for table_name, enum_type in enum_columns:
        enum_class = enum_type.enum_class
        assert enum_class is not None and issubclass(enum_class, enum.Enum)
        definition = checks[f"ck_{table_name}_{enum_type.name}"]
        allowed = set(re.findall(r"'([^']*)'", definition))
        assert allowed == {str(member.value) for member in enum_class}, (
            f"{table_name}.{enum_type.name}: the database allows {sorted(allowed)}"
        )


def test_alembic_command_line_from_another_directory(fresh_database: str, tmp_path: Path) -> None:
    """`alembic -c db/alembic.ini` works from any directory (script location, imports)."""
    url = _plain_postgresql_url(fresh_database)
    ini = REPO_ROOT / "db" / "alembic.ini"
    for arguments in (["upgrade", "head"], ["check"]):
        completed = subprocess.run(
            [sys.executable, "-m", "alembic", "-c", str(ini), "-x", f"url={url}", *arguments],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr
    assert current_revision(fresh_database) == head_revision()


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p%40ss@db.example:5432/contracting",
        "postgres://u:p%40ss@db.example:5432/contracting",
        "postgresql+psycopg://u:p%40ss@db.example:5432/contracting",
    ],
)
def test_urls_are_normalised_to_psycopg(url: str) -> None:
    normalised = normalize_url(url)
    assert normalised.drivername == "postgresql+psycopg"
    assert normalised.password == "p@ss"
    assert normalised.database == "contracting"


def test_non_postgresql_urls_are_refused() -> None:
    with pytest.raises(ValueError, match="unsupported database URL"):
        normalize_url("sqlite:///contracting.db")


def test_revision_0002_adds_addresses_to_existing_parties_and_back(fresh_database: str) -> None:
    """Parties recorded under 0001 keep their rows with no address; an address is all set or
    all NULL; downgrading to 0001 drops the addresses and the documents' table only."""
    upgrade(fresh_database, "0001")
    engine = create_sync_engine(fresh_database, poolclass=NullPool)
    insert_client = (
        "INSERT INTO clients (client_id, name, siren) VALUES ('C-1', 'Acme', '325437259')"
    )
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(insert_client))
        upgrade(fresh_database, "0002")
        with engine.begin() as connection:
            row = connection.execute(
                sa.text("SELECT address_lines, postal_code, city, address_country FROM clients")
            ).one()
            assert tuple(row) == (None, None, None, None)
            connection.execute(
                sa.text(
                    "UPDATE clients SET address_lines = ARRAY['1 rue X'], postal_code = '75001',"
                    " city = 'Paris', address_country = 'FR'"
                )
            )
        with pytest.raises(sa.exc.IntegrityError, match="ck_clients_address"), engine.begin() as c:
            c.execute(sa.text("UPDATE clients SET city = NULL"))
        downgrade(fresh_database, "0001")
        assert "billing_documents" not in _inspect_tables(fresh_database)
        with engine.connect() as connection:
            columns = {c["name"] for c in sa.inspect(connection).get_columns("clients")}
            assert "postal_code" not in columns
            assert connection.execute(sa.text("SELECT name FROM clients")).scalar_one() == "Acme"
    finally:
        engine.dispose()
