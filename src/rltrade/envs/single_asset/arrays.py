"""The arrays a :class:`~rltrade.envs.single_asset.SingleAssetEnv` step reads, precomputed from its bars once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from rltrade.envs.costs import CostModel, spread_volatility
from rltrade.envs.market import Market
from rltrade.envs.single_asset.config import FloatArray, IntArray
from rltrade.envs.timing import EnvConfigError, ExecutionTiming
from rltrade.features import NEELY_SIGNALS


@dataclass(frozen=True)
class Arrays:
    """Everything ``step`` reads besides the :class:`Market`, as contiguous arrays over the bars (index = bar)."""

    close: FloatArray
    fill: FloatArray  # fill price of the action chosen after bar t (NaN where unknown)
    volatility: FloatArray  # cost-model volatility known at bar t (0 when unused)
    log_diffs: FloatArray  # [T, n]: log diffs of bars t-n+1..t, oldest first ([0, 0] if unused)
    signals: FloatArray  # [T, 14]: the Neely signals of bar t ([0, 0] if unused)
    returns: FloatArray  # [T]: log diff of bar t, read at t+1..t+n by the cheat ([0] if unused)
    starts: IntArray  # first decision bar of each episode start
    ends: IntArray  # last decision bar of the episode beginning at starts[j]
    stride: int  # episodes a non-random walk advances per reset (0: always the same start)


def select_symbol(bars: pd.DataFrame, symbol: str | None) -> tuple[pd.DataFrame, str]:
    """The bars of the one symbol to trade, sorted by time."""
    frame = bars.assign(symbol=symbol or "ASSET") if "symbol" not in bars.columns else bars
    symbols = [str(s) for s in pd.unique(frame["symbol"])]
    shown = ", ".join(symbols[:5]) + ("..." if len(symbols) > 5 else "")
    if symbol is None:
        if len(symbols) != 1:
            raise EnvConfigError(
                f"SingleAssetEnv trades one symbol but the bars have {len(symbols)} ({shown}); pass symbol=..."
            )
        symbol = symbols[0]
    else:
        frame = frame.loc[(frame["symbol"] == symbol).to_numpy()]
        if frame.empty:
            raise EnvConfigError(f"symbol {symbol!r} is not in the bars (they have {shown})")
    for column in ("timestamp", "close"):
        if column not in frame.columns:
            raise EnvConfigError(f"bars lack the column {column!r}; pass canonical bars (rltrade.data.validate)")
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True), symbol


def as_utc(stamp: Any) -> pd.Timestamp:
    ts = pd.Timestamp(stamp)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _window_view(values: FloatArray, n: int, pad_front: int, pad_back: int) -> FloatArray:
    """Sliding windows of length ``n`` over axis 0 of ``values`` padded with NaN rows (a view)."""
    padded = np.full((pad_front + len(values) + pad_back, *values.shape[1:]), np.nan)
    padded[pad_front : pad_front + len(values)] = values
    view: FloatArray = np.lib.stride_tricks.sliding_window_view(padded, n, axis=0)
    return view


def feature_names(state: str) -> list[str]:
    names = ["deng_log_diffs"] if state in ("0", "3", "cheat") else []
    if state in ("1", "2", "3"):
        names.extend(NEELY_SIGNALS)
    return names


def build_arrays(
    market: Market,
    *,
    state: str,
    look_back: int,
    timing: ExecutionTiming,
    cost: CostModel,
    forward_reward: bool,
    by_day: bool,
    session_tz: str,
    start: Any,
    episode_length: int | None,
) -> Arrays:
    n = look_back
    close = market.close[:, 0]
    n_bars = len(close)
    fill = market.fill_prices(timing.fill_field, timing.fill_offset)[:, 0]
    volatility = np.zeros(n_bars)
    if cost.needs_volatility:
        window = int(getattr(getattr(cost, "params", None), "window", 0) or 0)
        if window < 2:
            raise EnvConfigError(f"cost model {cost!r} needs volatility but has no CostParams window (>= 2)")
        volatility = np.nan_to_num(spread_volatility(close, window), nan=0.0)

    columns = {name: i for i, name in enumerate(market.feature_names)}
    features = market.features[:, :, 0]
    log_diffs, signals, returns = np.zeros((0, 0)), np.zeros((0, 0)), np.zeros(0)
    ok = np.isfinite(close) & (close > 0)  # the observation of bar t is finite (and its close usable)
    if state in ("0", "3"):
        log_diffs = np.ascontiguousarray(features[:, [columns[f"deng_log_diffs_{k}"] for k in range(n - 1, -1, -1)]])
        ok &= np.isfinite(log_diffs).all(axis=1)
    if state in ("1", "2", "3"):
        signals = np.ascontiguousarray(features[:, [columns[name] for name in NEELY_SIGNALS]])
        ok &= np.isfinite(_window_view(signals, n, n - 1, 0)[:n_bars]).all(axis=(1, 2))
    if state == "cheat":
        returns = np.ascontiguousarray(features[:, columns["deng_log_diffs_0"]])
        ok &= np.isfinite(_window_view(returns, n, 0, n + 1)[1 : n_bars + 1]).all(axis=1)

    def arrays(starts: Any, ends: Any, stride: int) -> Arrays:
        return Arrays(
            close,
            fill,
            volatility,
            log_diffs,
            signals,
            returns,
            np.asarray(starts, dtype=np.int64),
            np.asarray(ends, dtype=np.int64),
            stride,
        )

    # A decision at bar t needs its observation, the next one, its fill and the next close.
    step_ok = np.zeros(n_bars, dtype=bool)
    step_ok[:-1] = ok[:-1] & ok[1:] & np.isfinite(fill[:-1])
    step_ok[: market.index_of(start) if start is not None else 0] = False
    next_fill_ok = np.zeros(n_bars, dtype=bool)
    next_fill_ok[:-1] = np.isfinite(fill[1:])
    if by_day:
        local = pd.DatetimeIndex(market.times).tz_localize("UTC").tz_convert(session_tz)
        dates = local.normalize().asi8
        new_session = np.concatenate([[True], dates[1:] != dates[:-1]])
        last_bar = np.concatenate([new_session[1:], [True]])  # bar t is the last of its session
        final = np.zeros(n_bars, dtype=bool)  # the step from bar t ends at the session close: it flattens
        final[:-1] = last_bar[1:]
        step_ok[:-1] &= ~new_session[1:]  # t and t+1 in one session
        if forward_reward:  # the next fill, except at the session's final step
            step_ok &= final | next_fill_ok
        starts, ends = [], []
        for end_bar in np.flatnonzero(final & step_ok):
            begin = int(end_bar)
            while begin >= 1 and step_ok[begin - 1] and not new_session[begin]:
                begin -= 1
            starts.append(begin)
            ends.append(int(end_bar))
        if not starts:
            raise EnvConfigError(
                f"no session has a bar to decide at after the features' warm-up ({n_bars} bars, look_back={n}, "
                f"start={start!r}); by_day=True needs intraday bars (>= 2 per {session_tz} date) and history before"
            )
        return arrays(starts, ends, 1)
    if forward_reward:
        step_ok &= next_fill_ok
    valid = np.flatnonzero(step_ok)
    if len(valid) == 0:
        raise EnvConfigError(
            f"no bar to decide at: the {n_bars} bars leave none after the features' warm-up (look_back={n}, "
            f"state={state!r}) and start={start!r}; pass more bars or an earlier start"
        )
    first, last = int(valid[0]), int(valid[-1])
    if last - first + 1 != len(valid):
        gap = first + int(np.flatnonzero(np.diff(valid) > 1)[0]) + 1
        raise EnvConfigError(
            f"the bars have a missing or non-finite price or feature near {market.timestamp(gap)}, inside the "
            "trading range; clean the bars or restrict start/end"
        )
    if episode_length is None:
        starts_arr = np.arange(first, last + 1, dtype=np.int64)
        return arrays(starts_arr, np.full(len(starts_arr), last, dtype=np.int64), 0)
    if not 1 <= episode_length <= last - first + 1:
        raise EnvConfigError(
            f"episode_length must be between 1 and {last - first + 1} (the decision bars of the range), "
            f"got {episode_length}"
        )
    starts_arr = np.arange(first, last - episode_length + 2, dtype=np.int64)
    return arrays(starts_arr, starts_arr + episode_length - 1, episode_length)
