"""Bars per year from the bar frequency and the market's hours, on real timestamps."""

from __future__ import annotations

import pandas as pd
import pytest

from rltrade.data.annualization import DAILY, Annualization, annualization, detect_market
from rltrade.data.sources import fetch


def _nyse_hourly(start: str, end: str) -> pd.DatetimeIndex:
    """Hourly bar stamps of the real XNYS sessions (holidays and early closes included)."""
    import warnings

    import exchange_calendars as xcals

    stamps = []
    with warnings.catch_warnings():  # exchange-calendars uses pandas APIs that pandas 3 deprecates
        warnings.simplefilter("ignore")
        cal = xcals.get_calendar("XNYS", start=start, end=end)
        for session in cal.sessions_in_range(start, end):
            opened, closed = cal.session_open(session), cal.session_close(session)
            stamps.extend(pd.date_range(opened, closed - pd.Timedelta(minutes=1), freq="1h"))
    return pd.DatetimeIndex(stamps)


def test_hourly_fx_is_24x5() -> None:
    stamps = fetch("sample:eurusd")[0].frame["timestamp"]
    ann = annualization(stamps, "1h")
    assert (ann.periods_per_year, ann.market) == (6240, "24x5")
    assert "24 bars a day × 260 days" in ann.basis


def test_daily_stocks_are_252() -> None:
    stamps = pd.concat([r.frame for r in fetch("sample:stocks")])["timestamp"]
    assert annualization(stamps, "1d").periods_per_year == 252


def test_nyse_hours_with_holidays_and_early_closes() -> None:
    stamps = _nyse_hourly("2023-11-01", "2024-01-31")  # Thanksgiving, its early close, Christmas, New Year
    assert detect_market(stamps, "1h") == "exchange"
    ann = annualization(stamps, "1h")
    assert ann.periods_per_year == 252 * 7  # 09:30..16:00 ET in hourly bars: 7 a session
    assert "7 bars a session" in ann.basis


def test_weekend_bars_are_24x7() -> None:
    stamps = pd.date_range("2024-01-01", periods=24 * 60, freq="1h", tz="UTC")
    assert annualization(stamps, "1h").periods_per_year == 24 * 365
    assert annualization(pd.date_range("2024-01-01", periods=100, freq="D"), "1d").periods_per_year == 365


def test_explicit_and_forced_market_win() -> None:
    stamps = fetch("sample:eurusd")[0].frame["timestamp"]
    assert annualization(stamps, "1h", periods_per_year=1000).periods_per_year == 1000
    assert annualization(stamps, "1h", market="24x7").periods_per_year == 8760


def test_round_trip_and_old_runs() -> None:
    ann = annualization(fetch("sample:eurusd")[0].frame["timestamp"], "1h")
    assert Annualization.from_dict(ann.to_dict()) == ann
    assert Annualization.from_dict(None) is DAILY  # a run written before annualization was recorded


def test_unknown_frequency() -> None:
    with pytest.raises(ValueError, match="unknown bar frequency"):
        annualization(pd.DatetimeIndex([]), "5m")
