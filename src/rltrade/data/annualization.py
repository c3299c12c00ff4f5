"""How many bars make a year: the annualisation of every Sharpe ratio, volatility and turnover.

Annualised figures multiply per-bar statistics by the bars per year of the *market*, not by
252 regardless of the bar size:

======================  ==============================================  ====================
market                  periods per year                                1h bars
======================  ==============================================  ====================
``exchange``            252 sessions × bars per session                 252 × 7 = 1,764 (NYSE)
``24x5`` (FX)           260 weekdays × 24 h / bar                       6,240
``24x7`` (crypto)       365 days × 24 h / bar                           8,760
======================  ==============================================  ====================

Daily bars are 252 a year on an exchange and for FX (the convention of empyrical and of every
published Sharpe ratio), 365 for a market that trades every day. ``market="auto"`` reads the
kind of market from the timestamps: bars at (nearly) every time of day are a continuous market,
24×7 if Saturdays have bars and 24×5 otherwise; anything else is an exchange, whose bars per
session is the median number of bars per UTC date. :func:`annualization` returns the result
with a sentence saying how it was obtained, which the run's manifest, the CLI and the report
quote.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from rltrade.data.schema import FREQ_TIMEDELTA
from rltrade.errors import RLTradeError

Market = Literal["auto", "exchange", "24x5", "24x7"]
MARKETS: tuple[Market, ...] = ("auto", "exchange", "24x5", "24x7")
SESSIONS_PER_YEAR = {"exchange": 252, "24x5": 260, "24x7": 365}
#: Share of the day's time slots that must carry bars for an intraday market to count as continuous.
CONTINUOUS_COVERAGE = 0.9
#: Share of bars on Saturdays (UTC) above which a market trades at weekends.
WEEKEND_SHARE = 0.01


class AnnualizationError(RLTradeError, ValueError):
    """An unknown frequency or market, or a non-positive periods-per-year figure."""


@dataclass(frozen=True)
class Annualization:
    """Bars per year and how they were obtained.

    Attributes
    ----------
    periods_per_year:
        Bars per year: the annualisation factor of means (×N) and volatilities (×√N).
    basis:
        One sentence for people, e.g. ``"1h bars, 24x5 market: 24 bars a day × 260 days = 6,240 a year"``.
    market:
        ``exchange``, ``24x5``, ``24x7`` or ``explicit`` (a number given in the config).
    freq:
        The bar frequency (``1d``, ``1h``, ``1min``) or None when unknown.
    """

    periods_per_year: int
    basis: str
    market: str
    freq: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (stored in ``manifest.json`` under ``annualization``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Annualization:
        """Read :meth:`to_dict`'s output; None or malformed (a run written before this field) is daily, 252."""
        if not isinstance(data, dict):
            return DAILY
        ppy = data.get("periods_per_year")
        if isinstance(ppy, bool) or not isinstance(ppy, int | float) or not math.isfinite(ppy) or ppy < 1:
            return DAILY
        basis = str(data.get("basis") or f"{int(ppy):,} bars a year")
        freq = data.get("freq")
        return cls(int(ppy), basis, str(data.get("market") or ""), str(freq) if freq else None)

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> Annualization:
        """The ``annualization`` of a run's manifest (or ``backtest.json``); daily, 252, when absent."""
        return cls.from_dict(manifest.get("annualization"))

    @property
    def sqrt_text(self) -> str:
        """``"√252"`` style, for table titles."""
        return f"√{self.periods_per_year:,}"


DAILY = Annualization(252, "daily bars: 252 a year", "exchange", "1d")


def explicit(periods_per_year: int, freq: str | None = None) -> Annualization:
    """A periods-per-year figure set in the config (``evaluation.periods_per_year``)."""
    if periods_per_year < 1:
        raise AnnualizationError(f"periods_per_year must be >= 1, got {periods_per_year}")
    return Annualization(
        int(periods_per_year),
        f"{periods_per_year:,} bars a year (set in evaluation.periods_per_year)",
        "explicit",
        freq,
    )


def detect_market(timestamps: pd.DatetimeIndex | pd.Series | np.ndarray, freq: str) -> str:
    """``exchange``, ``24x5`` or ``24x7`` from the bar timestamps (see the module docstring)."""
    stamps = _utc(timestamps)
    if len(stamps) == 0:
        return "exchange"
    saturday = float(np.mean(stamps.day_of_week == 5))
    if freq == "1d":
        return "24x7" if saturday > WEEKEND_SHARE else "exchange"
    bar = FREQ_TIMEDELTA[freq]
    slots = int(pd.Timedelta(days=1) / bar)
    minutes = stamps.hour * 60 + stamps.minute
    seen = len(np.unique((minutes // max(int(bar / pd.Timedelta(minutes=1)), 1)).to_numpy()))
    if seen >= CONTINUOUS_COVERAGE * slots:
        return "24x7" if saturday > WEEKEND_SHARE else "24x5"
    return "exchange"


def annualization(
    timestamps: pd.DatetimeIndex | pd.Series | np.ndarray,
    freq: str | None,
    market: Market = "auto",
    periods_per_year: int | None = None,
) -> Annualization:
    """Bars per year of bars stamped ``timestamps`` at frequency ``freq``.

    Parameters
    ----------
    timestamps:
        Bar timestamps (UTC, naive or aware); the more history, the better the estimate of
        bars per session.
    freq:
        ``1d``, ``1h`` or ``1min`` (None: daily).
    market:
        ``auto`` (read from the timestamps), ``exchange``, ``24x5`` or ``24x7``.
    periods_per_year:
        An explicit figure, which wins over everything else.
    """
    freq = freq or "1d"
    if periods_per_year is not None:
        return explicit(periods_per_year, freq)
    if freq not in FREQ_TIMEDELTA:
        raise AnnualizationError(f"unknown bar frequency {freq!r}; use one of {', '.join(FREQ_TIMEDELTA)}")
    if market not in MARKETS:
        raise AnnualizationError(f"unknown market {market!r}; use one of {', '.join(MARKETS)}")
    kind = detect_market(timestamps, freq) if market == "auto" else market
    days = SESSIONS_PER_YEAR[kind]
    if freq == "1d":
        where = "" if kind == "exchange" else f", {kind.replace('x', '×')} market"
        return Annualization(days, f"daily bars{where}: {days} a year", kind, freq)
    bar = FREQ_TIMEDELTA[freq]
    if kind == "exchange":
        stamps = _utc(timestamps)
        per_day = round(float(pd.Series(stamps.normalize()).value_counts().median())) if len(stamps) else 1
        per_day = max(per_day, 1)
        return Annualization(
            days * per_day,
            f"{freq} bars, exchange hours: {per_day} bars a session × {days} sessions = {days * per_day:,} a year",
            kind,
            freq,
        )
    per_day = int(pd.Timedelta(days=1) / bar)
    return Annualization(
        days * per_day,
        f"{freq} bars, {kind.replace('x', '×')} market: {per_day} bars a day × {days} days = {days * per_day:,} a year",
        kind,
        freq,
    )


def _utc(timestamps: pd.DatetimeIndex | pd.Series | np.ndarray) -> pd.DatetimeIndex:
    stamps = pd.DatetimeIndex(pd.Series(timestamps).to_numpy() if isinstance(timestamps, pd.Series) else timestamps)
    return stamps.tz_convert("UTC") if stamps.tz is not None else stamps
