"""The embedded PostgreSQL of the dev stack: TCP, idempotent setup, recovery after a SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, text

from starter.devstack.postgres import EmbeddedPostgres, PostgresError
from tests.fixtures.postgres import TEST_SERVER_SETTINGS, PostgresServerHandle, free_port


@pytest.fixture
def embedded(os_tmp_path: Path) -> EmbeddedPostgres:
    return EmbeddedPostgres(
        os_tmp_path / "data",
        port=free_port(),
        extra_settings=TEST_SERVER_SETTINGS,
    )


def _count(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM mission")).scalar_one())
    finally:
        engine.dispose()


def test_restart_after_sigkill_keeps_the_data(embedded: EmbeddedPostgres) -> None:
    embedded.start()
    url = embedded.ensure_database("contracting", "contracting")
    assert url == f"postgresql+psycopg://contracting@127.0.0.1:{embedded.port}/contracting"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE mission (id text PRIMARY KEY)"))
        conn.execute(text("INSERT INTO mission VALUES ('m-1'), ('m-2')"))
    engine.dispose()

    embedded.kill()  # like a SIGKILL of the whole stack: postmaster.pid stays behind
    assert (embedded.data_dir / "postmaster.pid").exists()

    again = EmbeddedPostgres(embedded.data_dir, embedded.port, extra_settings=TEST_SERVER_SETTINGS)
    again.start()
    try:
        # idempotent: the role and database exist already
        assert again.ensure_database("contracting", "contracting") == url
        assert _count(url) == 2
    finally:
        again.stop()
    assert again.poll() is None and not (embedded.data_dir / "postmaster.pid").exists()


def test_fast_shutdown_and_restart(embedded: EmbeddedPostgres) -> None:
    with embedded:
        pid = embedded.pid
        assert pid is not None
    assert embedded.pid is None
    with embedded:
        assert embedded.pid != pid
        with psycopg.connect(embedded.conninfo(), autocommit=True) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_second_server_on_the_same_data_is_refused(embedded: EmbeddedPostgres) -> None:
    with embedded:
        twin = EmbeddedPostgres(embedded.data_dir, free_port())
        with pytest.raises(PostgresError, match="already running"):
            twin.start()


def test_a_port_in_use_fails_with_the_log(embedded: EmbeddedPostgres) -> None:
    import socket

    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", embedded.port))
        blocker.listen()
        with pytest.raises(PostgresError, match="exited with code") as failure:
            embedded.start(timeout=20)
    assert "could not" in str(failure.value).lower()


def test_the_server_dies_with_its_parent(os_tmp_path: Path) -> None:
    """A `kill -9` of the dev stack must not leave PostgreSQL holding the port."""
    data_dir = os_tmp_path / "data"
    port = free_port()
    script = (
        "import sys, time; from pathlib import Path;"
        "from starter.devstack.postgres import EmbeddedPostgres;"
        f"pg = EmbeddedPostgres(Path({str(data_dir)!r}), {port}); pg.start();"
        "print(pg.pid, flush=True); time.sleep(60)"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    postmaster = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(postmaster, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.kill(postmaster, signal.SIGQUIT)
        pytest.fail("PostgreSQL outlived its parent")


def test_fixtures_give_empty_databases(postgres_url: str, fresh_database: str) -> None:
    """`fresh_database` is empty whatever ran before; the shared `postgres_url` is the
    session's database (migrated once any test of this process asked for `migrated_db_url`,
    which depends on the order pytest-xdist gives this worker)."""
    assert postgres_url.startswith("postgresql+psycopg://")
    assert postgres_url.endswith("/contracting_test")
    assert fresh_database != postgres_url
    engine = create_engine(fresh_database)
    with engine.connect() as conn:
        tables = conn.execute(
            text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        ).scalar_one()
    engine.dispose()
    assert tables == 0


def test_fresh_database_is_dropped_afterwards(postgres_server: PostgresServerHandle) -> None:
    url = postgres_server.create_database("contracting_t_dropme")
    postgres_server.drop_database("contracting_t_dropme")
    with pytest.raises(Exception, match="does not exist"):
        create_engine(url).connect()


def test_data_dir_path_too_long_for_a_socket(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 90) / "data"
    pg = EmbeddedPostgres(deep, port=free_port())
    assert pg.socket_dir != pg.data_dir
    assert len(str(pg.socket_dir)) < 60


def test_migrated_db_url_has_the_schema(migrated_db_url: str) -> None:
    engine = create_engine(migrated_db_url)
    try:
        with engine.connect() as conn:
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    finally:
        engine.dispose()
    assert version
