"""Exchange calendars (exchange-calendars): which sessions a symbol's bars miss."""

from __future__ import annotations

import warnings

import pandas as pd

from rltrade.errors import SourceError


def sessions(calendar: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    """Session dates of ``calendar`` (e.g. ``XNYS``) between ``start`` and ``end`` inclusive, as UTC midnights."""
    import exchange_calendars as xcals

    try:
        with warnings.catch_warnings():  # exchange-calendars uses pandas APIs that pandas 3 deprecates
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            cal = xcals.get_calendar(
                calendar, start=start.tz_localize(None).normalize(), end=end.tz_localize(None).normalize()
            )
    except xcals.errors.InvalidCalendarName as exc:
        raise SourceError(f"unknown exchange calendar {calendar!r}; e.g. XNYS, XNAS, XLON, XSHG") from exc
    days = cal.sessions_in_range(start.tz_localize(None).normalize(), end.tz_localize(None).normalize())
    return pd.DatetimeIndex(days).tz_localize("UTC")


def missing_sessions(bars: pd.DataFrame, calendar: str = "XNYS") -> dict[str, pd.DatetimeIndex]:
    """Sessions of ``calendar`` within each symbol's first..last bar that have no bar at all.

    Works for any frequency: an intraday symbol misses a session when it has no bar that day.
    Nothing is filled; callers decide (and never back-fill).
    """
    out: dict[str, pd.DatetimeIndex] = {}
    for symbol, part in bars.groupby("symbol", sort=True):
        days = pd.DatetimeIndex(part["timestamp"].array).normalize().unique()
        expected = sessions(calendar, days.min(), days.max())
        out[str(symbol)] = expected.difference(days)
    return out
