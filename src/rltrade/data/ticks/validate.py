"""Checks of tick input: bad files and bad event tables are refused with the file, the line and the reason.

Two kinds of check live here. The *file* checks run on the raw bytes before any value is used:
an unreadable or truncated gzip, an empty file, a line with the wrong number of fields, a field
that is not a number. The *event* checks (:func:`validate_events`) run on an :class:`Events`
table, whichever reader built it, and again before the store writes one: known event kinds,
time never going backwards, positive sizes and prices, a level-I book that is neither crossed
nor locked and whose empty sides are marked the one way described below.

Every refusal is a :class:`TickValidationError` whose one-line message reads
``FILE, line N: REASON``; ``N`` is the 1-based line number in that file (a CSV header is line 1).
For a table that comes from no file (the store, the synthetic generator) rows are named
``event N`` (1-based position in the table) instead.

Empty book sides
----------------
LOBSTER fills an empty side of the book with a dummy price (:data:`EMPTY_ASK_PRICE`
9999999999 for the ask, :data:`EMPTY_BID_PRICE` -9999999999 for the bid) and size 0. Such rows
are *kept*, with exactly that marking: a side is present when its size is positive and empty
when its size is 0 and its price is the dummy. Refusing them would refuse real files (a thin
book at the open or close empties a side now and then), and the dummies err on the safe side:
an order crossing an empty side meets a price no strategy would pay, never a free fill. Any
other zero or negative book entry is refused.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import NoReturn

import fsspec
import numpy as np

from rltrade.data.ticks.schema import (
    EVENT_COLUMNS,
    EVENT_KINDS,
    HALT,
    QUOTE,
    Events,
)
from rltrade.errors import DataValidationError, SourceError

#: The price LOBSTER writes for an empty ask side (its size is then 0).
EMPTY_ASK_PRICE = 9_999_999_999
#: The price LOBSTER writes for an empty bid side (its size is then 0).
EMPTY_BID_PRICE = -9_999_999_999
#: LOBSTER's halt messages carry a state in the price column: halted, quoting, trading resumed.
HALT_STATES: tuple[int, ...] = (-1, 0, 1)

_CHUNK = 1 << 20  # gzip is inflated in pieces, so a corrupt stream can be placed on a line


class TickValidationError(DataValidationError):
    """Tick input is malformed; the message names the file (or the table), the line (or event) and the reason.

    Attributes
    ----------
    origin:
        The file (or table) at fault.
    line:
        1-based line number in ``origin`` (or event number), ``None`` when the fault has no row.
    reason:
        What is wrong.
    """

    def __init__(self, origin: str, line: int | None, reason: str, *, unit: str = "line") -> None:
        self.origin, self.line, self.reason = origin, line, reason
        where = origin if line is None else f"{origin}, {unit} {line}"
        super().__init__(f"{where}: {reason}")

    def __reduce__(self) -> tuple[object, ...]:  # picklable despite the keyword-only argument
        return (_rebuild, (self.origin, self.line, self.reason, str(self)))


def _rebuild(origin: str, line: int | None, reason: str, message: str) -> TickValidationError:
    err = TickValidationError.__new__(TickValidationError)
    err.origin, err.line, err.reason = origin, line, reason
    DataValidationError.__init__(err, message)
    return err


def fail(origin: str, line: int | None, reason: str, *, unit: str = "line") -> NoReturn:
    """Raise :class:`TickValidationError` for ``origin`` at ``line``."""
    raise TickValidationError(origin, line, reason, unit=unit)


def first(mask: np.ndarray) -> int | None:
    """Index of the first True of ``mask``, or None."""
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else None


# --------------------------------------------------------------------------------- files
def read_bytes(path: str) -> bytes:
    """The content of ``path`` (local or fsspec URI), gunzipped when it is gzip; refused when empty.

    Raises
    ------
    SourceError
        The file does not exist or cannot be opened.
    TickValidationError
        A truncated or corrupt gzip (naming the line where the data stop), or an empty file.
    """
    try:
        with fsspec.open(path, "rb") as fh:
            raw: bytes = fh.read()
    except FileNotFoundError:
        raise SourceError(f"{path}: file not found") from None
    except (OSError, ValueError) as exc:
        raise SourceError(f"{path}: cannot be read: {exc}") from None
    data = _gunzip(raw, path) if raw[:2] == b"\x1f\x8b" or path.endswith(".gz") else raw
    if not data.strip():
        fail(path, 1, "the file is empty")
    return data


def _gunzip(raw: bytes, path: str) -> bytes:
    """Inflate every gzip member of ``raw``; a stream cut short or corrupt is refused at its line."""
    out: list[bytes] = []
    lines = 0
    rest = raw
    while rest:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        pos = 0
        while pos < len(rest) and not inflater.eof:
            try:
                piece = inflater.decompress(rest[pos : pos + _CHUNK])
            except zlib.error as exc:
                fail(path, lines + 1, f"corrupt gzip data ({exc}) after {lines:,} complete lines")
            out.append(piece)
            lines += piece.count(b"\n")
            pos += _CHUNK
        if not inflater.eof:
            out.append(inflater.flush())
            lines = sum(p.count(b"\n") for p in out)
            fail(
                path,
                lines + 1,
                f"truncated gzip: the compressed data end before the end of the stream, after {lines:,} "
                "complete lines (the file was cut short; copy or download it again)",
            )
        rest = inflater.unused_data.lstrip(b"\0")  # gzip allows trailing zero padding
    return b"".join(out)


def check_field_counts(data: bytes, origin: str, ncols: int | None = None, *, multiple_of: int = 1) -> int:
    """Check that every line of ``data`` has the same number of comma-separated fields; return it.

    ``ncols`` is the expected count (``None``: the first line's, which must then be a multiple of
    ``multiple_of``). Empty lines inside the file are refused as well (empty lines at its end
    are ignored). Fields are not quoted in tick files, so commas are counted directly.
    """
    buf = np.frombuffer(data.rstrip(b"\r\n"), dtype=np.uint8)  # trailing newlines end the file
    ends = np.flatnonzero(buf == ord("\n"))
    if buf.size and buf[-1] != ord("\n"):
        ends = np.append(ends, buf.size)  # the last line has no newline
    commas = np.bincount(np.searchsorted(ends, np.flatnonzero(buf == ord(",")), side="left"), minlength=ends.size)
    fields = commas[: ends.size] + 1
    starts = np.concatenate([[0], ends[:-1] + 1])
    length = ends - starts
    length -= (length > 0) & (buf[np.maximum(ends - 1, 0)] == ord("\r"))  # CRLF line ends
    expected = int(fields[0]) if ncols is None else ncols
    if ncols is None and expected % multiple_of:
        fail(origin, 1, f"{expected} fields; expected a multiple of {multiple_of}")
    blank = first(length == 0)
    if blank is not None:
        fail(origin, blank + 1, "empty line")
    wrong = first(fields != expected)
    if wrong is not None:
        fail(origin, wrong + 1, f"{int(fields[wrong])} fields; expected {expected}")
    return expected


def numeric(values: np.ndarray, origin: str, lines: np.ndarray, name: str) -> np.ndarray:
    """``values`` (one column as parsed) as float64; a missing or non-numeric field is refused at its line."""
    import pandas as pd

    series = pd.Series(values)
    parsed = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64")
    bad = first(~np.isfinite(parsed))
    if bad is not None:
        value = series.iat[bad]
        text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value).strip()
        what = "empty field" if text == "" else f"{text!r} is not a number"
        fail(origin, int(lines[bad]), f"'{name}': {what}")
    return parsed


def integral(values: np.ndarray, origin: str, lines: np.ndarray, name: str) -> np.ndarray:
    """Values that must be whole numbers, as int64 (refused at the first fraction)."""
    if np.issubdtype(values.dtype, np.integer):
        return values.astype(np.int64, copy=False)
    rounded = np.rint(values)
    bad = first(np.abs(values - rounded) > 1e-9 * np.maximum(1.0, np.abs(values)))
    if bad is not None:
        fail(origin, int(lines[bad]), f"'{name}' {float(values[bad])!r} is not a whole number")
    return rounded.astype(np.int64)


def check_row_counts(message_origin: str, n_messages: int, book_origin: str, n_book: int) -> None:
    """Refuse a message file and an orderbook file of different lengths (they pair line by line)."""
    if n_messages != n_book:
        shorter = book_origin if n_book < n_messages else message_origin
        fail(
            shorter,
            min(n_messages, n_book) + 1,
            f"the message file has {n_messages:,} rows but the orderbook file has {n_book:,}; "
            "they must pair line by line (is one of them cut short, or from another day?)",
        )


# --------------------------------------------------------------------------------- events
def validate_events(
    events: Events,
    *,
    origin: str | None = None,
    book_origin: str | None = None,
    lines: np.ndarray | None = None,
) -> None:
    """Check an event table; raise :class:`TickValidationError` at the first offending row.

    Parameters
    ----------
    events:
        The table.
    origin:
        The file the events were read from (``None``: the table itself, rows named ``event N``).
    book_origin:
        The file the book columns were read from, when not ``origin`` (LOBSTER's orderbook file).
    lines:
        Each row's line number in the file(s); default ``1..N``.

    Checks: equal-length 1-D integer columns; known kinds; time non-decreasing; order events
    (submit, cancel, delete, executions, quotes) with a positive size and price and a side of
    +1 or -1 (an execution may have side 0: a trade whose side could not be inferred); halts with
    a halt state as price; each book side either present (size and price positive, below the
    dummy) or empty (size 0 at its dummy price); a book with both sides present neither crossed
    nor locked (ask > bid).
    """
    unit = "line" if origin is not None else "event"
    where = origin if origin is not None else f"events of {events.symbol} {events.date}"
    book_where = book_origin or where
    n = len(events)
    _check_columns(events, where)
    if n == 0:
        fail(where, None, "no events")
    rows = np.arange(1, n + 1) if lines is None else np.asarray(lines)

    def refuse(mask: np.ndarray, reason: str | Callable[[int], str], file: str = where) -> None:
        bad = first(mask)
        if bad is not None:
            fail(file, int(rows[bad]), reason(bad) if callable(reason) else reason, unit=unit)

    kind = events.kind.astype(np.int64)
    refuse(~np.isin(kind, EVENT_KINDS), lambda i: f"unknown event type {kind[i]} (known: {_kinds()})")
    ts = events.ts
    refuse(
        np.concatenate([[False], ts[1:] < ts[:-1]]),
        lambda i: f"time goes backwards ({_stamp(ts[i])} after {_stamp(ts[i - 1])})",
    )
    order = kind != HALT
    refuse(order & (events.size <= 0), lambda i: f"non-positive size {events.size[i]}")
    refuse(order & (events.price <= 0), lambda i: f"non-positive price {events.price[i]}")
    may_be_unknown = kind == 4  # an EXECUTE whose side a trades-and-quotes reader could not infer
    side_ok = (events.side == 1) | (events.side == -1) | (may_be_unknown & (events.side == 0))
    refuse(order & ~side_ok, lambda i: f"side {events.side[i]} (expected +1 bid or -1 ask)")
    refuse(
        ~order & ~np.isin(events.price, HALT_STATES),
        lambda i: f"halt with price {events.price[i]} (LOBSTER halt states are -1, 0, 1)",
    )
    _check_book(events, book_where, rows, unit)


def _check_columns(events: Events, where: str) -> None:
    n = len(events)
    for col in EVENT_COLUMNS:
        arr = getattr(events, col)
        if not isinstance(arr, np.ndarray) or arr.ndim != 1 or arr.shape[0] != n:
            fail(where, None, f"column '{col}' is not a 1-D array of {n} values")
        if not np.issubdtype(arr.dtype, np.integer):
            fail(where, None, f"column '{col}' has dtype {arr.dtype}; expected an integer dtype")


def _check_book(events: Events, where: str, rows: np.ndarray, unit: str) -> None:
    for name, dummy in (("ask", EMPTY_ASK_PRICE), ("bid", EMPTY_BID_PRICE)):
        price, size = getattr(events, f"{name}_price"), getattr(events, f"{name}_size")
        checks = (
            (size < 0, f"negative {name} size"),
            ((size == 0) & (price != dummy), f"{name} size 0 at price {{p}}: an empty side carries the price {dummy}"),
            ((size > 0) & ((price <= 0) | (price >= EMPTY_ASK_PRICE)), f"{name} price {{p}} with size {{s}}"),
        )
        for mask, reason in checks:
            bad = first(mask)
            if bad is not None:
                fail(where, int(rows[bad]), reason.format(p=price[bad], s=size[bad]), unit=unit)
    both = (events.ask_size > 0) & (events.bid_size > 0)
    bad = first(both & (events.ask_price <= events.bid_price))
    if bad is not None:
        a, b = events.ask_price[bad], events.bid_price[bad]
        state = "locked" if a == b else "crossed"
        fail(where, int(rows[bad]), f"{state} book: ask {a} <= bid {b}", unit=unit)


def _kinds() -> str:
    names = {1: "submit", 2: "cancel", 3: "delete", 4: "execute", 5: "hidden", 7: "halt", QUOTE: "quote"}
    return ", ".join(f"{k} {names[k]}" for k in EVENT_KINDS)


def _stamp(ns: np.int64) -> str:
    import pandas as pd

    return pd.Timestamp(int(ns), unit="ns", tz="UTC").isoformat()
