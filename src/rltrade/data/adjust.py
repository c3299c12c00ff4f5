"""Corporate actions: the one rule by which rltrade turns stored prices into traded prices.

**rltrade trades split- and dividend-adjusted prices.** When bars carry ``adj_close`` (CSV,
Yahoo, ``sample:stocks``), :func:`adjust_prices` scales each row's ``open``, ``high``, ``low``
and ``close`` by that row's factor ``adj_close / close`` and divides ``volume`` by it, so that:

- a 2:1 split is not a −50 % day: the adjusted close is continuous across it;
- a dividend is not a loss: the close-to-close return of the adjusted series is the total
  return of holding the share (the dividend reinvested on the ex-date);
- open/high/low stay consistent with the close (same factor), so fills at the next open and
  stops against the high/low see the same adjusted scale as the close.

Every env (through :class:`~rltrade.envs.market.Market`), every baseline and every backtest
applies it, so no path trades the raw close of such data. Data that carry no ``adj_close``
are traded as stored: either already adjusted at the source (``sample:sp500``, Compustat after
``ajexdi``, FinRL files) or free of corporate actions (FX, indices).

The factor of a row uses that row's ``adj_close`` and ``close`` only, so the rule adds no
lookahead to returns. Price *levels* of back-adjusted series do depend on later corporate
actions (the vendor rescales history after each split or dividend); observations built from
returns, ratios or z-scores are unaffected, and docs/data.md says so.

``prices: raw`` in a run config (:func:`adjust_prices` with ``basis="raw"``) drops
``adj_close`` and trades the close as stored; it logs a warning when the adjustment factor
moves inside the data (a split or dividend that will be traded as a price move).
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import pandas as pd

from rltrade.errors import DataValidationError

log = logging.getLogger(__name__)

PriceBasis = Literal["adjusted", "raw"]
PRICE_BASES: tuple[PriceBasis, ...] = ("adjusted", "raw")
#: Relative change of ``adj_close / close`` between two bars that counts as a corporate action.
FACTOR_TOLERANCE = 1e-6


def adjustment_factors(bars: pd.DataFrame) -> pd.Series:
    """``adj_close / close`` per row (1.0 where the row has no ``adj_close``)."""
    if "adj_close" not in bars.columns:
        return pd.Series(1.0, index=bars.index)
    close = bars["close"].to_numpy(dtype=np.float64)
    adj = bars["adj_close"].to_numpy(dtype=np.float64, na_value=np.nan)
    factor = np.where(np.isfinite(adj), adj / close, 1.0)
    bad = ~(np.isfinite(factor) & (factor > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        row = bars.iloc[i]
        raise DataValidationError(
            f"{row.get('symbol', '?')} at {row.get('timestamp', i)}: adjustment factor adj_close/close is "
            f"{factor[i]} (adj_close {adj[i]}, close {close[i]}); it must be finite and positive"
        )
    return pd.Series(factor, index=bars.index)


def corporate_actions(bars: pd.DataFrame) -> pd.DataFrame:
    """The rows where the adjustment factor changes from the symbol's previous row (splits, dividends).

    Returns a frame ``symbol, timestamp, factor, ratio`` (``ratio`` = this factor / the previous one;
    about 2 for a 2:1 split, slightly above 1 for a dividend), empty without ``adj_close``.
    """
    if "adj_close" not in bars.columns or not {"symbol", "timestamp"} <= set(bars.columns):
        return pd.DataFrame(columns=["symbol", "timestamp", "factor", "ratio"])
    frame = bars[["symbol", "timestamp"]].copy()
    frame["factor"] = adjustment_factors(bars).to_numpy()
    frame = frame.sort_values(["symbol", "timestamp"], kind="stable")
    prev = frame.groupby("symbol", sort=False)["factor"].shift(1)
    frame["ratio"] = frame["factor"] / prev
    moved = (frame["ratio"] - 1.0).abs() > FACTOR_TOLERANCE
    return frame.loc[moved.to_numpy()].reset_index(drop=True)


def price_basis(bars: pd.DataFrame) -> str:
    """The prices ``bars`` trade on, for the manifest and the report.

    ``"adjusted"`` or ``"raw"`` after :func:`adjust_prices`; for bars without ``adj_close``,
    ``"source-adjusted"`` when the store marks every symbol adjusted, else ``"as stored"``.
    """
    if "prices" in bars.attrs:
        return str(bars.attrs["prices"])
    if "adj_close" in bars.columns:
        return "adjusted"  # not adjusted yet, but every env adjusts them (Market)
    adjusted = bars.attrs.get("adjusted")
    source = isinstance(adjusted, dict) and bool(adjusted) and all(adjusted.values())
    return "source-adjusted" if source else "as stored"


def adjust_prices(bars: pd.DataFrame, basis: PriceBasis = "adjusted") -> pd.DataFrame:
    """The bars rltrade trades: OHLC scaled by ``adj_close / close`` (``basis="adjusted"``), or raw.

    Parameters
    ----------
    bars:
        Canonical bars; with or without ``adj_close``.
    basis:
        ``"adjusted"`` (the default everywhere) or ``"raw"`` (drop ``adj_close``; trade the
        stored close, corporate actions included, with a logged warning when there are any).

    Returns
    -------
    pandas.DataFrame
        A copy without ``adj_close`` with ``attrs`` kept and ``attrs["prices"]`` set to
        ``"adjusted"`` or ``"raw"``; the input itself, untouched, when it has no ``adj_close``.
    """
    if basis not in PRICE_BASES:
        raise DataValidationError(f"unknown price basis {basis!r}; use one of {', '.join(PRICE_BASES)}")
    if "adj_close" not in bars.columns:
        return bars  # nothing to adjust (and the caller's frame is left as it is): see price_basis
    attrs = dict(bars.attrs)
    if basis == "raw":
        actions = corporate_actions(bars)
        if len(actions):
            first = actions.iloc[0]
            log.warning(
                "prices: raw trades the stored close: %d corporate action(s) (adj_close/close changes) are traded as "
                "price moves, first %s at %s (ratio %.4g)",
                len(actions),
                first["symbol"],
                pd.Timestamp(first["timestamp"]).date(),
                first["ratio"],
            )
        out = bars.drop(columns="adj_close")
        out.attrs = {**attrs, "prices": "raw"}
        return out
    factor = adjustment_factors(bars).to_numpy()
    out = bars.drop(columns="adj_close")
    for column in ("open", "high", "low", "close"):
        if column in out.columns:
            out[column] = out[column].to_numpy(dtype=np.float64, na_value=np.nan) * factor
    if "volume" in out.columns:
        out["volume"] = out["volume"].to_numpy(dtype=np.float64, na_value=np.nan) / factor
    out.attrs = {**attrs, "prices": "adjusted"}
    return out
