"""The SQL database of signals, orders, fills and paper accounts (SQLAlchemy).

SQLite in the store by default (``<store>/rltrade.db``); PostgreSQL (or any SQLAlchemy URL) by
setting ``RLTRADE_DB``, e.g. ``postgresql+psycopg://user@127.0.0.1:5432/rltrade`` (the
``postgres`` extra brings the driver). Each part of the project that keeps rows here defines its
tables in its own module of this package on the shared :data:`METADATA` (``signals.py``: the
signal cache; ``journal.py``: orders, fills, rejections and paper accounts), and
:func:`connect` creates whatever tables are missing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import Engine

from rltrade.errors import RLTradeError

#: Every table of the project's database.
METADATA = MetaData()
DB_ENV = "RLTRADE_DB"
DB_FILE = "rltrade.db"


class DatabaseError(RLTradeError):
    """The database cannot be reached or holds something unexpected; the message names the URL (no password)."""


def database_url(store: str | os.PathLike[str] | None = None) -> str:
    """``$RLTRADE_DB`` if set, else a SQLite file ``rltrade.db`` in the local store."""
    url = os.environ.get(DB_ENV, "").strip()
    if url:
        return url
    from rltrade.data.store import resolve_store

    root = resolve_store(store)
    if "://" in root and not root.startswith("file://"):
        raise DatabaseError(
            f"the store {root} is not local, so it cannot hold the SQLite database: set {DB_ENV} to a database URL"
        )
    path = Path(root.removeprefix("file://")) / DB_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def safe_url(url: str) -> str:
    """``url`` with any password masked (for logs and error messages)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


def connect(url: str | None = None, *, store: str | os.PathLike[str] | None = None) -> Engine:
    """An engine on ``url`` (default :func:`database_url`) with every table of :data:`METADATA` created."""
    import rltrade.db.journal
    import rltrade.db.signals  # noqa: F401

    url = url or database_url(store)
    kwargs: dict[str, Any] = {}
    try:
        engine = create_engine(url, **kwargs)
    except Exception as exc:
        raise DatabaseError(f"database {safe_url(url)}: {exc}") from None
    if engine.dialect.name == "sqlite":
        # several processes (a live loop and a signal job) share the file: wait for a lock, don't fail
        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA synchronous=NORMAL")  # with WAL: safe against a crashed process
            cursor.close()

    try:
        METADATA.create_all(engine)
    except Exception as exc:
        raise DatabaseError(f"database {safe_url(url)} cannot be opened: {str(exc).splitlines()[0]}") from None
    return engine
