"""A real PostgreSQL server for the database tests, beside SQLite: the ``db_url`` fixture gives both.

The server is the machine's own PostgreSQL (``initdb``/``pg_ctl`` on PATH or under
``/usr/lib/postgresql/*/bin``; ``apt-get install postgresql`` brings them), started once per
test session in a temporary folder, on a free port of 127.0.0.1, with trust authentication and
fsync off (throw-away data). PostgreSQL refuses to run as root, so under root it runs as the
``postgres`` user when there is one, else ``nobody``. Each test gets a database of its own.
Without the binaries (or psycopg) the PostgreSQL cases are skipped, saying why.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_SUPERUSER = "rltrade"
_counter = itertools.count()


def _pg_bin() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``, or None."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[-3]))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_user(user: str | None, argv: list[str]) -> list[str]:
    """``argv`` run as ``user`` (None: as we are)."""
    if user is None:
        return argv
    if shutil.which("runuser"):
        return ["runuser", "-u", user, "--", *argv]
    return ["su", "-s", "/bin/sh", user, "-c", " ".join(f"'{a}'" for a in argv)]


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    pytest.skip("PostgreSQL cannot run as root and this machine has neither a 'postgres' nor a 'nobody' user")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """``postgresql+psycopg://rltrade@127.0.0.1:PORT`` of a server running for the whole session."""
    pg_bin = _pg_bin()
    if pg_bin is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found: apt-get install postgresql to run these cases")
    pytest.importorskip("psycopg", reason="psycopg (the postgres extra) is not installed")
    user = _run_as()
    root = Path(tempfile.mkdtemp(prefix="rltrade-pg-"))
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    data, log, port = root / "data", root / "server.log", _free_port()
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    subprocess.run(
        _as_user(
            user, [str(pg_bin / "initdb"), "-D", str(data), "-U", _SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-sync"]
        ),
        check=True,
        capture_output=True,
        env=env,
        cwd=root,
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    start = [str(pg_bin / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "30", "start"]
    started = subprocess.run(_as_user(user, start), capture_output=True, text=True, env=env, cwd=root)
    if started.returncode != 0:
        text = log.read_text() if log.exists() else started.stderr
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {text.strip().splitlines()[-1:]}")
    try:
        yield f"postgresql+psycopg://{_SUPERUSER}@127.0.0.1:{port}"
    finally:
        stop = [str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
        subprocess.run(_as_user(user, stop), capture_output=True, env=env, cwd=root)
        shutil.rmtree(root, ignore_errors=True)


def _new_database(server: str) -> str:
    """A fresh, empty database on the session's server; its URL."""
    import psycopg

    name = f"t{os.getpid()}_{next(_counter)}"
    with psycopg.connect(f"{server.replace('+psycopg', '')}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty database: a SQLite file, then a database on the real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'rltrade.db'}"
    return _new_database(request.getfixturevalue("postgres_server"))
