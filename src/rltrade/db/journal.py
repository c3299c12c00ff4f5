"""The order journal: orders, fills and events of every broker, and the paper accounts' state.

Tables (on :data:`rltrade.db.METADATA`, created by :func:`rltrade.db.connect`):

- ``orders``: one row per order, unique by ``(broker, account, client_order_id)`` (the same
  deterministic id may be used on two brokers, e.g. a paper replay and then Alpaca), with the
  run and as-of date that decided it, the broker's id, status, fills so far and timestamps;
  its ``id`` gives the submission order.
- ``fills``: one row per execution, unique by ``(broker, account, fill_id)``, so a fill reported
  twice (a reconnect, a restart) is kept once.
- ``journal``: one line per event (submit, fill, partial, reject, cancel, expire, ...) with its
  time, level, kind and a one-line message.
- ``paper_accounts``, ``paper_positions``, ``paper_equity``: the embedded paper broker's cash,
  clock and settings, its positions, and its equity at every bar it has marked. Its pending
  orders are the open rows of ``orders``.

The database sits below the brokers (``db`` imports nothing above ``data``), so the writers take
any object with the attributes of :class:`rltrade.brokers.base.Order` / ``Fill`` (those
dataclasses themselves, structurally) and the readers return :class:`OrderRecord` /
:class:`FillRecord`, which carry the same fields under the same names and a few more
(``rltrade.brokers.as_order`` / ``as_fill`` turn them back into the broker dataclasses).

Every function takes an :class:`~sqlalchemy.engine.Engine` (one transaction of its own) or a
:class:`~sqlalchemy.engine.Connection` (the caller's transaction, so that several writes commit
together). Times are stored as naive UTC and read back as aware UTC datetimes, the same on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import pandas as pd
from sqlalchemy import (
    Column,
    DateTime,
    Double,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine

from rltrade.db import METADATA, DatabaseError

Bind = Engine | Connection
LEVELS: tuple[str, ...] = ("info", "warning", "error")
OPEN_STATUSES: tuple[str, ...] = ("new", "accepted", "partially_filled")

orders = Table(
    "orders",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("broker", String(16), nullable=False),
    Column("account", String(64), nullable=False),
    Column("client_order_id", String(128), nullable=False),
    Column("broker_order_id", String(128)),
    Column("run", String(512)),
    Column("as_of", String(10)),  # ISO date of the data the decision used
    Column("symbol", String(32), nullable=False),
    Column("qty", Double, nullable=False),
    Column("limit_price", Double),
    Column("time_in_force", String(8)),
    Column("status", String(20), nullable=False),
    Column("filled_qty", Double, nullable=False),
    Column("avg_fill_price", Double),
    Column("reason", Text),
    Column("submitted_at", DateTime),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("broker", "account", "client_order_id", name="uq_orders_client_order_id"),
    # the paper broker's pending-order query on every bar (without it long replays grow quadratically)
    Index("ix_orders_status", "broker", "account", "status"),
)

fills = Table(
    "fills",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("broker", String(16), nullable=False),
    Column("account", String(64), nullable=False),
    Column("fill_id", String(160), nullable=False),
    Column("client_order_id", String(128), nullable=False),
    Column("broker_order_id", String(128)),
    Column("symbol", String(32), nullable=False),
    Column("qty", Double, nullable=False),
    Column("price", Double, nullable=False),
    Column("fee", Double, nullable=False),
    Column("time", DateTime, nullable=False),
    UniqueConstraint("broker", "account", "fill_id", name="uq_fills_fill_id"),
)

journal = Table(
    "journal",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", DateTime, nullable=False),
    Column("level", String(8), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("broker", String(16)),
    Column("account", String(64)),
    Column("client_order_id", String(128)),
    Column("message", Text, nullable=False),
)

paper_accounts = Table(
    "paper_accounts",
    METADATA,
    Column("account", String(64), primary_key=True),
    Column("cash", Double, nullable=False),
    Column("clock", DateTime),  # bar time up to which the account has been advanced (None: not started)
    Column("last_bar", DateTime),  # the last bar it marked (a bar stored late, stamped before the clock, still counts)
    Column("settings", Text, nullable=False),  # cost, timing, freq, prices and initial cash it was opened with
    Column("updated_at", DateTime, nullable=False),
)

paper_positions = Table(
    "paper_positions",
    METADATA,
    Column("account", String(64), primary_key=True),
    Column("symbol", String(32), primary_key=True),
    Column("qty", Double, nullable=False),
    Column("avg_price", Double, nullable=False),
)

paper_equity = Table(
    "paper_equity",
    METADATA,
    Column("account", String(64), primary_key=True),
    Column("time", DateTime, primary_key=True),
    Column("cash", Double, nullable=False),
    Column("equity", Double, nullable=False),
)


class OrderLike(Protocol):
    """What :func:`record_order` reads of an order (:class:`rltrade.brokers.base.Order` has it)."""

    @property
    def client_order_id(self) -> str: ...

    @property
    def broker_order_id(self) -> str: ...

    @property
    def symbol(self) -> str: ...

    @property
    def qty(self) -> float: ...

    @property
    def filled_qty(self) -> float: ...

    @property
    def status(self) -> str: ...

    @property
    def limit_price(self) -> float | None: ...

    @property
    def avg_fill_price(self) -> float | None: ...

    @property
    def submitted_at(self) -> dt.datetime | None: ...

    @property
    def reason(self) -> str | None: ...


class FillLike(Protocol):
    """What :func:`record_fill` reads of a fill (:class:`rltrade.brokers.base.Fill` has it)."""

    @property
    def client_order_id(self) -> str: ...

    @property
    def broker_order_id(self) -> str: ...

    @property
    def symbol(self) -> str: ...

    @property
    def qty(self) -> float: ...

    @property
    def price(self) -> float: ...

    @property
    def time(self) -> dt.datetime: ...

    @property
    def fee(self) -> float: ...

    @property
    def fill_id(self) -> str: ...


@dataclass(frozen=True)
class OrderRecord:
    """A stored order: the fields of :class:`rltrade.brokers.base.Order`, then the journal's own."""

    client_order_id: str
    broker_order_id: str
    symbol: str
    qty: float
    filled_qty: float
    status: str
    limit_price: float | None
    avg_fill_price: float | None
    submitted_at: dt.datetime | None
    reason: str | None
    broker: str
    account: str
    run: str | None
    as_of: str | None
    time_in_force: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    seq: int  # submission order within the database


@dataclass(frozen=True)
class FillRecord:
    """A stored fill: the fields of :class:`rltrade.brokers.base.Fill`, then broker and account."""

    client_order_id: str
    broker_order_id: str
    symbol: str
    qty: float
    price: float
    time: dt.datetime
    fee: float
    fill_id: str
    broker: str
    account: str


@dataclass(frozen=True)
class JournalEntry:
    """One line of the journal."""

    time: dt.datetime
    level: str
    kind: str
    message: str
    broker: str | None = None
    account: str | None = None
    client_order_id: str | None = None


@dataclass
class PaperAccountState:
    """A paper account as stored: cash, clock (bar time; None before the first advance), settings, positions.

    ``positions`` maps a symbol to ``(signed shares, average entry price)``; ``last_bar`` is the
    stamp of the last bar the account marked.
    """

    account: str
    cash: float
    clock: dt.datetime | None
    settings: str
    positions: dict[str, tuple[float, float]] = field(default_factory=dict)
    last_bar: dt.datetime | None = None


# ----------------------------------------------------------------------------- helpers
@contextmanager
def transaction(bind: Bind) -> Iterator[Connection]:
    """A connection in a transaction: the engine's own (committed on exit), or the caller's connection as is."""
    if isinstance(bind, Connection):
        yield bind
    else:
        with bind.begin() as conn:
            yield conn


@contextmanager
def reading(bind: Bind) -> Iterator[Connection]:
    """A connection to read with: the caller's as is, or a new one whose transaction is rolled back (no commit)."""
    if isinstance(bind, Connection):
        yield bind
    else:
        with bind.connect() as conn:
            yield conn


def to_db_time(value: dt.datetime | pd.Timestamp | str | None) -> dt.datetime | None:
    """Naive UTC (what the tables hold); a naive input is taken as UTC."""
    if value is None:
        return None
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return cast(dt.datetime, ts.tz_localize(None).to_pydatetime())


def from_db_time(value: dt.datetime | None) -> dt.datetime | None:
    """Aware UTC from a stored naive UTC time."""
    return None if value is None else value.replace(tzinfo=dt.UTC)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


_UPSERTS: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], Any] = {}


def _upsert(
    conn: Connection, table: Table, values: Mapping[str, Any], keys: tuple[str, ...], keep: tuple[str, ...] = ()
) -> None:
    """Insert ``values`` or, when a row with the same ``keys`` exists, update it (except the ``keep`` columns)."""
    columns = tuple(values)
    changes = [k for k in columns if k not in keys and k not in keep]
    name = conn.dialect.name
    if name in ("sqlite", "postgresql"):  # the same INSERT .. ON CONFLICT DO UPDATE; built once per shape
        stmt = _UPSERTS.get((name, table.name, columns, tuple(changes)))
        if stmt is None:
            from sqlalchemy.dialects import postgresql, sqlite

            stmt = (sqlite if name == "sqlite" else postgresql).insert(table)
            excluded = stmt.excluded
            stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_={k: excluded[k] for k in changes})
            _UPSERTS[(name, table.name, columns, tuple(changes))] = stmt
        conn.execute(stmt, dict(values))
        return
    where = and_(*(table.c[k] == values[k] for k in keys))  # any other database: update, else insert
    if conn.execute(update(table).where(where).values({k: values[k] for k in changes})).rowcount == 0:
        conn.execute(insert(table).values(**values))


# ----------------------------------------------------------------------------- orders
def record_order(
    bind: Bind,
    order: OrderLike,
    *,
    broker: str,
    account: str,
    run: str | None = None,
    as_of: str | dt.date | None = None,
    time_in_force: str | None = None,
) -> None:
    """Insert ``order`` or update the stored order with its client id (run, as-of date and creation time are kept)."""
    now = _now()
    day = as_of.isoformat() if isinstance(as_of, dt.date) else as_of
    values: dict[str, Any] = {
        "broker": broker,
        "account": account,
        "client_order_id": order.client_order_id,
        "broker_order_id": order.broker_order_id,
        "symbol": order.symbol,
        "qty": float(order.qty),
        "limit_price": order.limit_price,
        "status": order.status,
        "filled_qty": float(order.filled_qty),
        "avg_fill_price": order.avg_fill_price,
        "reason": None if order.reason is None else _one_line(order.reason),
        "submitted_at": to_db_time(order.submitted_at),
        "created_at": now,
        "updated_at": now,
    }
    keep = ["created_at"]
    for name, value in (("run", run), ("as_of", day), ("time_in_force", time_in_force)):
        if value is None:
            keep.append(name)  # an update that does not say keeps what the first write said
        values[name] = value
    with transaction(bind) as conn:
        _upsert(conn, orders, values, ("broker", "account", "client_order_id"), tuple(keep))


def _order(row: Any) -> OrderRecord:
    return OrderRecord(
        client_order_id=row.client_order_id,
        broker_order_id=row.broker_order_id or "",
        symbol=row.symbol,
        qty=row.qty,
        filled_qty=row.filled_qty,
        status=row.status,
        limit_price=row.limit_price,
        avg_fill_price=row.avg_fill_price,
        submitted_at=from_db_time(row.submitted_at),
        reason=row.reason,
        broker=row.broker,
        account=row.account,
        run=row.run,
        as_of=row.as_of,
        time_in_force=row.time_in_force,
        created_at=cast(dt.datetime, from_db_time(row.created_at)),
        updated_at=cast(dt.datetime, from_db_time(row.updated_at)),
        seq=row.id,
    )


def get_order(bind: Bind, broker: str, account: str, client_order_id: str) -> OrderRecord | None:
    """The stored order with this client id, or None."""
    query = select(orders).where(
        orders.c.broker == broker, orders.c.account == account, orders.c.client_order_id == client_order_id
    )
    with reading(bind) as conn:
        row = conn.execute(query).first()
    return None if row is None else _order(row)


def list_orders(
    bind: Bind, broker: str | None = None, account: str | None = None, *, open_only: bool = False
) -> list[OrderRecord]:
    """Stored orders in submission order; only those that can still fill with ``open_only``."""
    query = select(orders).order_by(orders.c.id)
    if broker is not None:
        query = query.where(orders.c.broker == broker)
    if account is not None:
        query = query.where(orders.c.account == account)
    if open_only:
        query = query.where(orders.c.status.in_(OPEN_STATUSES))
    with reading(bind) as conn:
        return [_order(row) for row in conn.execute(query)]


# ----------------------------------------------------------------------------- fills
def record_fill(bind: Bind, fill: FillLike, *, broker: str, account: str) -> bool:
    """Store ``fill``; False (and nothing written) when a fill with its ``fill_id`` is already stored."""
    if not fill.fill_id:
        raise DatabaseError(f"fill of {fill.client_order_id} has no fill_id: the journal keys fills by it")
    exists = select(fills.c.id).where(
        fills.c.broker == broker, fills.c.account == account, fills.c.fill_id == fill.fill_id
    )
    with transaction(bind) as conn:
        if conn.execute(exists).first() is not None:
            return False
        conn.execute(
            insert(fills).values(
                broker=broker,
                account=account,
                fill_id=fill.fill_id,
                client_order_id=fill.client_order_id,
                broker_order_id=fill.broker_order_id,
                symbol=fill.symbol,
                qty=float(fill.qty),
                price=float(fill.price),
                fee=float(fill.fee),
                time=to_db_time(fill.time),
            )
        )
    return True


def list_fills(
    bind: Bind, broker: str | None = None, account: str | None = None, since: dt.datetime | None = None
) -> list[FillRecord]:
    """Stored fills in time order (then in the order they were recorded); only those after ``since`` if given."""
    query = select(fills).order_by(fills.c.time, fills.c.id)
    if broker is not None:
        query = query.where(fills.c.broker == broker)
    if account is not None:
        query = query.where(fills.c.account == account)
    if since is not None:
        query = query.where(fills.c.time > to_db_time(since))
    with reading(bind) as conn:
        rows = list(conn.execute(query))
    return [
        FillRecord(
            client_order_id=r.client_order_id,
            broker_order_id=r.broker_order_id or "",
            symbol=r.symbol,
            qty=r.qty,
            price=r.price,
            time=cast(dt.datetime, from_db_time(r.time)),
            fee=r.fee,
            fill_id=r.fill_id,
            broker=r.broker,
            account=r.account,
        )
        for r in rows
    ]


# ----------------------------------------------------------------------------- the journal
def log_event(
    bind: Bind,
    kind: str,
    message: str,
    *,
    level: str = "info",
    broker: str | None = None,
    account: str | None = None,
    client_order_id: str | None = None,
    time: dt.datetime | None = None,
) -> None:
    """Append one line to the journal (``message`` folded onto one line; ``time`` defaults to now, UTC)."""
    if level not in LEVELS:
        raise DatabaseError(f"journal level must be one of {', '.join(LEVELS)}, got {level!r}")
    values = {
        "time": to_db_time(time) or _now(),
        "level": level,
        "kind": kind,
        "broker": broker,
        "account": account,
        "client_order_id": client_order_id,
        "message": _one_line(message),
    }
    with transaction(bind) as conn:
        conn.execute(insert(journal).values(**values))


def list_events(
    bind: Bind,
    *,
    broker: str | None = None,
    account: str | None = None,
    kind: str | None = None,
    client_order_id: str | None = None,
) -> list[JournalEntry]:
    """Journal lines in the order they were written, filtered by whatever is given."""
    query = select(journal).order_by(journal.c.id)
    for column, value in (
        ("broker", broker),
        ("account", account),
        ("kind", kind),
        ("client_order_id", client_order_id),
    ):
        if value is not None:
            query = query.where(journal.c[column] == value)
    with reading(bind) as conn:
        rows = list(conn.execute(query))
    return [
        JournalEntry(
            time=cast(dt.datetime, from_db_time(r.time)),
            level=r.level,
            kind=r.kind,
            message=r.message,
            broker=r.broker,
            account=r.account,
            client_order_id=r.client_order_id,
        )
        for r in rows
    ]


# ----------------------------------------------------------------------------- paper accounts
def load_paper_account(bind: Bind, account: str) -> PaperAccountState | None:
    """The stored state of paper account ``account``, or None if it was never opened."""
    with reading(bind) as conn:
        row = conn.execute(select(paper_accounts).where(paper_accounts.c.account == account)).first()
        if row is None:
            return None
        held = conn.execute(
            select(paper_positions).where(paper_positions.c.account == account).order_by(paper_positions.c.symbol)
        )
        positions = {p.symbol: (p.qty, p.avg_price) for p in held}
    return PaperAccountState(
        account, row.cash, from_db_time(row.clock), row.settings, positions, from_db_time(row.last_bar)
    )


def save_paper_account(bind: Bind, state: PaperAccountState) -> None:
    """Write cash, clock, settings and the positions (replacing the stored ones)."""
    values = {
        "account": state.account,
        "cash": float(state.cash),
        "clock": to_db_time(state.clock),
        "last_bar": to_db_time(state.last_bar),
        "settings": state.settings,
        "updated_at": _now(),
    }
    with transaction(bind) as conn:
        _upsert(conn, paper_accounts, values, ("account",))
        conn.execute(delete(paper_positions).where(paper_positions.c.account == state.account))
        rows = [
            {"account": state.account, "symbol": s, "qty": float(q), "avg_price": float(a)}
            for s, (q, a) in sorted(state.positions.items())
        ]
        if rows:
            conn.execute(insert(paper_positions), rows)


def record_equity(bind: Bind, account: str, time: dt.datetime, cash: float, equity: float) -> None:
    """Store (or restate) the account's cash and equity at ``time``."""
    values = {"account": account, "time": to_db_time(time), "cash": float(cash), "equity": float(equity)}
    with transaction(bind) as conn:
        _upsert(conn, paper_equity, values, ("account", "time"))


def equity_history(bind: Bind, account: str) -> pd.DataFrame:
    """The account's ``cash`` and ``equity`` at every time it was marked, indexed by UTC ``timestamp``."""
    query = select(paper_equity).where(paper_equity.c.account == account).order_by(paper_equity.c.time)
    with reading(bind) as conn:
        rows = list(conn.execute(query))
    index = pd.DatetimeIndex([r.time for r in rows], name="timestamp").tz_localize("UTC")
    return pd.DataFrame(
        {"cash": [r.cash for r in rows], "equity": [r.equity for r in rows]}, index=index, dtype="float64"
    )
