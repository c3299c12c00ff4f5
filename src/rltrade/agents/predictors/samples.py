"""The predictors' data: seed 002's 8 inputs per bar, time boundaries, and the chronological split.

Sample ``t`` of a symbol is the window of its inputs at bars ``t − L + 1 .. t`` (``L`` bars) and
its target is about bar ``t + 1``. :func:`chronological_split` decides which samples train and
which validate so that no window, and no target bar, crosses the training boundary;
:func:`check_no_overlap` is the guard the fit runs on the pooled samples of every symbol.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from rltrade.agents.factory import AgentError
from rltrade.features import build_features

IntArray = NDArray[np.int64]
DateLike = str | dt.date | pd.Timestamp

BAR_INPUTS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
SMA_INPUTS: tuple[str, ...] = ("sma_20", "sma_50", "sma_200")
INPUT_COLUMNS: tuple[str, ...] = BAR_INPUTS + SMA_INPUTS
"""The 8 inputs per bar, in the order of the networks' input channels."""


class PredictorError(AgentError):
    """A predictor cannot be fitted or used: bad settings, missing inputs, a leaky split, a wrong file."""


def predictor_inputs(bars: pd.DataFrame) -> pd.DataFrame:
    """Seed 002's 8 inputs per bar (:data:`INPUT_COLUMNS`), without each symbol's first 199 bars.

    The SMAs are the feature registry's ``sma_20``, ``sma_50`` and ``sma_200`` (TA-Lib): the SMA
    at bar t averages the closes of bars t − n + 1 .. t. The first 199 bars of a symbol have no
    SMA 200 and are dropped, never back-filled.

    Parameters
    ----------
    bars:
        Canonical bars of one or more symbols, complete OHLCV, any row order.

    Returns
    -------
    pandas.DataFrame
        float64 columns :data:`INPUT_COLUMNS`, indexed by (symbol, timestamp), sorted.

    Raises
    ------
    PredictorError
        A column is missing, or an input is NaN after the warm-up (naming symbol and bar): the
        models need complete OHLCV bars, which close-only sources do not have.
    """
    missing = [c for c in ("symbol", "timestamp", *BAR_INPUTS) if c not in bars.columns]
    if missing:
        raise PredictorError(f"predictor inputs: the bars lack the column(s) {missing}")
    smas = build_features(bars[["symbol", "timestamp", "close"]], list(SMA_INPUTS))
    table = bars.set_index(["timestamp", "symbol"])[list(BAR_INPUTS)].astype(np.float64).join(smas)
    table = table.reorder_levels(["symbol", "timestamp"]).sort_index()
    table = table.loc[table["sma_200"].notna()]
    missing_values = table.isna().to_numpy()
    if missing_values.any():
        row, col = (int(i) for i in np.argwhere(missing_values)[0])
        symbol, stamp = table.index[row]
        raise PredictorError(
            f"predictor inputs: {table.columns[col]} is NaN for {symbol} at {stamp}; the LSTM and CNN need "
            "complete OHLCV bars"
        )
    return table[list(INPUT_COLUMNS)]


def _is_day(value: DateLike) -> bool:
    """A date without a time: ``"2020-06-30"`` or a ``datetime.date``."""
    if isinstance(value, str):
        return len(value.strip()) == 10
    return isinstance(value, dt.date) and not isinstance(value, dt.datetime)


def instant(value: DateLike) -> pd.Timestamp:
    """``value`` as a UTC timestamp (a date: its midnight; a naive timestamp is taken as UTC)."""
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def bound(value: DateLike) -> pd.Timestamp:
    """The exclusive upper bound of "stamped ≤ ``value``" (UTC).

    A date (``"2020-06-30"`` or a ``datetime.date``) covers its whole day, as config dates and
    :func:`rltrade.data.schema.in_date_range` do, so intraday bars of that day count too; a
    timestamp with a time of day is an exact instant.
    """
    return instant(value) + (pd.Timedelta(days=1) if _is_day(value) else pd.Timedelta(1, "ns"))


def utc(timestamps: Any) -> pd.DatetimeIndex:
    """``timestamps`` as a UTC DatetimeIndex (naive ones are taken as UTC)."""
    stamps = pd.DatetimeIndex(timestamps)
    return stamps.tz_localize("UTC") if stamps.tz is None else stamps.tz_convert("UTC")


@dataclass(frozen=True)
class Split:
    """Positions ``t`` (each sample's last window bar) of one symbol's training and validation samples."""

    train: IntArray
    val: IntArray


def chronological_split(timestamps: Any, window: int, train_end: DateLike, val_end: DateLike | None = None) -> Split:
    """Split one symbol's samples by time so that no window, nor its target bar, crosses ``train_end``.

    Sample ``t`` (``window − 1 ≤ t < n − 1``) covers bars ``t − window + 1 .. t + 1``: its window and
    its target bar. It trains when its target bar is ≤ ``train_end``; it validates when its first
    window bar is after ``train_end`` and its target bar ≤ ``val_end``. The ``window`` samples that
    straddle the boundary are in neither.

    Parameters
    ----------
    timestamps:
        The symbol's bar timestamps in the order of its rows; they must increase strictly.
    window:
        L, bars per window.
    train_end, val_end:
        Last training and validation bar, inclusive (see :func:`bound`); without ``val_end``
        there are no validation samples.

    Raises
    ------
    PredictorError
        When the timestamps do not increase strictly (shuffled rows, duplicates).
    """
    stamps = utc(timestamps)
    steps = np.diff(stamps.asi8)
    if (steps <= 0).any():
        i = int(np.flatnonzero(steps <= 0)[0]) + 1
        raise PredictorError(
            f"chronological split: timestamps must increase strictly; position {i} ({stamps[i]}) follows "
            f"{stamps[i - 1]} (shuffled or duplicated bars?)"
        )
    ends = np.arange(window - 1, len(stamps) - 1, dtype=np.int64)
    first, target = stamps[ends - window + 1], stamps[ends + 1]
    train_stop = bound(train_end)
    train = ends[target < train_stop]
    if val_end is None:
        return Split(train, ends[:0])
    return Split(train, ends[(first >= train_stop) & (target < bound(val_end))])


def check_no_overlap(train_targets: Any, val_firsts: Any) -> None:
    """Raise unless every training sample's target bar is stamped before every validation sample's first bar.

    Parameters
    ----------
    train_targets:
        Timestamps of the training samples' target bars (any symbols).
    val_firsts:
        Timestamps of the validation samples' first window bars.

    Raises
    ------
    PredictorError
        Naming the latest training target and the earliest validation window.
    """
    if len(train_targets) and len(val_firsts):
        last, first = utc(train_targets).max(), utc(val_firsts).min()
        if last >= first:
            raise PredictorError(
                f"leaky split: a training target at {last} is not before the validation window starting {first}"
            )
