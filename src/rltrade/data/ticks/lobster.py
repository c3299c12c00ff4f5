"""LOBSTER message + orderbook files as :class:`~rltrade.data.ticks.schema.Events`.

LOBSTER (https://lobsterdata.com) ships one day of one ticker as two headerless CSV files that
pair line by line::

    TICKER_YYYY-MM-DD_START_END_message_LEVEL.csv     time, type, order id, size, price, direction
    TICKER_YYYY-MM-DD_START_END_orderbook_LEVEL.csv   ask price 1, ask size 1, bid price 1, bid size 1, ...

Times are seconds after midnight in exchange time (America/New_York); prices are dollars x 10^4.
Only the first level of the orderbook file is kept (a file of more levels is accepted). How the
columns map to the schema:

============  ==============================================================================
``ts``        the session date at midnight in ``tz`` plus the seconds, as UTC nanoseconds
              (a wall-clock time, localised with zoneinfo rules, so daylight saving is right)
``kind``      LOBSTER's type (1-5, 7) unchanged; any other type is refused
``order_id``  the order reference; LOBSTER's 0 for hidden executions and halts becomes -1
``side``      LOBSTER's direction (the resting limit order's side); 0 for halts
``price``     unchanged; for a halt LOBSTER's state code (-1 halted, 0 quoting, 1 trading)
============  ==============================================================================

Empty book sides (LOBSTER's dummy prices +/-9999999999 with size 0) are kept as they are; see
:mod:`rltrade.data.ticks.validate`. Not modelled: type 6 (cross trades, i.e. the opening and
closing auctions, in newer LOBSTER files) has no kind in the schema and is refused.
"""

from __future__ import annotations

import io
import os
import re

import numpy as np
import pandas as pd

from rltrade.data.ticks.schema import EVENT_DTYPES, HALT, HIDDEN, NO_ID, Events
from rltrade.data.ticks.validate import (
    check_field_counts,
    check_row_counts,
    fail,
    first,
    integral,
    numeric,
    read_bytes,
    validate_events,
)
from rltrade.errors import SourceError

EXCHANGE_TZ = "America/New_York"
LOBSTER_TYPES: tuple[int, ...] = (1, 2, 3, 4, 5, 7)
MESSAGE_COLUMNS: tuple[str, ...] = ("time", "type", "order id", "size", "price", "direction")
BOOK_COLUMNS: tuple[str, ...] = ("ask price", "ask size", "bid price", "bid size")

_NAME = re.compile(
    r"^(?P<symbol>.+?)_(?P<date>\d{4}-\d{2}-\d{2})_(?P<start>\d+)_(?P<end>\d+)_message_(?P<level>\d+)\.csv(?:\.gz)?$"
)
_MESSAGE_SUFFIX = re.compile(r"_message_(\d+)(\.csv(?:\.gz)?)$")


def read_lobster(
    message_path: str | os.PathLike[str],
    orderbook_path: str | os.PathLike[str] | None = None,
    *,
    symbol: str | None = None,
    date: str | None = None,
    tz: str = EXCHANGE_TZ,
) -> Events:
    """Read and check one LOBSTER session.

    Parameters
    ----------
    message_path:
        The message file (plain or gzip; a local path or any fsspec URI).
    orderbook_path:
        The orderbook file; default: the message file's name with ``_message_`` replaced by
        ``_orderbook_`` (``GOOG_..._message_1.csv.gz`` -> ``GOOG_..._orderbook_1.csv.gz``).
    symbol, date:
        The ticker and the session date (``YYYY-MM-DD``); default: from the message file's name
        ``TICKER_YYYY-MM-DD_START_END_message_LEVEL.csv``.
    tz:
        The exchange time zone the seconds after midnight are counted in.

    Raises
    ------
    SourceError
        A file is missing, or the symbol, date or orderbook file cannot be told from the name.
    TickValidationError
        Naming the file, the line and the reason (see :mod:`rltrade.data.ticks.validate`).
    """
    message = os.fspath(message_path)
    book = os.fspath(orderbook_path) if orderbook_path is not None else orderbook_for(message)
    named = _NAME.match(_basename(message))
    symbol = symbol or (named["symbol"] if named else None)
    date = date or (named["date"] if named else None)
    if not symbol or not date:
        raise SourceError(
            f"{message}: cannot tell the {'symbol' if not symbol else 'date'} from the file name "
            "(LOBSTER names files TICKER_YYYY-MM-DD_START_END_message_LEVEL.csv); "
            "pass it (--symbols NAME, --date YYYY-MM-DD)"
        )
    midnight = session_midnight(date, message)
    msg_data, book_data = read_bytes(message), read_bytes(book)
    check_field_counts(msg_data, message, len(MESSAGE_COLUMNS))
    check_field_counts(book_data, book, None, multiple_of=len(BOOK_COLUMNS))  # 4 columns per level
    msg = _parse(msg_data, message, MESSAGE_COLUMNS)
    ob = _parse(book_data, book, BOOK_COLUMNS, usecols=range(len(BOOK_COLUMNS)))
    check_row_counts(message, len(msg[0]), book, len(ob[0]))
    lines = np.arange(1, len(msg[0]) + 1)

    seconds, kind_f, oid_f, size_f, price_f, direction_f = msg
    kind = integral(kind_f, message, lines, "type")
    bad = first(~np.isin(kind, LOBSTER_TYPES))
    if bad is not None:
        extra = " (cross trades / auctions have no kind in the schema)" if kind[bad] == 6 else ""
        fail(message, bad + 1, f"unknown event type {kind[bad]}{extra}; LOBSTER types are 1-5 and 7")
    direction = integral(direction_f, message, lines, "direction")
    bad = first((direction != 1) & (direction != -1))
    if bad is not None:
        fail(message, bad + 1, f"direction {direction[bad]} (expected 1 buy or -1 sell limit order)")
    bad = first(seconds < 0)
    if bad is not None:
        fail(message, bad + 1, f"negative time {float(seconds[bad])!r} s after midnight")
    order_id = integral(oid_f, message, lines, "order id")
    no_order = (kind == HIDDEN) | (kind == HALT)
    order_id = np.where(no_order & (order_id == 0), NO_ID, order_id)
    halted = kind == HALT
    events = Events(
        symbol=symbol,
        date=date,
        ts=to_utc_ns(midnight, seconds, tz, message),
        kind=kind.astype(EVENT_DTYPES["kind"]),
        order_id=order_id.astype(EVENT_DTYPES["order_id"]),
        size=integral(size_f, message, lines, "size"),
        price=integral(price_f, message, lines, "price"),
        side=np.where(halted, 0, direction).astype(EVENT_DTYPES["side"]),
        ask_price=integral(ob[0], book, lines, "ask price"),
        ask_size=integral(ob[1], book, lines, "ask size"),
        bid_price=integral(ob[2], book, lines, "bid price"),
        bid_size=integral(ob[3], book, lines, "bid size"),
        tz=tz,
    )
    validate_events(events, origin=message, book_origin=book)
    return events


def orderbook_for(message_path: str) -> str:
    """The orderbook file beside a LOBSTER message file (``..._message_1.csv.gz`` -> ``..._orderbook_1.csv.gz``)."""
    base = _basename(message_path)
    if not _MESSAGE_SUFFIX.search(base):
        raise SourceError(
            f"{message_path}: cannot derive the orderbook file from the name (expected ..._message_LEVEL.csv "
            "or .csv.gz); pass the orderbook file (--orderbook PATH)"
        )
    return message_path[: len(message_path) - len(base)] + _MESSAGE_SUFFIX.sub(r"_orderbook_\1\2", base)


def session_midnight(date: str, origin: str) -> np.datetime64:
    """Midnight of ``date`` (``YYYY-MM-DD``) as a naive wall-clock instant; a bad date is refused."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
        raise SourceError(f"{origin}: session date {date!r} is not YYYY-MM-DD")
    try:
        return np.datetime64(date, "ns")
    except ValueError:
        raise SourceError(f"{origin}: session date {date!r} does not exist") from None


def to_utc_ns(midnight: np.datetime64, seconds: np.ndarray, tz: str, origin: str) -> np.ndarray:
    """Wall-clock seconds after ``midnight`` in ``tz`` as UTC nanoseconds since the epoch (int64).

    The wall-clock times are localised with the zone's rules, so a session on either side of a
    daylight-saving change gets its own offset; a time that does not exist or exists twice on
    that day (the hour of the change, never in a trading session) is refused.
    """
    wall = midnight.astype(np.int64) + np.rint(seconds * 1e9).astype(np.int64)
    local = pd.DatetimeIndex(wall.view("datetime64[ns]")).tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    bad = first(np.asarray(local.isna()))
    if bad is not None:
        when = f"{float(seconds[bad])!r} s after midnight"
        fail(origin, bad + 1, f"{when} does not exist, or exists twice, in {tz} that day")
    return np.asarray(local.asi8, dtype=np.int64)


def _basename(path: str) -> str:
    return path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def _parse(data: bytes, origin: str, names: tuple[str, ...], usecols: range | None = None) -> list[np.ndarray]:
    """The columns of a headerless numeric CSV (int64 where every value is whole, else float64).

    A missing or non-numeric field is refused at its line.
    """
    frame = pd.read_csv(io.BytesIO(data), header=None, usecols=usecols, dtype=None, low_memory=False)
    lines = np.arange(1, len(frame) + 1)
    out = []
    for col, name in zip(frame.columns, names, strict=True):
        series = frame[col]
        if pd.api.types.is_integer_dtype(series.dtype):
            out.append(series.to_numpy(dtype=np.int64))
        else:
            out.append(numeric(series.to_numpy(), origin, lines, name))
    return out
