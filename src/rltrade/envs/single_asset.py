"""SingleAssetEnv: trade one asset (share, FX unit or futures contract) short / flat / long (SPEC §3.3, seed 001).

Quick use::

    from rltrade.data.sources import fetch
    from rltrade.data.validate import validate_bars
    from rltrade.envs.single_asset import SingleAssetEnv

    bars = validate_bars(fetch("sample:eurusd")[0])
    env = SingleAssetEnv(bars, state="3", reward="differential_sharpe", by_day=True)
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(2)  # go long

The model (all of it precomputed into numpy arrays at construction; ``step`` is numpy only):

- The agent observes bar t and picks a target position ``a_t`` (discrete ``{short, flat, long}``
  → ``{-1, 0, 1}``, or a Box in ``[-1, 1]`` with ``continuous=True``); it holds
  ``a_t · units`` shares / FX units / contracts.
- The order fills at ``p_t``, the *fill price* of the :class:`~rltrade.envs.timing.ExecutionTiming`:
  ``open[t+1]`` (``next_open``, the default when the bars have opens), ``close[t+1]``
  (``next_close``, the default for close-only data) or ``close[t]`` (``same_close``, the seed's
  optimistic assumption, opt-in only). The step returns the observation of bar t+1.
- Rewards are the seed's two conventions, with ``p`` the fill price and ``m`` the contract
  multiplier (1 for shares), and ``cost_t`` from the cost model (charged in **both** modes):

  - ``forward_reward=False``: ``R_t = a_{t-1}·units·m·(p_t − p_{t−1}) − cost_t``: the P&L of the
    position held until this fill, minus the cost of this trade. It uses data up to bar t+1 only
    (the bar of the returned observation), so it passes the lookahead guard.
  - ``forward_reward=True``: ``R_t = a_t·units·m·(p_{t+1} − p_t) − cost_t``: the P&L of the *new*
    position until the next fill. It is computed from prices after the returned observation
    (``p_{t+1}``): a training signal that credits an action with its own outcome, as in the
    seed; the observations and infos stay causal, but the reward itself is not.

  These are the ``profit`` reward. The other rewards (``log_return``, ``differential_sharpe``,
  ``downside_deviation``, ``sortino_change``) are computed by the same reward objects on the two
  account values whose difference is that profit: the value just after the previous and the current
  fill (``forward_reward=False``), or just before the current and the next fill (``True``).

- ``by_day=True``: an episode is one session (the bars of one calendar date in ``session_tz``,
  UTC by default). Decisions are taken at every bar but the last of the session; at the session
  close (``close`` of its last bar) the position is flattened and the cost of flattening is
  charged, in the reward of the final step. ``by_day=False``: one continuous episode over the
  range (or windows of ``episode_length`` steps), never flattened.
- A :class:`FuturesContract` makes the asset a contract: P&L is ``position·Δprice·multiplier``,
  costs apply to the contract notional ``|Δcontracts|·price·multiplier``, positions are whole
  contracts and opening or increasing one needs the initial margin (``margin_rate`` of its
  notional) out of the account value. Without a contract a position may be at most the account
  value (no leverage; long purchases never make cash negative; short sales credit their proceeds).
- Accounting: ``value = cash + position·close·multiplier`` at every step (``cash`` counts the
  contract notional too, so for futures it is negative while long: a bookkeeping convention that
  keeps the identity; the margin is reported separately in ``info``).

``info`` (every step and reset): ``bar``, ``timestamp``, ``portfolio_value`` (the value above),
``cash``, ``position`` (units / contracts), ``position_fraction`` (δ), ``price`` (close of the
observed bar), ``fill_price``, ``cost`` (this step, flattening included), ``total_cost``,
``turnover`` (traded notional / value), ``traded`` and ``total_traded`` (notional),
``open_return``, ``margin_required`` and ``margin_call`` (contracts), ``flattened``, ``bankrupt``
(value <= 0 ends the episode) and ``cheat``.

:class:`BatchedSingleAssetEnv` steps K copies in one numpy call as a Stable-Baselines3 ``VecEnv``
(copy k with K = 1 gives the same bits as this env).

The seed's fixed cost ``c·|a_t − a_{t−1}|`` is ``cost=PerShareCost(per_share=c, minimum=0.0)``
with ``units=1``: ``c`` per share or contract traded.

Observations are ``(look_back, n_columns)`` float32 windows, oldest row first, last row = bar t
(see :data:`STATE_COLUMNS`). ``state="cheat"`` shows the *next* ``look_back`` log price
differences: deliberate lookahead, only to prove the learning stack can learn. It is logged as a
warning, flagged in ``repr``, in ``env.lookahead`` and in every ``info`` (``info["cheat"]``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import gymnasium as gym
import numba
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from rltrade.envs.batched import ERROR_MESSAGES, RUNNING, TERMINATED, TRUNCATED, BatchedCore, CoreEnv
from rltrade.envs.costs import CostModel, CostParams, kernel_params, make_cost, spread_volatility, trade_cost
from rltrade.envs.market import Market
from rltrade.envs.rewards import Reward, make_reward
from rltrade.envs.timing import EnvConfigError, ExecutionTiming, resolve_timing
from rltrade.features import NEELY_SIGNALS

log = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

StateName = Literal["0", "1", "2", "3", "cheat"]

#: Columns of each observation row (row k of the window is bar ``t − look_back + 1 + k``).
#: ``log_diff`` = ``ln close_t − ln close_{t−1}`` (the ``deng_log_diffs`` feature: state ``0`` is
#: Deng et al.'s last-n log differences); ``neely_*`` = the 14 Neely et al. signals (1.0 / 0.0);
#: ``position`` = δ, the position held after that bar's step as a fraction of ``units``
#: (−1, 0, 1 for discrete actions); ``open_return`` = δ·(close/entry − 1), the return of the open
#: position if it were closed at that bar's close (before costs; entry = average fill price; 0 when
#: flat); ``next_log_diff`` = ``ln close_{t+1+k} − ln close_{t+k}`` (state ``cheat`` only:
#: LOOKAHEAD). Rows before the episode start have position 0 and open_return 0.
STATE_COLUMNS: dict[str, tuple[str, ...]] = {
    "0": ("log_diff",),
    "1": NEELY_SIGNALS,
    "2": (*NEELY_SIGNALS, "position", "open_return"),
    "3": ("log_diff", *NEELY_SIGNALS, "position", "open_return"),
    "cheat": ("next_log_diff",),
}

#: Discrete action → target position.
ACTION_POSITIONS: tuple[int, int, int] = (-1, 0, 1)

#: Log differences and open-position returns are clipped to ±RETURN_BOUND in observations (a finite
#: Box; real prices never come near it).
RETURN_BOUND = 1000.0

DEFAULT_INITIAL_CAPITAL = 1_000_000.0
#: Without a contract and ``units=None``, |position| = 1 is this fraction of the initial capital
#: at the episode's first close (room for costs, price rises and short losses without clipping).
DEFAULT_EXPOSURE = 0.5


@dataclass(frozen=True)
class FuturesContract:
    """A futures contract: P&L and cost notional scale with ``multiplier``; positions need margin.

    Parameters
    ----------
    multiplier:
        Currency units per index point (CSI 300 futures: 300; E-mini S&P 500: 50).
    margin_rate:
        Initial margin as a fraction of the contract notional ``price·multiplier`` (CSI 300: 0.12).
        Opening or increasing a position needs ``|contracts|·price·multiplier·margin_rate`` of
        account value after costs; the env clips the order to the affordable number of contracts.
    maintenance_rate:
        Maintenance margin rate; ``info["margin_call"]`` is True while the account value is below
        ``|contracts|·close·multiplier·maintenance_rate``. Defaults to ``margin_rate``.
    name:
        Label for reprs (e.g. ``"IF"``).
    """

    multiplier: float = 1.0
    margin_rate: float = 0.1
    maintenance_rate: float | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if not np.isfinite(self.multiplier) or self.multiplier <= 0:
            raise EnvConfigError(f"FuturesContract: multiplier must be > 0, got {self.multiplier}")
        if not 0 < self.margin_rate <= 1:
            raise EnvConfigError(f"FuturesContract: margin_rate must be in (0, 1], got {self.margin_rate}")
        if self.maintenance_rate is not None and not 0 < self.maintenance_rate <= 1:
            raise EnvConfigError(f"FuturesContract: maintenance_rate must be in (0, 1], got {self.maintenance_rate}")

    @property
    def maintenance(self) -> float:
        """The maintenance margin rate in use."""
        return self.margin_rate if self.maintenance_rate is None else self.maintenance_rate


# --------------------------------------------------------------------------------------------------
# Precomputed arrays
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Arrays:
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


def _select_symbol(bars: pd.DataFrame, symbol: str | None) -> tuple[pd.DataFrame, str]:
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


def _as_utc(stamp: Any) -> pd.Timestamp:
    ts = pd.Timestamp(stamp)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _window_view(values: FloatArray, n: int, pad_front: int, pad_back: int) -> FloatArray:
    """Sliding windows of length ``n`` over axis 0 of ``values`` padded with NaN rows (a view)."""
    padded = np.full((pad_front + len(values) + pad_back, *values.shape[1:]), np.nan)
    padded[pad_front : pad_front + len(values)] = values
    view: FloatArray = np.lib.stride_tricks.sliding_window_view(padded, n, axis=0)
    return view


def _feature_names(state: str) -> list[str]:
    names = ["deng_log_diffs"] if state in ("0", "3", "cheat") else []
    if state in ("1", "2", "3"):
        names.extend(NEELY_SIGNALS)
    return names


def _build_arrays(
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
) -> _Arrays:
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
        return _Arrays(
            close,
            fill,
            volatility,
            log_diffs,
            signals,
            returns,
            np.asarray(starts, dtype=np.int64),
            np.asarray(ends, dtype=np.int64),
            1,
        )
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
        return _Arrays(
            close,
            fill,
            volatility,
            log_diffs,
            signals,
            returns,
            starts_arr,
            np.full(len(starts_arr), last, dtype=np.int64),
            0,
        )
    if not 1 <= episode_length <= last - first + 1:
        raise EnvConfigError(
            f"episode_length must be between 1 and {last - first + 1} (the decision bars of the range), "
            f"got {episode_length}"
        )
    starts_arr = np.arange(first, last - episode_length + 2, dtype=np.int64)
    return _Arrays(
        close,
        fill,
        volatility,
        log_diffs,
        signals,
        returns,
        starts_arr,
        starts_arr + episode_length - 1,
        episode_length,
    )


# --------------------------------------------------------------------------------------------------
# K independent copies stepped in one numpy call
# --------------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------------
# numba kernels: K copies, one call
# --------------------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def _write_obs(
    k: int,
    t: int,
    n: int,
    cheat: bool,
    with_hist: bool,
    log_diffs: FloatArray,
    signals: FloatArray,
    returns: FloatArray,
    hist: FloatArray,
    obs: NDArray[np.float32],
) -> None:  # pragma: no cover - compiled
    """Write copy k's observation of bar t (columns in STATE_COLUMNS order, clipped to ±RETURN_BOUND)."""
    bound = RETURN_BOUND
    for row in range(n):
        if cheat:
            obs[k, row, 0] = min(max(returns[t + 1 + row], -bound), bound)
            continue
        col = 0
        if log_diffs.shape[1] > 0:
            obs[k, row, 0] = min(max(log_diffs[t, row], -bound), bound)
            col = 1
        if signals.shape[1] > 0:
            bar = t - n + 1 + row
            for j in range(signals.shape[1]):
                obs[k, row, col + j] = signals[bar, j]
            col += signals.shape[1]
        if with_hist:
            obs[k, row, col] = hist[k, row, 0]
            obs[k, row, col + 1] = min(max(hist[k, row, 1], -bound), bound)


@numba.njit(cache=True, nogil=True)
def _write_obs_many(
    copies: NDArray[np.intp],
    t: IntArray,
    n: int,
    cheat: bool,
    with_hist: bool,
    log_diffs: FloatArray,
    signals: FloatArray,
    returns: FloatArray,
    hist: FloatArray,
    obs: NDArray[np.float32],
) -> None:  # pragma: no cover - compiled
    """:func:`_write_obs` for each copy in ``copies`` at its current bar."""
    for k in copies:
        _write_obs(k, t[k], n, cheat, with_hist, log_diffs, signals, returns, hist, obs)


@numba.njit(cache=True, nogil=True)
def _limit(
    target: float,
    pos: float,
    price: float,
    vol: float,
    value: float,
    per_unit: float,
    integer: bool,
    mult: float,
    rate: float,
    per_share: float,
    minimum: float,
    half_spread: float,
) -> float:  # pragma: no cover - compiled
    """Cut an order that opens or increases exposure to what ``value`` supports after costs.

    ``|q|·per_unit + cost(|q − pos|) <= value``; never below the same-side position already held;
    whole units when ``integer``. Falls back to keeping the position (same side) or going flat.
    """
    same_side = target * pos > 0.0
    keep = abs(pos) if same_side else 0.0
    if abs(target) <= keep:
        return target
    sign = 1.0 if target > 0.0 else -1.0
    size = min(abs(target), max(max(value, 0.0) / per_unit, keep))
    if integer:
        size = max(np.floor(size), keep)
    for _ in range(8):  # the cost is (nearly) linear in the order: a few corrections converge
        traded = abs(sign * size - pos)
        excess = (
            size * per_unit
            + trade_cost(rate, per_share, minimum, half_spread, traded * price * mult, traded, vol)
            - value
        )
        if excess <= 0.0:
            return sign * size
        smaller = max(size - excess / per_unit, keep)
        if integer:
            smaller = max(np.floor(smaller), keep)
        if smaller >= size:
            break
        size = smaller
    return pos if same_side else 0.0


@numba.njit(cache=True, nogil=True)
def _step_kernel(
    frac: FloatArray,
    settings: FloatArray,
    close: FloatArray,
    fill: FloatArray,
    volatility: FloatArray,
    t: IntArray,
    t_end: IntArray,
    units: FloatArray,
    state: FloatArray,
    hist: FloatArray,
    out: FloatArray,
    flags: NDArray[np.int8],
) -> None:  # pragma: no cover - compiled
    """Trade every copy to ``frac·units``, flatten at session closes, mark to the next close.

    ``settings`` = [by_day, merge_final_fill, forward_reward, integer_units, multiplier, margin_rate,
    rate, per_share, minimum, half_spread]. ``state`` rows (updated): cash, position, entry,
    fill_value, total_cost, total_traded. ``out`` rows (written): reward prev value, reward now value,
    value, cost, traded, turnover, fill_price, open_return, flattened, bankrupt.
    """
    by_day, merge, forward, integer = settings[0] > 0, settings[1] > 0, settings[2] > 0, settings[3] > 0
    mult, margin_rate = settings[4], settings[5]
    rate, per_share, minimum, half_spread = settings[6], settings[7], settings[8], settings[9]
    for k in range(frac.shape[0]):
        ti = t[k]
        final = ti >= t_end[k]
        flatten = final and by_day
        f = fill[ti]
        vol = volatility[ti]
        close_next = close[ti + 1]
        cash, pos, entry = state[0, k], state[1, k], state[2, k]

        a = 0.0 if (merge and flatten) else frac[k]
        target = a * units[k]
        if integer:
            target = np.rint(target)
        value_at_fill = cash + pos * f * mult
        q = _limit(
            target, pos, f, vol, value_at_fill, f * mult * margin_rate, integer, mult,
            rate, per_share, minimum, half_spread,
        )  # fmt: skip
        traded_units = abs(q - pos)
        cost = trade_cost(rate, per_share, minimum, half_spread, traded_units * f * mult, traded_units, vol)
        cash = cash - (q - pos) * f * mult - cost
        traded = traded_units * f * mult
        if q == 0.0:
            entry = 0.0
        elif pos == 0.0 or (q > 0.0) != (pos > 0.0):
            entry = f
        elif abs(q) > abs(pos):
            entry = (abs(pos) * entry + traded_units * f) / abs(q)
        value_after_fill = cash + q * f * mult

        flat_cost = 0.0
        if flatten:  # the session close: flatten at the close of the session's last bar (t+1), paying
            flat_units = abs(q)
            flat_cost = trade_cost(
                rate, per_share, minimum, half_spread, flat_units * close_next * mult, flat_units, vol
            )
            cash = cash + q * close_next * mult - flat_cost
            traded += flat_units * close_next * mult
            q = 0.0
            entry = 0.0

        if forward:  # just before this fill -> just before the next fill (or the flat session close)
            prev = value_after_fill + cost
            now = cash if flatten else cash + q * fill[ti + 1] * mult
        else:  # just after the previous fill -> just after this fill (or the flat session close)
            prev = state[3, k]
            now = cash if flatten else value_after_fill
        value = cash + q * close_next * mult
        frac_now = q / units[k]
        open_return = frac_now * (close_next / entry - 1.0) if q != 0.0 else 0.0

        n = hist.shape[1]
        for row in range(n - 1):
            hist[k, row, 0] = hist[k, row + 1, 0]
            hist[k, row, 1] = hist[k, row + 1, 1]
        hist[k, n - 1, 0] = frac_now
        hist[k, n - 1, 1] = open_return

        state[0, k], state[1, k], state[2, k], state[3, k] = cash, q, entry, now
        state[4, k] += cost + flat_cost
        state[5, k] += traded
        out[0, k], out[1, k], out[2, k] = prev, now, value
        out[3, k], out[4, k] = cost + flat_cost, traded
        out[5, k] = traded / value_at_fill if value_at_fill > 0.0 else 0.0
        out[6, k], out[7, k] = f, open_return
        out[8, k] = 1.0 if flatten else 0.0
        out[9, k] = 1.0 if value <= 0.0 else 0.0
        t[k] = ti + 1
        if flatten or value <= 0.0:
            flags[k] = TERMINATED
        elif final:
            flags[k] = TRUNCATED
        else:
            flags[k] = RUNNING


@dataclass(frozen=True)
class _Config:
    state: str
    look_back: int
    forward_reward: bool
    by_day: bool
    continuous: bool
    multiplier: float
    margin_rate: float  # account value needed per unit of notional held (1 without a contract)
    maintenance_rate: float
    integer_units: bool
    units: float | None
    initial_capital: float
    random_start: bool
    merge_final_fill: bool  # a session's final fill is its close, where the position is flattened anyway
    has_contract: bool
    cheat: bool
    cost: CostParams


class _SingleAssetCore(BatchedCore):
    """State and numpy step of K independent :class:`SingleAssetEnv` copies (arrays of leading size K)."""

    def __init__(
        self,
        market: Market,
        arrays: _Arrays,
        cfg: _Config,
        cost: CostModel,
        reward: Reward,
        n_copies: int,
        observation_space: gym.spaces.Box,
        action_space: gym.spaces.Space[Any],
    ) -> None:
        self.observation_space = observation_space
        self.action_space = action_space  # type: ignore[assignment]  # Discrete unless continuous=True
        super().__init__(market, n_copies, reward, 1.0, cfg.random_start, None, cfg.initial_capital)
        self.arrays = arrays
        self.cfg = cfg
        self.cost_model = cost
        k = n_copies
        p = cfg.cost
        self.settings = np.array(
            [
                float(cfg.by_day),
                float(cfg.merge_final_fill),
                float(cfg.forward_reward),
                float(cfg.integer_units),
                cfg.multiplier,
                cfg.margin_rate,
                p.rate,
                p.per_share,
                p.minimum,
                p.half_spread,
            ]
        )
        self.episode = np.zeros(k, dtype=np.int64)  # episodes started since the last seeded reset
        self.offset = np.zeros(k, dtype=np.int64)  # index into arrays.starts of the copy's first episode
        self.units = np.ones(k)
        # rows: cash, position, entry price, value just after the last fill, total cost, total traded
        self.acct = np.zeros((6, k))
        # rows: reward's prev value, reward's now value, value, cost, traded, turnover, fill price,
        # open return, flattened, bankrupt (the base class's arrays are views of it)
        self.out = np.zeros((10, k))
        self.value_prev, self.value, self.step_cost, self.turnover = self.out[0], self.out[2], self.out[3], self.out[5]
        self.total_cost = self.acct[4]
        self.hist = np.zeros((k, cfg.look_back, 2))  # (position fraction, open return) per window row

    # -- episodes -------------------------------------------------------------------------------

    def reset(
        self,
        copies: Sequence[int] | NDArray[np.intp],
        rngs: Sequence[np.random.Generator],
        options: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        """Start new episodes for ``copies``.

        ``options[i]["start"]`` (a bar index or timestamp) picks the first episode start at or after it.
        """
        a = self.arrays
        n_starts = len(a.starts)
        index = np.asarray(copies, dtype=np.intp)
        for n, k in enumerate(index):
            opts = options[n] if options else None
            if opts and opts.get("start") is not None:
                bar = self.market.index_of(opts["start"])
                j = int(np.searchsorted(a.starts, bar))
                if j >= n_starts:
                    raise EnvConfigError(
                        f"reset option start={opts['start']!r} (bar {bar}) is after the last episode start "
                        f"{self.market.timestamp(int(a.starts[-1]))}"
                    )
                self.offset[k], self.episode[k] = j, 0
            elif self.random_start:
                j = int(rngs[n].integers(n_starts))
            else:
                j = int((self.offset[k] + self.episode[k] * a.stride) % n_starts)
            self.episode[k] += 1
            self.t[k] = a.starts[j]
            self.t_end[k] = a.ends[j]
        self.rewards[index] = 0.0
        self.flags[index] = RUNNING
        self.step_cost[index] = 0.0
        self.total_cost[index] = 0.0
        self.turnover[index] = 0.0
        self._reset_state(index)
        if len(index) == self.n_copies:
            self.reward.reset((self.n_copies,))
        else:
            mask = np.zeros(self.n_copies, dtype=bool)
            mask[index] = True
            self.reward.reset((self.n_copies,), where=mask)

    def _reset_state(self, copies: NDArray[np.intp]) -> None:
        cfg, cap = self.cfg, self.cfg.initial_capital
        self.acct[:, copies] = 0.0
        self.acct[0, copies] = cap  # cash
        self.acct[3, copies] = cap  # value just after the last fill
        self.out[:, copies] = 0.0
        self.out[0:3, copies] = cap
        self.out[6, copies] = np.nan  # no fill yet
        self.hist[copies] = 0.0
        if cfg.units is not None:
            self.units[copies] = cfg.units
        else:  # a fraction of the initial capital at the episode's first close (known at the start)
            self.units[copies] = DEFAULT_EXPOSURE * cap / (self.arrays.close[self.t[copies]] * cfg.multiplier)
        self._write(copies)

    def _write(self, copies: NDArray[np.intp]) -> None:
        a, cfg = self.arrays, self.cfg
        _write_obs_many(
            copies, self.t, cfg.look_back, cfg.cheat, cfg.state in ("2", "3"),
            a.log_diffs, a.signals, a.returns, self.hist, self.obs,
        )  # fmt: skip

    def _targets(self, actions: NDArray[np.float64]) -> FloatArray:
        if self.cfg.continuous:
            return np.clip(actions[:, 0], -1.0, 1.0)
        index = np.rint(actions[:, 0]).astype(np.int64)
        if ((index < 0) | (index > 2)).any() or (index != actions[:, 0]).any():
            raise EnvConfigError(f"discrete actions are 0 (short), 1 (flat) and 2 (long); got {actions[:, 0]}")
        return np.asarray(ACTION_POSITIONS, dtype=np.float64)[index]

    def _step_state(self, actions: NDArray[np.float64]) -> int:
        if (self.flags != RUNNING).any():
            return 1
        if not np.isfinite(actions).all():
            return 2
        a = self.arrays
        _step_kernel(
            self._targets(actions), self.settings, a.close, a.fill, a.volatility, self.t, self.t_end,
            self.units, self.acct, self.hist, self.out, self.flags,
        )  # fmt: skip
        self.rewards = np.asarray(self.reward(self.out[0], self.out[1]), dtype=np.float64)
        self._write(np.arange(self.n_copies))
        return 0

    def step(self, actions: NDArray[Any]) -> None:
        """Step every copy with ``actions`` (``[K, 1]``: action indices, or positions if continuous)."""
        code = self._step_state(np.ascontiguousarray(actions, dtype=np.float64).reshape(self.n_copies, -1))
        if code:
            raise EnvConfigError(ERROR_MESSAGES.get(code, f"env error {code}"))

    def info(self, k: int) -> dict[str, Any]:
        """The info of copy ``k``.

        The shared keys (bar, timestamp, portfolio_value, cost, total_cost, turnover) and cash,
        position, position_fraction, price, fill_price, open_return, traded, total_traded,
        margin_required, margin_call, flattened, bankrupt, cheat.
        """
        info = self.common_info(k)
        cfg, acct, out = self.cfg, self.acct, self.out
        price = float(self.arrays.close[self.t[k]])
        pos = float(acct[1, k])
        margin = abs(pos) * price * cfg.multiplier * cfg.maintenance_rate if cfg.has_contract else 0.0
        info.update(
            cash=float(acct[0, k]),
            position=pos,
            position_fraction=pos / float(self.units[k]),
            price=price,
            fill_price=float(out[6, k]),
            open_return=float(out[7, k]),
            traded=float(out[4, k]),
            total_traded=float(acct[5, k]),
            margin_required=margin,
            margin_call=bool(cfg.has_contract and float(out[2, k]) < margin),
            flattened=bool(out[8, k]),
            bankrupt=bool(out[9, k]),
            cheat=cfg.cheat,
        )
        return info


def _column_bounds(columns: Sequence[str]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Observation bounds per column: signals in [0, 1], position in [-1, 1], returns in ±RETURN_BOUND."""
    low = np.full(len(columns), -RETURN_BOUND, dtype=np.float32)
    high = np.full(len(columns), RETURN_BOUND, dtype=np.float32)
    for i, name in enumerate(columns):
        if name.startswith("neely_"):
            low[i], high[i] = 0.0, 1.0
        elif name == "position":
            low[i], high[i] = -1.0, 1.0
    return low, high


# --------------------------------------------------------------------------------------------------
# Public envs
# --------------------------------------------------------------------------------------------------


class SingleAssetEnv(CoreEnv):
    """Trade one asset short / flat / long on bars (seed 001's ``FinancialEnv``, corrected); see the module docstring.

    Parameters
    ----------
    bars:
        Canonical bars (``timestamp``, ``close``; ``open`` for next_open fills; ``volume`` for the
        Neely OBV signals) of one symbol, or of several with ``symbol`` given.
    state:
        ``"0"`` last n log price differences (n, 1); ``"1"`` the 14 Neely signals (n, 14);
        ``"2"`` signals + position + open-position return (n, 16); ``"3"`` log difference +
        signals + position + open-position return (n, 17); ``"cheat"`` the *next* n log
        differences (n, 1): LOOKAHEAD, only for testing that an agent can learn. Columns:
        :data:`STATE_COLUMNS`.
    reward:
        ``"profit"``, ``"log_return"``, ``"differential_sharpe"``, ``"downside_deviation"``,
        ``"sortino_change"`` or a :class:`~rltrade.envs.rewards.Reward` object.
    look_back:
        Rows n of the observation window (default 10).
    forward_reward:
        False: reward the previous position's P&L up to this fill minus this trade's cost
        (causal). True: reward the new position's P&L up to the next fill minus this trade's cost
        (uses the price after the observation: a training signal, not an observation).
    by_day:
        One episode per session (calendar date in ``session_tz``), flattened at the session close
        with its cost charged; False: continuous trading.
    contract:
        A :class:`FuturesContract` (multiplier, margin); None trades shares / units.
    cost:
        A :class:`~rltrade.envs.costs.LinearCost` (``BpsCost``, ``PerShareCost``, ``SpreadCost``,
        ``NoCost`` or a combination; the step kernel inlines its formula), a number of basis points
        per side, or None (free). Default 10: ``BpsCost(10)``. Costs apply to the traded notional
        ``|Δposition|·price·multiplier`` and the traded units ``|Δposition|``.
    timing:
        An :class:`~rltrade.envs.timing.ExecutionTiming` or its name; None: ``next_open`` when the
        bars have opens, else ``next_close``. ``same_close`` is optimistic (the seed's and FinRL's).
    continuous:
        Box action: a target position in [-1, 1] instead of {short, flat, long}.
    initial_capital:
        Starting cash of every episode.
    units:
        Shares / contracts held at position ±1. None: 1 contract with a ``contract``; otherwise
        ``0.5·initial_capital / close`` at the episode's first bar. Contracts are whole numbers.
    start, end:
        Trading range (inclusive; a date alone as ``end`` means that whole day). Bars before
        ``start`` serve as indicator history; bars after ``end`` are dropped before anything is computed.
    symbol:
        Symbol to trade when the bars have several.
    episode_length:
        Continuous mode: episodes of this many steps, walking through the range window by window
        (default: one episode to the end of the range).
    random_start:
        Start each episode at a random bar (continuous) or session (by_day), drawn from the env's
        seeded generator; otherwise episodes start at the first bar, or walk through the sessions /
        windows in order (a seeded reset starts the walk over).
    session_tz:
        Time zone whose calendar dates define the sessions of ``by_day`` (default UTC).
    eta:
        Adaptation rate of ``differential_sharpe`` / ``downside_deviation`` given by name.
    """

    def __init__(
        self,
        bars: pd.DataFrame,
        state: StateName | str = "3",
        reward: str | Reward = "differential_sharpe",
        look_back: int = 10,
        forward_reward: bool = False,
        by_day: bool = False,
        contract: FuturesContract | None = None,
        cost: CostModel | float | None = 10.0,
        timing: ExecutionTiming | str | None = None,
        continuous: bool = False,
        initial_capital: float = DEFAULT_INITIAL_CAPITAL,
        units: float | None = None,
        start: Any = None,
        end: Any = None,
        symbol: str | None = None,
        episode_length: int | None = None,
        random_start: bool = False,
        session_tz: str = "UTC",
        eta: float | None = None,
    ) -> None:
        state = str(state)
        if state not in STATE_COLUMNS:
            raise EnvConfigError(f"unknown state {state!r}; use one of {', '.join(STATE_COLUMNS)}")
        if int(look_back) < 1:
            raise EnvConfigError(f"look_back must be >= 1, got {look_back}")
        if by_day and episode_length is not None:
            raise EnvConfigError("episode_length applies to continuous episodes; with by_day=True an episode is a day")
        if not np.isfinite(initial_capital) or initial_capital <= 0:
            raise EnvConfigError(f"initial_capital must be > 0, got {initial_capital}")
        if units is not None and (not np.isfinite(units) or units <= 0):
            raise EnvConfigError(f"units must be > 0, got {units}")
        if contract is not None and units is not None and float(units) != round(float(units)):
            raise EnvConfigError(f"units must be a whole number of contracts, got {units}")
        self.state_name = state
        self.look_back = int(look_back)
        self.forward_reward = bool(forward_reward)
        self.by_day = bool(by_day)
        self.contract = contract
        self.continuous = bool(continuous)
        self.lookahead = state == "cheat"
        """True for ``state="cheat"``: the observations contain future prices."""

        frame, self.symbol = _select_symbol(bars, symbol)
        if end is not None:
            end_ts = _as_utc(end)
            if isinstance(end, str) and len(end.strip()) <= 10:  # a date: the whole day
                end_ts = end_ts + pd.Timedelta(days=1) - pd.Timedelta(1, "ns")
            frame = frame.loc[(frame["timestamp"] <= end_ts).to_numpy()].reset_index(drop=True)
        names = _feature_names(state)
        params = {"n_diffs": self.look_back} if "deng_log_diffs" in names else {}
        self._market = Market(frame, names, feature_params=params)
        self.timing = resolve_timing(timing, self._market.has_open)
        self.cost_model = make_cost(cost)
        reward_params: dict[str, float] = {} if eta is None else {"eta": float(eta)}
        self.reward_fn = make_reward(reward, "log_return", **reward_params)
        self._arrays = _build_arrays(
            self._market,
            state=state,
            look_back=self.look_back,
            timing=self.timing,
            cost=self.cost_model,
            forward_reward=self.forward_reward,
            by_day=self.by_day,
            session_tz=session_tz,
            start=start,
            episode_length=episode_length,
        )
        self._config = _Config(
            state=state,
            look_back=self.look_back,
            forward_reward=self.forward_reward,
            by_day=self.by_day,
            continuous=self.continuous,
            multiplier=1.0 if contract is None else float(contract.multiplier),
            margin_rate=1.0 if contract is None else contract.margin_rate,
            maintenance_rate=1.0 if contract is None else contract.maintenance,
            integer_units=contract is not None,
            units=(1.0 if contract is not None else None) if units is None else float(units),
            initial_capital=float(initial_capital),
            random_start=bool(random_start),
            merge_final_fill=self.by_day and self.timing.fill_field == "close" and self.timing.fill_offset == 1,
            has_contract=contract is not None,
            cheat=self.lookahead,
            cost=kernel_params(self.cost_model),
        )
        if self.lookahead:
            log.warning("SingleAssetEnv(state='cheat') observes FUTURE prices: use it only to test that agents learn")
        low, high = _column_bounds(STATE_COLUMNS[state])
        self._observation_space = gym.spaces.Box(
            low=np.tile(low, (self.look_back, 1)), high=np.tile(high, (self.look_back, 1)), dtype=np.float32
        )
        self._action_space: gym.spaces.Space[Any] = (
            gym.spaces.Box(low=-1.0, high=1.0, shape=(1,), dtype=np.float32)
            if self.continuous
            else gym.spaces.Discrete(3)
        )
        self._install(self.make_core(1))

    def make_core(self, n_copies: int) -> BatchedCore:
        """A core with ``n_copies`` copies of this env (shares the market arrays)."""
        return _SingleAssetCore(
            self._market,
            self._arrays,
            self._config,
            self.cost_model,
            self.reward_fn,
            n_copies,
            self._observation_space,
            self._action_space,
        )

    @property
    def columns(self) -> tuple[str, ...]:
        """Names of the observation columns (see :data:`STATE_COLUMNS`)."""
        return STATE_COLUMNS[self.state_name]

    @property
    def episode_starts(self) -> NDArray[np.datetime64]:
        """Timestamps of the first decision bar of each episode start (sessions with ``by_day``; bars otherwise)."""
        return self._market.times[self._arrays.starts]

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[NDArray[np.float32], dict[str, Any]]:
        """Start an episode.

        Parameters
        ----------
        seed:
            Seeds the generator of ``random_start`` and restarts the walk through the sessions / windows.
        options:
            ``{"start": timestamp or bar index}``: the first episode start at or after it (then walk on).
        """
        if seed is not None:
            cast(_SingleAssetCore, self._core).episode[:] = 0
        return super().reset(seed=seed, options=options)

    def step(self, action: Any) -> tuple[NDArray[np.float32], float, bool, bool, dict[str, Any]]:
        """Trade to the action's target position (0 short, 1 flat, 2 long; or a position in [-1, 1]), advance a bar."""
        return super().step(np.asarray(action))

    def __repr__(self) -> str:
        cheat = " [LOOKAHEAD: observes future prices]" if self.lookahead else ""
        contract = "" if self.contract is None else f", contract={self.contract}"
        return (
            f"SingleAssetEnv({self.symbol}, state={self.state_name!r}{cheat}, reward={self.reward_fn!r}, "
            f"look_back={self.look_back}, forward_reward={self.forward_reward}, by_day={self.by_day}, "
            f"timing={self.timing.name}, cost={self.cost_model!r}{contract}, continuous={self.continuous})"
        )

    __str__ = __repr__


def _batched_class() -> type:
    """Define :class:`BatchedSingleAssetEnv` on first use: its base imports Stable-Baselines3 (and torch)."""
    from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs

    from rltrade.envs.vec import BatchedVecEnv

    class BatchedSingleAssetEnv(BatchedVecEnv):
        """K independent :class:`SingleAssetEnv` copies stepped in one numpy call, as a Stable-Baselines3 ``VecEnv``.

        Copy k starts at episode start ``start_offsets[k]`` (a bar offset in continuous mode, a
        session with ``by_day``, a window with ``episode_length``) and walks on from there, or draws
        random starts from its own generator (seeded ``seed + k`` by :meth:`seed`) with
        ``random_start=True``. Finished copies reset automatically (SB3 semantics).

        Parameters
        ----------
        bars:
            As for :class:`SingleAssetEnv`.
        n_envs:
            K, the number of copies.
        full_info:
            Put the full info dict of each copy in ``infos`` on every step (off by default for speed).
        start_offsets:
            Index into :attr:`SingleAssetEnv.episode_starts` of each copy's first episode; default:
            spread evenly.
        **kwargs:
            The parameters of :class:`SingleAssetEnv`.
        """

        def __init__(
            self,
            bars: pd.DataFrame,
            n_envs: int = 8,
            full_info: bool = False,
            start_offsets: Sequence[int] | None = None,
            **kwargs: Any,
        ) -> None:
            super().__init__(SingleAssetEnv(bars, **kwargs), n_envs, full_info)
            core = cast(_SingleAssetCore, self.core)
            n_starts = len(core.arrays.starts)
            if start_offsets is None:
                start_offsets = [k * (n_starts // n_envs) for k in range(n_envs)]
            if len(start_offsets) != n_envs:
                raise EnvConfigError(f"start_offsets has {len(start_offsets)} entries for {n_envs} copies")
            core.offset[:] = np.asarray(start_offsets, dtype=np.int64) % n_starts

        def reset(self) -> VecEnvObs:
            """Reset every copy; a copy given a seed by :meth:`seed` restarts its walk through the episode starts."""
            core = cast(_SingleAssetCore, self.core)
            for k, seed in enumerate(self._seeds):
                if seed is not None:
                    core.episode[k] = 0
            return super().reset()

    return BatchedSingleAssetEnv


def __getattr__(name: str) -> Any:
    # BatchedSingleAssetEnv is built lazily so that importing this module (gym.make) loads no torch.
    if name == "BatchedSingleAssetEnv":
        cls = _batched_class()
        cls.__module__ = __name__
        cls.__qualname__ = name
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ACTION_POSITIONS",
    "STATE_COLUMNS",
    "BatchedSingleAssetEnv",  # noqa: F822 - defined on first access (module __getattr__)
    "FuturesContract",
    "SingleAssetEnv",
]
