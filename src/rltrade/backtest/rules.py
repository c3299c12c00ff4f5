"""The trading rules of seed 002's combined strategy, shared by the backtest and the live loop.

Three signals per symbol and bar, each computed elsewhere from data up to the bar's close, decide
the entries: the LSTM's forecast of a rise (``lstm_up``), the CNN's probability of a rise
(``p_up``) and the direct-RL position (``rl_signal`` in [-1, 1]). Around them sit the seed's risk
rules: percent-of-equity sizing, a stop-loss and a take-profit per position, and a daily
portfolio stop that flattens everything and halts new entries for the rest of the session
(SPEC §4 combined strategy, §7 trading logic).

Two layers, so that a live loop reuses the rules unchanged:

- :class:`TradingRules` (the parameters) and its pure methods: :meth:`TradingRules.decide` turns
  a :class:`RulesState` and one :class:`Bar` into :class:`Order` s and the next state;
  :meth:`TradingRules.stop_exits` says which positions a bar's prices stopped out, and at which
  price. A live loop calls ``decide`` after each bar's close and persists the state
  (:meth:`RulesState.to_dict`).
- :func:`simulate` loops the bars of a backtest through those methods, fills the orders with the
  fill timing and the cost model the envs use, and records equity, holdings, weights, costs, the
  orders and an events log (:class:`RulesResult`; :meth:`RulesResult.to_trajectory` gives the
  :class:`~rltrade.backtest.runner.Trajectory` that scoring takes).

Entries (decided at the close of bar t)
    Long when ``lstm_up`` and ``p_up > up_threshold`` and ``rl_signal > 0``; short (when
    ``allow_short``) when not ``lstm_up`` and ``p_up < 1 − up_threshold`` and ``rl_signal < 0``.
    A symbol with a missing signal (NaN, e.g. during a model's warm-up) gets no signal decision.
    Only a flat symbol enters (no pyramiding); candidates are taken by decreasing ``|rl_signal|``
    (then column order) while the caps allow.
Exits on signals (``exit_rule``)
    The seed's deployed script is not public (its description names long and short logic, stops
    and the daily stop, nothing more), so the default is the plain reading of "long on these
    conditions, short on the mirror": ``"opposite"`` closes a position when the opposite entry
    conditions all hold, and opens the opposite side in the same fill when shorting is allowed (a
    flip; with shorting off the long is just closed). ``"conditions"`` closes a position as soon
    as its own entry conditions stop holding. ``"stops_only"`` leaves exits to the stops and the
    daily stop (what a bracket order at the broker does).
Sizing and caps
    A new position gets ``floor(allocation · equity_t / close_t)`` whole shares (equity and close
    at the decision; the fill price differs with the next-open timing). At most ``max_positions``
    positions at once, and the gross exposure ``Σ|shares · close|`` stays within
    ``max_gross_exposure · equity`` (an entry is cut to the whole shares that fit, skipped at 0).
    A buy never takes cash below zero at its fill (it is cut to what the cash pays, cost included).
Stops (per position, fractions of the entry price)
    Long: stop ``entry·(1 − stop_loss)``, take-profit ``entry·(1 + take_profit)``; short mirrored
    (stop above, take-profit below). Checked on every bar the position is held through, including
    the bar whose open it was entered at. The fill rule, conservative and the same for every case:
    an exit fills at the *worse* (for the position) of its trigger and the first price seen beyond
    it.

    - The open is already beyond the stop (a gap): fill at the open.
    - The open is already beyond the take-profit: fill at the take-profit price (a limit order could
      fill better at the open; we never assume better than the limit).
    - Otherwise, with highs and lows: the low (long) reaching the stop fills at the stop, the high
      reaching the take-profit fills at the take-profit. **Both in the same bar: the stop** (the
      order of the high and the low inside a bar is unknown; we assume the worst).
    - Close-only bars: the close beyond the stop fills at the close (the stop level itself is not
      proven to have traded: the bar may have gapped through it), the close beyond the
      take-profit fills at the take-profit. :attr:`RulesResult.stops_checked_on` says which
      prices were used.
Daily portfolio stop
    The session's starting equity is the equity at the last close before the session's first bar.
    At each close, equity below ``(1 − daily_stop)`` times it halts the session: every position
    gets an exit order (reason ``daily_stop``) and no entries are decided until the next session,
    whose first decision resets the halt. Checked at closes only (the equity of several symbols at
    one instant inside a bar is unknown). Sessions are ids per bar given by the caller
    (:func:`sessions_of`: calendar days in the exchange's time zone); by default the UTC calendar
    day of each timestamp. With daily bars a session is one bar, so the daily stop acts on the
    close-to-close move of the equity: it flattens at the next fill and skips that close's entries.
Fill timing (:mod:`rltrade.envs.timing`)
    Orders decided at the close of bar t fill at ``open[t+1]`` (``next_open``, the default with
    opens), at ``close[t+1]`` (``next_close``; stops inside bar t+1 fill first) or at ``close[t]``
    (``same_close``, an optimistic opt-in). At a fill, exits go first, then entries; an exit whose
    position a stop already closed is dropped, an entry fills only on a flat symbol. Costs are
    charged per fill with the envs' cost model (:mod:`rltrade.envs.costs`); a spread cost uses the
    volatility known at the decision (for stops: at the previous close).
Not modelled
    Partial fills, slippage beyond the cost model, borrow fees and margin calls on shorts, interest
    on cash, a stop inside the daily stop's halt bar (the halt acts at the close), trailing stops.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from rltrade.backtest.runner import Trajectory
from rltrade.envs.costs import CostModel, LinearCost, make_cost, spread_volatility
from rltrade.envs.timing import ExecutionTiming, resolve_timing
from rltrade.errors import DataValidationError, RLTradeError

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

EXIT_RULES: tuple[str, ...] = ("opposite", "conditions", "stops_only")
"""Values of ``TradingRules(exit_rule=...)``; see the module docstring."""
EXIT_REASONS: tuple[str, ...] = ("signal", "stop_loss", "take_profit", "daily_stop", "end")
"""Reasons an exit is logged with (``end``: still open after the last bar, a mark and no trade)."""

_EPS = 1e-9  # slack of the whole-share floors: 10% of 100,000 at 100 is 100 shares, not 99
_STATE_FORMAT = "rltrade.rules_state/1"

CostFunction = Callable[[float, float], float]
"""A bare cost: ``f(notional, shares) -> cost`` (both unsigned)."""


class RulesError(RLTradeError, ValueError):
    """The trading rules, their state or their inputs are inconsistent."""


# --------------------------------------------------------------------------------------------
# Parameters, state, inputs and orders
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TradingRules:
    """The parameters of the combined strategy's trading rules (see the module docstring).

    Parameters
    ----------
    up_threshold:
        P(up) above it allows a long; below ``1 − up_threshold`` a short (seed 002: 0.5).
    allow_short:
        False: short signals only close longs, never open shorts.
    allocation:
        Fraction of the current equity given to each new position (whole shares).
    max_positions:
        Most positions open at once; None for no limit.
    max_gross_exposure:
        Most gross exposure ``Σ|shares · close|`` as a multiple of equity; None for no limit.
    stop_loss, take_profit:
        Fractions of the entry price; None switches the stop (or the take-profit) off.
    daily_stop:
        Fraction of the session's starting equity whose loss halts the session; None for none.
    exit_rule:
        When a signal closes a position: one of :data:`EXIT_RULES`.
    """

    up_threshold: float = 0.5
    allow_short: bool = True
    allocation: float = 0.10
    max_positions: int | None = None
    max_gross_exposure: float | None = 1.0
    stop_loss: float | None = 0.02
    take_profit: float | None = 0.04
    daily_stop: float | None = 0.02
    exit_rule: Literal["opposite", "conditions", "stops_only"] = "opposite"

    def __post_init__(self) -> None:
        if not 0.0 <= self.up_threshold < 1.0:
            raise RulesError(f"TradingRules: up_threshold must be in [0, 1), got {self.up_threshold}")
        if not 0.0 < self.allocation <= 1.0:
            raise RulesError(f"TradingRules: allocation must be in (0, 1], got {self.allocation}")
        if self.max_positions is not None and self.max_positions < 1:
            raise RulesError(f"TradingRules: max_positions must be >= 1 or None, got {self.max_positions}")
        if self.max_gross_exposure is not None and not self.max_gross_exposure > 0:
            raise RulesError(f"TradingRules: max_gross_exposure must be > 0 or None, got {self.max_gross_exposure}")
        for name in ("stop_loss", "daily_stop"):
            value = getattr(self, name)
            if value is not None and not 0.0 < value < 1.0:
                raise RulesError(f"TradingRules: {name} must be in (0, 1) or None, got {value}")
        if self.take_profit is not None and not self.take_profit > 0.0:
            raise RulesError(f"TradingRules: take_profit must be > 0 or None, got {self.take_profit}")
        if self.exit_rule not in EXIT_RULES:
            raise RulesError(f"TradingRules: exit_rule must be one of {', '.join(EXIT_RULES)}, got {self.exit_rule!r}")

    def to_dict(self) -> dict[str, Any]:
        """The parameters as plain JSON types."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TradingRules:
        """Rules from :meth:`to_dict`'s output (unknown keys are an error)."""
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise RulesError(f"TradingRules: unknown parameters {', '.join(sorted(unknown))}")
        return cls(**dict(data))

    # ---------------------------------------------------------------------------- signals
    def conditions(
        self, lstm_up: ArrayLike, p_up: ArrayLike, rl_signal: ArrayLike
    ) -> tuple[BoolArray, BoolArray, BoolArray]:
        """``(long_ok, short_ok, valid)``: the entry conditions of each element, and where all signals exist.

        ``short_ok`` ignores ``allow_short`` (a short signal still closes a long). Any shape.

        Parameters
        ----------
        lstm_up:
            Bool (True: the LSTM forecasts a rise), or float: > 0 a rise, 0 not a rise, NaN none.
        p_up:
            The CNN's probability of a rise (NaN: none).
        rl_signal:
            The direct-RL position (NaN: none); only its sign matters.
        """
        up_raw = np.asarray(lstm_up)
        p = np.asarray(p_up, dtype=np.float64)
        rl = np.asarray(rl_signal, dtype=np.float64)
        if up_raw.dtype == np.bool_:
            up = up_raw
            valid = np.isfinite(p) & np.isfinite(rl)
        else:
            values = up_raw.astype(np.float64)
            up = values > 0
            valid = ~np.isnan(values) & np.isfinite(p) & np.isfinite(rl)
        long_ok = valid & up & (p > self.up_threshold) & (rl > 0)
        short_ok = valid & ~up & (p < 1.0 - self.up_threshold) & (rl < 0)
        return long_ok, short_ok, valid

    def exit_levels(self, side: int, entry_price: float) -> tuple[float, float]:
        """``(stop, take_profit)`` prices of a position of ``side`` (+1 long, −1 short); NaN when switched off."""
        stop = math.nan if self.stop_loss is None else entry_price * (1.0 - side * self.stop_loss)
        take = math.nan if self.take_profit is None else entry_price * (1.0 + side * self.take_profit)
        return stop, take

    # ---------------------------------------------------------------------------- stops
    def stop_exits(self, state: RulesState, bar: Bar) -> tuple[StopHit, ...]:
        """The positions of ``state`` that ``bar``'s prices stop out, with the fill price (module docstring).

        Uses the bar's open (gaps) when given, its high and low when given, else its close. A
        position without an entry price (NaN: e.g. reconciled from a broker) has no stops.
        """
        bar.check(state.n_assets)
        hits = []
        for asset in map(int, np.flatnonzero(state.shares)):
            side = 1 if state.shares[asset] > 0 else -1
            entry = float(state.entry_price[asset])
            if not np.isfinite(entry):
                continue
            hit = self._stop_hit(
                side,
                *self.exit_levels(side, entry),
                _at(bar.open, asset),
                _at(bar.high, asset),
                _at(bar.low, asset),
                float(bar.close[asset]),
            )
            if hit is not None:
                price, reason, trigger, gap = hit
                hits.append(StopHit(int(asset), side, price, reason, trigger, gap))
        return tuple(hits)

    @staticmethod
    def _stop_hit(
        side: int, stop: float, take: float, open_: float, high: float, low: float, close: float
    ) -> tuple[float, str, float, bool] | None:
        """``(price, reason, trigger, gap)`` of the exit a bar triggers, or None. NaN levels/prices are unused.

        Written for a long; a short is the long of the negated prices (its stop is above, its
        take-profit below, and "worse" flips), which keeps the two sides one rule.
        """
        s = float(side)
        stop, take, open_, close = s * stop, s * take, s * open_, s * close
        high, low = (s * high, s * low) if side > 0 else (s * low, s * high)
        # In long terms now: the stop is below, the take-profit above; low <= high.
        if open_ <= stop:  # NaN compares False: no open, or no stop
            return s * open_, "stop_loss", s * stop, True
        if open_ >= take:
            return s * take, "take_profit", s * take, True
        if np.isfinite(high) and np.isfinite(low):
            if low <= stop:  # checked first: with both touched, assume the stop came first
                return s * stop, "stop_loss", s * stop, False
            if high >= take:
                return s * take, "take_profit", s * take, False
            return None
        if close <= stop:
            return s * close, "stop_loss", s * stop, False
        if close >= take:
            return s * take, "take_profit", s * take, False
        return None

    # ---------------------------------------------------------------------------- decisions
    def decide(self, state: RulesState, bar: Bar) -> Decision:
        """The orders decided at ``bar``'s close and the state after the decision (``state`` is not changed).

        In order: a new session resets the halt and takes the last close's equity as its start;
        the daily stop (equity at this close against the session's start) may halt the session
        and close every position; else the signal exits of :attr:`exit_rule` and the entries
        allowed by the sizing and the caps.
        """
        bar.check(state.n_assets)
        close = bar.close
        equity = state.value(close)
        if state.session is None or bar.session != state.session:
            start, halted = state.equity, False
        else:
            start, halted = state.session_start_equity, state.halted
        side = np.sign(state.shares).astype(np.int64)
        held = np.flatnonzero(side)
        halted_now = False
        if not halted and self.daily_stop is not None and equity < start * (1.0 - self.daily_stop):
            halted = halted_now = True
        after = dataclasses.replace(
            state, equity=equity, session=bar.session, session_start_equity=start, halted=halted
        )
        if halted:
            exits = tuple(Order(int(a), "exit", int(side[a]), abs(float(state.shares[a])), "daily_stop") for a in held)
            return Decision(exits, after, halted_now)
        long_ok, short_ok, valid = self.conditions(bar.lstm_up, bar.p_up, bar.rl_signal)
        exiting = self._signal_exits(side, long_ok, short_ok, valid)
        orders = [
            Order(int(a), "exit", int(side[a]), abs(float(state.shares[a])), "signal") for a in held if exiting[a]
        ]
        orders += self._entries(state, close, equity, side, exiting, long_ok, short_ok, np.asarray(bar.rl_signal))
        return Decision(tuple(orders), after, False)

    def _signal_exits(
        self, side: NDArray[np.int64], long_ok: BoolArray, short_ok: BoolArray, valid: BoolArray
    ) -> BoolArray:
        """Which held positions the signals close, per :attr:`exit_rule`."""
        if self.exit_rule == "opposite":
            return ((side > 0) & short_ok) | ((side < 0) & long_ok)
        if self.exit_rule == "conditions":
            return valid & (((side > 0) & ~long_ok) | ((side < 0) & ~short_ok))
        return np.zeros(side.shape, dtype=bool)

    def _entries(
        self,
        state: RulesState,
        close: FloatArray,
        equity: float,
        side: NDArray[np.int64],
        exiting: BoolArray,
        long_ok: BoolArray,
        short_ok: BoolArray,
        rl_signal: NDArray[Any],
    ) -> list[Order]:
        """Entry orders for the symbols flat after the exits, strongest ``|rl_signal|`` first, within the caps."""
        if not equity > 0:
            return []
        flat = (side == 0) | exiting
        wanted = flat & (long_ok | (short_ok & self.allow_short))
        candidates = np.flatnonzero(wanted)
        if candidates.size == 0:
            return []
        strength = np.abs(rl_signal.astype(np.float64)[candidates])
        candidates = candidates[np.argsort(-strength, kind="stable")]
        kept = ~flat
        n_open = int(kept.sum())
        gross = float(np.abs(state.shares[kept] * close[kept]).sum())
        cap = math.inf if self.max_gross_exposure is None else self.max_gross_exposure * equity
        orders = []
        for asset in candidates:
            if self.max_positions is not None and n_open >= self.max_positions:
                break
            price = float(close[asset])
            shares = math.floor(self.allocation * equity / price + _EPS)
            shares = min(shares, math.floor(max(cap - gross, 0.0) / price + _EPS))
            if shares < 1:
                continue
            orders.append(Order(int(asset), "entry", 1 if long_ok[asset] else -1, float(shares), "signal"))
            n_open += 1
            gross += shares * price
        return orders


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value
class RulesState:
    """What the rules remember between bars: the account, the entry prices, the session and its halt.

    A live loop persists it with :meth:`to_dict` (JSON types) and restores it with
    :meth:`from_dict`; positions and cash may be overwritten from the broker's after a restart.

    Attributes
    ----------
    symbols:
        The N symbols, in the column order of every array.
    cash:
        Cash (short-sale proceeds included).
    shares:
        ``[N]`` signed shares held (negative: short).
    entry_price:
        ``[N]`` fill price of each open position's entry; NaN when flat (or unknown: no stops).
    equity:
        The equity at the last close :meth:`TradingRules.decide` saw (the initial value before).
    session:
        Id of the session of the last decision (None before the first).
    session_start_equity:
        The equity the current session's daily stop measures against.
    halted:
        True once the daily stop fired in the current session.
    """

    symbols: tuple[str, ...]
    cash: float
    shares: FloatArray
    entry_price: FloatArray
    equity: float
    session: Hashable | None = None
    session_start_equity: float = math.nan
    halted: bool = False

    def __post_init__(self) -> None:
        n = len(self.symbols)
        shares = np.asarray(self.shares, dtype=np.float64).reshape(-1)
        entry = np.asarray(self.entry_price, dtype=np.float64).reshape(-1)
        if shares.shape != (n,) or entry.shape != (n,):
            raise RulesError(f"RulesState: {n} symbols but {shares.size} shares and {entry.size} entry prices")
        object.__setattr__(self, "shares", shares)
        object.__setattr__(self, "entry_price", entry)

    @classmethod
    def initial(cls, symbols: Sequence[str], initial_value: float) -> RulesState:
        """All cash, no positions, no session yet."""
        n = len(symbols)
        value = float(initial_value)
        return cls(tuple(str(s) for s in symbols), value, np.zeros(n), np.full(n, np.nan), value)

    @property
    def n_assets(self) -> int:
        """N, the number of symbols."""
        return len(self.symbols)

    def value(self, close: ArrayLike) -> float:
        """Equity at the prices ``close``: cash plus the signed holdings' value."""
        return self.cash + float(self.shares @ np.asarray(close, dtype=np.float64))

    def filled(self, asset: int, quantity: float, price: float, cost: float) -> RulesState:
        """The state after a fill of ``quantity`` signed shares of ``asset`` at ``price``, paying ``cost``.

        A fill from flat records ``price`` as the entry price; a fill to flat clears it; a fill
        that only changes the size keeps it.
        """
        shares = self.shares.copy()
        entry = self.entry_price.copy()
        before = shares[asset]
        shares[asset] = before + quantity
        if shares[asset] == 0:
            entry[asset] = np.nan
        elif before == 0 or np.sign(before) != np.sign(shares[asset]):
            entry[asset] = price
        return dataclasses.replace(self, cash=self.cash - quantity * price - cost, shares=shares, entry_price=entry)

    def to_dict(self) -> dict[str, Any]:
        """The state as JSON types (NaN entry prices as None; the session id as an int or a str)."""
        session = self.session
        if isinstance(session, np.generic):
            session = session.item()
        return {
            "format": _STATE_FORMAT,
            "symbols": list(self.symbols),
            "cash": float(self.cash),
            "shares": [float(x) for x in self.shares],
            "entry_price": [None if np.isnan(x) else float(x) for x in self.entry_price],
            "equity": float(self.equity),
            "session": session,
            "session_start_equity": None if np.isnan(self.session_start_equity) else float(self.session_start_equity),
            "halted": bool(self.halted),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RulesState:
        """The state :meth:`to_dict` wrote."""
        if data.get("format") != _STATE_FORMAT:
            raise RulesError(
                f"RulesState: not a saved rules state (format {data.get('format')!r}, expected {_STATE_FORMAT})"
            )
        start = data["session_start_equity"]
        return cls(
            symbols=tuple(str(s) for s in data["symbols"]),
            cash=float(data["cash"]),
            shares=np.array(data["shares"], dtype=np.float64),
            entry_price=np.array([np.nan if x is None else x for x in data["entry_price"]], dtype=np.float64),
            equity=float(data["equity"]),
            session=data["session"],
            session_start_equity=math.nan if start is None else float(start),
            halted=bool(data["halted"]),
        )


@dataclass(frozen=True, eq=False)
class Bar:
    """One bar's inputs to the rules: its session, prices and signals, one element per symbol.

    Parameters
    ----------
    session:
        Id of the bar's session (a calendar day: see :func:`sessions_of`).
    close:
        ``[N]`` closes (finite, > 0).
    lstm_up, p_up, rl_signal:
        ``[N]`` signals (see :meth:`TradingRules.conditions`), from data up to this close.
    open, high, low:
        ``[N]`` prices of the bar, or None (close-only data): the stops use what is given.
    """

    session: Hashable
    close: FloatArray
    lstm_up: NDArray[Any]
    p_up: FloatArray
    rl_signal: FloatArray
    open: FloatArray | None = None
    high: FloatArray | None = None
    low: FloatArray | None = None

    def check(self, n_assets: int) -> None:
        """Raise :class:`RulesError` unless every array has ``n_assets`` elements."""
        for name in ("close", "lstm_up", "p_up", "rl_signal", "open", "high", "low"):
            value = getattr(self, name)
            if value is not None and np.shape(value) != (n_assets,):
                raise RulesError(f"Bar: {name} has shape {np.shape(value)}, the state has {n_assets} symbols")


@dataclass(frozen=True)
class Order:
    """An order decided at a close.

    Attributes
    ----------
    asset:
        Column of the symbol.
    action:
        ``"entry"`` (open a position from flat) or ``"exit"`` (close the position of ``side``).
    side:
        +1 long, −1 short: the side of the position opened or closed.
    shares:
        Shares to enter (> 0); for an exit, the size of the position at the decision (an exit
        closes whatever is left of it at the fill, or nothing when a stop closed it first).
    reason:
        ``"signal"`` or ``"daily_stop"``.
    """

    asset: int
    action: Literal["entry", "exit"]
    side: int
    shares: float
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """The order as JSON types."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class StopHit:
    """A position a bar's prices stopped out: its fill ``price``, ``reason``, ``trigger`` level and ``gap`` flag.

    ``reason`` is ``stop_loss`` or ``take_profit``; ``gap`` is True when the open was already beyond the trigger.
    """

    asset: int
    side: int
    price: float
    reason: str
    trigger: float
    gap: bool


@dataclass(frozen=True, eq=False)
class Decision:
    """What :meth:`TradingRules.decide` returns: the orders, the state after them, whether the daily stop fired now."""

    orders: tuple[Order, ...]
    state: RulesState
    halted_now: bool


def sessions_of(timestamps: Any, tz: str = "UTC") -> NDArray[np.int64]:
    """Session id of each timestamp: its calendar day in ``tz``, as days since 1970-01-01.

    Parameters
    ----------
    timestamps:
        Timestamps (tz-naive ones are read as UTC).
    tz:
        The exchange's time zone (e.g. ``"America/New_York"``). UTC days already separate the
        sessions of the US and European exchanges; Asian ones need their own zone.
    """
    index = pd.DatetimeIndex(timestamps)
    if index.tz is None:
        index = index.tz_localize("UTC")
    local = index.tz_convert(tz).tz_localize(None).normalize()
    days: NDArray[np.int64] = local.to_numpy("datetime64[D]").astype(np.int64)
    return days


# --------------------------------------------------------------------------------------------
# The backtest: bars, signals, the loop and its result
# --------------------------------------------------------------------------------------------


def _matrix(name: str, value: ArrayLike, shape: tuple[int, ...] | None = None, dtype: Any = np.float64) -> NDArray[Any]:
    array = np.asarray(value, dtype=dtype)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or (shape is not None and array.shape != shape):
        raise DataValidationError(f"{name}: expected shape {shape or '[T, N]'}, got {np.shape(value)}")
    return array


@dataclass(frozen=True, eq=False)
class PriceBars:
    """The prices of a backtest, ``[T, N]`` arrays (a 1-D array is one symbol).

    Parameters
    ----------
    close:
        Closes, finite and > 0 on every bar.
    open, high, low:
        Optional. Used only when finite on every bar (close-only sources give NaN): the opens for
        the ``next_open`` timing and gaps, the highs and lows for the stops.
    timestamps:
        ``[T]`` timestamps (needed by :meth:`RulesResult.to_trajectory` and the default sessions).
    symbols:
        The N symbols (default ``S0, S1, ...``).
    """

    close: FloatArray
    open: FloatArray | None = None
    high: FloatArray | None = None
    low: FloatArray | None = None
    timestamps: pd.DatetimeIndex | None = None
    symbols: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        close = _matrix("close", self.close)
        if not (np.isfinite(close).all() and (close > 0).all()):
            raise DataValidationError("PriceBars: every close must be finite and > 0")
        object.__setattr__(self, "close", close)
        for name in ("open", "high", "low"):
            value = getattr(self, name)
            if value is not None:
                array = _matrix(name, value, close.shape)
                object.__setattr__(self, name, array if np.isfinite(array).all() else None)
        if self.timestamps is not None:
            stamps = pd.DatetimeIndex(self.timestamps)
            if len(stamps) != close.shape[0]:
                raise DataValidationError(f"PriceBars: {len(stamps)} timestamps for {close.shape[0]} bars")
            object.__setattr__(self, "timestamps", stamps)
        symbols = tuple(str(s) for s in self.symbols) or tuple(f"S{j}" for j in range(close.shape[1]))
        if len(symbols) != close.shape[1]:
            raise DataValidationError(f"PriceBars: {len(symbols)} symbols for {close.shape[1]} columns")
        object.__setattr__(self, "symbols", symbols)

    @property
    def shape(self) -> tuple[int, int]:
        """``(T, N)``."""
        return self.close.shape[0], self.close.shape[1]

    @property
    def has_range(self) -> bool:
        """True when highs and lows are used by the stops."""
        return self.high is not None and self.low is not None

    @classmethod
    def from_market(cls, market: Any) -> PriceBars:
        """The bars ``market.first .. market.last`` of an :class:`~rltrade.envs.market.Market` (the env's episode)."""
        rows = slice(int(market.first), int(market.last) + 1)
        return cls(
            close=market.close[rows],
            open=market.open[rows],
            high=market.high[rows],
            low=market.low[rows],
            timestamps=pd.DatetimeIndex(market.times[rows]),
            symbols=tuple(market.symbols),
        )


@dataclass(frozen=True, eq=False)
class Signals:
    """The three signals of every bar and symbol, ``[T, N]`` (see :meth:`TradingRules.conditions`)."""

    lstm_up: NDArray[Any]
    p_up: FloatArray
    rl_signal: FloatArray

    @classmethod
    def from_forecast(cls, forecast: ArrayLike, close: ArrayLike, p_up: ArrayLike, rl_signal: ArrayLike) -> Signals:
        """Signals from the LSTM's price forecast: up where ``forecast > close``, not up below, none if equal or NaN."""
        f = np.asarray(forecast, dtype=np.float64)
        c = np.asarray(close, dtype=np.float64)
        up = np.where(f > c, 1.0, np.where(f < c, 0.0, np.nan))
        return cls(up, np.asarray(p_up, dtype=np.float64), np.asarray(rl_signal, dtype=np.float64))

    def checked(self, shape: tuple[int, int]) -> Signals:
        """The signals as ``shape`` arrays (bool or float ``lstm_up``); :class:`DataValidationError` otherwise."""
        up = np.asarray(self.lstm_up)
        up = _matrix("lstm_up", up, shape, dtype=np.bool_ if up.dtype == np.bool_ else np.float64)
        return Signals(up, _matrix("p_up", self.p_up, shape), _matrix("rl_signal", self.rl_signal, shape))


EVENT_COLUMNS: tuple[str, ...] = (
    "bar", "timestamp", "symbol", "event", "side", "reason", "quantity", "price", "trigger", "gap", "cost", "pnl",
    "filled",
)  # fmt: skip
ORDER_COLUMNS: tuple[str, ...] = ("bar", "timestamp", "symbol", "action", "side", "shares", "reason")


@dataclass(frozen=True, eq=False)
class RulesResult:
    """What :func:`simulate` recorded, one row per bar (row t: everything up to bar t's close).

    Attributes
    ----------
    timestamps:
        ``[T]`` tz-naive UTC timestamps of the bars (None when the bars had none).
    values, cash, costs, turnover:
        ``[T]`` equity at each close, cash, costs paid in the bar, traded notional of the bar
        divided by the equity at the previous close.
    holdings, closes:
        ``[T, N]`` signed shares after each close, and the closes.
    weights:
        ``[T, N + 1]`` value weights of the symbols (negative when short), then cash; rows sum to 1.
    halted:
        ``[T]`` True where the session was halted at that close.
    events:
        One row per entry, exit and halt (:data:`EVENT_COLUMNS`): ``event`` entry / exit / halt,
        ``reason`` (:data:`EXIT_REASONS`; ``signal`` for entries), ``quantity`` signed shares
        traded at ``price`` (the fill), ``trigger`` the stop level (NaN otherwise), ``gap`` True
        when the open was beyond it, ``cost``, ``pnl`` of an exit before costs
        (``shares · (price − entry)``), ``filled`` False for ``end`` rows (marks of positions still
        open, no trade).
    orders:
        Every order decided (:data:`ORDER_COLUMNS`; ``bar`` is the decision's bar).
    pending:
        The orders decided at the last close, not yet filled (a live loop's next orders).
    stops_checked_on:
        ``"high_low"`` or ``"close"``: the prices the stops were checked against.
    """

    timestamps: pd.DatetimeIndex | None
    symbols: tuple[str, ...]
    values: FloatArray
    cash: FloatArray
    costs: FloatArray
    turnover: FloatArray
    holdings: FloatArray
    weights: FloatArray
    closes: FloatArray
    halted: BoolArray
    events: pd.DataFrame
    orders: pd.DataFrame
    pending: tuple[Order, ...]
    final_state: RulesState
    timing: ExecutionTiming
    stops_checked_on: Literal["high_low", "close"]
    rules: TradingRules = field(default_factory=TradingRules)

    def __len__(self) -> int:
        return len(self.values)

    def to_trajectory(self) -> Trajectory:
        """The :class:`~rltrade.backtest.runner.Trajectory` scoring takes (``final_info`` carries the state)."""
        if self.timestamps is None:
            raise RulesError("RulesResult.to_trajectory needs timestamps: pass them in PriceBars")
        state = self.final_state
        return Trajectory(
            timestamps=pd.DatetimeIndex(self.timestamps, name="timestamp"),
            values=self.values,
            turnover=self.turnover,
            costs=self.costs,
            weights=self.weights,
            holdings=self.holdings,
            symbols=self.symbols,
            closes=self.closes,
            final_info={"cash": state.cash, "shares": state.shares.copy(), "rules_state": state.to_dict()},
        )

    def trades_frame(self, name: str) -> pd.DataFrame:
        """The fills, in the columns of :meth:`Trajectory.trades_frame` but at the real fill prices, plus ``reason``."""
        fills = self.events[(self.events["event"] != "halt") & self.events["filled"]]
        holding = self.holdings[fills["bar"].to_numpy(), [self.symbols.index(s) for s in fills["symbol"]]]
        return pd.DataFrame(
            {
                "timestamp": fills["timestamp"].to_numpy(),
                "strategy": name,
                "symbol": fills["symbol"].to_numpy(),
                "quantity": fills["quantity"].to_numpy(),
                "holding": holding,
                "price": fills["price"].to_numpy(),
                "notional": (fills["quantity"] * fills["price"]).to_numpy(),
                "reason": fills["reason"].to_numpy(),
            }
        )

    def exit_counts(self) -> dict[str, int]:
        """Exits per reason (every reason of :data:`EXIT_REASONS`, 0 when none) and the number of halts."""
        exits = self.events[self.events["event"] == "exit"]["reason"].value_counts()
        counts = {reason: int(exits.get(reason, 0)) for reason in EXIT_REASONS}
        counts["halts"] = int((self.events["event"] == "halt").sum())
        return counts


class _Costs:
    """A cost model, a number of bps, None or a bare ``f(notional, shares)``, as one call per fill."""

    def __init__(self, spec: CostModel | CostFunction | float | None) -> None:
        self.model: CostModel | None = None
        self.function: CostFunction | None = None
        self.window = 0
        if callable(spec) and not isinstance(spec, CostModel):
            self.function = spec
            return
        self.model = make_cost(spec)
        if self.model.needs_volatility:
            if not isinstance(self.model, LinearCost):
                raise RulesError(f"cost model {self.model!r} needs volatility: use a LinearCost (e.g. SpreadCost)")
            self.window = self.model.params.window

    def volatility(self, close: FloatArray) -> FloatArray | None:
        """``[T, N]`` volatility the model charges on (None when it needs none)."""
        return spread_volatility(close, self.window) if self.window else None

    def __call__(self, notional: float, shares: float, vol: float) -> float:
        if self.function is not None:
            value = float(self.function(abs(notional), abs(shares)))
            if not (np.isfinite(value) and value >= 0):
                raise RulesError(f"the cost function returned {value} for notional {notional}, shares {shares}")
            return value
        assert self.model is not None
        vols = np.array([vol]) if self.model.needs_volatility else None
        return float(self.model.cost(np.array([notional]), np.array([shares]), vols)[0])


class _Book:
    """The account of one simulation: applies fills and stops to the state and logs them."""

    def __init__(self, state: RulesState, costs: _Costs, symbols: tuple[str, ...]) -> None:
        self.state = state
        self.costs = costs
        self.symbols = symbols
        self.events: list[tuple[Any, ...]] = []
        self.bar_cost = 0.0
        self.bar_traded = 0.0

    def _trade(
        self,
        t: int,
        asset: int,
        quantity: float,
        price: float,
        vol: float,
        event: str,
        reason: str,
        trigger: float,
        gap: bool,
    ) -> None:
        state = self.state
        pnl = -quantity * (price - state.entry_price[asset]) if event == "exit" else math.nan
        cost = self.costs(quantity * price, quantity, vol)
        self.state = state.filled(asset, quantity, price, cost)
        self.bar_cost += cost
        self.bar_traded += abs(quantity * price)
        side = int(np.sign(quantity)) if event == "entry" else -int(np.sign(quantity))
        self.events.append(
            (
                t,
                None,  # the timestamp, set from the bar in frame()
                self.symbols[asset],
                event,
                side,
                reason,
                quantity,
                price,
                trigger,
                gap,
                cost,
                pnl,
                True,
            )
        )

    def fill(self, t: int, orders: Sequence[Order], prices: FloatArray, vol: FloatArray | None) -> None:
        """Fill ``orders`` at ``prices``: exits first (freeing cash), then entries in their order."""
        for order in sorted(orders, key=lambda o: o.action != "exit"):  # stable: keeps the entries' ranking
            a = order.asset
            price = float(prices[a])
            v = math.nan if vol is None else float(vol[a])
            held = self.state.shares[a]
            if order.action == "exit":
                if held != 0 and np.sign(held) == order.side:
                    self._trade(t, a, -held, price, v, "exit", order.reason, math.nan, False)
                continue
            if held != 0:
                continue
            quantity = order.side * order.shares
            if quantity > 0:
                quantity = self._affordable(quantity, price, v)
            if quantity != 0:
                self._trade(t, a, quantity, price, v, "entry", "signal", math.nan, False)

    def _affordable(self, quantity: float, price: float, vol: float) -> float:
        """The most whole shares up to ``quantity`` whose price and cost the cash pays (0 if none)."""
        cash = self.state.cash
        n = quantity
        for _ in range(64):  # cost is increasing in the shares: a few steps settle it
            if n <= 0 or n * price + self.costs(n * price, n, vol) <= cash:
                return float(max(n, 0))
            n = min(n - 1, math.floor((cash - self.costs(n * price, n, vol)) / price + _EPS))
        return 0.0

    def stops(self, t: int, rules: TradingRules, bar: Bar, vol: FloatArray | None) -> None:
        """Exit the positions ``bar`` stops out, at the prices :meth:`TradingRules.stop_exits` gives."""
        for hit in rules.stop_exits(self.state, bar):
            v = math.nan if vol is None else float(vol[hit.asset])
            held = self.state.shares[hit.asset]
            self._trade(t, hit.asset, -held, hit.price, v, "exit", hit.reason, hit.trigger, hit.gap)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.events, columns=list(EVENT_COLUMNS)).astype(
            {"bar": np.int64, "side": np.int64, "gap": bool, "filled": bool}
            | {name: np.float64 for name in ("quantity", "price", "trigger", "cost", "pnl")}
        )


def simulate(
    bars: PriceBars,
    signals: Signals,
    rules: TradingRules,
    *,
    cost: CostModel | CostFunction | float | None = None,
    timing: str | ExecutionTiming | None = None,
    sessions: ArrayLike | None = None,
    initial_value: float = 1_000_000.0,
    state: RulesState | None = None,
    pending: Sequence[Order] = (),
) -> RulesResult:
    """Backtest the rules over ``bars``: decide at every close, fill with ``timing``, charge ``cost``.

    Per bar t: (``next_open``) fill the orders decided at t−1 at the open, then the stops inside
    bar t; (``next_close``) the stops, then the orders at the close; (``same_close``) the stops.
    Then the equity is marked at the close, :meth:`TradingRules.decide` runs, and with
    ``same_close`` its orders fill at once at that close. Positions still open after the last bar
    are logged as ``end`` exits (marks, no trade); the last decision's orders are in
    :attr:`RulesResult.pending`.

    Parameters
    ----------
    bars:
        The prices, timestamps and symbols.
    signals:
        ``[T, N]`` signals; row t uses data up to close t only (the caller's duty).
    rules:
        The trading rules.
    cost:
        A cost model of :mod:`rltrade.envs.costs`, a number of bps per side, None (free) or a
        function ``f(notional, shares) -> cost``.
    timing:
        ``"next_open"`` (default with opens), ``"next_close"`` (default without) or
        ``"same_close"`` (optimistic, explicit only), or an :class:`ExecutionTiming`.
    sessions:
        ``[T]`` session ids (:func:`sessions_of`); default: the UTC calendar day of each
        timestamp, or one session per bar without timestamps.
    initial_value:
        Starting cash (when ``state`` is None).
    state, pending:
        The state and the unfilled orders of an earlier run (its ``final_state`` and ``pending``)
        to carry on from; the symbols must match.
    """
    n_times, n_assets = bars.shape
    sig = signals.checked((n_times, n_assets))
    resolved = resolve_timing(timing, has_open=bars.open is not None)
    session_ids = _sessions(sessions, bars)
    if state is None:
        state = RulesState.initial(bars.symbols, initial_value)
    elif state.symbols != bars.symbols:
        raise RulesError(f"simulate: the state's symbols {state.symbols} differ from the bars' {bars.symbols}")
    costs = _Costs(cost)
    vol = costs.volatility(bars.close)
    stamps = None if bars.timestamps is None else _naive_utc(bars.timestamps)
    book = _Book(state, costs, bars.symbols)

    values = np.empty(n_times)
    cash = np.empty(n_times)
    paid = np.zeros(n_times)
    turnover = np.zeros(n_times)
    holdings = np.empty((n_times, n_assets))
    halted = np.zeros(n_times, dtype=bool)
    decided: list[tuple[Any, ...]] = []
    waiting: Sequence[Order] = tuple(pending)
    open_, high, low, close = bars.open, bars.high, bars.low, bars.close
    for t in range(n_times):
        before = book.state.equity
        book.bar_cost = book.bar_traded = 0.0
        vol_before = None if vol is None else (vol[t - 1] if t > 0 else np.full(n_assets, np.nan))
        bar = Bar(
            session_ids[t],
            close[t],
            sig.lstm_up[t],
            sig.p_up[t],
            sig.rl_signal[t],
            None if open_ is None else open_[t],
            None if high is None else high[t],
            None if low is None else low[t],
        )
        if resolved.fill_offset == 1 and resolved.uses_open:
            assert open_ is not None
            book.fill(t, waiting, open_[t], vol_before)
            book.stops(t, rules, bar, vol_before)
        elif resolved.fill_offset == 1:
            book.stops(t, rules, bar, vol_before)
            book.fill(t, waiting, close[t], vol_before)
        else:
            book.stops(t, rules, bar, vol_before)
        decision = rules.decide(book.state, bar)
        book.state = decision.state
        if decision.halted_now:
            book.events.append(
                (t, None, "", "halt", 0, "daily_stop", 0.0, math.nan, math.nan, False, 0.0, math.nan, False)
            )
        for order in decision.orders:
            decided.append((t, None, bars.symbols[order.asset], order.action, order.side, order.shares, order.reason))
        if resolved.fill_offset == 0:
            book.fill(t, decision.orders, close[t], None if vol is None else vol[t])
            book.state = dataclasses.replace(book.state, equity=book.state.value(close[t]))
            waiting = ()
        else:
            waiting = decision.orders
        values[t] = book.state.equity
        cash[t] = book.state.cash
        holdings[t] = book.state.shares
        halted[t] = book.state.halted
        paid[t] = book.bar_cost
        turnover[t] = book.bar_traded / before if before > 0 else 0.0

    final = book.state
    last = n_times - 1
    for asset in np.flatnonzero(final.shares):
        held = float(final.shares[asset])
        price = float(close[last, asset])
        book.events.append(
            (last, None, bars.symbols[asset], "exit", int(np.sign(held)), "end", -held, price,
             math.nan, False, 0.0, held * (price - final.entry_price[asset]), False)
        )  # fmt: skip
    with np.errstate(divide="ignore", invalid="ignore"):
        weights = np.zeros((n_times, n_assets + 1))
        positive = values > 0
        weights[positive, :-1] = holdings[positive] * close[positive] / values[positive, None]
        weights[positive, -1] = 1.0 - weights[positive, :-1].sum(axis=1)
    return RulesResult(
        timestamps=stamps,
        symbols=bars.symbols,
        values=values,
        cash=cash,
        costs=paid,
        turnover=turnover,
        holdings=holdings,
        weights=weights,
        closes=close,
        halted=halted,
        events=_stamped(book.frame(), stamps),
        orders=_stamped(pd.DataFrame(decided, columns=list(ORDER_COLUMNS)), stamps),
        pending=tuple(waiting),
        final_state=final,
        timing=resolved,
        stops_checked_on="high_low" if bars.has_range else "close",
        rules=rules,
    )


def _sessions(sessions: ArrayLike | None, bars: PriceBars) -> NDArray[Any]:
    n_times = bars.shape[0]
    if sessions is None:
        return sessions_of(bars.timestamps) if bars.timestamps is not None else np.arange(n_times)
    ids = np.asarray(sessions)
    if ids.shape != (n_times,):
        raise DataValidationError(f"simulate: sessions has shape {ids.shape}, expected ({n_times},)")
    return ids


def _naive_utc(stamps: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """tz-naive UTC, as :class:`Trajectory` stamps its rows."""
    return stamps.tz_convert("UTC").tz_localize(None) if stamps.tz is not None else stamps


def _stamped(frame: pd.DataFrame, stamps: pd.DatetimeIndex | None) -> pd.DataFrame:
    """``frame`` with its ``timestamp`` column filled from its ``bar`` column (NaT without timestamps)."""
    bars = frame["bar"].to_numpy(dtype=np.int64)
    frame["timestamp"] = stamps[bars] if stamps is not None else pd.NaT
    return frame


def _at(array: FloatArray | None, index: int) -> float:
    return math.nan if array is None else float(array[index])


__all__ = [
    "EVENT_COLUMNS",
    "EXIT_REASONS",
    "EXIT_RULES",
    "ORDER_COLUMNS",
    "Bar",
    "Decision",
    "Order",
    "PriceBars",
    "RulesError",
    "RulesResult",
    "RulesState",
    "Signals",
    "StopHit",
    "TradingRules",
    "sessions_of",
    "simulate",
]
