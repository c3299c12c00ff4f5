"""Write small LOBSTER and trades-and-quotes files for the tick tests (never the real sample)."""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from rltrade.data.ticks.schema import HALT, HIDDEN, Events

NS = 10**9


def write_pair(
    directory: Path,
    messages: Sequence[str],
    book: Sequence[str],
    *,
    name: str = "TEST_2012-06-21_34200000_57600000",
    gz: bool = False,
) -> Path:
    """Write ``messages`` and ``book`` lines as a LOBSTER pair; return the message file."""
    suffix = ".csv.gz" if gz else ".csv"
    msg = directory / f"{name}_message_1{suffix}"
    ob = directory / f"{name}_orderbook_1{suffix}"
    for path, lines in ((msg, messages), (ob, book)):
        text = "".join(line + "\n" for line in lines).encode()
        path.write_bytes(gzip.compress(text) if gz else text)
    return msg


def seconds_after_midnight(ts: np.ndarray, day: str, tz: str) -> list[str]:
    """UTC nanoseconds as LOBSTER's wall-clock seconds after midnight, exact to the nanosecond."""
    zone = ZoneInfo(tz)
    midnight_days = (date.fromisoformat(day) - date(1970, 1, 1)).days
    out = []
    for value in ts.tolist():
        offset = datetime.fromtimestamp(value // NS, UTC).astimezone(zone).utcoffset()
        assert offset is not None
        local = value + int(offset.total_seconds()) * NS - midnight_days * 86400 * NS
        out.append(f"{local // NS}.{local % NS:09d}")
    return out


def lobster_lines(events: Events) -> tuple[list[str], list[str]]:
    """``events`` as the lines of a LOBSTER message and level-1 orderbook file."""
    times = seconds_after_midnight(events.ts, events.date, events.tz)
    messages, book = [], []
    for i, t in enumerate(times):
        kind = int(events.kind[i])
        oid = 0 if kind in (HIDDEN, HALT) and events.order_id[i] == -1 else int(events.order_id[i])
        side = -1 if kind == HALT else int(events.side[i])
        messages.append(f"{t},{kind},{oid},{events.size[i]},{events.price[i]},{side}")
        book.append(f"{events.ask_price[i]},{events.ask_size[i]},{events.bid_price[i]},{events.bid_size[i]}")
    return messages, book


def write_lobster(events: Events, directory: Path, *, gz: bool = True) -> Path:
    """Write ``events`` as a LOBSTER pair named after their symbol and date; return the message file."""
    messages, book = lobster_lines(events)
    return write_pair(directory, messages, book, name=f"{events.symbol}_{events.date}_34200000_57600000", gz=gz)
