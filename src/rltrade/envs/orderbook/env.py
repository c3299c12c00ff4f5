"""OrderBookEnv: trade one stock from its level-I events, the seed's (qtrader's) market-making task.

Quick use::

    from rltrade.envs.orderbook import OrderBookEnv

    env = OrderBookEnv(events, decision_interval=2.0, fee_per_share=0.0035)
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(5)  # quote both sides

The model (fills, queues and latency are :mod:`rltrade.envs.orderbook.replay`'s; the agent's
orders never move the replayed market):

- **Episode**: the trading window of the one session in ``events`` (default 10:30-16:30 exchange
  time, ``events.tz``), cut into decision times ``t_0 = start, t_0 + Δ, ...`` (``Δ`` = the decision
  interval, default 2 s), the last one at or before ``end``. Step ``k`` applies the action chosen at
  ``t_k`` and replays the events up to ``t_{k+1}``; the observation it returns is the one at
  ``t_{k+1}``. At the last decision time every order is withdrawn and the position is closed at
  the touch (the whole position, at the best bid or ask, fees charged) in the final step.
- **Actions** (``Discrete(6)``, :mod:`~rltrade.envs.orderbook.layout`): 0 none (cancel working
  orders), 1 buy (market), 2 sell (market), 3 best_bid (keep/place a bid, cancel the ask),
  4 best_ask, 5 best_both. Every action states which limit orders should rest: 0-2 none. A limit
  order goes ``ticks_away`` ticks behind the best price of its side at ``t_k`` (0: at it; 1: one
  tick worse, as the seed did); an order already resting at that price is kept with its queue
  place and remaining size (even partly filled), otherwise it is replaced. A market order is for
  ``order_size`` shares and fills at the touch, at most the displayed size.
- **Position limit**: an order that could take ``|position|`` past ``position_limit`` is not
  placed (at +100 with the defaults: no bid, no market buy; best_both places only the ask). With
  latency the replay also trims an order on arrival so no fill can breach the limit.
- **Trailing stop** (the seed's gate on market orders): without one (``trailing_stop=None``,
  the default) market orders are always allowed. With one (``True``: 4 cents, or a size in
  dollars) a market order may only reduce a position whose mark has moved the stop against it:
  a long once the mid is ``trailing_stop`` below its highest mid since the position was opened
  (taken at decision times), a short once it is that much above its lowest. A market action that
  is not allowed sends nothing (it still cancels the working orders, like action 0).
  :meth:`OrderBookEnv.action_masks` tells which actions act fully.
- **Reward**: the change over the step of the mark-to-mid P&L net of fees (dollars),
  ``cash + position * mid - fees``; ``fee_per_share`` on every filled share, ``fee_per_order`` once
  per order that fills. The mid is the last two-sided one.
- **Observation**: float32 ``[position / position_limit, has_bid_order, has_ask_order, OFI,
  log(q^B/q^A), spread in ticks]`` (indices ``OBS_*`` in :mod:`~rltrade.envs.orderbook.layout`), the
  features of :func:`rltrade.features.orderbook.orderbook_features` at the decision time,
  precomputed once at construction; a value that is undefined (an empty book side) is 0. By
  default they describe the market as replayed, the agent's orders excluded. With
  ``include_own_orders=True`` the agent's resting orders count in the sizes of OFI and the book
  ratio where they rest at the displayed best price, as of each event (the features'
  ``own=`` rule, with :meth:`OrderBookEnv.own_orders` as the record): an order that reached the
  book after the last event before ``t`` counts from the next event on.
- **info** (every step and reset): ``pnl`` (mark-to-mid P&L net of fees since the episode began),
  ``position``, ``mid`` (dollars), ``fees`` (of the step), ``fills`` (a tuple of :class:`Fill` of the
  step). :meth:`OrderBookEnv.history` gives the episode so far as two DataFrames for a report.

``step`` is one numba call (apply the action, replay to the next decision time, mark), so a full
session's episode takes a few tens of milliseconds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
import pandas as pd
from numba import njit
from numpy.typing import NDArray

from rltrade.data.ticks.schema import PRICE_SCALE, Events
from rltrade.envs.orderbook.layout import (
    ACTION_BEST_ASK,
    ACTION_BEST_BID,
    ACTION_BEST_BOTH,
    ACTION_BUY,
    ACTION_NONE,
    ACTION_SELL,
    N_ACTIONS,
    OBS_ASK_OPEN,
    OBS_BID_OPEN,
    OBS_LOG_RATIO,
    OBS_OFI,
    OBS_POSITION,
    OBS_SIZE,
    OBS_SPREAD,
)
from rltrade.envs.orderbook.replay import (
    C_AP,
    C_AS,
    C_BP,
    C_BS,
    C_TS,
    F_FEES,
    FILL_REASONS,
    FILL_ROOM,
    O_BASE,
    O_PRICE,
    O_STATUS,
    O_STRIDE,
    S_CASH,
    S_CURSOR,
    S_LIMIT,
    S_NFILL,
    S_POS,
    S_RECORD,
    S_TICK,
    ST_NONE,
    FillLog,
    advance,
    fills_table,
    flatten,
    new_state,
    pack_events,
    request_cancel,
    request_market,
    request_place,
    resolve_queue_model,
)
from rltrade.envs.timing import EnvConfigError
from rltrade.features.orderbook import OwnOrders, orderbook_features

DEFAULT_TRAILING_STOP = 0.04  # dollars: the seed's 4 cents
NS = 1_000_000_000

# env slots of the replay state (the replay leaves 48.. and 8.. free)
E_STEP, E_NSTEPS, E_SIZE, E_TICKS, E_STOP_ON, E_PREV_SIGN, E_OWN = 48, 49, 50, 51, 52, 53, 54
F_EQUITY, F_MID, F_EXTREME, F_STOP = 8, 9, 10, 11
# columns of the decision matrix: time, first event of the OFI window, the market's OFI
D_TIME, D_WINDOW_LO, D_OFI = 0, 1, 2
# columns of the step history
H_ACTION, H_POSITION, H_PNL, H_REWARD, H_MID, H_FEES, H_NFILLS = range(7)


class Fill(NamedTuple):
    """One fill of the agent: time (ns UTC), side (+1 buy, -1 sell), price (dollars), shares, why, fee."""

    ts: int
    side: int
    price: float
    size: int
    reason: str
    fee: float


@dataclass(frozen=True)
class EpisodeHistory:
    """The episode so far: one row per step and one per fill.

    ``steps``: ``decided_at`` (t_k, UTC), ``timestamp`` (t_{k+1}: when the row's values hold),
    ``action``, ``position``, ``pnl`` (cumulative, net of fees), ``reward``, ``mid``, ``fees``
    (of the step). ``fills``: ``step`` (the row of ``steps`` it belongs to; a market order decided
    at t_k fills at t_k, the same instant as the previous step's end), ``timestamp``, ``side`` (+1
    buy, -1 sell), ``price`` (dollars), ``size``, ``reason`` (queue, priority, through, cross,
    market, flatten), ``order`` (the agent order's number), ``fee``.
    """

    steps: pd.DataFrame
    fills: pd.DataFrame


@njit(cache=True)
def _market_allowed(si: NDArray[np.int64], sf: NDArray[np.float64], sign: int) -> bool:
    """May a market order of ``sign`` (+1 buy, -1 sell) go now (position limit, trailing stop)?"""
    pos = si[S_POS]
    if sign * pos + si[E_SIZE] > si[S_LIMIT]:
        return False
    if si[E_STOP_ON] == 0:
        return True
    if sign > 0:
        return pos < 0 and sf[F_MID] - sf[F_EXTREME] >= sf[F_STOP]
    return pos > 0 and sf[F_EXTREME] - sf[F_MID] >= sf[F_STOP]


@njit(cache=True)
def _own_features(ev: NDArray[np.int64], own: NDArray[np.int64], lo: int, j: int) -> tuple[int, float]:
    """The agent's share of OFI over events ``lo..j`` and the log book ratio at ``j``, own orders included.

    Own sizes count where they rest at the displayed best price after an event (the rule of
    :class:`rltrade.features.orderbook.OwnOrders`); NaN log ratio (an empty side) is 0.
    """
    ofi = 0
    for n in range(max(lo, 1), j + 1):
        ob0 = own[n - 1, 1] if own[n - 1, 0] == ev[n - 1, C_BP] else 0
        ob1 = own[n, 1] if own[n, 0] == ev[n, C_BP] else 0
        oa0 = own[n - 1, 3] if own[n - 1, 2] == ev[n - 1, C_AP] else 0
        oa1 = own[n, 3] if own[n, 2] == ev[n, C_AP] else 0
        if ev[n, C_BP] >= ev[n - 1, C_BP]:
            ofi += ob1
        if ev[n, C_BP] <= ev[n - 1, C_BP]:
            ofi -= ob0
        if ev[n, C_AP] <= ev[n - 1, C_AP]:
            ofi -= oa1
        if ev[n, C_AP] >= ev[n - 1, C_AP]:
            ofi += oa0
    qb = ev[j, C_BS] + (own[j, 1] if own[j, 0] == ev[j, C_BP] else 0)
    qa = ev[j, C_AS] + (own[j, 3] if own[j, 2] == ev[j, C_AP] else 0)
    log_ratio = np.log(qb / qa) if qb > 0 and qa > 0 else 0.0
    return ofi, log_ratio


@njit(cache=True)
def _env_step(
    ev: NDArray[np.int64],
    first_sub: NDArray[np.int64],
    si: NDArray[np.int64],
    sf: NDArray[np.float64],
    fills: NDArray[np.int64],
    fees: NDArray[np.float64],
    own: NDArray[np.int64],
    dec: NDArray[np.int64],
    feats: NDArray[np.float32],
    obs: NDArray[np.float32],
    hist: NDArray[np.float64],
    action: int,
) -> tuple[float, float, float, float, int, int]:
    """One decision: requests for ``action`` at t_k, replay to t_{k+1}, mark.

    Returns the reward, the P&L so far, the mid (dollars), the step's fees, the position and the
    number of fills logged.
    """
    k = si[E_STEP]
    t = dec[k, D_TIME]
    i = si[S_CURSOR] - 1
    size = si[E_SIZE]
    pos = si[S_POS]
    fees_before = sf[F_FEES]

    if action == ACTION_BUY and _market_allowed(si, sf, 1):
        request_market(si, size, t)
    elif action == ACTION_SELL and _market_allowed(si, sf, -1):
        request_market(si, -size, t)
    want_bid = action in (ACTION_BEST_BID, ACTION_BEST_BOTH) and pos + size <= si[S_LIMIT]
    want_ask = action in (ACTION_BEST_ASK, ACTION_BEST_BOTH) and size - pos <= si[S_LIMIT]
    offset = si[E_TICKS] * si[S_TICK]
    for s in range(2):
        b = O_BASE + O_STRIDE * s
        live = si[b + O_STATUS] != ST_NONE
        if s == 0:
            want = want_bid and ev[i, C_BS] > 0
            price = ev[i, C_BP] - offset
        else:
            want = want_ask and ev[i, C_AS] > 0
            price = ev[i, C_AP] + offset
        if want:
            if not (live and si[b + O_PRICE] == price):
                request_place(si, s, price, size, t)
        elif live:
            request_cancel(si, s, t)

    advance(ev, first_sub, si, sf, fills, fees, own, dec[k + 1, D_TIME])
    j = si[S_CURSOR] - 1
    if ev[j, C_BS] > 0 and ev[j, C_AS] > 0:
        sf[F_MID] = (ev[j, C_BP] + ev[j, C_AP]) / 2.0
    mid = sf[F_MID]
    if k + 1 == si[E_NSTEPS]:
        flatten(ev, si, sf, fills, fees, dec[k + 1, D_TIME], int(np.round(mid)))

    pos = si[S_POS]
    equity = (si[S_CASH] + pos * mid) / PRICE_SCALE - sf[F_FEES]
    reward = equity - sf[F_EQUITY]
    sf[F_EQUITY] = equity
    sign = 0 if pos == 0 else (1 if pos > 0 else -1)
    if sign == 0 or sign != si[E_PREV_SIGN]:
        sf[F_EXTREME] = mid
    elif sign > 0:
        sf[F_EXTREME] = max(sf[F_EXTREME], mid)
    else:
        sf[F_EXTREME] = min(sf[F_EXTREME], mid)
    si[E_PREV_SIGN] = sign

    obs[OBS_POSITION] = pos / si[S_LIMIT]
    obs[OBS_BID_OPEN] = 1.0 if si[O_BASE + O_STATUS] != ST_NONE else 0.0
    obs[OBS_ASK_OPEN] = 1.0 if si[O_BASE + O_STRIDE + O_STATUS] != ST_NONE else 0.0
    obs[OBS_OFI] = feats[k + 1, 0]
    obs[OBS_LOG_RATIO] = feats[k + 1, 1]
    obs[OBS_SPREAD] = feats[k + 1, 2]
    if si[E_OWN] == 1:
        own_ofi, log_ratio = _own_features(ev, own, dec[k + 1, D_WINDOW_LO], j)
        obs[OBS_OFI] = dec[k + 1, D_OFI] + own_ofi
        obs[OBS_LOG_RATIO] = log_ratio
    hist[k, H_ACTION] = action
    hist[k, H_POSITION] = pos
    hist[k, H_PNL] = equity
    hist[k, H_REWARD] = reward
    hist[k, H_MID] = mid / PRICE_SCALE
    hist[k, H_FEES] = sf[F_FEES] - fees_before
    hist[k, H_NFILLS] = si[S_NFILL]
    si[E_STEP] = k + 1
    return reward, equity, mid / PRICE_SCALE, hist[k, H_FEES], pos, si[S_NFILL]


def _clock_ns(events: Events, value: str | dt.time, name: str) -> int:
    """A wall-clock time of the session's date in its exchange time zone, as ns since the epoch (UTC)."""
    if isinstance(value, dt.time):
        text = value.isoformat()
    else:
        text = str(value).strip()
        try:
            dt.time.fromisoformat(text)
        except ValueError:
            raise EnvConfigError(f"{name} must be a time of day like '10:30' or '10:30:00', got {value!r}") from None
    return int(pd.Timestamp(f"{events.date} {text}", tz=events.tz).value)


def _seconds_ns(value: float, name: str, *, allow_zero: bool = False) -> int:
    seconds = float(value)
    if not np.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        raise EnvConfigError(f"{name} must be {'>= 0' if allow_zero else '> 0'} seconds, got {value}")
    return round(seconds * NS)


class OrderBookEnv(gym.Env[NDArray[np.float32], Any]):
    """Trade one stock over a session's level-I events with limit and market orders (see the module doc).

    Parameters
    ----------
    events:
        One session's events (:class:`~rltrade.data.ticks.schema.Events`); its ``date`` and ``tz``
        place the trading window.
    decision_interval:
        Seconds between decisions (default 2).
    start, end:
        Trading window in exchange time, ``"HH:MM[:SS]"`` or :class:`datetime.time` (default
        10:30-16:30, the seed's). The book must be two-sided at ``start``.
    order_size:
        Shares per order (default 100).
    position_limit:
        Largest ``|position|`` in shares (default 100).
    ticks_away:
        Limit orders go this many ticks behind the best price of their side (0: at it).
    tick:
        Tick size in currency (default 0.01), a whole number of 1/10^4 (the events' price unit).
    fee_per_share, fee_per_order:
        Fees in dollars: per filled share, and once per order that fills.
    trailing_stop:
        None/False: market orders always allowed; True (4 cents) or a size in dollars: the seed's
        gate (a market order only closes a position whose trailing stop is hit).
    ofi_window:
        Seconds of the trailing order-flow-imbalance window (default 10).
    latency:
        Seconds before an order or a cancel reaches the book (default 0); below the decision interval.
    queue_model:
        ``"ids"``, ``"risk_averse"`` or ``"proportional"`` (see :mod:`~rltrade.envs.orderbook.replay`);
        None: ``"ids"`` when the events carry order ids, else ``"risk_averse"``.
    include_own_orders:
        Add the agent's resting orders to the sizes behind the OFI and log book ratio observations
        (see the module doc); default: the market as replayed.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 - gymnasium's convention

    def __init__(
        self,
        events: Events,
        *,
        decision_interval: float = 2.0,
        start: str | dt.time = "10:30",
        end: str | dt.time = "16:30",
        order_size: int = 100,
        position_limit: int = 100,
        ticks_away: int = 0,
        tick: float = 0.01,
        fee_per_share: float = 0.0,
        fee_per_order: float = 0.0,
        trailing_stop: float | bool | None = None,
        ofi_window: float = 10.0,
        latency: float = 0.0,
        queue_model: str | None = None,
        include_own_orders: bool = False,
    ) -> None:
        interval_ns = _seconds_ns(decision_interval, "decision_interval")
        latency_ns = _seconds_ns(latency, "latency", allow_zero=True)
        window_ns = _seconds_ns(ofi_window, "ofi_window")
        if latency_ns >= interval_ns:
            raise EnvConfigError(f"latency ({latency} s) must be below the decision interval ({decision_interval} s)")
        if int(order_size) <= 0 or int(position_limit) < int(order_size):
            raise EnvConfigError(
                f"need 0 < order_size <= position_limit, got order_size {order_size}, position_limit {position_limit}"
            )
        tick_units = round(float(tick) * PRICE_SCALE)
        if int(ticks_away) < 0 or tick_units <= 0 or abs(tick_units - float(tick) * PRICE_SCALE) > 1e-6:
            raise EnvConfigError(
                f"need ticks_away >= 0 and a tick of whole 1/{PRICE_SCALE}s of currency, got ticks_away "
                f"{ticks_away}, tick {tick}"
            )
        if not (fee_per_share >= 0 and fee_per_order >= 0):
            raise EnvConfigError(f"fees must be >= 0, got {fee_per_share} per share and {fee_per_order} per order")
        if trailing_stop is True:
            trailing_stop = DEFAULT_TRAILING_STOP
        elif trailing_stop is False:
            trailing_stop = None
        if trailing_stop is not None and not float(trailing_stop) > 0:
            raise EnvConfigError(f"trailing_stop must be > 0 dollars (or True / None), got {trailing_stop}")

        self.events = events
        self.symbol, self.date = events.symbol, events.date
        self.order_size, self.position_limit = int(order_size), int(position_limit)
        self.ticks_away, self.tick = int(ticks_away), float(tick)
        self._tick_units = tick_units  # price x 10^4
        self.include_own_orders = bool(include_own_orders)
        self.fee_per_share, self.fee_per_order = float(fee_per_share), float(fee_per_order)
        self.trailing_stop = None if trailing_stop is None else float(trailing_stop)
        self.latency_ns, self.decision_interval_ns = latency_ns, interval_ns
        self.queue_model = resolve_queue_model(queue_model, events)

        start_ns, end_ns = _clock_ns(events, start, "start"), _clock_ns(events, end, "end")
        n_steps = (end_ns - start_ns) // interval_ns
        if n_steps < 1:
            raise EnvConfigError(f"the window {start}-{end} holds no decision interval of {decision_interval} s")
        self._ev, self._first_sub = pack_events(events)
        ts = self._ev[:, C_TS]
        self.decision_times: NDArray[np.int64] = start_ns + interval_ns * np.arange(n_steps + 1, dtype=np.int64)
        """Decision times t_0..t_N (ns UTC); the episode has N steps."""
        self._n_steps = int(n_steps)
        self._idx0 = int(np.searchsorted(ts, start_ns, side="right"))
        if self._idx0 == 0:
            first = pd.Timestamp(int(ts[0]), tz="UTC").tz_convert(events.tz) if len(ts) else "none"
            raise EnvConfigError(
                f"{events.symbol} {events.date}: no book at the window start {start} (first event: {first})"
            )
        self.features = orderbook_features(events, self.decision_times, ofi_window_ns=window_ns, tick=tick_units)
        """The market's features at the decision times (float64, NaN where undefined)."""
        mid0 = self.features["mid"][0]
        if not np.isfinite(mid0):
            raise EnvConfigError(f"{events.symbol} {events.date}: the book is one-sided at the window start {start}")
        self._mid0 = float(mid0) * PRICE_SCALE
        feats = np.column_stack([self.features[c] for c in ("ofi", "log_book_ratio", "spread_ticks")])
        self._feats = np.nan_to_num(feats, nan=0.0).astype(np.float32)
        self._dec = np.column_stack(
            [
                self.decision_times,
                np.searchsorted(ts, self.decision_times - window_ns, side="right"),
                self.features["ofi"].astype(np.int64),
            ]
        ).astype(np.int64)
        per_step = np.diff(np.searchsorted(ts, self.decision_times, side="right"))
        # room in the fill log for the busiest step: at most 2 fills per side and event, plus requests
        self._need = int(4 * per_step.max(initial=0) + 2 * FILL_ROOM + 1)
        self._log = FillLog(max(65_536, 4 * self._need))
        self._own = np.zeros((len(events) if self.include_own_orders else 0, 4), dtype=np.int64)
        self._hist = np.zeros((self._n_steps, 7), dtype=np.float64)
        self._obs = np.zeros(OBS_SIZE, dtype=np.float32)

        inf = np.float32(np.inf)
        low = np.array([-1.0, 0.0, 0.0, -inf, -inf, -inf], dtype=np.float32)
        high = np.array([1.0, 1.0, 1.0, inf, inf, inf], dtype=np.float32)
        self.observation_space = gym.spaces.Box(low=low, high=high, dtype=np.float32)
        self.action_space: gym.spaces.Space[Any] = gym.spaces.Discrete(N_ACTIONS)
        self._start_state()

    # --- episode ---------------------------------------------------------------------------------
    def _start_state(self) -> None:
        self._si, self._sf = new_state(
            self.queue_model,
            self.latency_ns,
            self.position_limit,
            self._tick_units,
            self.fee_per_share,
            self.fee_per_order,
        )
        si, sf = self._si, self._sf
        si[S_CURSOR] = self._idx0  # no orders before t_0: the events up to it need no replay
        si[S_NFILL] = 0
        si[E_STEP], si[E_NSTEPS], si[E_SIZE], si[E_TICKS] = 0, self._n_steps, self.order_size, self.ticks_away
        si[E_STOP_ON] = 0 if self.trailing_stop is None else 1
        si[E_OWN] = si[S_RECORD] = 1 if self.include_own_orders else 0
        self._own[:] = 0
        sf[F_STOP] = 0.0 if self.trailing_stop is None else self.trailing_stop * PRICE_SCALE
        sf[F_MID] = sf[F_EXTREME] = self._mid0
        self._obs[:] = 0.0
        self._obs[OBS_OFI : OBS_SPREAD + 1] = self._feats[0]
        self._k = 0  # steps taken (mirrors the state's E_STEP)
        self._n_fills = 0  # fills logged (mirrors S_NFILL)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[NDArray[np.float32], dict[str, Any]]:
        """Start the session's window again: flat, no orders, the observation at t_0."""
        super().reset(seed=seed)
        self._start_state()
        info = {"pnl": 0.0, "position": 0, "mid": self._mid0 / PRICE_SCALE, "fees": 0.0, "fills": ()}
        return self._obs.copy(), info

    def step(self, action: Any) -> tuple[NDArray[np.float32], float, bool, bool, dict[str, Any]]:
        """Apply ``action`` at t_k, replay to t_{k+1}; the observation at t_{k+1} (see the module doc)."""
        a = int(action)
        if not 0 <= a < N_ACTIONS:
            raise EnvConfigError(f"action must be in 0..{N_ACTIONS - 1}, got {action}")
        k, n0 = self._k, self._n_fills
        if k >= self._n_steps:
            raise EnvConfigError("the episode is over: call reset()")
        log = self._log
        if n0 + self._need > log.rows.shape[0]:
            log.grow(n0, self._need)
        reward, pnl, mid, fees, position, n1 = _env_step(
            self._ev, self._first_sub, self._si, self._sf, log.rows, log.fees, self._own,
            self._dec, self._feats, self._obs, self._hist, a,
        )  # fmt: skip
        self._k, self._n_fills = k + 1, n1
        info = {
            "pnl": pnl,
            "position": position,
            "mid": mid,
            "fees": fees,
            "fills": self._fills(n0, n1) if n1 > n0 else (),
        }
        return self._obs.copy(), reward, k + 1 == self._n_steps, False, info

    def _fills(self, start: int, stop: int) -> tuple[Fill, ...]:
        rows, fees = self._log.rows, self._log.fees
        return tuple(
            Fill(
                ts=int(rows[r, 0]),
                side=int(rows[r, 1]),
                price=float(rows[r, 2]) / PRICE_SCALE,
                size=int(rows[r, 3]),
                reason=FILL_REASONS[int(rows[r, 4])],
                fee=float(fees[r]),
            )
            for r in range(start, stop)
        )

    # --- what the agent may do ---------------------------------------------------------------------
    def action_masks(self) -> NDArray[np.bool_]:
        """Which actions act fully now (position limit, trailing stop, a displayed side to quote)."""
        si, sf = self._si, self._sf
        i = int(si[S_CURSOR]) - 1
        pos, size = int(si[S_POS]), self.order_size
        bid_ok = pos + size <= self.position_limit and self._ev[i, C_BS] > 0
        ask_ok = size - pos <= self.position_limit and self._ev[i, C_AS] > 0
        mask = np.zeros(N_ACTIONS, dtype=bool)
        mask[ACTION_NONE] = True
        mask[ACTION_BUY] = bool(_market_allowed(si, sf, 1)) and self._ev[i, C_AS] > 0
        mask[ACTION_SELL] = bool(_market_allowed(si, sf, -1)) and self._ev[i, C_BS] > 0
        mask[ACTION_BEST_BID] = bid_ok
        mask[ACTION_BEST_ASK] = ask_ok
        mask[ACTION_BEST_BOTH] = bid_ok and ask_ok
        return mask

    # --- records -----------------------------------------------------------------------------------
    def own_orders(self) -> OwnOrders:
        """The agent's resting orders after each event of this episode (needs ``include_own_orders=True``)."""
        if not self.include_own_orders:
            raise EnvConfigError("own_orders needs OrderBookEnv(..., include_own_orders=True)")
        own = self._own.copy()
        return OwnOrders(bid_price=own[:, 0], bid_size=own[:, 1], ask_price=own[:, 2], ask_size=own[:, 3])

    @property
    def n_steps(self) -> int:
        """Steps of an episode (decision times minus one)."""
        return self._n_steps

    @property
    def position(self) -> int:
        """Shares held now."""
        return int(self._si[S_POS])

    def history(self) -> EpisodeHistory:
        """The current episode so far: one row per step taken and one per fill (see :class:`EpisodeHistory`)."""
        k = int(self._si[E_STEP])
        h = self._hist[:k]
        steps = pd.DataFrame(
            {
                "decided_at": pd.to_datetime(self.decision_times[:k], utc=True),
                "timestamp": pd.to_datetime(self.decision_times[1 : k + 1], utc=True),
                "action": h[:, H_ACTION].astype(np.int64),
                "position": h[:, H_POSITION].astype(np.int64),
                "pnl": h[:, H_PNL],
                "reward": h[:, H_REWARD],
                "mid": h[:, H_MID],
                "fees": h[:, H_FEES],
            }
        )
        table = fills_table(self._log.rows, self._log.fees, 0, int(self._si[S_NFILL]))
        fill_step = np.searchsorted(h[:, H_NFILLS], np.arange(len(table)), side="right")
        fills = pd.DataFrame(
            {
                "step": fill_step.astype(np.int64),
                "timestamp": pd.to_datetime(table["ts"], utc=True),
                "side": table["side"].astype(np.int64),
                "price": table["price"] / PRICE_SCALE,
                "size": table["size"],
                "reason": [FILL_REASONS[int(r)] for r in table["reason"]],
                "order": table["order"],
                "fee": table["fee"],
            }
        )
        return EpisodeHistory(steps=steps, fills=fills)

    def __repr__(self) -> str:
        stop = "off" if self.trailing_stop is None else f"{self.trailing_stop:g}"
        return (
            f"OrderBookEnv({self.symbol} {self.date}, {self._n_steps} steps of {self.decision_interval_ns / NS:g} s, "
            f"size {self.order_size}, limit {self.position_limit}, ticks_away {self.ticks_away}, trailing_stop {stop})"
        )
