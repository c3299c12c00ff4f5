"""The one broker interface: account, positions, open orders, submit, cancel, fills.

Three implementations: :mod:`rltrade.brokers.paper` (embedded, the default: fills from the
store's bars with the backtest's cost model and fill timing, state in the database),
:mod:`rltrade.brokers.alpaca` (alpaca-py, the paper endpoint) and :mod:`rltrade.brokers.ib`
(ib_async, a TWS / IB Gateway paper account).

Every order carries a deterministic ``client_order_id`` (run, date, symbol, leg; see
:func:`client_order_id`) so a retried or restarted loop never sends an order twice: a broker
that already holds an order with that id returns it instead of sending a second one
(Alpaca de-duplicates ``client_order_id`` itself; IB does not, so the IB broker tags orders with
``orderRef`` and reconciles by it).

Quantities are signed shares: positive buys / long, negative sells / short.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass, field
from typing import Literal, Protocol

from rltrade.errors import RLTradeError

OrderStatus = Literal["new", "accepted", "partially_filled", "filled", "cancelled", "rejected", "expired"]
#: Statuses after which an order can change no more.
FINAL_STATUSES: frozenset[str] = frozenset({"filled", "cancelled", "rejected", "expired"})


class BrokerError(RLTradeError):
    """The broker refused a call or cannot be reached; the message says which call and why (never a secret)."""


class OrderRejected(BrokerError):
    """The broker rejected an order (insufficient buying power, unknown symbol, market closed, ...)."""


class ConnectionLost(BrokerError):
    """The connection to the broker dropped; the caller may reconnect and reconcile."""


@dataclass(frozen=True)
class Account:
    """Cash, equity (cash + positions at market) and buying power, in the account's currency."""

    cash: float
    equity: float
    buying_power: float
    currency: str = "USD"


@dataclass(frozen=True)
class Position:
    """A holding: signed shares, average entry price and its market value (``None`` when unknown)."""

    symbol: str
    qty: float
    avg_price: float
    market_value: float | None = None


@dataclass(frozen=True)
class OrderRequest:
    """An order to send: ``qty`` signed shares of ``symbol`` at market (``limit_price`` None) or at a limit."""

    symbol: str
    qty: float
    client_order_id: str
    limit_price: float | None = None
    time_in_force: Literal["day", "gtc", "opg", "cls"] = "day"


@dataclass(frozen=True)
class Order:
    """An order as the broker knows it."""

    client_order_id: str
    broker_order_id: str
    symbol: str
    qty: float
    filled_qty: float
    status: OrderStatus
    limit_price: float | None = None
    avg_fill_price: float | None = None
    submitted_at: dt.datetime | None = None
    reason: str | None = None  # why it was rejected or cancelled, when the broker says

    @property
    def open(self) -> bool:
        return self.status not in FINAL_STATUSES


@dataclass(frozen=True)
class Fill:
    """One execution of an order (an order may fill in several parts)."""

    client_order_id: str
    broker_order_id: str
    symbol: str
    qty: float
    price: float
    time: dt.datetime
    fee: float = 0.0
    fill_id: str = field(default="")


class Broker(Protocol):
    """What the live loop needs of a broker."""

    name: str

    def account(self) -> Account:
        """Cash, equity and buying power now."""
        ...

    def positions(self) -> dict[str, Position]:
        """Every non-zero position, by symbol."""
        ...

    def open_orders(self) -> list[Order]:
        """Orders that can still fill."""
        ...

    def order(self, client_order_id: str) -> Order | None:
        """The order with this client id (open or not), or None if the broker has none."""
        ...

    def submit(self, request: OrderRequest) -> Order:
        """Send ``request``; an order with the same ``client_order_id`` already at the broker is returned, not resent.

        Raises :class:`OrderRejected` when the broker refuses it, :class:`ConnectionLost` when
        the connection drops (the caller reconciles with :meth:`order` before retrying).
        """
        ...

    def cancel(self, client_order_id: str) -> Order | None:
        """Cancel an open order; its final state (None if the broker has no such order)."""
        ...

    def fills(self, since: dt.datetime | None = None) -> list[Fill]:
        """Executions since ``since`` (all the broker still reports when None)."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


def client_order_id(run: str, date: str | dt.date, symbol: str, leg: str) -> str:
    """A deterministic order id for (run, as-of date, symbol, leg): the same decision always has the same id.

    ``leg`` names the order within a decision (``"rebalance"``, ``"stop"``, ``"flatten"``, ...).
    Readable and at most 48 characters (Alpaca allows 128, IB's ``orderRef`` is free text):
    ``rt-<date>-<symbol>-<leg>-<10 hex of a hash of all four>``.
    """
    day = date.isoformat() if isinstance(date, dt.date) else str(date)
    digest = hashlib.sha256(f"{run}|{day}|{symbol}|{leg}".encode()).hexdigest()[:10]
    readable = f"rt-{day.replace('-', '')}-{symbol[:8]}-{leg[:10]}"
    return f"{readable}-{digest}"


def same_order(order: Order, request: OrderRequest, *, exact: bool = True) -> bool:
    """Whether ``order`` (found under ``request``'s client id) is the one requested.

    ``exact``: the same symbol, signed quantity and limit; else only the same symbol and side
    (an order known only from its executions, whose full size is unknown).
    """
    if not exact:
        return order.symbol == request.symbol and order.qty * request.qty > 0
    same_limit = (order.limit_price is None) == (request.limit_price is None) and (
        request.limit_price is None or math.isclose(order.limit_price or 0.0, request.limit_price, rel_tol=1e-9)
    )
    return order.symbol == request.symbol and math.isclose(order.qty, request.qty, rel_tol=1e-9) and same_limit


def describe_request(request: OrderRequest) -> str:
    """``buy 10 AAPL at market, day``: a request in a log line or an error."""
    side = "buy" if request.qty > 0 else "sell"
    price = "at market" if request.limit_price is None else f"limit {request.limit_price:g}"
    return f"{side} {abs(request.qty):g} {request.symbol} {price}, {request.time_in_force}"


def describe_order(order: Order) -> str:
    """``sell 5 MSFT limit 410, filled``: an order in a log line or an error."""
    side = "buy" if order.qty > 0 else "sell"
    price = "at market" if order.limit_price is None else f"limit {order.limit_price:g}"
    return f"{side} {abs(order.qty):g} {order.symbol} {price}, {order.status}"


def utc(when: dt.datetime) -> dt.datetime:
    """``when`` as an aware UTC time (a naive time is taken to be UTC)."""
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)
