"""The signal cache: the target weights a run's policy chose after the close of each as-of date.

One row per (run, as-of date, symbol), unique. The signal job (:mod:`rltrade.signals`) writes
rows; the export, the brokers and the web page read them. A day is written as a whole, in one
transaction: re-running it with the same result keeps the stored rows (and their ``created``
time), a different result (revised data) replaces that day's rows, and nothing is ever
duplicated (the unique key would refuse it anyway).

Columns:

``run_id``     the run's id (``manifest.json``'s ``run_id``, the name its directory was created with)
``as_of``      the as-of date T: the signal was decided after T's close, from data up to T only
``symbol``     the traded symbol
``weight``     the target weight of the symbol for T+1 (fraction of the portfolio value; cash is the rest)
``score``      the policy's raw output for the symbol (its action component, e.g. a logit)
``seed``       the seed whose model decided
``last_bar``   the timestamp of the last bar the decision saw (naive UTC, never after ``as_of``)
``created``    when the row was written (naive UTC)

Timestamps are stored naive in UTC: SQLite keeps no time zone, and one convention for every
database keeps the rows comparable.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import pandas as pd
from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Double,
    Integer,
    String,
    Table,
    UniqueConstraint,
    and_,
    delete,
    insert,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from rltrade.db import METADATA, DatabaseError, safe_url

SIGNALS = Table(
    "signals",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(200), nullable=False),
    Column("as_of", Date, nullable=False),
    Column("symbol", String(64), nullable=False),
    Column("weight", Double, nullable=False),
    Column("score", Double, nullable=False),
    Column("seed", Integer, nullable=False),
    Column("last_bar", DateTime, nullable=False),
    Column("created", DateTime, nullable=False),
    UniqueConstraint("run_id", "as_of", "symbol", name="uq_signals_run_as_of_symbol"),
)
#: The columns of a signal row, in the order :func:`read_signals` returns them.
COLUMNS = ("run_id", "as_of", "symbol", "weight", "score", "seed", "last_bar", "created")
# what makes two versions of a day's rows the same signal (created is when, not what)
_CONTENT = ("symbol", "weight", "score", "seed", "last_bar")


def _naive_utc(value: Any) -> dt.datetime:
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.to_pydatetime()


def _content(rows: Iterable[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted(
        (str(r["symbol"]), float(r["weight"]), float(r["score"]), int(r["seed"]), _naive_utc(r["last_bar"]))
        for r in rows
    )


def write_signals(engine: Engine, frame: pd.DataFrame) -> dict[str, int]:
    """Store the signal rows of ``frame`` (columns :data:`COLUMNS` but ``created``), day by day.

    Each (run, as-of date) of ``frame`` is compared with the stored rows of that day: identical
    rows are kept as they are, different ones are replaced, missing days are inserted, all in
    one transaction. Returns how many days were ``inserted``, ``replaced`` and ``unchanged``.
    """
    counts = {"inserted": 0, "replaced": 0, "unchanged": 0}
    if frame.empty:
        return counts
    missing = [c for c in COLUMNS if c != "created" and c not in frame.columns]
    if missing:
        raise ValueError(f"signal rows lack column(s) {', '.join(missing)}")
    created = _naive_utc(pd.Timestamp.now(tz="UTC")).replace(microsecond=0)
    new: dict[tuple[str, dt.date], list[dict[str, Any]]] = {}
    for row in frame.to_dict("records"):
        key = (str(row["run_id"]), pd.Timestamp(row["as_of"]).date())
        new.setdefault(key, []).append({str(k): v for k, v in row.items()})
    try:
        with engine.begin() as conn:
            for run_id in sorted({k[0] for k in new}):
                days = sorted(day for r, day in new if r == run_id)
                stored: dict[dt.date, list[dict[str, Any]]] = {}
                query = select(SIGNALS).where(
                    and_(SIGNALS.c.run_id == run_id, SIGNALS.c.as_of >= days[0], SIGNALS.c.as_of <= days[-1])
                )
                for found in conn.execute(query).mappings():
                    stored.setdefault(found["as_of"], []).append({str(k): v for k, v in found.items()})
                for day in days:
                    rows = new[(run_id, day)]
                    old = stored.get(day)
                    if old is not None and _content(old) == _content(rows):
                        counts["unchanged"] += 1
                        continue
                    if old is not None:
                        conn.execute(delete(SIGNALS).where(and_(SIGNALS.c.run_id == run_id, SIGNALS.c.as_of == day)))
                    conn.execute(
                        insert(SIGNALS),
                        [
                            {
                                "run_id": run_id,
                                "as_of": day,
                                "symbol": str(r["symbol"]),
                                "weight": float(r["weight"]),
                                "score": float(r["score"]),
                                "seed": int(r["seed"]),
                                "last_bar": _naive_utc(r["last_bar"]),
                                "created": created,
                            }
                            for r in rows
                        ],
                    )
                    counts["replaced" if old is not None else "inserted"] += 1
    except SQLAlchemyError as exc:
        raise DatabaseError(
            f"database {safe_url(str(engine.url))}: the signals cannot be written: {str(exc).splitlines()[0]}"
        ) from None
    return counts


def read_signals(engine: Engine, run_id: str, start: dt.date | None = None, end: dt.date | None = None) -> pd.DataFrame:
    """The cached rows of ``run_id`` with ``start <= as_of <= end`` (bounds optional), by (as_of, symbol).

    ``as_of`` holds :class:`datetime.date` values, ``last_bar`` and ``created`` naive UTC timestamps.
    """
    clauses = [SIGNALS.c.run_id == run_id]
    if start is not None:
        clauses.append(SIGNALS.c.as_of >= start)
    if end is not None:
        clauses.append(SIGNALS.c.as_of <= end)
    query = select(*(SIGNALS.c[name] for name in COLUMNS)).where(and_(*clauses))
    try:
        with engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(query.order_by(SIGNALS.c.as_of, SIGNALS.c.symbol)).mappings()]
    except SQLAlchemyError as exc:
        raise DatabaseError(
            f"database {safe_url(str(engine.url))}: the signals cannot be read: {str(exc).splitlines()[0]}"
        ) from None
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    for name in ("last_bar", "created"):
        frame[name] = pd.to_datetime(frame[name])
    return frame


def cached_days(engine: Engine, run_id: str, start: dt.date | None = None, end: dt.date | None = None) -> set[dt.date]:
    """The as-of dates of ``run_id`` in [start, end] the cache holds rows for."""
    query = select(SIGNALS.c.as_of).distinct().where(SIGNALS.c.run_id == run_id)
    if start is not None:
        query = query.where(SIGNALS.c.as_of >= start)
    if end is not None:
        query = query.where(SIGNALS.c.as_of <= end)
    try:
        with engine.connect() as conn:
            return {pd.Timestamp(day).date() for day in conn.execute(query).scalars()}
    except SQLAlchemyError as exc:
        raise DatabaseError(
            f"database {safe_url(str(engine.url))}: the signals cannot be read: {str(exc).splitlines()[0]}"
        ) from None
