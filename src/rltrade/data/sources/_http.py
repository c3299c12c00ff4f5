"""Small helpers both network sources share: symbol clean-up and date windows.

Retries live in :mod:`rltrade.shared.retry` (re-exported here for the sources' imports).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from rltrade.errors import SourceError
from rltrade.shared.retry import DEFAULT_RETRY, RetryPolicy, classify_failure, http_status, retry_call

__all__ = [
    "DEFAULT_RETRY",
    "RetryPolicy",
    "classify_failure",
    "clean_symbols",
    "day_window",
    "http_status",
    "in_window",
    "retry_call",
]


def clean_symbols(symbols: Sequence[str], source: str) -> list[str]:
    """Upper-cased, stripped, de-duplicated symbols in request order.

    Parameters
    ----------
    symbols:
        Symbols as the user typed them.
    source:
        Source name for the error message.
    """
    out: list[str] = []
    for raw in symbols:
        sym = str(raw).strip().upper()
        if sym and sym not in out:
            out.append(sym)
    if not out:
        raise SourceError(f"{source} needs at least one symbol (for example AAPL,MSFT)")
    return out


def day_window(start: str | None, end: str | None) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """Turn inclusive calendar-date bounds into ``[start, end_exclusive)`` UTC timestamps.

    Parameters
    ----------
    start:
        First day wanted (``YYYY-MM-DD``), or ``None`` for the source's earliest.
    end:
        Last day wanted, inclusive (``YYYY-MM-DD``), or ``None`` for up to now.

    Returns
    -------
    tuple
        Midnight UTC of ``start`` and midnight UTC of the day after ``end`` (``None`` kept).
    """
    lo = _utc_day(start, "start")
    hi = _utc_day(end, "end")
    if hi is not None:
        hi = hi + pd.Timedelta(days=1)
    if lo is not None and hi is not None and lo >= hi:
        raise SourceError(f"start {start} is after end {end}")
    return lo, hi


def _utc_day(value: str | None, name: str) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise SourceError(f"{name} {value!r} is not a date; use YYYY-MM-DD") from exc
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.normalize()


def in_window(frame: pd.DataFrame, lo: pd.Timestamp | None, hi: pd.Timestamp | None) -> pd.DataFrame:
    """Rows of a canonical ``frame`` with ``lo <= timestamp < hi``, sorted by timestamp."""
    keep = pd.Series(True, index=frame.index)
    if lo is not None:
        keep &= frame["timestamp"] >= lo
    if hi is not None:
        keep &= frame["timestamp"] < hi
    return frame.loc[keep].sort_values("timestamp", kind="stable").reset_index(drop=True)
