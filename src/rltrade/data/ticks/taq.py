"""A generic trades-and-quotes CSV as :class:`~rltrade.data.ticks.schema.Events`.

The file has a header and (in any order, names case-insensitive) the columns::

    timestamp, type, price, size[, symbol]

``type`` is ``TRADE``, ``BID`` or ``ASK``; ``price`` is in dollars (rounded to x 10^4 integers);
``timestamp`` is ISO 8601, with an offset or without one (then it is exchange time, ``tz``).
With a ``symbol`` column only the rows of the requested symbol are read.

Each ``BID``/``ASK`` row is a :data:`~rltrade.data.ticks.schema.QUOTE` event setting that side
of the level-I book (``price``, ``size`` = the new best price and size; the other side carries
forward). Each ``TRADE`` row is an :data:`~rltrade.data.ticks.schema.EXECUTE` event that leaves
the book as it was, its side inferred from the book before it: at or above the ask -1 (a buy
against the ask), at or below the bid +1, strictly inside the spread 0. Order ids are -1.

Rows before both sides of the book are known are **dropped** (their book is incomplete and a
trade among them has no side to infer); they are still checked, and how many were dropped is
logged. A file may hold several days: ``date`` picks one session (by exchange-local date), and
without it the file must hold a single one.
"""

from __future__ import annotations

import io
import logging
import os
import re

import numpy as np
import pandas as pd

from rltrade.data.ticks.schema import EVENT_DTYPES, EXECUTE, NO_ID, PRICE_SCALE, QUOTE, Events
from rltrade.data.ticks.validate import (
    check_field_counts,
    fail,
    first,
    integral,
    numeric,
    read_bytes,
    validate_events,
)
from rltrade.errors import SourceError, UnknownSymbolError

log = logging.getLogger(__name__)

TAQ_COLUMNS: tuple[str, ...] = ("timestamp", "type", "price", "size")
TAQ_TYPES: tuple[str, ...] = ("TRADE", "BID", "ASK")
_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")


def read_taq(
    path: str | os.PathLike[str],
    *,
    symbol: str,
    date: str | None = None,
    tz: str = "America/New_York",
) -> Events:
    """Read and check one session of a trades-and-quotes CSV.

    Parameters
    ----------
    path:
        The CSV file (plain or gzip; a local path or any fsspec URI).
    symbol:
        The ticker the events are stored under (and the rows kept, if the file has a ``symbol``
        column).
    date:
        The session (``YYYY-MM-DD``, exchange-local) to read; default: the file's only one.
    tz:
        The exchange time zone: naive timestamps are read in it, and it dates the sessions.

    Raises
    ------
    SourceError
        The file is missing, lacks a column, or holds no (or several) sessions.
    UnknownSymbolError
        The file's ``symbol`` column does not hold ``symbol``.
    TickValidationError
        Naming the file, the line (the header is line 1) and the reason.
    """
    origin = os.fspath(path)
    data = read_bytes(origin)
    check_field_counts(data, origin)  # the header's field count, on every line
    frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    missing = [c for c in TAQ_COLUMNS if c not in frame.columns]
    if missing:
        raise SourceError(
            f"{origin}: missing column {', '.join(missing)}; a trades-and-quotes CSV has the columns "
            f"{', '.join(TAQ_COLUMNS)} (and optionally symbol); the file has {', '.join(frame.columns)}"
        )
    if len(frame) == 0:
        fail(origin, 2, "the file has a header but no rows")
    lines = np.arange(2, len(frame) + 2)  # line 1 is the header
    if "symbol" in frame.columns:
        names = frame["symbol"].str.strip()
        keep = (names == symbol).to_numpy()
        if not keep.any():
            held = ", ".join(sorted(names.unique())[:20])
            raise UnknownSymbolError(f"{origin} has no rows of symbol {symbol}; it has {held}")
        frame, lines = frame.loc[keep], lines[keep]

    ts, session = _timestamps(frame["timestamp"], origin, lines, tz)
    days = sorted(set(session))
    if date is None and len(days) > 1:
        raise SourceError(f"{origin}: {len(days)} sessions ({days[0]} to {days[-1]}); pick one with date=YYYY-MM-DD")
    date = date or days[0]
    keep = session == date
    if not keep.any():
        raise SourceError(f"{origin}: no rows on {date} ({tz}); the file holds {days[0]} to {days[-1]}")
    frame, lines, ts = frame.loc[keep], lines[keep], ts[keep]
    back = first(ts[1:] < ts[:-1])
    if back is not None:
        fail(origin, int(lines[back + 1]), "time goes backwards (rows must be in time order)")
    return _events(frame, lines, ts, origin, symbol, date, tz)


def _timestamps(values: pd.Series, origin: str, lines: np.ndarray, tz: str) -> tuple[np.ndarray, np.ndarray]:
    """UTC nanoseconds and exchange-local session dates of ISO timestamps (naive ones are in ``tz``)."""
    text = values.str.strip()
    aware = text.str.contains(_OFFSET).to_numpy()
    utc = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")
    if aware.any():
        utc[aware] = pd.to_datetime(text[aware], format="ISO8601", utc=True, errors="coerce")
    if (~aware).any():
        naive = pd.to_datetime(text[~aware], format="ISO8601", errors="coerce")
        local = naive.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
        utc[~aware] = local.dt.tz_convert("UTC")
    bad = first(utc.isna().to_numpy())
    if bad is not None:
        fail(origin, int(lines[bad]), f"unparsable timestamp {text.iat[bad]!r} (ISO 8601 expected)")
    stamps = utc.astype("datetime64[ns, UTC]")
    session = stamps.dt.tz_convert(tz).dt.strftime("%Y-%m-%d").to_numpy()
    return stamps.astype("int64").to_numpy(), session


def _events(
    frame: pd.DataFrame, lines: np.ndarray, ts: np.ndarray, origin: str, symbol: str, date: str, tz: str
) -> Events:
    kind_text = frame["type"].str.strip().str.upper().to_numpy()
    bad = first(~np.isin(kind_text, TAQ_TYPES))
    if bad is not None:
        fail(origin, int(lines[bad]), f"unknown event type {frame['type'].iat[bad]!r} (expected TRADE, BID or ASK)")
    dollars = numeric(frame["price"].to_numpy(), origin, lines, "price")
    bad = first(dollars <= 0)
    if bad is not None:
        fail(origin, int(lines[bad]), f"non-positive price {float(dollars[bad])!r}")
    price = np.rint(dollars * PRICE_SCALE).astype(np.int64)
    bad = first(price <= 0)
    if bad is not None:
        fail(origin, int(lines[bad]), f"price {float(dollars[bad])!r} rounds to 0 at 1/{PRICE_SCALE} dollar")
    size = integral(numeric(frame["size"].to_numpy(), origin, lines, "size"), origin, lines, "size")
    bad = first(size <= 0)
    if bad is not None:
        fail(origin, int(lines[bad]), f"non-positive size {size[bad]}")

    is_bid, is_ask, is_trade = kind_text == "BID", kind_text == "ASK", kind_text == "TRADE"
    bid_price, bid_size = _carry(price, is_bid), _carry(size, is_bid)
    ask_price, ask_size = _carry(price, is_ask), _carry(size, is_ask)
    known = (bid_size > 0) & (ask_size > 0)
    start = first(known)
    if start is None:
        raise SourceError(f"{origin}: no row on {date} has both a bid and an ask before it; no book to keep")
    if start:
        log.info("%s: dropped %d rows before both sides of the book were known", origin, start)
    # A trade's side comes from the book before it; trades leave the book unchanged, so the book
    # before row i is the book after row i - 1.
    prev = np.maximum(np.arange(len(price)) - 1, 0)
    side = np.where(
        is_bid,
        1,
        np.where(is_ask, -1, np.where(price >= ask_price[prev], -1, np.where(price <= bid_price[prev], 1, 0))),
    )
    keep = slice(start, None)
    events = Events(
        symbol=symbol,
        date=date,
        ts=ts[keep].astype(np.int64),
        kind=np.where(is_trade, EXECUTE, QUOTE)[keep].astype(EVENT_DTYPES["kind"]),
        order_id=np.full(len(price) - start, NO_ID, dtype=np.int64),
        size=size[keep],
        price=price[keep],
        side=side[keep].astype(EVENT_DTYPES["side"]),
        ask_price=ask_price[keep],
        ask_size=ask_size[keep],
        bid_price=bid_price[keep],
        bid_size=bid_size[keep],
        tz=tz,
    )
    validate_events(events, origin=origin, lines=lines[keep])
    return events


def _carry(values: np.ndarray, where: np.ndarray) -> np.ndarray:
    """``values`` at the rows of ``where``, carried forward to the rows after; 0 before the first."""
    last = np.maximum.accumulate(np.where(where, np.arange(len(values)), -1))
    return np.where(last >= 0, values[np.maximum(last, 0)], 0).astype(np.int64)
