"""The live loop: after the close of day T, trade a trained run's decisions for T+1 through a broker.

One session (:meth:`LiveLoop.session`), in this order:

1. **Market closed**: a day that is not a session of the exchange calendar has nothing to do.
2. **Data** (``update_data``: the run's new bars are ingested first): a store whose last bar of
   a symbol is older than T is *stale data*: the session stops before anything changes
   (:class:`StaleData`; nothing is sent, the paper clock does not move).
3. **Clock** (paper broker only): the paper account is advanced to the end of day T, which
   fills the orders decided after T−1 on T's bar and marks the positions to T's close.
4. **Reconcile** with the broker: open orders, fills and positions are read and journalled; an
   open order whose id is this run's but that the journal lacks (sent just before a crash) is
   adopted; an open order this run sent for an earlier day is cancelled (its decision is
   stale); an order that filled only in part is reported, and the decision of T trades from the
   position actually held, so the shortfall is carried to it.
5. **Decision** for T+1 from data up to T, into target positions:

   - a single-agent run (``kind="weights"``): the target weights of the signal job
     (:func:`rltrade.signals.compute_signals`, cached) become ``w · μ · C / close_T`` shares
     (``C``: the capital, the account's equity by default; ``μ``: the fraction left after the
     rebalance's cost, estimated at T's closes with the run's cost model, as the env pays costs
     out of the portfolio), whole shares toward zero unless ``fractional``; leg ``rebalance``;
   - a combined-strategy run (``kind="rules"``): seed 002's trading rules on the day's LSTM,
     CNN and direct-RL signals, with their state (entry prices, the daily stop) kept in the
     database (:mod:`rltrade.live.combined`); leg ``rules``.

   Each order is the target less the position held, sells first (their proceeds pay the buys),
   with the deterministic id ``client_order_id(run_id, T, symbol, leg)``.
6. **Limits**, then **send**: an order that would leave a position above
   ``limits.max_position_weight`` of the capital (and bigger than it was) or is worth more than
   ``limits.max_order_notional`` is refused and journalled; ``dry_run`` journals what it would
   send and sends nothing. Before sending, the broker is asked for the id (:meth:`Broker.order`):
   an order already there (a restart after a crash) is not sent again, and every broker's
   ``submit`` is idempotent by the id besides. A rejection is journalled and the session goes
   on with the other orders; a lost connection stops the session (:class:`ConnectionLost`
   propagates, the CLI exits with code 2) and the next start reconciles.

Every order, fill, rejection and refusal is journalled in the database
(:mod:`rltrade.db.journal`): the paper broker writes its own orders and fills there, the loop
writes those of the other brokers, and the loop adds one line per decision and event (kinds in
:data:`EVENT_KINDS`). Nothing secret is logged or stored: keys are read by the brokers from the
environment, and the database URL is logged with its password masked.

Test hook. With ``RLTRADE_LIVE_TEST_PAUSE_AFTER_SUBMIT=PATH`` set, the first order the process
sends is followed by writing ``PATH`` (the order's id) and sleeping
``RLTRADE_LIVE_TEST_PAUSE_SECONDS`` (default 120): a deterministic point between sending an
order and recording its fill, at which the fault tests kill the process.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from rltrade.brokers import (
    Account,
    Broker,
    BrokerError,
    ConnectionLost,
    Order,
    OrderRejected,
    OrderRequest,
    client_order_id,
    make_broker,
)
from rltrade.config import ConfigError
from rltrade.db import connect, journal, safe_url
from rltrade.errors import RLTradeError
from rltrade.live.config import BROKER_NAMES, LiveConfig

log = logging.getLogger("rltrade.live")

PAUSE_ENV = "RLTRADE_LIVE_TEST_PAUSE_AFTER_SUBMIT"
PAUSE_SECONDS_ENV = "RLTRADE_LIVE_TEST_PAUSE_SECONDS"
LEG = "rebalance"
#: Kinds of the journal lines the loop writes (the paper broker adds its own: submit, fill, ...).
EVENT_KINDS: tuple[str, ...] = (
    "session",
    "reconcile",
    "closed",
    "stale",
    "signals",
    "order",
    "sent",
    "exists",
    "refused",
    "dry_run",
    "rejected",
    "cancelled",
    "carried",
    "fill",
    "rules",
    "lost",
    "error",
)
_MU_TOLERANCE = 1e-14
_MU_MARGIN = 1e-9  # the estimate of μ is shrunk a little: a rounding never makes the buys exceed the cash
_SHARE_EPS = 1e-9  # slack of the whole-share truncation: 99.9999999999 shares are 100
_DUST = 1e-9

SessionStatus = Literal["traded", "dry_run", "closed", "not_closed", "nothing"]
Outcome = Literal["sent", "exists", "refused", "dry_run", "rejected"]


class LiveError(RLTradeError):
    """The live loop cannot run that session (run, dates, broker); the message names what and why."""


class StaleData(LiveError):
    """The store's bars stop before the session's day: nothing is sent until the data are current."""


# --------------------------------------------------------------------------------------------
# The run traded
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveRun:
    """A trained run as the live loop trades it.

    Attributes
    ----------
    signals:
        The run as the signal job reads it (:class:`rltrade.signals.base.SignalRun`).
    timing:
        The run's fill timing (``next_open`` / ``next_close``): the paper broker fills with it.
    cost:
        The run's cost model (:mod:`rltrade.envs.costs`).
    column:
        The column of the run's first seed in ``equity.csv`` (the backtest the paper replay matches).
    kind:
        ``"weights"`` (a single-agent run: its target weights are traded as they are) or
        ``"rules"`` (a combined-strategy run: seed 002's trading rules, :mod:`rltrade.live.combined`).
    """

    signals: Any
    timing: str
    cost: Any
    column: str
    kind: Literal["weights", "rules"] = "weights"

    @property
    def run_dir(self) -> Path:
        return Path(self.signals.run_dir)

    @property
    def run_id(self) -> str:
        return str(self.signals.run_id)

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self.signals.symbols)

    @property
    def store(self) -> str | None:
        return self.signals.store

    @property
    def initial_value(self) -> float:
        return float(self.signals.manifest.get("initial_value") or self.signals.config.env.initial_value)

    @property
    def gross_leverage(self) -> float | None:
        """The gross exposure ``Σ|w|`` the run's backtest may reach when it shorts, or None for a long-only run.

        ``direct_rl`` trades the long/short env with ``leverage=1``; a single-agent run of the
        long/short portfolio env, its ``env.params.leverage``; a combined run with
        ``rules.allow_short``, its ``rules.max_gross_exposure`` (the number of symbols when None:
        at most the whole equity per position).
        """
        config = self.signals.config
        params = config.env.params
        if config.strategy == "direct_rl":
            return 1.0
        if config.strategy == "single" and params.get("long_short"):
            return float(params.get("leverage", 1.0))
        if config.strategy == "combined" and config.combined.rules.allow_short:
            gross = config.combined.rules.max_gross_exposure
            return float(gross) if gross is not None else float(len(self.symbols))
        return None


def resolve_run(spec: str | Path, runs_dir: str | Path = "runs") -> Path:
    """The run directory ``spec`` names: a run directory, or a run config (its newest finished run in ``runs_dir``)."""
    path = Path(spec)
    if path.is_dir():
        return path
    if path.is_file() and path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            name = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("name")
        except (yaml.YAMLError, AttributeError, UnicodeDecodeError):
            name = None
        if not name:
            raise LiveError(f"{path} is not a run config with a name (expected e.g. configs/quickstart.yaml)")
        root = Path(runs_dir)
        found = sorted(
            (p for p in root.glob(f"{name}-*") if (p / "manifest.json").is_file() and (p / "models").is_dir()),
            key=lambda p: (p.stat().st_mtime, p.name),
        )
        if not found:
            raise LiveError(
                f"no trained run of {path} (name {name!r}) in {root}: train it first (`rltrade run {path}`) "
                "or give the run directory with --run"
            )
        return found[-1]
    raise LiveError(f"run {spec} is neither a run directory nor a run config (expected runs/<name>-<time>/)")


def open_live_run(run_dir: str | Path, store: str | None = None) -> LiveRun:
    """Read ``run_dir`` for the live loop; :class:`LiveError` / ``SignalError`` for a run it cannot trade."""
    from rltrade.envs.factory import make_cost
    from rltrade.signals.compute import open_run

    root = Path(run_dir)
    if not root.is_dir():
        raise LiveError(f"run directory {root} does not exist (expected the output of `rltrade train` or `run`)")
    run = open_run(root, store)
    timing = run.timing or "next_open"
    if timing not in ("next_open", "next_close"):
        raise LiveError(
            f"{root.name} was backtested with timing {timing!r}: a live order decided after the close fills on a "
            "later bar, so only next_open and next_close runs are traded"
        )
    kind: Literal["weights", "rules"] = "rules" if run.config.strategy == "combined" else "weights"
    return LiveRun(run, timing, make_cost(run.config.env.cost), run.column, kind)


# --------------------------------------------------------------------------------------------
# Sizing
# --------------------------------------------------------------------------------------------


def post_cost_fraction(
    weights: np.ndarray,
    closes: np.ndarray,
    held: np.ndarray,
    capital: float,
    cost: Any,
    volatility: np.ndarray | None = None,
) -> float:
    """``μ`` with ``μ·C + cost(trades to w·μ·C) = C`` at the prices ``closes`` (the env's fixed point).

    The env pays a rebalance's cost out of the portfolio so that the post-trade value ``μ·V``
    is invested by the weights; sizing the orders on ``μ·C`` rather than ``C`` keeps the
    buys within the cash at the closes. Returns 0 when the cost would take everything.
    """
    if not capital > 0:
        return 0.0
    mu = 1.0
    for _ in range(100):
        trade = weights * mu * capital / closes - held
        paid = float(np.sum(cost.cost(np.abs(trade * closes), np.abs(trade), volatility)))
        new = 1.0 - paid / capital
        if abs(new - mu) <= _MU_TOLERANCE:
            mu = new
            break
        mu = new
    return max(mu * (1.0 - _MU_MARGIN), 0.0)


@dataclass(frozen=True)
class PlannedOrder:
    """One order of a session: what was decided, and what became of it."""

    symbol: str
    qty: float
    client_order_id: str
    close: float
    weight: float
    held: float
    target: float
    outcome: Outcome | None = None
    status: str | None = None
    reason: str | None = None

    @property
    def notional(self) -> float:
        return abs(self.qty * self.close)

    def describe(self) -> str:
        side = "buy" if self.qty > 0 else "sell"
        return f"{side} {abs(self.qty):g} {self.symbol} (~{self.notional:,.2f} at the close {self.close:g})"


def plan_orders(
    as_of: dt.date,
    run_id: str,
    weights: dict[str, float],
    closes: dict[str, float],
    held: dict[str, float],
    capital: float,
    cost: Any,
    *,
    volatility: dict[str, float] | None = None,
    fractional: bool = False,
    min_notional: float = 0.0,
) -> list[PlannedOrder]:
    """The orders that take the positions ``held`` to the target weights, sells first, then buys (by symbol).

    Targets are ``w · μ · capital / close`` shares (:func:`post_cost_fraction`), truncated
    toward zero to whole shares unless ``fractional``. An order worth less than
    ``min_notional`` at the close is not planned.
    """
    symbols = sorted(weights)
    w = np.array([float(weights[s]) for s in symbols])
    p = np.array([float(closes[s]) for s in symbols])
    h = np.array([float(held.get(s, 0.0)) for s in symbols])
    vol = None if volatility is None else np.array([float(volatility.get(s, math.nan)) for s in symbols])
    mu = post_cost_fraction(w, p, h, capital, cost, vol if cost.needs_volatility else None)
    target = w * mu * capital / p
    if not fractional:
        target = np.trunc(target + np.sign(target) * _SHARE_EPS)
    orders = []
    for j, symbol in enumerate(symbols):
        qty = float(target[j] - h[j])
        if not fractional:
            qty = float(np.trunc(qty + np.sign(qty) * _SHARE_EPS))
        if abs(qty) <= _DUST or abs(qty * p[j]) < max(min_notional, 1e-9):
            continue
        coid = client_order_id(run_id, as_of, symbol, LEG)
        orders.append(PlannedOrder(symbol, qty, coid, float(p[j]), float(w[j]), float(h[j]), float(target[j])))
    return sorted(orders, key=lambda o: (o.qty > 0, o.symbol))


def limit_refusal(order: PlannedOrder, capital: float, config: LiveConfig) -> str | None:
    """Why ``order`` breaks a limit of ``config.limits`` (one line), or None.

    A position limit refuses only orders that leave a position bigger than it was: reducing a
    position is always allowed.
    """
    limits = config.limits
    if limits.max_order_notional is not None and order.notional > limits.max_order_notional:
        return (
            f"order notional {order.notional:,.2f} exceeds limits.max_order_notional {limits.max_order_notional:,.2f}"
        )
    after = order.held + order.qty
    weight = abs(after * order.close) / capital if capital > 0 else math.inf
    if abs(after) > abs(order.held) + _DUST and weight > limits.max_position_weight:
        return (
            f"the position would be {weight:.2%} of the capital {capital:,.2f}, above limits.max_position_weight "
            f"{limits.max_position_weight:.2%}"
        )
    return None


# --------------------------------------------------------------------------------------------
# Sessions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionResult:
    """What one session did."""

    as_of: dt.date
    status: SessionStatus
    message: str
    orders: tuple[PlannedOrder, ...] = ()
    equity: float | None = None
    cash: float | None = None

    def count(self, outcome: Outcome) -> int:
        return sum(o.outcome == outcome for o in self.orders)

    def line(self) -> str:
        """One line for the console."""
        if self.status not in ("traded", "dry_run"):
            return f"{self.as_of}: {self.message}"
        counts = ", ".join(
            f"{self.count(k)} {k.replace('_', ' ')}"
            for k in ("sent", "exists", "dry_run", "refused", "rejected")
            if self.count(k) or k == "sent"
        )
        money = "" if self.equity is None else f"; equity {self.equity:,.2f}, cash {self.cash:,.2f}"
        return f"{self.as_of}: {len(self.orders)} order(s): {counts}{money}"


def session_day(config: LiveConfig, now: dt.datetime | None = None) -> tuple[dt.date, str | None]:
    """Today's session in the exchange's time zone, and why it cannot be traded now (None: it can).

    Not a session of the calendar: market closed; a session whose close (plus the data delay)
    has not passed: not closed yet.
    """
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(config.timezone)
    local = (now or dt.datetime.now(dt.UTC)).astimezone(zone)
    today = local.date()
    if config.calendar is not None and not is_session(config.calendar, today):
        return today, f"market closed today ({today:%A %Y-%m-%d} is not a session of {config.calendar}): nothing to do"
    ready = dt.datetime.combine(today, config.close_time, zone) + dt.timedelta(minutes=config.data_delay_minutes)
    if local < ready:
        return today, (
            f"the session of {today} has not closed yet (close {config.close_time:%H:%M} {config.timezone} + "
            f"{config.data_delay_minutes} min for the data): nothing to do until then"
        )
    return today, None


def is_session(calendar: str, day: dt.date) -> bool:
    """Whether ``day`` is a session of the exchange calendar ``calendar``."""
    return day in _sessions_of_year(calendar, day.year)


@functools.lru_cache(maxsize=16)
def _sessions_of_year(calendar: str, year: int) -> frozenset[dt.date]:
    import warnings

    import exchange_calendars as xcals

    try:
        with warnings.catch_warnings():  # exchange-calendars uses pandas APIs that pandas 3 deprecates
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            # a padded range: the calendar refuses bounds that are not sessions themselves
            cal = xcals.get_calendar(calendar, start=f"{year - 1}-12-01", end=f"{year + 1}-01-31")
    except xcals.errors.InvalidCalendarName:
        raise LiveError(f"calendar {calendar!r} is not an exchange calendar; e.g. XNYS, XNAS, XLON (or null)") from None
    return frozenset(d.date() for d in pd.DatetimeIndex(cal.sessions) if d.year == year)


def _rows_of(frame: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """The rows of ``frame`` (a UTC DatetimeIndex) stamped on ``day``."""
    return frame.loc[np.asarray(pd.DatetimeIndex(frame.index).normalize() == pd.Timestamp(day, tz="UTC"))]


def _day_end(day: dt.date) -> pd.Timestamp:
    """The last instant of ``day`` (UTC): the paper clock after its close (its bars are stamped within the day)."""
    return pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)


class LiveLoop:
    """Sessions of one run on one broker account, journalled in one database.

    Parameters
    ----------
    config:
        The live config.
    broker:
        A connected broker (:func:`rltrade.brokers.make_broker`); the loop closes it only through
        :meth:`close`.
    run:
        The run traded (:func:`open_live_run`).
    engine:
        The database of the journal and the signal cache.
    dry_run:
        Journal and log the orders a session would send; send, cancel and advance nothing.
    """

    def __init__(
        self, config: LiveConfig, broker: Broker, run: LiveRun, *, engine: Engine, dry_run: bool = False
    ) -> None:
        self.config, self.broker, self.run, self.engine, self.dry_run = config, broker, run, engine, dry_run
        self.account_name = account_name(config, run)
        self.paper = hasattr(broker, "advance")
        self._weights: dict[dt.date, dict[str, float]] = {}
        self._bars: pd.DataFrame | None = None
        self._bars_until: dt.date | None = None
        self._closes: tuple[Any, dict[str, pd.DataFrame]] | None = None
        self._traded = pd.DataFrame()
        self._combined: Any = None
        self._signals_until: dt.date | None = None
        self._last_fill: dt.datetime | None = None
        self._paused = False

    # ----------------------------------------------------------------------------- journal
    def event(
        self, kind: str, message: str, *, level: str = "info", coid: str | None = None, echo: bool = True
    ) -> None:
        """Journal ``message`` (one line, kind ``kind``) and log it (unless ``echo`` is False: the caller prints it)."""
        if echo:
            log.log({"warning": logging.WARNING, "error": logging.ERROR}.get(level, logging.INFO), message)
        journal.log_event(
            self.engine,
            kind,
            message,
            level=level,
            broker=self.broker.name,
            account=self.account_name,
            client_order_id=coid,
        )

    def _record(self, order: Order, as_of: dt.date | None = None, tif: str | None = None) -> None:
        """Store a broker's order in the journal (the paper broker stores its own)."""
        if not self.paper:
            journal.record_order(
                self.engine,
                order,
                broker=self.broker.name,
                account=self.account_name,
                run=self.run.run_id,
                as_of=as_of,
                time_in_force=tif,
            )

    # ----------------------------------------------------------------------------- reconcile
    def reconcile(self, day: dt.date) -> dict[str, float]:
        """Read the broker's open orders, fills and positions; journal them; cancel this run's stale open orders.

        An open order is this run's when its id is (the id encodes run, date, symbol and leg: it
        is recomputed and compared); one the journal lacks was sent just before a crash, before
        it could be journalled: it is adopted. Returns the positions (signed shares by symbol)
        the session's decision starts from, read after any cancel. The work is per open order and
        per symbol, never over the whole journal, so a long replay stays linear.
        """
        open_orders = self.broker.open_orders()
        ours: list[tuple[Order, dt.date]] = []
        for order in open_orders:
            as_of = self.decided_on(order.client_order_id)
            if as_of is None:
                log.warning(
                    "open order %s (%s %+g) was not sent by this run's loop: left alone",
                    order.client_order_id,
                    order.symbol,
                    order.qty,
                )
                continue
            ours.append((order, as_of))
            if self._stored(order.client_order_id) is None:
                self._record(order, as_of)
                self.event(
                    "reconcile",
                    f"open order {order.client_order_id} ({order.symbol} {order.qty:+g}) is this run's order of "
                    f"{as_of}, sent before a stop and not journalled: adopted",
                    coid=order.client_order_id,
                )
        if not self.paper:  # bring the journal's open orders up to date with the broker's view
            for record in journal.list_orders(self.engine, self.broker.name, self.account_name, open_only=True):
                if record.run == self.run.run_id:
                    current = self.broker.order(record.client_order_id)
                    if current is not None:
                        self._record(current)
        new_fills = 0 if self.paper else self._record_fills()
        cancelled = [o.client_order_id for o, as_of in ours if as_of < day and self._cancel_stale(o, as_of)]
        if cancelled and not self.paper:  # a fill may have come in before the cancel: journal it too
            new_fills += self._record_fills()
        positions = {s: p.qty for s, p in self.broker.positions().items()}
        self._report_partials(day, cancelled)
        held = ", ".join(f"{s} {q:g}" for s, q in sorted(positions.items())) or "none"
        others = sorted(set(positions) - set(self.run.symbols))
        extra = f"; not traded by the run (left alone): {', '.join(others)}" if others else ""
        self.event(
            "reconcile",
            f"reconciled with {self.broker.name} before the session of {day}: positions {held}{extra}; "
            f"{len(open_orders)} open order(s), {len(cancelled)} stale one(s) cancelled; "
            f"{new_fills} new fill(s) journalled",
        )
        return positions

    def _stored(self, coid: str) -> Any:
        """The journal's record of order ``coid`` on this broker account, or None."""
        return journal.get_order(self.engine, self.broker.name, self.account_name, coid)

    def _ids_of(self, day: dt.date) -> list[str]:
        """The ids this run's orders of ``day`` have (every symbol, every leg)."""
        return [client_order_id(self.run.run_id, day, s, leg) for s in self.run.symbols for leg in (LEG, "rules")]

    def decided_on(self, coid: str) -> dt.date | None:
        """The as-of date of ``coid`` if it is one of this run's order ids (recomputed from its parts), else None."""
        parts = coid.split("-")
        if len(parts) < 5 or parts[0] != "rt" or len(parts[1]) != 8 or not parts[1].isdigit():
            return None
        try:
            day = dt.datetime.strptime(parts[1], "%Y%m%d").date()
        except ValueError:
            return None
        for symbol in self.run.symbols:
            for leg in (LEG, "rules"):
                if client_order_id(self.run.run_id, day, symbol, leg) == coid:
                    return day
        return None

    def _cancel_stale(self, order: Order, as_of: dt.date) -> bool:
        """Cancel ``order``, decided after ``as_of`` (an earlier session); whether it was cancelled."""
        what = f"open order {order.client_order_id} ({order.symbol} {order.qty:+g}, {order.filled_qty:+g} filled)"
        if self.dry_run and self.paper:  # not stale: the clock was not moved, so it has not had its bar yet
            log.info("dry run: paper %s, decided after %s, would fill on the next bar: counted as held", what, as_of)
            return False
        if self.dry_run:
            self.event("dry_run", f"dry run: would cancel {what}, decided after {as_of}", coid=order.client_order_id)
            return False
        final = self.broker.cancel(order.client_order_id)
        if final is not None:
            self._record(final)
        status = final.status if final is not None else "unknown to the broker"
        self.event(
            "cancelled",
            f"cancelled {what}: decided after {as_of}, a stale decision now ({status})",
            level="warning",
            coid=order.client_order_id,
        )
        return True

    def _record_fills(self) -> int:
        """Journal the broker's new fills of this run's orders (an order the journal lacks is adopted); their number."""
        stored = journal.list_fills(self.engine, self.broker.name, self.account_name, self._last_fill)
        if stored:
            self._last_fill = stored[-1].time
        since = self._last_fill - dt.timedelta(days=1) if self._last_fill else None  # a day of overlap: ids dedupe
        count = 0
        for fill in self.broker.fills(since):
            as_of = self.decided_on(fill.client_order_id)
            if as_of is None:
                continue  # another client's fill
            if self._stored(fill.client_order_id) is None:
                order = self.broker.order(fill.client_order_id)
                if order is None:
                    continue
                self._record(order, as_of)  # this run's order, sent just before a stop: adopted with its fill
            if journal.record_fill(self.engine, fill, broker=self.broker.name, account=self.account_name):
                count += 1
                self._last_fill = max(self._last_fill or fill.time, fill.time)
                self.event(
                    "fill",
                    f"{fill.client_order_id}: {fill.symbol} {fill.qty:+g} at {fill.price:g} "
                    f"({fill.time:%Y-%m-%d %H:%M})",
                    coid=fill.client_order_id,
                )
        return count

    def _report_partials(self, day: dt.date, cancelled: Sequence[str]) -> None:
        """Journal (once each) the orders of the previous session, and those just cancelled, that filled in part."""
        before = self._previous_day(day)
        candidates = list(dict.fromkeys([*cancelled, *(self._ids_of(before) if before is not None else [])]))
        for coid in candidates:
            record = self._stored(coid)
            if record is None or record.run != self.run.run_id:
                continue
            short = abs(record.qty - record.filled_qty) > _DUST and abs(record.filled_qty) > _DUST
            if not short or record.status in journal.OPEN_STATUSES:
                continue
            if journal.list_events(self.engine, account=self.account_name, kind="carried", client_order_id=coid):
                continue
            self.event(
                "carried",
                f"{coid}: {record.symbol} filled {record.filled_qty:+g} of {record.qty:+g} "
                f"({record.status}: {record.reason or 'no reason given'}); the decision of {day} trades from "
                "the position held, so the rest is carried to it",
                level="warning",
                coid=coid,
            )

    def _previous_day(self, day: dt.date) -> dt.date | None:
        """The last day before ``day`` on which the store has a close of every symbol (the previous session)."""
        frame = self._close_frame(day)
        days = pd.DatetimeIndex(frame.index).normalize()
        complete = np.asarray(frame.reindex(columns=list(self.run.symbols)).notna().all(axis=1))
        earlier = days[complete & np.asarray(days < pd.Timestamp(day, tz="UTC"))]
        return earlier[-1].date() if len(earlier) else None

    # ----------------------------------------------------------------------------- data
    def _load(self, until: dt.date) -> pd.DataFrame:
        """The run's bars up to ``until`` as stored (raw, ``adj_close`` kept), none later; cached for a replay."""
        from rltrade.data.store import load_bars

        if self._bars is None or self._bars_until is None or self._bars_until < until:
            cfg = self.run.signals.config
            bars = load_bars(list(self.run.symbols), end=until.isoformat(), freq=cfg.data.freq, store=self.run.store)
            self._bars, self._bars_until = bars, until
        bars = self._bars
        stamps = pd.DatetimeIndex(bars["timestamp"]).tz_convert("UTC").normalize()
        return bars.loc[np.asarray(stamps <= pd.Timestamp(until, tz="UTC"))]

    def check_fresh(self, day: dt.date) -> None:
        """:class:`StaleData` unless the store's last bar of every symbol is dated ``day`` or later."""
        from rltrade.data.store import BarStore

        store = BarStore(self.run.store)
        found = {i.symbol: i for i in store.info(self.run.signals.config.data.freq)}
        behind = []
        for symbol in self.run.symbols:
            last = pd.Timestamp(found[symbol].last).date() if symbol in found else None
            if last is None or last < day:
                behind.append(f"{symbol} {last or 'none'}")
        if behind:
            message = (
                f"stale data: the session is {day} but the store {store.uri} ends earlier ({', '.join(behind)}); "
                "nothing was sent: ingest the new bars (or set update_data: true) and run the session again"
            )
            self.event("stale", message, level="warning")
            raise StaleData(message)

    def prefetch(self, start: dt.date, end: dt.date) -> None:
        """Compute (or read from the cache) the signals of every trading day in [start, end] in one episode."""
        if self.run.kind == "rules":
            self.rules_signals(start, until=end)
            return
        from rltrade.signals import compute_range

        rows = compute_range(self.run.run_dir, start, end, engine=self.engine, store=self.run.store)
        for day, part in rows.groupby("as_of"):
            self._weights[pd.Timestamp(str(day)).date()] = dict(
                zip(part["symbol"], part["weight"].astype(float), strict=True)
            )

    def signals(self, day: dt.date) -> dict[str, float]:
        """The target weights for the session after ``day`` (from the signal cache, computed if missing)."""
        if day not in self._weights:
            from rltrade.signals import compute_signals

            rows = compute_signals(self.run.run_dir, day, engine=self.engine, store=self.run.store)
            self._weights[day] = dict(zip(rows["symbol"], rows["weight"].astype(float), strict=True))
        weights = self._weights[day]
        text = ", ".join(f"{s} {w:.2%}" for s, w in sorted(weights.items()))
        self.event("signals", f"signals of {self.run.run_id} as of {day}: {text}; cash {1 - sum(weights.values()):.2%}")
        return weights

    def closes(self, day: dt.date) -> tuple[dict[str, float], dict[str, float]]:
        """Each symbol's close of ``day`` and the cost model's volatility at it.

        The paper broker fills on the run's price basis (adjusted, as the backtest), so its orders
        are sized on it; a real broker trades the prices as quoted, so its orders are sized on the
        stored (raw) close.
        """
        from rltrade.envs.costs import kernel_params, spread_volatility

        frame = self._close_frame(day)
        row = _rows_of(frame, day)
        missing = [s for s in self.run.symbols if row.empty or not np.isfinite(row.iloc[-1].get(s, np.nan))]
        if missing:
            message = f"stale data: no close of {', '.join(missing)} on {day} in the store: nothing was sent"
            self.event("stale", message, level="warning")
            raise StaleData(message)
        closes = {s: float(row.iloc[-1][s]) for s in self.run.symbols}
        vol: dict[str, float] = {}
        if self.run.cost.needs_volatility:  # causal: the value at T uses closes up to T only
            days = pd.DatetimeIndex(frame.index).normalize()
            upto = frame.loc[np.asarray(days <= pd.Timestamp(day, tz="UTC"))][list(self.run.symbols)]
            last = spread_volatility(upto.to_numpy(dtype=np.float64), kernel_params(self.run.cost).window)[-1]
            vol = dict(zip(self.run.symbols, map(float, last), strict=True))
        return closes, vol

    def _close_frame(self, day: dt.date, field: str = "close") -> pd.DataFrame:
        """``field`` prices (UTC timestamps × symbols) of the bars loaded up to at least ``day``, cached with them.

        On the run's basis for the paper broker (it fills on it), as stored for a real broker.
        """
        from rltrade.data.adjust import adjust_prices

        self._load(day)
        key = (self._bars_until, self.paper)
        if self._closes is None or self._closes[0] != key:
            bars = self._bars
            assert bars is not None
            if self.paper:
                bars = adjust_prices(bars, self.run.signals.config.data.prices)
            self._closes = (key, {})
            self._traded = bars
        frames = self._closes[1]
        if field not in frames:
            frame = self._traded.pivot_table(
                index="timestamp", columns="symbol", values=field, aggfunc="last", dropna=False
            )
            frame.index = pd.DatetimeIndex(frame.index).tz_convert("UTC")
            frames[field] = frame
        return frames[field]

    def _bar_prices(self, day: dt.date) -> dict[str, np.ndarray | None]:
        """Open, high and low of ``day`` by symbol (None for a field the bars lack: close-only data)."""
        out: dict[str, np.ndarray | None] = {}
        for name in ("open", "high", "low"):
            row = _rows_of(self._close_frame(day, name), day)
            values = row.reindex(columns=list(self.run.symbols)).to_numpy(dtype=np.float64)[-1] if len(row) else None
            out[name] = values if values is not None and np.isfinite(values).all() else None
        return out

    # ----------------------------------------------------------------------------- combined runs
    def rules_signals(self, day: dt.date, until: dt.date | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A combined run's signals at ``day`` from its models, over the bars up to ``until`` (default ``day``)."""
        from rltrade.data.adjust import adjust_prices
        from rltrade.signals.deciders import RulesModels

        if self._combined is None:
            self._combined = RulesModels(self.run.signals)
        if self._signals_until is None or self._signals_until < day:
            upto = until or day
            bars = adjust_prices(self._load(upto), self.run.signals.config.data.prices)
            self._combined.compute(bars)
            self._signals_until = upto
        return self._combined.at(day)

    def _rules_plan(
        self, day: dt.date, held: dict[str, float], closes: dict[str, float], capital: float
    ) -> list[PlannedOrder]:
        """The orders of a combined run's trading rules after the close of ``day`` (:mod:`rltrade.live.combined`)."""
        from rltrade.backtest.rules import RulesState
        from rltrade.live import combined

        symbols = self.run.symbols
        signals = self.rules_signals(day)
        assert self._combined is not None
        text = ", ".join(
            f"{s} up {signals[0][j]:g} p_up {signals[1][j]:.3f} rl {signals[2][j]:+.3f}" for j, s in enumerate(symbols)
        )
        self.event("signals", f"signals of {self.run.run_id} as of {day}: {text}")
        c = np.array([closes[s] for s in symbols])
        stored = combined.load_state(self.engine, self.broker.name, self.account_name, self.run.run_id)
        state = stored[0] if stored is not None else RulesState.initial(symbols, capital)
        if state.symbols != symbols:
            raise LiveError(f"the stored rules state trades {state.symbols}, the run {symbols}: another run's account?")
        avg = {s: p.avg_price for s, p in self.broker.positions().items()}
        state = combined.reconciled(state, held, avg, c, capital)
        targets, after, notes, ranked = combined.decide(
            self._combined.rules, state, day, c, signals, self._bar_prices(day)
        )
        for note in notes:
            self.event("rules", note, level="warning")
        if not self.dry_run:
            combined.save_state(self.engine, self.broker.name, self.account_name, self.run.run_id, day, after)
        orders = []
        for j, symbol in enumerate(symbols):
            target = targets[symbol]
            qty = target.shares - held.get(symbol, 0.0)
            if abs(qty) <= _DUST or abs(qty * c[j]) < max(self.config.min_order_notional, 1e-9):
                continue
            coid = client_order_id(self.run.run_id, day, symbol, combined.LEG)
            weight = target.shares * c[j] / capital if capital > 0 else 0.0
            orders.append(
                PlannedOrder(
                    symbol, qty, coid, float(c[j]), weight, held.get(symbol, 0.0), target.shares, reason=target.reason
                )
            )
        rank = {s: k for k, s in enumerate(ranked)}  # buys in the rules' order (the strongest signal first)
        return sorted(orders, key=lambda o: (o.qty > 0, rank.get(o.symbol, len(rank)) if o.qty > 0 else 0, o.symbol))

    # ----------------------------------------------------------------------------- the session
    def session(self, day: dt.date, *, check_calendar: bool = True) -> SessionResult:
        """Run the session after the close of ``day``: checks, clock, reconcile, decision, orders (module docstring).

        ``check_calendar=False`` (a replay, whose days are the store's trading days, as the
        backtest's are) skips the exchange calendar.
        """
        mode = " (dry run: nothing is sent)" if self.dry_run else ""
        if check_calendar and self.config.calendar is not None and not is_session(self.config.calendar, day):
            message = f"market closed on {day} (not a session of {self.config.calendar}): nothing to do"
            self.event("closed", message)
            return SessionResult(day, "closed", message)
        self.event(
            "session",
            f"session of {day}: run {self.run.run_id} on {self.broker.name} account {self.account_name}{mode}",
        )
        if self.config.update_data:
            from rltrade.signals.compute import ingest_new_bars

            ingest_new_bars(self.run.signals)
            self._bars = None
        self.check_fresh(day)  # before the paper clock moves: a stale session changes nothing
        if self.paper and not self.dry_run:
            self._advance(day)
        held = self.reconcile(day)
        weights = self.signals(day) if self.run.kind == "weights" else {}
        closes, vol = self.closes(day)
        account = self.broker.account()
        equity = account.equity
        if self.dry_run and self.paper:
            # the clock was not moved: value the positions at T's closes, and count the pending orders as filled
            # (at about T's close, which moves cash into shares and leaves the equity as it is)
            equity = account.cash + sum(q * closes.get(s, 0.0) for s, q in held.items())
            for order in self.broker.open_orders():
                held[order.symbol] = held.get(order.symbol, 0.0) + order.qty - order.filled_qty
        capital = self._capital(equity)
        if self.run.kind == "rules":
            planned = self._rules_plan(day, held, closes, capital)
        else:
            planned = plan_orders(
                day,
                self.run.run_id,
                weights,
                closes,
                {s: held.get(s, 0.0) for s in self.run.symbols},
                capital,
                self.run.cost,
                volatility=vol,
                fractional=self.config.fractional,
                min_notional=self.config.min_order_notional,
            )
        done = [self._place(order, capital, day) for order in planned]
        after = self.broker.account()
        result = SessionResult(day, "dry_run" if self.dry_run else "traded", "", tuple(done), equity, account.cash)
        self.event(
            "session",
            f"session of {day} done: {result.line().split(': ', 1)[1]}; buying power now {after.buying_power:,.2f}",
        )
        return result

    def _advance(self, day: dt.date) -> None:
        clock = getattr(self.broker, "clock", None)
        end = _day_end(day)
        if clock is not None and pd.Timestamp(clock) >= end:
            return
        account: Account = self.broker.advance(end)  # type: ignore[attr-defined]
        log.info(
            "paper clock at the close of %s: equity %s, cash %s", day, f"{account.equity:,.2f}", f"{account.cash:,.2f}"
        )

    def _capital(self, equity: float) -> float:
        capital = self.config.capital
        if capital is None:
            return equity
        if capital > equity:
            log.warning("capital %s is more than the account's equity %s: trading the equity", capital, equity)
            return equity
        return capital

    def _place(self, order: PlannedOrder, capital: float, day: dt.date) -> PlannedOrder:
        coid = order.client_order_id
        what = f"{coid}: {order.describe()}, target {order.target:g} (weight {order.weight:.2%}), held {order.held:g}"
        refusal = limit_refusal(order, capital, self.config)
        if refusal is not None:
            self.event("refused", f"refused {what}: {refusal}", level="warning", coid=coid)
            return replace(order, outcome="refused", reason=refusal)
        if self.dry_run:
            self.event("dry_run", f"dry run: would send {what}", coid=coid)
            return replace(order, outcome="dry_run")
        existing = self.broker.order(coid)
        if existing is not None:
            self._record(existing, day)
            self.event(
                "exists",
                f"{coid} is already at {self.broker.name} ({existing.status}, {existing.filled_qty:+g} filled): "
                "not sent again",
                coid=coid,
            )
            return replace(order, outcome="exists", status=existing.status)
        request = OrderRequest(order.symbol, order.qty, coid, time_in_force=self.config.time_in_force)
        self.event("order", f"sending {what}", coid=coid)
        try:
            placed = self.broker.submit(request)
        except OrderRejected as exc:
            rejected = Order(coid, "", order.symbol, order.qty, 0.0, "rejected", reason=str(exc))
            self._record(rejected, day, self.config.time_in_force)
            self.event("rejected", f"{coid} rejected by {self.broker.name}: {exc}", level="warning", coid=coid)
            return replace(order, outcome="rejected", status="rejected", reason=str(exc))
        self._record(placed, day, self.config.time_in_force)
        self.event("sent", f"{coid} sent: {placed.status} ({self.broker.name} id {placed.broker_order_id})", coid=coid)
        self._test_pause(coid)
        return replace(order, outcome="sent", status=placed.status)

    def _test_pause(self, coid: str) -> None:
        """The fault tests' hook: after the process's first order, write the marker file and sleep."""
        marker = os.environ.get(PAUSE_ENV, "").strip()
        if not marker or self._paused:
            return
        self._paused = True
        Path(marker).write_text(coid + "\n", encoding="utf-8")
        log.warning("test hook %s: paused after sending %s", PAUSE_ENV, coid)
        time.sleep(float(os.environ.get(PAUSE_SECONDS_ENV, "120")))

    # ----------------------------------------------------------------------------- replay
    def replay(
        self, start: dt.date, end: dt.date, on_session: Callable[[SessionResult], None] | None = None
    ) -> list[SessionResult]:
        """The sessions of every trading day in [start, end], the paper clock advanced day by day.

        Days the paper account has already passed (its clock is after their close) were replayed
        before and are skipped; the day it stands on is run again, which sends only what is not
        at the broker yet (a restart after a crash).
        """
        if not self.paper:
            raise LiveError(f"a range of past days is replayed on the paper broker only, not on {self.broker.name}")
        if self.dry_run:
            raise LiveError(
                "--dry-run runs one session (today's, or --date's); a replay of past days moves the paper clock"
            )
        if end < start:
            raise LiveError(f"--end {end} is before --start {start}")
        from rltrade.signals.compute import trading_days

        bars = self._load(end)
        days = [d for d in trading_days(bars, self.run.symbols) if start <= d <= end]
        if not days:
            raise LiveError(f"no trading day of {', '.join(self.run.symbols)} between {start} and {end} in the store")
        clock = getattr(self.broker, "clock", None)
        todo = [d for d in days if clock is None or _day_end(d) >= pd.Timestamp(clock)]
        if len(todo) < len(days):
            log.info(
                "%d day(s) up to %s were replayed before: skipped",
                len(days) - len(todo),
                pd.Timestamp(str(clock)).date(),
            )
        results = []
        if todo:
            self.prefetch(todo[0], todo[-1])
        for day in todo:
            result = self.session(day, check_calendar=False)
            results.append(result)
            if on_session is not None:
                on_session(result)
        return results

    def close(self) -> None:
        """Release the broker's connection."""
        self.broker.close()


# --------------------------------------------------------------------------------------------
# The entry point of `rltrade live`
# --------------------------------------------------------------------------------------------


@dataclass
class LiveReport:
    """What :func:`run_live` did: the sessions, and for a paper replay the account next to the backtest."""

    broker: str
    account: str
    run_id: str
    sessions: list[SessionResult] = field(default_factory=list)
    paper_equity: pd.Series | None = None
    backtest_equity: pd.Series | None = None

    def paper_daily(self) -> pd.Series | None:
        """The paper account's equity at the last mark of each UTC day, indexed by naive dates.

        The paper broker marks at every bar of the symbols it holds or has orders in, and at the
        clock when there are none, so a day can carry two marks (a flat account's clock, then
        the bar it catches up on once it trades again); both are the same cash.
        """
        if self.paper_equity is None:
            return None
        paper = self.paper_equity.copy()
        paper.index = pd.DatetimeIndex(paper.index).tz_convert(None).normalize()
        return paper.groupby(level=0).last()

    def comparison(self) -> Comparison | None:
        """The paper account next to the backtest on the last day both have (None: no common day)."""
        paper = self.paper_daily()
        if paper is None or self.backtest_equity is None:
            return None
        backtest = self.backtest_equity.copy()
        backtest.index = pd.DatetimeIndex(backtest.index).normalize()
        both = paper.index.intersection(backtest.index)
        if not len(both):
            return None
        first, last = both[0], both[-1]
        return Comparison(
            first.date(),
            last.date(),
            float(paper.loc[first]),
            float(paper.loc[last]),
            float(backtest.loc[first]),
            float(backtest.loc[last]),
        )


@dataclass(frozen=True)
class Comparison:
    """A paper account's equity and the backtest's at the first and last day both have.

    A replay that starts after the run's test start opens the paper account in cash while the
    backtest is already invested and has grown: :attr:`rebased` scales the backtest to the
    paper account's first value (its return over the same days), and the difference is
    measured against it. From the test start the two start equal and it is the backtest itself.
    """

    first: dt.date
    last: dt.date
    paper_first: float
    paper: float
    backtest_first: float
    backtest: float

    @property
    def rebased(self) -> float:
        return self.backtest * self.paper_first / self.backtest_first

    @property
    def gap_bp(self) -> float:
        """``paper / rebased − 1`` in basis points."""
        return (self.paper / self.rebased - 1.0) * 1e4

    def lines(self, account: str, run_id: str) -> list[str]:
        """What ``rltrade live`` prints after a paper replay."""
        out = [
            f"paper account {account}: equity {self.paper:,.2f} at the close of {self.last} "
            f"(from {self.paper_first:,.2f} at the close of {self.first})",
            f"backtest of {run_id} (equity.csv): {self.backtest:,.2f} at the close of {self.last}",
        ]
        if abs(self.backtest_first - self.paper_first) > 1e-6 * abs(self.paper_first):
            out.append(
                f"backtest rebased to the paper account's start ({self.backtest_first:,.2f} on {self.first}): "
                f"{self.rebased:,.2f}"
            )
        out.append(
            f"difference: {self.paper - self.rebased:+,.2f} ({self.gap_bp:+.2f} bp; docs/live.md says why they differ)"
        )
        return out


def account_name(config: LiveConfig, run: LiveRun) -> str:
    """The account's name in the journal (and the paper account's): ``config.account``, else the run id (64 chars)."""
    return (config.account or run.run_id)[:64]  # the journal's account columns hold 64 characters


def make_live_broker(name: str, config: LiveConfig, run: LiveRun, engine: Engine) -> Broker:
    """The broker ``name`` set up from the live config (the paper one with the run's costs, timing and capital)."""
    key = name.strip().lower()
    if key not in BROKER_NAMES:
        raise ConfigError(f"--broker {name!r}: use one of {', '.join(BROKER_NAMES)}")
    if key == "paper":
        cfg = run.signals.config
        return make_broker(
            "paper",
            account=account_name(config, run),
            engine=engine,
            store=run.store,
            initial_cash=config.paper.initial_cash or run.initial_value,
            cost=run.cost,
            timing=run.timing,
            freq=cfg.data.freq,
            prices=cfg.data.prices,
            run=run.run_id,
            # a run whose backtest shorts is traded on a paper account that may short, up to the backtest's gross
            shorting=run.gross_leverage is not None,
            max_gross_leverage=run.gross_leverage or 1.0,
        )
    return make_broker(key, **config.broker_settings(key))


def run_live(
    config: LiveConfig,
    broker: str = "paper",
    *,
    run: str | Path | None = None,
    date: dt.date | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    dry_run: bool = False,
    engine: Engine | None = None,
    now: dt.datetime | None = None,
    on_session: Callable[[SessionResult], None] | None = None,
) -> LiveReport:
    """Run the live loop once: today's session, the session of ``date``, or (paper) every day of [start, end].

    Raises
    ------
    ConnectionLost
        The broker's connection dropped; the session stopped cleanly (journalled) and the next
        run reconciles.
    StaleData
        The store does not reach the session's day; nothing was sent.
    LiveError, SignalError, ConfigError, BrokerError
        The run, the dates or the broker cannot be used (one line naming what).
    """
    spec = run or config.run
    if spec is None:
        raise ConfigError("no run to trade: set `run:` in the live config or give --run RUN_DIR")
    if (start is None) != (end is None):
        raise LiveError("give both --start and --end (a range of past days to replay), or neither")
    if date is not None and start is not None:
        raise LiveError("give --date or --start/--end, not both")
    live_run = open_live_run(resolve_run(spec, config.runs_dir), config.store)
    engine = engine or connect(store=live_run.store)
    log.info("journal: %s", safe_url(str(engine.url)))
    trader = LiveLoop(
        config, make_live_broker(broker, config, live_run, engine), live_run, engine=engine, dry_run=dry_run
    )
    report = LiveReport(trader.broker.name, trader.account_name, live_run.run_id)
    try:
        if start is not None and end is not None:
            report.sessions = trader.replay(start, end, on_session)
        else:
            if date is None:
                date, why = session_day(config, now)
                if why is not None:
                    trader.event("closed", why)
                    closed = config.calendar is not None and not is_session(config.calendar, date)
                    report.sessions = [SessionResult(date, "closed" if closed else "not_closed", why)]
                    return report
            elif not trader.paper:
                _check_latest(trader, date)
            result = trader.session(date)
            report.sessions = [result]
            if on_session is not None:
                on_session(result)
        if trader.paper:
            report.paper_equity = trader.broker.history()["equity"]  # type: ignore[attr-defined]
            report.backtest_equity = _backtest_equity(live_run)
    except ConnectionLost as exc:
        # journalled here, printed once by the caller (the CLI's one-line message)
        trader.event(
            "lost", f"lost the connection to {trader.broker.name}: {exc}; session stopped", level="error", echo=False
        )
        raise
    except BrokerError as exc:
        trader.event("error", f"{trader.broker.name}: {exc}; session stopped", level="error", echo=False)
        raise
    finally:
        trader.close()
    return report


def _check_latest(trader: LiveLoop, day: dt.date) -> None:
    """A real broker trades the latest session only: refuse a day the store already has later bars after."""
    from rltrade.signals.compute import last_stored_day

    last = last_stored_day(trader.run.signals)
    if last > day:
        raise LiveError(
            f"--date {day}: the store has bars up to {last}, so {day} is a past session; a real broker trades the "
            "latest session only (replay past days on --broker paper with --start/--end)"
        )


def _backtest_equity(run: LiveRun) -> pd.Series | None:
    """The run's backtest equity (``equity.csv``, its first seed's column), or None."""
    from rltrade.runs.files import read_equity

    path = run.run_dir / "equity.csv"
    if not path.is_file():
        return None
    equity = read_equity(path)
    column = run.column if run.column in equity.columns else equity.columns[0]
    return equity[column].astype(float)
