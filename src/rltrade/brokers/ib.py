"""The Interactive Brokers broker: ib_async's ``IB`` client on a TWS / IB Gateway behind the Broker protocol.

The gateway is found by host, port and client id (IB Gateway's paper port 4002 by default;
TWS paper is 7497; the live ports 4001 / 7496 trade real money). No key passes through here:
the login lives in the gateway.

Idempotency. IB does not de-duplicate orders, and an ``orderId`` is unique only per client id
and connection history, so it cannot name a decision. Every order is therefore sent with
``orderRef = client_order_id`` and :meth:`IBBroker.submit` first looks that reference up in what
the gateway reported since the connection began: open orders (of every client id, through
``reqAllOpenOrders``), completed orders and executions, which ib_async requests on connect; an
order found there is returned instead of being sent again. The gateway keeps completed orders
and executions for a limited time only (executions: the current day, by default), which is
enough because a client order id names its date and a decision is sent on its day.

Event loop. ib_async is asyncio code; its synchronous API (``IB.connect``,
``IB.reqAllOpenOrders``, ``ib_async.util.run``) runs the calling thread's event loop
(``ib_async.util.getLoop``, which makes one when the thread has none or its loop was closed)
until the awaited answer is in, so this broker needs no loop of its own and no background
thread. Between calls nothing runs and gateway messages wait in the socket: every method first
lets the loop process what arrived, and a connection that dropped meanwhile is noticed there and
raises :class:`~rltrade.brokers.base.ConnectionLost`. Waiting for an order's acknowledgement
tests the condition and listens for the next update in one coroutine step (``IB.waitOnUpdate``
starts listening an iteration late and can miss an answer already in the socket). The thread
must not be running an asyncio loop already (no ``util.startLoop`` / nest_asyncio, no calls from
a coroutine), and one broker per thread: ib_async reports a dropped connection through a global
event that ends whatever wait is running in the thread.

Orders are SMART-routed US stocks in USD named by symbol (``Stock(symbol, "SMART", "USD")``);
the gateway resolves the contract itself, so no contract-details request is made. A symbol that
trades on several US venues under the same name would need a ``primaryExchange``; not supported.

ib_async is imported when a broker is made, so importing this module costs nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rltrade.brokers.base import (
    Account,
    BrokerError,
    ConnectionLost,
    Fill,
    Order,
    OrderRejected,
    OrderRequest,
    OrderStatus,
    Position,
    describe_order,
    describe_request,
    same_order,
    utc,
)

if TYPE_CHECKING:
    from ib_async import IB, Trade
    from ib_async import Fill as IBFill

log = logging.getLogger(__name__)

DEFAULT_PORT = 4002
#: rltrade time in force -> IB's; "cls" is a market (limit) on close order, sent as DAY.
_TIF = {"day": "DAY", "gtc": "GTC", "opg": "OPG", "cls": "DAY"}
#: IB statuses of an order the gateway has not acknowledged yet.
_UNACKED = frozenset({"PendingSubmit", "ApiPending"})
_ENDED = frozenset({"Cancelled", "ApiCancelled", "Inactive"})
#: IB error code of "Order Canceled - reason:" (a cancellation, not a rejection).
_CANCELLED_CODE = 202
#: IB codes that are warnings about a live order (ib_async's list, less 110: an off-tick price
#: refuses a new order); 2100-2199 are warnings too.
_WARNINGS = frozenset({105, 165, 321, 329, 399, 404, 434, 492, 10167})


class IBBroker:
    """A TWS / IB Gateway account through ib_async.

    Parameters
    ----------
    host, port:
        Where the gateway's API listens (IB Gateway paper: 4002; TWS paper: 7497).
    client_id:
        The API client id. Orders are reconciled by ``orderRef`` whatever the client id, but
        only the client id that placed an order can cancel it: keep one id per live loop.
    account:
        The account to trade; None takes the login's only account (an error if it has several).
    timeout:
        Seconds allowed for connecting and synchronising, for each request, and for the gateway
        to acknowledge an order.

    Notes
    -----
    Not thread-safe; one broker per thread, in a thread not running an asyncio loop already (see
    the module docstring). Only stock positions are reported.
    """

    name = "ib"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        client_id: int = 1,
        account: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.host = host
        self.port = int(port)
        self.client_id = int(client_id)
        self.timeout = float(timeout)
        self._wanted_account = account
        self.account_code = account or ""
        self._ib: IB | None = None
        # order id (this connection) -> (IB error code, IB's text), for rejections
        self._errors: dict[int, tuple[int, str]] = {}
        self.connect()

    def __repr__(self) -> str:
        return (
            f"IBBroker(host={self.host!r}, port={self.port}, client_id={self.client_id}, account={self.account_code!r})"
        )

    def __enter__(self) -> IBBroker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ connection

    def connect(self) -> None:
        """(Re)connect and synchronise: positions, open and completed orders, account values, executions.

        Called by the constructor; call it again after :class:`ConnectionLost` to reconnect, then
        reconcile with :meth:`order` (or simply :meth:`submit` again: what the gateway holds is
        not resent).
        """
        from rltrade._optional import require

        ib_async = require("ib_async", "ib", "the Interactive Brokers broker")
        self.close()
        ib = ib_async.IB()
        api_errors: list[str] = []
        ib.client.apiError += api_errors.append
        ib.errorEvent += self._on_error
        self._errors = {}
        # Sub-account updates (reqAccountUpdatesMulti) would repeat the account updates of the one account traded.
        fetch = ib_async.StartupFetchALL & ~ib_async.StartupFetch.SUB_ACCOUNT_UPDATES
        where = f"{self.host}:{self.port} (client id {self.client_id})"
        try:
            ib.connect(
                self.host,
                self.port,
                clientId=self.client_id,
                timeout=self.timeout,
                account=self._wanted_account or "",
                fetchFields=fetch,
                # A sync that timed out would leave orders unknown, and reconciling by orderRef
                # on partial knowledge could send an order twice: refuse the connection instead.
                raiseSyncErrors=True,
            )
            # Each step of connect has its own timeout, so the synchronous requests get one only now
            # (ib_async's default: none); set earlier it would also cut connect short as a whole.
            ib.RequestTimeout = self.timeout
            # Orders of other client ids (a loop restarted under another id) are reconciled too.
            ib.reqAllOpenOrders()
        except ConnectionRefusedError:
            raise BrokerError(
                f"ib: cannot connect to TWS / IB Gateway at {self.host}:{self.port}: connection refused "
                "(is it running, with its API enabled on that port?)"
            ) from None
        except (OSError, TimeoutError) as exc:  # asyncio.TimeoutError is TimeoutError
            _drop(ib)
            reason = api_errors[-1] if api_errors else _connect_failure(exc, self.timeout)
            raise BrokerError(f"ib: cannot connect to TWS / IB Gateway at {where}: {reason}") from None
        accounts = list(ib.managedAccounts())
        if self._wanted_account is None and len(accounts) != 1:
            _drop(ib)
            raise BrokerError(f"ib: the login at {where} manages accounts {accounts}: pass account= to pick one")
        if self._wanted_account is not None and self._wanted_account not in accounts:
            _drop(ib)
            raise BrokerError(
                f"ib: account {self._wanted_account} is not among {accounts} managed by the login at {where}"
            )
        self.account_code = self._wanted_account or accounts[0]
        self._ib = ib
        log.info("ib: connected to %s, account %s", where, self.account_code)

    def close(self) -> None:
        """Disconnect (idempotent)."""
        ib, self._ib = self._ib, None
        if ib is not None:
            _drop(ib)

    def _on_error(self, req_id: int, code: int, text: str, _contract: Any) -> None:
        # Errors on an order id, warnings aside (they leave the order live), explain a rejection.
        if req_id > 0 and code not in _WARNINGS and not 2100 <= code < 2200:
            self._errors[req_id] = (code, text)

    def _pump(self) -> IB:
        """Process what the gateway sent since the last call; the client, or ConnectionLost if it dropped."""
        if self._ib is None:
            raise BrokerError(f"ib: the broker on {self.host}:{self.port} is closed: call connect() first")
        with self._guard("reading the gateway's messages"):
            _spin()
        return self._connected()

    def _connected(self) -> IB:
        if self._ib is None or not self._ib.isConnected():
            raise ConnectionLost(
                f"ib: the connection to {self.host}:{self.port} (client id {self.client_id}) was lost: "
                "call connect() and reconcile by client_order_id before sending again"
            )
        return self._ib

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        """ib_async's connection failures (ConnectionError, a cancelled wait) as ConnectionLost."""
        try:
            yield
        except (ConnectionError, asyncio.CancelledError) as exc:
            raise ConnectionLost(
                f"ib: the connection to {self.host}:{self.port} (client id {self.client_id}) was lost "
                f"{what} ({str(exc) or type(exc).__name__}): "
                "call connect() and reconcile by client_order_id before sending again"
            ) from None

    def _wait(self, done: Callable[[], bool], what: str) -> bool:
        """Let messages in until ``done()`` or the timeout; whether it is done.

        Not ``IB.waitOnUpdate``: it starts listening one loop iteration late and misses an
        answer that is already in the socket. Here the condition is tested and the listener
        connected in the same step, so no update slips between them.
        """
        from ib_async import util

        ib = self._connected()

        async def until_done() -> None:
            while not done():
                await ib.updateEvent

        with self._guard(what):
            try:
                util.run(asyncio.wait_for(until_done(), self.timeout))
            except TimeoutError:
                return False
        return True

    # ------------------------------------------------------------------ reads

    def account(self) -> Account:
        """Cash, equity and buying power from the account values the gateway streams (``reqAccountUpdates``)."""
        ib = self._pump()
        rows = [v for v in ib.accountValues(self.account_code) if v.currency not in ("", "BASE")]
        # Cash and buying power in the currency the net liquidation value is reported in (the base one).
        currency = next((v.currency for v in rows if v.tag == "NetLiquidation"), "")
        values = {v.tag: float(v.value) for v in rows if v.currency == currency}
        missing = [tag for tag in ("NetLiquidation", "TotalCashValue", "BuyingPower") if tag not in values]
        if missing:
            raise BrokerError(f"ib: the gateway sent no {', '.join(missing)} for account {self.account_code}")
        return Account(
            cash=values["TotalCashValue"],
            equity=values["NetLiquidation"],
            buying_power=values["BuyingPower"],
            currency=currency,
        )

    def positions(self) -> dict[str, Position]:
        """Every non-zero stock position, with its market value when the gateway sent one (``updatePortfolio``)."""
        ib = self._pump()
        value = {item.contract.conId: item.marketValue for item in ib.portfolio(self.account_code)}
        return {
            p.contract.symbol: Position(p.contract.symbol, p.position, p.avgCost, value.get(p.contract.conId))
            for p in ib.positions(self.account_code)
            if p.contract.secType == "STK" and p.position != 0
        }

    def open_orders(self) -> list[Order]:
        """Orders that can still fill, of every client id (``client_order_id`` is empty for one not sent by rltrade)."""
        ib = self._pump()
        return [order for order in (self._order(trade) for trade in ib.trades()) if order.open]

    def order(self, client_order_id: str) -> Order | None:
        """The order with this ``orderRef`` the gateway reported since connecting, or None."""
        self._pump()
        return self._find(client_order_id)

    def fills(self, since: dt.datetime | None = None) -> list[Fill]:
        """Executions the gateway reports (those it still keeps on connect, then live ones), oldest first.

        ``since`` without a time zone is taken as UTC. ``fee`` is IB's commission, 0 until its
        commission report has arrived.
        """
        ib = self._pump()
        cutoff = utc(since) if since is not None else None
        out = [_fill(f) for f in ib.fills()]
        return sorted((f for f in out if cutoff is None or f.time >= cutoff), key=lambda f: (f.time, f.fill_id))

    # ------------------------------------------------------------------ orders

    def submit(self, request: OrderRequest) -> Order:
        """Send ``request`` tagged ``orderRef = client_order_id``; an order the gateway holds under it is returned.

        Waits until the gateway acknowledges the order (or the timeout: the order is then
        returned as ``new``).

        Raises
        ------
        OrderRejected
            The gateway refused the order (insufficient buying power, unknown symbol, price not
            on the tick grid, ...); the message carries IB's error code and text.
        ConnectionLost
            The connection dropped; the order may or may not be at IB: reconnect and look it up
            by its client_order_id (:meth:`order`) before sending it again.
        BrokerError
            The id is already used by a different order, or the request is malformed.
        """
        self._pump()
        what = f"order {request.client_order_id} ({describe_request(request)})"
        trade = self._find_trade(request.client_order_id)
        existing = self._order(trade) if trade is not None else self._find(request.client_order_id)
        if existing is not None:
            # An order known only from its executions may have filled in part: its size is unknown.
            if not same_order(existing, request, exact=trade is not None):
                raise BrokerError(
                    f"ib already holds client_order_id {request.client_order_id} for a different order "
                    f"({describe_order(existing)}), not {describe_request(request)}: the id was reused"
                )
            log.warning("ib: %s already at IB (%s): not sent again", what, existing.status)
            return existing
        contract, ib_order = self._ib_order(request)
        with self._guard(f"sending {what}"):
            placed = self._connected().placeOrder(contract, ib_order)
        acked = self._wait(lambda: placed.orderStatus.status not in _UNACKED, f"waiting for IB to acknowledge {what}")
        order = self._order(placed)
        if order.status == "rejected":
            raise OrderRejected(f"ib rejected {what}: {order.reason}")
        if not acked:
            log.warning("ib: %s not acknowledged within %g s; it may still arrive", what, self.timeout)
        log.info("ib: sent %s: %s", what, order.status)
        return order

    def cancel(self, client_order_id: str) -> Order | None:
        """Cancel the order with this ``orderRef`` and wait for IB to confirm; its final state (None if unknown)."""
        self._pump()
        trade = self._find_trade(client_order_id)
        if trade is None:
            return self._find(client_order_id)
        if trade.isDone():
            return self._order(trade)
        if trade.order.clientId != self.client_id:
            raise BrokerError(
                f"ib: order {client_order_id} was placed by client id {trade.order.clientId}; "
                f"client id {self.client_id} cannot cancel it"
            )
        with self._guard(f"cancelling order {client_order_id}"):
            self._connected().cancelOrder(trade.order)
        if not self._wait(trade.isDone, f"waiting for IB to cancel order {client_order_id}"):
            log.warning("ib: cancel of %s not confirmed within %g s", client_order_id, self.timeout)
        return self._order(trade)

    # ------------------------------------------------------------------ helpers

    def _ib_order(self, request: OrderRequest) -> tuple[Any, Any]:
        from ib_async import LimitOrder, MarketOrder, Stock
        from ib_async import Order as IBOrder

        qty = float(request.qty)
        if qty == 0 or not math.isfinite(qty):
            raise BrokerError(f"ib: order {request.client_order_id} has quantity {request.qty}; nothing to send")
        if not request.client_order_id:
            raise BrokerError("ib: an order needs a client_order_id (it becomes the order's orderRef)")
        action = "BUY" if qty > 0 else "SELL"
        common: dict[str, Any] = {
            "tif": _TIF[request.time_in_force],
            "orderRef": request.client_order_id,
            "account": self.account_code,
        }
        limit = request.limit_price
        if limit is not None and not (math.isfinite(limit) and limit > 0):
            raise BrokerError(f"ib: order {request.client_order_id} has limit price {limit}")
        ib_order: Any
        if request.time_in_force == "cls":
            kind = "MOC" if limit is None else "LOC"
            ib_order = IBOrder(action=action, totalQuantity=abs(qty), orderType=kind, **common)
            if limit is not None:
                ib_order.lmtPrice = round(limit, 6)
        elif limit is None:
            ib_order = MarketOrder(action, abs(qty), **common)
        else:  # rounding strips float noise (123.4500000001), which IB would refuse as off the tick grid
            ib_order = LimitOrder(action, abs(qty), round(limit, 6), **common)
        return Stock(request.symbol, "SMART", "USD"), ib_order

    def _find_trade(self, client_order_id: str) -> Trade | None:
        assert self._ib is not None
        trades = [t for t in self._ib.trades() if t.order.orderRef == client_order_id]
        live = [t for t in trades if not t.isDone()]
        if live:
            return live[-1]
        return trades[-1] if trades else None

    def _find(self, client_order_id: str) -> Order | None:
        trade = self._find_trade(client_order_id)
        if trade is not None:
            return self._order(trade)
        assert self._ib is not None
        fills = [f for f in self._ib.fills() if f.execution.orderRef == client_order_id]
        return _order_from_fills(client_order_id, fills) if fills else None

    def _order(self, trade: Trade) -> Order:
        o, st = trade.order, trade.orderStatus
        sign = 1.0 if o.action == "BUY" else -1.0
        total = float(o.totalQuantity)
        from_fills = sum(f.execution.shares for f in trade.fills)
        reported = _value(o.filledQuantity) or 0.0
        filled = max(float(st.filled), from_fills, reported)  # a completed order has no fresh orderStatus
        avg = float(st.avgFillPrice) or _vwap(trade.fills)
        error = self._errors.get(o.orderId) if o.clientId == self.client_id else None
        status = _status(st.status, total, filled, error)
        reason = f"{error[1]} (IB error {error[0]})" if error else None
        limit = _value(o.lmtPrice) if o.orderType in ("LMT", "LOC") else None
        return Order(
            client_order_id=o.orderRef,
            broker_order_id=str(o.permId or st.permId) if (o.permId or st.permId) else f"{o.clientId}/{o.orderId}",
            symbol=trade.contract.symbol,
            qty=sign * total,
            filled_qty=sign * filled,
            status=status,
            limit_price=limit,
            avg_fill_price=avg or None,
            submitted_at=trade.log[0].time if trade.log else None,
            reason=reason,
        )


def _connect_failure(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s"
    if exc.args and isinstance(exc.args[0], list):  # ib_async's raiseSyncErrors: the requests that timed out
        return f"{'; '.join(map(str, exc.args[0]))} (the gateway's orders and fills could not be synchronised)"
    return str(exc) or type(exc).__name__


def _drop(ib: IB) -> None:
    """Disconnect, and let the loop run the transport's close callbacks so no socket outlives the client."""
    ib.disconnect()
    _spin()


def _spin() -> None:
    """Run the thread's event loop for a few iterations (socket reads, close callbacks)."""
    from ib_async import util

    for _ in range(3):
        util.run(asyncio.sleep(0))


def _value(raw: Any) -> float | None:
    """A number of ib_async's, None when unset (None, or its UNSET_DOUBLE sentinel)."""
    from ib_async.util import UNSET_DOUBLE

    return None if raw is None or float(raw) >= UNSET_DOUBLE else float(raw)


def _status(raw: str, total: float, filled: float, error: tuple[int, str] | None) -> OrderStatus:
    """IB's order status as one of rltrade's; IB reports a partial fill as Submitted with filled > 0."""
    if raw == "Filled" or (total > 0 and filled >= total):
        return "filled"
    if raw in _ENDED:
        refused = error is not None and error[0] != _CANCELLED_CODE
        return "rejected" if filled == 0 and (refused or raw == "Inactive") else "cancelled"
    if raw in _UNACKED:
        return "new"
    return "partially_filled" if filled > 0 else "accepted"


def _fill(f: IBFill) -> Fill:
    ex = f.execution
    sign = 1.0 if ex.side == "BOT" else -1.0
    return Fill(
        client_order_id=ex.orderRef,
        broker_order_id=str(ex.permId) if ex.permId else f"{ex.clientId}/{ex.orderId}",
        symbol=f.contract.symbol,
        qty=sign * float(ex.shares),
        price=float(ex.price),
        time=utc(ex.time),
        fee=float(f.commissionReport.commission or 0.0),
        fill_id=ex.execId,
    )


def _order_from_fills(client_order_id: str, fills: list[IBFill]) -> Order:
    """An order the gateway reported only through its executions: filled by what they add up to."""
    rows = [_fill(f) for f in fills]
    qty = sum(r.qty for r in rows)
    return Order(
        client_order_id=client_order_id,
        broker_order_id=rows[0].broker_order_id,
        symbol=rows[0].symbol,
        qty=qty,
        filled_qty=qty,
        status="filled",
        avg_fill_price=_vwap(fills) or None,
        submitted_at=min(r.time for r in rows),
    )


def _vwap(fills: list[IBFill]) -> float:
    shares = sum(f.execution.shares for f in fills)
    return sum(f.execution.shares * f.execution.price for f in fills) / shares if shares else 0.0
