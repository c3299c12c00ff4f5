"""``PaperBroker``: the embedded paper account, filled from the store's bars like the backtest.

A clock in bar time: :meth:`PaperBroker.advance` moves it to ``to``, and each bar of the account's
symbols stamped after the last bar it marked and at most ``to`` (a bar stamped ``t`` counts as
finished at ``t``) fills the orders due on it, then marks the positions to its close (a row of
:meth:`PaperBroker.history`). An order submitted with the clock at ``T`` fills on its symbol's
next bar at the open (``timing="next_open"``) or the close (``"next_close"``), as in
:mod:`rltrade.envs.timing`, on the backtest's adjusted prices (:mod:`rltrade.data.adjust`), with
the cost model charged as the env kernels charge it (``cash -= q·p + cost`` for a buy,
``cash += q·p − cost`` for a sell; sells first, then buys, each in submission order).

A long-only cash account by default. Rejected at submission
(:class:`~rltrade.brokers.base.OrderRejected`, journalled): a zero or non-finite quantity or
limit, a symbol not in the store, no bar at or before the clock, an open fill on close-only bars,
a sell of more than is held and not already being sold (no shorts), a buy costing more at the
last close, cost included, than the buying power ``cash + pending sells (net of cost) − pending
buys (cost included)`` (no margin). At the fill, a buy the cash no longer covers (the price
moved since the close) is cut to the largest quantity it pays, whole shares for a whole-share
order, as in ``StockTradingEnv``; the rest expires. That is the only partial fill: bars never
fill part of an order. A limit buy fills at the fill price if at or under the limit, else (at
the open, with a low) at the limit if the low reaches it; sells mirror it; unfilled, a ``day``
order expires, a ``gtc`` one waits.
``time_in_force`` ``opg`` / ``cls`` fill at the next open / close whatever the timing. Not
modelled: sessions and halts, volume limits, slippage beyond the cost model, margin, interest,
cash dividends (adjusted prices carry them, as in the backtest).

Short selling (``shorting=True``), the accounting of ``PortfolioEnv(long_short=True)``: a sell
beyond the quantity held opens or extends a short (a negative position), a buy of a short covers
it and, beyond, goes long. The cash is booked as for longs, so a short sale credits its proceeds
net of cost (``cash += q·p − cost``), a cover pays ``q·p + cost``, the cost is charged on
``|q|·p``, and the equity is ``cash + Σ q·close`` with ``q < 0`` for a short. A short's average
price is its average entry (sale) price; a fill that crosses zero starts the new side at its
price. The one risk rule: an order that raises a position's size is rejected when the gross
exposure ``Σ |q|·close`` at the last close, over the positions and every open order (each order
counted on the side where it grows its position; an order that shrinks one is not credited, as
it may not fill), would exceed ``max_gross_leverage × equity`` (default 1: ``Σ|w| ≤ 1``, the
long/short env's ``leverage=1``). A sell that only reduces a long and a buy that only covers a
short pass that rule whatever the exposure; buys still need the buying power above (the cash,
which holds the short proceeds). The rule is checked at submission only: a price move after it
forces nothing (no margin call, no liquidation). Not modelled: borrow fees and hard-to-borrow
stocks, locates, margin interest (or interest on the short proceeds), Reg-T's 150 % initial and
the maintenance margin requirements, short squeezes and recalls; the gross-leverage cap stands in
for them. ``shorting`` and ``max_gross_leverage`` are rules of the broker object, not settings
of the account: reopened without ``shorting``, an account keeps its shorts and can cover them,
but opens no new ones.

State (cash, clock, positions, orders, fills, equity) lives in the database
(:mod:`rltrade.db.journal`), one transaction per bar: a new ``PaperBroker`` on the same account
carries on where the last stopped, even one killed mid-advance. One process per account.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import math
import os
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sqlalchemy.engine import Connection, Engine

from rltrade.brokers import as_fill, as_order
from rltrade.brokers.base import Account, BrokerError, Fill, Order, OrderRejected, OrderRequest, OrderStatus, Position
from rltrade.data.adjust import PriceBasis, adjust_prices
from rltrade.data.store import BarStore
from rltrade.db import connect, journal
from rltrade.envs.costs import CostModel, kernel_params, make_cost, spread_volatility
from rltrade.envs.timing import resolve_timing
from rltrade.errors import StoreError, UnknownSymbolError

BROKER = "paper"
TIME_IN_FORCE: tuple[str, ...] = ("day", "gtc", "opg", "cls")
_DUST = 1e-9  # shares left by float rounding after a sell: not a holding


def _utc(value: Any) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _ns(value: Any) -> np.datetime64:
    return np.datetime64(_utc(value).tz_localize(None), "ns")


@dataclass(frozen=True)
class _Bars:
    """One symbol's bars on the traded basis: naive-UTC times, OHLC and the cost model's volatility."""

    times: NDArray[np.datetime64]
    open: NDArray[np.float64]
    high: NDArray[np.float64]
    low: NDArray[np.float64]
    close: NDArray[np.float64]
    vol: NDArray[np.float64]

    def last_at(self, when: Any) -> int:
        """Index of the last bar stamped at or before ``when`` (-1: none, or ``when`` is None)."""
        return -1 if when is None else int(np.searchsorted(self.times, _ns(when), side="right")) - 1

    def index(self, stamp: np.datetime64) -> int:
        """Index of the bar stamped exactly ``stamp`` (-1: none)."""
        k = int(np.searchsorted(self.times, stamp))
        return k if k < len(self.times) and self.times[k] == stamp else -1


class PaperBroker:
    """A paper account in the database, filled from the bar store with the backtest's costs and timing.

    Parameters
    ----------
    account:
        The account's name (several accounts can share a database).
    engine:
        A database engine (:func:`rltrade.db.connect`); default the store's SQLite file or ``$RLTRADE_DB``.
    store:
        The bar store (a :class:`~rltrade.data.store.BarStore` or its location).
    initial_cash:
        Cash of a new account.
    cost:
        A cost model (:mod:`rltrade.envs.costs`), basis points per side, or None; default 10 bps.
    timing:
        ``"next_open"`` or ``"next_close"``: where an order submitted after a bar fills.
    freq, prices:
        The bars traded: frequency and price basis (``"adjusted"``, as the backtest, or ``"raw"``).
    run:
        The run whose decisions this account trades (stamped on its journalled orders).
    shorting:
        Allow short positions (see the module's notes); False (default) is a long-only cash account.
    max_gross_leverage:
        With ``shorting``: the cap on the gross exposure ``Σ |q|·close`` as a multiple of the equity
        (1: ``Σ|w| ≤ 1``, as ``PortfolioEnv(long_short=True, leverage=1)``).

    Raises
    ------
    BrokerError
        The account exists with other settings (cost, timing, frequency, prices or initial cash),
        or ``initial_cash`` or ``max_gross_leverage`` is not a positive number.
    """

    name = BROKER

    def __init__(
        self,
        account: str = "paper",
        *,
        engine: Engine | None = None,
        store: BarStore | str | os.PathLike[str] | None = None,
        initial_cash: float = 1e6,
        cost: CostModel | float | None = 10.0,
        timing: Literal["next_open", "next_close"] = "next_open",
        freq: str = "1d",
        prices: PriceBasis = "adjusted",
        run: str | None = None,
        shorting: bool = False,
        max_gross_leverage: float = 1.0,
    ) -> None:
        if not (math.isfinite(initial_cash) and initial_cash > 0):
            raise BrokerError(f"paper account {account!r}: initial_cash must be > 0, got {initial_cash}")
        if not (math.isfinite(max_gross_leverage) and max_gross_leverage > 0):
            raise BrokerError(f"paper account {account!r}: max_gross_leverage must be > 0, got {max_gross_leverage}")
        self.account_name, self.freq, self.prices, self.run = account, freq, prices, run
        self.shorting, self.max_gross_leverage = bool(shorting), float(max_gross_leverage)
        self.store = store if isinstance(store, BarStore) else BarStore(store)
        self._own_engine = engine is None
        self.engine = engine if engine is not None else connect(store=self.store.uri)
        self.cost = make_cost(cost)
        self.timing = resolve_timing(timing, has_open=True)
        if self.timing.optimistic:
            raise BrokerError("a paper account cannot fill at a close already seen: use next_open or next_close")
        self._window = kernel_params(self.cost).window if self.cost.needs_volatility else 0
        settings = f"cost={self.cost!r} timing={self.timing.name} freq={freq} prices={prices} cash={initial_cash!r}"
        self._bars: dict[str, _Bars] = {}
        self._checked: dict[str, np.datetime64] = {}
        with self.engine.begin() as conn:
            state = journal.load_paper_account(conn, account)
            if state is None:
                journal.save_paper_account(
                    conn, journal.PaperAccountState(account, float(initial_cash), None, settings)
                )
                self._log(conn, "open", f"paper account {account} opened: {settings}")
        if state is not None and state.settings != settings:
            raise BrokerError(
                f"paper account {account!r} was opened with {state.settings}, not {settings}; "
                "reopen it with those settings, or use another account name"
            )

    # ----------------------------------------------------------------------------- reading
    @property
    def clock(self) -> dt.datetime | None:
        """The bar time up to which the account has been advanced (None before the first :meth:`advance`)."""
        return self._state(self.engine).clock

    def account(self) -> Account:
        """Cash, equity (positions at their last close at or before the clock) and buying power."""
        state = self._state(self.engine)
        equity = self._equity(state, state.clock)
        return Account(state.cash, equity, self._buying_power(state, self._pending(self.engine)))

    def positions(self) -> dict[str, Position]:
        """Every non-zero position (a short: negative qty, its average sale price), valued at its last close."""
        state = self._state(self.engine)
        return {s: Position(s, q, a, q * self._close(s, state.clock)) for s, (q, a) in sorted(state.positions.items())}

    def open_orders(self) -> list[Order]:
        """Accepted orders still waiting for their bar, in submission order."""
        return [as_order(r) for r in self._pending(self.engine)]

    def order(self, client_order_id: str) -> Order | None:
        """The order with this client id (open or not), or None."""
        record = journal.get_order(self.engine, BROKER, self.account_name, client_order_id)
        return None if record is None else as_order(record)

    def fills(self, since: dt.datetime | None = None) -> list[Fill]:
        """Fills stamped with their bar's time, after ``since`` if given."""
        return [as_fill(r) for r in journal.list_fills(self.engine, BROKER, self.account_name, since)]

    def history(self) -> pd.DataFrame:
        """The equity curve: ``cash``, ``equity`` by UTC ``timestamp`` at the first :meth:`advance`, then each bar.

        An advance that meets no bar of the account's symbols adds a row at its ``to``.
        """
        return journal.equity_history(self.engine, self.account_name)

    def close(self) -> None:
        """Release the database engine if this broker created it."""
        if self._own_engine:
            self.engine.dispose()

    # ----------------------------------------------------------------------------- orders
    def submit(self, request: OrderRequest) -> Order:
        """Accept ``request`` to fill on the next bar; an order with its client id is returned as stored.

        Raises :class:`OrderRejected` (after journalling it) when a rule of the module refuses it.
        """
        coid = request.client_order_id
        with self.engine.begin() as conn:
            existing = journal.get_order(conn, BROKER, self.account_name, coid)
            if existing is not None:
                return as_order(existing)
            state = self._state(conn)
            reason = self._refusal(request, state, self._pending(conn))
            broker_id = "paper-" + hashlib.sha256(f"{self.account_name}|{coid}".encode()).hexdigest()[:16]
            status: OrderStatus = "rejected" if reason else "accepted"
            qty = float(request.qty) if math.isfinite(request.qty) else 0.0  # SQLite cannot store a NaN
            order = Order(coid, broker_id, request.symbol, qty, 0.0, status, request.limit_price)
            order = dataclasses.replace(order, submitted_at=state.clock, reason=reason)
            as_of = None if state.clock is None else state.clock.date()
            kwargs: dict[str, Any] = {"run": self.run, "as_of": as_of, "time_in_force": request.time_in_force}
            journal.record_order(conn, order, broker=BROKER, account=self.account_name, **kwargs)
            what = f"{request.symbol} {request.qty:+g}" + (
                f" limit {request.limit_price:g}" if request.limit_price else ""
            )
            if reason:
                self._log(conn, "reject", f"{coid} ({what}) rejected: {reason}", coid, level="warning")
            else:
                self._log(conn, "submit", f"{coid} ({what}, {request.time_in_force}) accepted at {state.clock}", coid)
        if reason:
            raise OrderRejected(f"paper order {coid} ({what}) rejected: {reason}")
        return order

    def cancel(self, client_order_id: str) -> Order | None:
        """Cancel an open order; its final state (a final order is returned unchanged; None if unknown)."""
        with self.engine.begin() as conn:
            record = journal.get_order(conn, BROKER, self.account_name, client_order_id)
            if record is None or not as_order(record).open:
                return None if record is None else as_order(record)
            order = dataclasses.replace(as_order(record), status="cancelled", reason="cancelled by the client")
            journal.record_order(conn, order, broker=BROKER, account=self.account_name)
            self._log(conn, "cancel", f"{client_order_id} cancelled", client_order_id)
        return order

    def advance(self, to: Any) -> Account:
        """Move the clock to ``to``: on each new bar stamped <= ``to``, fill the orders due and mark the positions.

        Returns the account at ``to``. Raises :class:`BrokerError` for a ``to`` before the clock.
        """
        when = _utc(to)
        with self.engine.connect() as conn:
            state, pending = self._state(conn), self._pending(conn)
        if state.clock is not None and when < state.clock:
            raise BrokerError(
                f"paper account {self.account_name}: the clock is at {state.clock}, it cannot go back to {when}"
            )
        series = {s: self._series(s, when) for s in sorted(set(state.positions) | {o.symbol for o in pending})}
        stamps = np.unique(np.concatenate([b.times for b in series.values()] or [np.array([], "datetime64[ns]")]))
        # after the last bar marked, not the clock: a bar stored late (stamped before the clock) still counts
        after = None if state.last_bar is None else _ns(state.last_bar)
        stamps = stamps[(stamps <= _ns(when)) & (True if after is None else stamps > after)]
        for i, stamp in enumerate(stamps):
            with self.engine.begin() as conn:  # one transaction a bar: a kill between bars loses nothing
                due = [o for o in pending if series[o.symbol].index(stamp) >= 0 and _ns(o.submitted_at) < stamp]
                for o in sorted(due, key=lambda o: o.qty > 0):  # sells first, each side in submission order
                    if self._fill(conn, state, o, series[o.symbol], stamp):
                        pending.remove(o)
                state.last_bar = pd.Timestamp(stamp).tz_localize("UTC").to_pydatetime()
                moved = when.to_pydatetime() if i == len(stamps) - 1 else state.last_bar
                state.clock = moved if state.clock is None else max(state.clock, moved)
                self._save(conn, state, state.last_bar)
        if not len(stamps):
            with self.engine.begin() as conn:
                state.clock = when.to_pydatetime()
                state.last_bar = state.last_bar or state.clock  # the first advance: what came before is history
                self._save(conn, state, state.clock)
        return Account(state.cash, self._equity(state, when), self._buying_power(state, pending))

    # ----------------------------------------------------------------------------- internals
    def _log(self, conn: Connection, kind: str, message: str, coid: str | None = None, level: str = "info") -> None:
        journal.log_event(
            conn, kind, message, level=level, broker=BROKER, account=self.account_name, client_order_id=coid
        )

    def _state(self, bind: Engine | Connection) -> journal.PaperAccountState:
        state = journal.load_paper_account(bind, self.account_name)
        if state is None:
            raise BrokerError(f"paper account {self.account_name!r} is missing from the database")
        return state

    def _pending(self, bind: Engine | Connection) -> list[journal.OrderRecord]:
        return journal.list_orders(bind, BROKER, self.account_name, open_only=True)

    def _save(self, conn: Connection, state: journal.PaperAccountState, mark: dt.datetime | None) -> None:
        journal.save_paper_account(conn, state)
        if mark is not None:
            journal.record_equity(conn, self.account_name, mark, state.cash, self._equity(state, mark))

    def _series(self, symbol: str, upto: Any) -> _Bars:
        """The symbol's bars (cached; reloaded once for a time past the cached ones, as new bars may have come)."""
        cached = self._bars.get(symbol)
        t = None if upto is None else _ns(upto)
        if cached is not None and (t is None or t <= self._checked[symbol]):
            return cached
        frame = adjust_prices(self.store.load([symbol], freq=self.freq), self.prices)
        times = pd.DatetimeIndex(frame["timestamp"]).tz_convert("UTC").tz_localize(None).to_numpy("datetime64[ns]")
        cols = {c: frame[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in ("open", "high", "low", "close")}
        vol = spread_volatility(cols["close"], self._window) if self._window else np.zeros(len(times))
        bars = _Bars(times, cols["open"], cols["high"], cols["low"], cols["close"], vol)
        self._bars[symbol] = bars
        self._checked[symbol] = max(times[-1], t) if t is not None else times[-1]
        return bars

    def _close(self, symbol: str, when: Any) -> float:
        bars = self._series(symbol, when)
        return float(bars.close[bars.last_at(when)])

    def _equity(self, state: journal.PaperAccountState, when: Any) -> float:
        equity = state.cash
        for symbol, (qty, _) in sorted(state.positions.items()):  # the envs' order: cash, then symbols sorted
            equity += qty * self._close(symbol, when)
        return equity

    def _fee(self, notional: float, shares: float, vol: float) -> float:
        volatility = np.array([vol]) if self.cost.needs_volatility else None
        return float(self.cost.cost(np.array([notional]), np.array([shares]), volatility)[0])

    def _reserve(self, symbol: str, qty: float, limit: float | None, clock: Any) -> float:
        """Cash a pending order takes (a buy, > 0) or brings (a sell, < 0) at the last close, its cost included."""
        bars = self._series(symbol, clock)
        i = bars.last_at(clock)
        price = float(bars.close[i]) if limit is None or qty < 0 else min(float(bars.close[i]), limit)
        q = abs(qty)
        fee = self._fee(q * price, q, float(bars.vol[i]))
        return q * price + fee if qty > 0 else -(q * price - fee)

    def _buying_power(self, state: journal.PaperAccountState, pending: list[journal.OrderRecord]) -> float:
        held = sum(self._reserve(o.symbol, o.qty - o.filled_qty, o.limit_price, state.clock) for o in pending)
        return state.cash - held

    def _fill_field(self, time_in_force: str | None) -> str:
        return {"opg": "open", "cls": "close"}.get(time_in_force or "", self.timing.fill_field)

    def _refusal(
        self, request: OrderRequest, state: journal.PaperAccountState, pending: list[journal.OrderRecord]
    ) -> str | None:
        """Why the order is rejected (one line), or None when it is accepted."""
        qty, symbol, limit, clock = float(request.qty), request.symbol, request.limit_price, state.clock
        if not math.isfinite(qty) or qty == 0:
            return f"qty must be a non-zero finite number of shares, got {request.qty}"
        if limit is not None and not (math.isfinite(limit) and limit > 0):
            return f"the limit price must be a positive number, got {limit}"
        if request.time_in_force not in TIME_IN_FORCE:
            return f"time_in_force must be one of {', '.join(TIME_IN_FORCE)}, got {request.time_in_force!r}"
        try:
            bars = self._series(symbol, clock)
        except (UnknownSymbolError, StoreError):
            return f"unknown symbol {symbol}: the store {self.store.uri} has no {self.freq} bars of it"
        i = bars.last_at(clock)
        if i < 0:
            return f"no {symbol} bar at or before the paper clock ({clock}): advance the clock past a bar first"
        if self._fill_field(request.time_in_force) == "open" and not np.isfinite(bars.open[i]):
            return (
                f"{symbol} has no opens (close-only bars): fill at the close (timing next_close or time_in_force cls)"
            )
        held = state.positions.get(symbol, (0.0, 0.0))[0]
        if qty < 0:
            selling = -sum(o.qty - o.filled_qty for o in pending if o.symbol == symbol and o.qty < 0)
            if -qty <= held - selling + _DUST:  # only reduces a long: always accepted
                return None
            if not self.shorting:
                return f"selling {-qty:g} {symbol} would go short: {held:g} held, {selling:g} already being sold"
            return self._gross_refusal(request, state, pending)
        need = self._reserve(symbol, qty, limit, clock)
        power = self._buying_power(state, pending)
        if need > power:
            return (
                f"insufficient buying power: the order needs {need:,.2f} (at the last close, cost included), "
                f"{power:,.2f} is available (cash {state.cash:,.2f} + pending sells - pending buys; no margin)"
            )
        buying = sum(o.qty - o.filled_qty for o in pending if o.symbol == symbol and o.qty > 0)
        if self.shorting and held + buying + qty > _DUST:  # not only a cover: it grows a long
            return self._gross_refusal(request, state, pending)
        return None

    def _gross_refusal(
        self, request: OrderRequest, state: journal.PaperAccountState, pending: list[journal.OrderRecord]
    ) -> str | None:
        """The gross-leverage rule (shorting): why an order that grows a position is refused, or None.

        The gross exposure after the order is ``Σ |q|·close`` at the last close, each symbol's ``q``
        being its position plus all its open buys or plus all its open sells (the new order
        included), whichever is larger in size: an order that would shrink a position is not
        counted, as it may not fill.
        """
        clock = state.clock
        grows: dict[str, list[float]] = {}  # symbol -> [position + buys, position + sells]
        for symbol in sorted(set(state.positions) | {o.symbol for o in pending} | {request.symbol}):
            held = state.positions.get(symbol, (0.0, 0.0))[0]
            grows[symbol] = [held, held]
        for symbol, qty in [*((o.symbol, o.qty - o.filled_qty) for o in pending), (request.symbol, request.qty)]:
            grows[symbol][0 if qty > 0 else 1] += qty
        gross = sum(max(abs(up), abs(down)) * self._close(s, clock) for s, (up, down) in grows.items())
        equity = self._equity(state, clock)
        cap = self.max_gross_leverage * equity
        if gross > cap:
            return (
                f"gross exposure {gross:,.2f} after the order (positions and open orders at the last close) "
                f"would exceed max_gross_leverage {self.max_gross_leverage:g} x equity {equity:,.2f} = {cap:,.2f}"
            )
        return None

    def _affordable(self, cash: float, price: float, want: float, vol: float) -> float:
        """The largest quantity <= ``want`` whose notional and cost ``cash`` pays (whole shares if ``want`` is)."""

        def fits(q: float) -> bool:
            return q * price + self._fee(q * price, q, vol) <= cash

        lo, hi = 0.0, min(want, cash / price)
        if float(want).is_integer():  # bisection over whole shares (the cost grows with the quantity)
            hi = float(math.floor(hi))
            while lo < hi:
                mid = float(math.floor((lo + hi + 1) / 2))
                lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
            return lo
        for _ in range(200):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if fits(mid) else (lo, mid)
        return lo

    def _price(self, o: journal.OrderRecord, bars: _Bars, k: int) -> float | None:
        """Fill price of ``o`` on bar ``k`` (NaN when the bar lacks it); None when its limit is not reached there."""
        field, limit, buy = self._fill_field(o.time_in_force), o.limit_price, o.qty > 0
        price = float(bars.open[k] if field == "open" else bars.close[k])
        if limit is None or (price <= limit if buy else price >= limit):
            return price
        touched = field == "open" and bool(bars.low[k] <= limit if buy else bars.high[k] >= limit)  # intraday
        return limit if touched else None

    def _fill(
        self, conn: Connection, state: journal.PaperAccountState, o: journal.OrderRecord, bars: _Bars, stamp: Any
    ) -> bool:
        """Fill order ``o`` on the bar stamped ``stamp`` (True when the order is final afterwards)."""
        k, buy, order = bars.index(stamp), o.qty > 0, as_order(o)
        when = pd.Timestamp(stamp).tz_localize("UTC").to_pydatetime()
        price = self._price(o, bars, k)
        if price is None and o.time_in_force == "gtc":
            return False
        if price is None or not math.isfinite(price):
            why = "no fill price" if price is not None else f"limit {o.limit_price:g} not reached"
            return self._expire(conn, order, f"{why} on the bar of {when}")
        vol = float(bars.vol[k - 1]) if k > 0 else math.nan  # known when the order was placed, as in the envs
        want = abs(o.qty - o.filled_qty)
        q, fee, cash = want, self._fee(want * price, want, vol), state.cash
        if buy and q * price + fee > cash:  # the price moved since the close: cut to what the cash pays
            q = self._affordable(cash, price, want, vol)
            fee = self._fee(q * price, q, vol)
        if q <= 0 or (not buy and cash + (q * price - fee) < 0):
            return self._expire(conn, order, f"cash {cash:,.2f} cannot pay {want:g} at {price:g} and its cost")
        held, avg = state.positions.pop(o.symbol, (0.0, 0.0))
        signed = q if buy else -q
        if buy:  # the env kernels' own expressions, so that the numbers match bit for bit
            state.cash -= q * price + fee
        else:
            state.cash += q * price - fee
        if held * signed >= 0:  # opens or grows a long or a short: the average entry price moves
            held, avg = held + signed, (held * avg + signed * price) / (held + signed)
        else:  # shrinks the position (the average stays) or, past zero, opens the other side at the price
            held, avg = held + signed, avg if (held + signed) * held > 0 else price
        if abs(held) > _DUST:
            state.positions[o.symbol] = (held, avg)
        cut = None if q == want else f"buying-power cap: filled {q:g} of {want:g} (cash {cash:,.2f} at {price:g})"
        status: OrderStatus = "filled" if cut is None else "expired"
        order = dataclasses.replace(order, filled_qty=o.filled_qty + signed, status=status, avg_fill_price=price)
        journal.record_order(conn, dataclasses.replace(order, reason=cut), broker=BROKER, account=self.account_name)
        fill_id = f"{o.broker_order_id}-{pd.Timestamp(stamp):%Y%m%dT%H%M%S}"
        fill = Fill(o.client_order_id, o.broker_order_id, o.symbol, signed, price, when, fee, fill_id)
        journal.record_fill(conn, fill, broker=BROKER, account=self.account_name)
        text = f"{o.client_order_id}: {o.symbol} {signed:+g} at {price:g}, cost {fee:.6g}, on the bar of {when}"
        if cut is None:
            self._log(conn, "fill", text, o.client_order_id)
        else:
            self._log(conn, "partial", f"{text}; {cut}; the rest expired", o.client_order_id, level="warning")
        return True

    def _expire(self, conn: Connection, order: Order, reason: str) -> bool:
        expired = dataclasses.replace(order, status="expired", reason=reason)
        journal.record_order(conn, expired, broker=BROKER, account=self.account_name)
        self._log(conn, "expire", f"{order.client_order_id} expired: {reason}", order.client_order_id, level="warning")
        return True
