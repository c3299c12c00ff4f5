"""The Alpaca broker: alpaca-py's ``TradingClient`` behind the :class:`~rltrade.brokers.base.Broker` protocol.

Keys come from the arguments or the environment (``ALPACA_API_KEY``, ``ALPACA_SECRET_KEY``); the
broker hands them to the client and keeps no copy, logs none and puts none in an error. The
paper endpoint is the default; ``url_override`` points the client anywhere else (a proxy, or the
local stand-in server of the tests).

Why a deterministic ``client_order_id`` is not optional here: alpaca-py retries an HTTP 429 or
504 answer on *every* call, order submission included (``RESTClient._request``: up to three
retries, three seconds apart), and a 504 from Alpaca's gateway does not mean the order was not
taken. So :meth:`AlpacaBroker.submit` always sends the caller's ``client_order_id``; Alpaca
refuses a second order with the same id (HTTP 422 ``client_order_id must be unique``), and the
broker then reads the order that is already there (``GET /v2/orders:by_client_order_id``) and
returns it. An answer that never came (the connection dropped) raises
:class:`~rltrade.brokers.base.ConnectionLost`: the caller looks the id up with
:meth:`AlpacaBroker.order` before sending anything again.

Order updates are polled (``order``, ``open_orders``, ``fills``); Alpaca's ``trade_updates``
stream (alpaca-py's ``TradingStream``) is not used.

alpaca-py is imported when a broker is made, so importing this module costs nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Container, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import urlsplit

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
    from alpaca.trading.client import TradingClient
    from alpaca.trading.models import Order as AlpacaOrder
    from alpaca.trading.models import Position as AlpacaPosition
    from alpaca.trading.models import TradeAccount

log = logging.getLogger(__name__)

T = TypeVar("T")

KEY_VARIABLES: tuple[str, str] = ("ALPACA_API_KEY", "ALPACA_SECRET_KEY")
PAPER_HOST = "paper-api.alpaca.markets"
LIVE_HOST = "api.alpaca.markets"
#: Seconds allowed to open a connection; a read waits for ``timeout`` (alpaca-py sets neither).
CONNECT_TIMEOUT_S = 5.0
#: How long :meth:`AlpacaBroker.cancel` polls for the final state (Alpaca cancels asynchronously).
CANCEL_WAIT_S = 5.0
CANCEL_POLL_S = 0.2
#: Fills per ``GET /v2/account/activities/FILL`` page (Alpaca's maximum without a ``date``).
ACTIVITY_PAGE_SIZE = 100
#: Open orders asked for in one ``GET /v2/orders`` (Alpaca's maximum).
OPEN_ORDERS_LIMIT = 500
#: Alpaca's refusal of a second order with an id it already holds: HTTP 422, code 40010001 (a code
#: it gives every invalid request), message "client_order_id must be unique" (spelt with spaces in
#: some API revisions, so matched loosely).
DUPLICATE_ID_MESSAGE = re.compile(r"client[\s_-]?order[\s_-]?id must be unique", re.IGNORECASE)
#: Every HTTP status: a call that handles all of them itself (submit).
_ANY_STATUS = range(1000)

#: Alpaca order status -> ours. Statuses in which the order can still trade map to ``accepted``
#: (or ``partially_filled`` once something filled, see :func:`_status`).
_FINAL_STATUS: dict[str, OrderStatus] = {
    "filled": "filled",
    "canceled": "cancelled",
    "replaced": "cancelled",  # this order is finished; its replacement is another order
    "expired": "expired",
    "rejected": "rejected",
}
_OPEN_STATUS: dict[str, OrderStatus] = {
    "new": "new",
    "pending_new": "new",
    "accepted": "accepted",
    "accepted_for_bidding": "accepted",
    "pending_review": "accepted",
    "held": "accepted",
    "partially_filled": "partially_filled",
    # still working, or waiting for the next session; partially_filled when some shares filled
    "pending_cancel": "accepted",
    "pending_replace": "accepted",
    "done_for_day": "accepted",
    "stopped": "accepted",
    "suspended": "accepted",
    "calculated": "accepted",
}


class AlpacaBroker:
    """An Alpaca (paper) account through alpaca-py.

    Parameters
    ----------
    paper:
        Trade the paper account (``https://paper-api.alpaca.markets``, the default) or, with
        ``False``, the live one. Ignored for the URL when ``url_override`` is given.
    url_override:
        Base URL of the Trading API instead of Alpaca's (a proxy, or a test server).
    api_key, secret_key:
        The key pair; ``None`` reads ``ALPACA_API_KEY`` / ``ALPACA_SECRET_KEY``.
    timeout:
        Seconds to wait for one HTTP answer (connecting gets at most :data:`CONNECT_TIMEOUT_S`).
    retry_wait:
        Seconds alpaca-py waits before retrying a 429/504 answer; ``None`` keeps its default (3).
    retry_attempts:
        Retries alpaca-py makes after a 429/504 answer; ``None`` keeps its default (3).

    Raises
    ------
    BrokerError
        A key is missing (the message names the variables, never a value).
    MissingDependencyError
        alpaca-py is not installed (``pip install 'rltrade[network]'``).

    Notes
    -----
    Not thread-safe: one broker per live loop.
    """

    name = "alpaca"

    def __init__(
        self,
        *,
        paper: bool = True,
        url_override: str | None = None,
        api_key: str | None = None,
        secret_key: str | None = None,
        timeout: float = 30.0,
        retry_wait: float | None = None,
        retry_attempts: int | None = None,
    ) -> None:
        from rltrade._optional import require

        key, secret = _keys(api_key, secret_key)
        require("alpaca", "network", "the Alpaca broker")
        from alpaca.trading.client import TradingClient

        self.paper = paper
        self.url = url_override.rstrip("/") if url_override else f"https://{PAPER_HOST if paper else LIVE_HOST}"
        self.host = urlsplit(self.url).netloc or self.url
        self._client: TradingClient = TradingClient(key, secret, paper=paper, url_override=url_override)
        _configure(self._client, timeout=timeout, retry_wait=retry_wait, retry_attempts=retry_attempts)
        # Fills name only Alpaca's order id; remember the client id of every order seen.
        self._client_ids: dict[str, str] = {}
        if not paper and url_override is None:
            log.warning("alpaca: trading the LIVE account at %s (real money)", self.host)

    def __repr__(self) -> str:
        return f"AlpacaBroker(url={self.url!r}, paper={self.paper})"

    def __enter__(self) -> AlpacaBroker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ reads

    def account(self) -> Account:
        """Cash, equity and buying power now (``GET /v2/account``)."""
        acct = cast("TradeAccount", self._call("reading the account", self._client.get_account))
        return Account(
            cash=_float(acct.cash),
            equity=_float(acct.equity if acct.equity is not None else acct.portfolio_value),
            buying_power=_float(acct.buying_power),
            currency=acct.currency or "USD",
        )

    def positions(self) -> dict[str, Position]:
        """Every non-zero position by symbol (``GET /v2/positions``); shorts have negative ``qty``."""
        rows = cast("list[AlpacaPosition]", self._call("reading the positions", self._client.get_all_positions))
        out: dict[str, Position] = {}
        for row in rows:
            # Alpaca reports a short as side "short" with qty "-N"; trust the side for the sign.
            sign = -1.0 if _text(row.side) == "short" else 1.0
            qty = sign * abs(_float(row.qty))
            if qty == 0:
                continue
            market_value = _float(row.market_value) if row.market_value is not None else None
            out[row.symbol] = Position(row.symbol, qty, _float(row.avg_entry_price), market_value)
        return out

    def open_orders(self) -> list[Order]:
        """Orders that can still fill (``GET /v2/orders?status=open``), oldest first."""
        from alpaca.trading.enums import QueryOrderStatus
        from alpaca.trading.requests import GetOrdersRequest

        request = GetOrdersRequest(status=QueryOrderStatus.OPEN, limit=OPEN_ORDERS_LIMIT)
        rows = cast(
            "list[AlpacaOrder]",
            self._call("listing the open orders", lambda: self._client.get_orders(filter=request)),
        )
        if len(rows) >= OPEN_ORDERS_LIMIT:
            log.warning("alpaca: %d open orders, only the newest %d were read", len(rows), OPEN_ORDERS_LIMIT)
        orders = [self._order(row) for row in rows]
        return sorted(orders, key=lambda o: o.submitted_at or dt.datetime.min.replace(tzinfo=dt.UTC))

    def order(self, client_order_id: str) -> Order | None:
        """The order with this client id, open or not (``GET /v2/orders:by_client_order_id``); None if none."""
        from alpaca.common.exceptions import APIError

        try:
            row = self._call(
                f"looking up order {client_order_id}",
                lambda: self._client.get_order_by_client_id(client_order_id),
                passthrough=(404,),
            )
        except APIError:  # 404: Alpaca holds no order with this id
            return None
        return self._order(cast("AlpacaOrder", row))

    def fills(self, since: dt.datetime | None = None) -> list[Fill]:
        """Executions after ``since`` (naive means UTC), oldest first (``GET /v2/account/activities/FILL``)."""
        after = utc(since) if since is not None else None
        fills: list[Fill] = []
        for row in self._activities(after):
            fill = self._fill(row)
            if after is None or fill.time > after:
                fills.append(fill)
        return fills

    # ------------------------------------------------------------------ writes

    def submit(self, request: OrderRequest) -> Order:
        """Send ``request`` with its ``client_order_id``; the order already at Alpaca under that id is returned.

        Raises
        ------
        OrderRejected
            Alpaca refused the order (insufficient buying power or shares, unknown symbol,
            invalid parameters); the message carries Alpaca's.
        ConnectionLost
            No answer came (connection dropped or timed out): the order may or may not be at
            Alpaca; look it up with :meth:`order` before sending it again.
        BrokerError
            The keys were refused, Alpaca kept failing (HTTP 5xx after alpaca-py's retries) and
            holds no order with the id, or the id is already used by a different order.
        """
        from alpaca.common.exceptions import APIError

        alpaca_request = _alpaca_request(request)
        what = f"order {request.client_order_id} ({describe_request(request)})"
        try:
            send = partial(self._client.submit_order, alpaca_request)
            placed = self._call(f"sending {what}", send, passthrough=_ANY_STATUS)
        except APIError as exc:
            return self._after_refusal(request, what, exc)
        except ConnectionLost as exc:
            raise ConnectionLost(
                f"{exc}; the order may or may not be at Alpaca: look it up by its client_order_id "
                f"({request.client_order_id}) before sending it again"
            ) from exc.__cause__
        order = self._order(cast("AlpacaOrder", placed))
        log.info("alpaca: sent %s: %s", what, order.status)
        return order

    def cancel(self, client_order_id: str) -> Order | None:
        """Ask Alpaca to cancel an open order and wait (up to :data:`CANCEL_WAIT_S`) for its final state.

        Returns the order as last read: ``cancelled``, or ``filled`` when it filled first, or
        still open when Alpaca had not confirmed in time; None when Alpaca has no such order.
        """
        from alpaca.common.exceptions import APIError

        order = self.order(client_order_id)
        if order is None or not order.open:
            return order
        try:
            self._call(
                f"cancelling order {client_order_id}",
                lambda: self._client.cancel_order_by_id(order.broker_order_id),
                passthrough=(404, 422),
            )
        except APIError as exc:  # 422: no longer cancelable (it filled meanwhile); 404: gone
            log.info("alpaca: order %s was not cancelled: %s", client_order_id, _detail(exc))
            return self.order(client_order_id)
        deadline = time.monotonic() + CANCEL_WAIT_S
        latest = self.order(client_order_id)
        while latest is not None and latest.open and time.monotonic() < deadline:
            time.sleep(CANCEL_POLL_S)
            latest = self.order(client_order_id)
        if latest is not None and latest.open:
            log.warning("alpaca: cancel of order %s not confirmed after %.0f s", client_order_id, CANCEL_WAIT_S)
        return latest

    def close(self) -> None:
        """Close the HTTP session (the broker can still be used: requests opens a new connection)."""
        session = getattr(self._client, "_session", None)
        if session is not None:
            session.close()

    # ------------------------------------------------------------------ internals

    def _call(self, what: str, fn: Callable[[], T], *, passthrough: Container[int] = ()) -> T:
        """Run one client call; transport failures become ConnectionLost, HTTP errors BrokerError.

        A refusal of the keys (401, or a 403 without an Alpaca error code) is always a
        BrokerError naming the variables; other HTTP statuses in ``passthrough`` are re-raised as
        alpaca-py's ``APIError`` for the caller to handle.
        """
        import requests
        from alpaca.common.exceptions import APIError
        from pydantic import ValidationError

        try:
            return fn()
        except APIError as exc:
            status = exc.status_code
            if status == 401 or (status == 403 and _code(exc) is None):
                raise BrokerError(
                    f"alpaca refused {what} (HTTP {status}: {_detail(exc)}); check {KEY_VARIABLES[0]} and "
                    f"{KEY_VARIABLES[1]} ({'paper' if self.paper else 'live'} keys for {self.host})"
                ) from exc
            if status in passthrough:
                raise
            raise BrokerError(f"alpaca failed {what}: HTTP {status}: {_detail(exc)}") from exc
        except (requests.ConnectionError, requests.Timeout) as exc:
            reason = type(exc).__name__
            raise ConnectionLost(f"alpaca: the connection to {self.host} was lost {what} ({reason})") from exc
        except ValidationError as exc:
            errors = exc.errors()
            where = ".".join(str(p) for p in errors[0]["loc"]) if errors else ""
            detail = f"{where}: {errors[0]['msg']}" if errors else str(exc).splitlines()[0]
            raise BrokerError(f"alpaca-py could not read Alpaca's answer {what} ({detail})") from exc

    def _after_refusal(self, request: OrderRequest, what: str, exc: Exception) -> Order:
        """A submit answered with an HTTP error: a duplicate id or an unknown outcome reads the order back."""
        status = getattr(exc, "status_code", None)
        detail = _detail(exc)
        duplicate = status == 422 and DUPLICATE_ID_MESSAGE.search(detail) is not None
        unknown = status is None or status == 429 or status >= 500  # alpaca-py's retries ran out
        if not (duplicate or unknown):
            raise OrderRejected(f"alpaca rejected {what}: {detail} (HTTP {status})") from exc
        existing = self.order(request.client_order_id)
        if existing is None:
            if duplicate:
                raise BrokerError(
                    f"alpaca says {what} is a duplicate id but holds no order under it; check the account"
                ) from exc
            raise BrokerError(
                f"alpaca kept failing {what} (HTTP {status}: {detail}) and holds no order with that id; "
                "nothing was placed as far as Alpaca says now: look it up again before resending"
            ) from exc
        if not same_order(existing, request):
            raise BrokerError(
                f"alpaca already holds client_order_id {request.client_order_id} for a different order "
                f"({describe_order(existing)}), not {describe_request(request)}: the id was reused"
            ) from exc
        why = "Alpaca refused the id as a duplicate" if duplicate else f"HTTP {status} after retries"
        log.warning("alpaca: %s already at Alpaca (%s; %s): not sent again", what, existing.status, why)
        return existing

    def _order(self, row: AlpacaOrder) -> Order:
        """alpaca-py ``Order`` -> ours (signed quantities, our status names)."""
        sign = -1.0 if _text(row.side) == "sell" else 1.0
        qty = sign * abs(_float(row.qty)) if row.qty is not None else 0.0
        filled = sign * abs(_float(row.filled_qty)) if row.filled_qty is not None else 0.0
        raw_status = _text(row.status)
        status = _status(raw_status, qty, filled)
        avg = _float(row.filled_avg_price) if row.filled_avg_price is not None and filled else None
        broker_id = str(row.id)
        self._client_ids[broker_id] = row.client_order_id
        return Order(
            client_order_id=row.client_order_id,
            broker_order_id=broker_id,
            symbol=row.symbol or "",
            qty=qty,
            filled_qty=filled,
            status=status,
            limit_price=_float(row.limit_price) if row.limit_price is not None else None,
            avg_fill_price=avg,
            submitted_at=row.submitted_at,
            reason=_reason(raw_status, status, row),
        )

    def _activities(self, after: dt.datetime | None) -> Iterator[dict[str, Any]]:
        """Every FILL activity after ``after``, oldest first, page by page.

        alpaca-py has no method for this endpoint in every supported version, so the client's
        own ``get`` (same authentication, retries and timeout) fetches the raw rows.
        """
        params: dict[str, Any] = {"direction": "asc", "page_size": ACTIVITY_PAGE_SIZE}
        if after is not None:
            params["after"] = after.isoformat()
        while True:
            fetch = partial(self._client.get, "/account/activities/FILL", dict(params))
            page = self._call("reading the fills", fetch)
            if not isinstance(page, list):
                raise BrokerError(f"alpaca answered the fills request with {type(page).__name__}, not a list")
            yield from page
            if len(page) < ACTIVITY_PAGE_SIZE:
                return
            params["page_token"] = page[-1]["id"]

    def _fill(self, row: dict[str, Any]) -> Fill:
        """One FILL activity (raw JSON) -> :class:`Fill`; the client id comes from the order it names."""
        try:
            order_id = str(row["order_id"])
            sign = -1.0 if str(row["side"]).startswith("sell") else 1.0  # sell, sell_short
            qty = sign * abs(float(row["qty"]))
            price = float(row["price"])
            when = utc(dt.datetime.fromisoformat(str(row["transaction_time"])))
            symbol, fill_id = str(row["symbol"]), str(row["id"])
        except (KeyError, TypeError, ValueError) as exc:
            raise BrokerError(f"alpaca returned a fill activity this broker cannot read ({exc!r}): {row}") from exc
        return Fill(self._client_id(order_id), order_id, symbol, qty, price, when, fill_id=fill_id)

    def _client_id(self, broker_order_id: str) -> str:
        """The client id of an Alpaca order id (read once from ``GET /v2/orders/{id}``); "" if unknown."""
        from alpaca.common.exceptions import APIError

        if broker_order_id not in self._client_ids:
            try:
                row = self._call(
                    f"looking up order id {broker_order_id}",
                    lambda: self._client.get_order_by_id(broker_order_id),
                    passthrough=(404, 422),
                )
            except APIError:
                log.warning("alpaca: a fill names order %s, which Alpaca does not return", broker_order_id)
                return ""
            self._order(cast("AlpacaOrder", row))  # records the id pair
        return self._client_ids[broker_order_id]


# ---------------------------------------------------------------------- helpers


def _keys(api_key: str | None, secret_key: str | None) -> tuple[str, str]:
    """The key pair from the arguments, else the environment; BrokerError naming what is missing."""
    given = {KEY_VARIABLES[0]: api_key, KEY_VARIABLES[1]: secret_key}
    values = {name: (value if value is not None else os.environ.get(name, "")).strip() for name, value in given.items()}
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise BrokerError(
            f"the Alpaca broker needs API keys: set {' and '.join(missing)} in the environment "
            f"(both {KEY_VARIABLES[0]} and {KEY_VARIABLES[1]}; paper keys from the Alpaca dashboard)"
        )
    return values[KEY_VARIABLES[0]], values[KEY_VARIABLES[1]]


def _configure(client: Any, *, timeout: float, retry_wait: float | None, retry_attempts: int | None) -> None:
    """Give the client an HTTP timeout and, when asked, other retry settings.

    ``TradingClient.__init__`` passes no retry arguments to ``RESTClient``, which reads its
    defaults (``DEFAULT_RETRY_ATTEMPTS`` = 3, ``DEFAULT_RETRY_WAIT_SECONDS`` = 3, codes 429 and
    504) into ``_retry``, ``_retry_wait`` and ``_retry_codes``, and alpaca-py sends every request
    through ``_session.request`` without a timeout. These private attributes are set only when
    present, so a release that renames them keeps its own behaviour.
    """
    session = getattr(client, "_session", None)
    if session is not None and callable(getattr(session, "request", None)):
        session.request = partial(session.request, timeout=(min(CONNECT_TIMEOUT_S, timeout), timeout))
    else:
        log.debug("alpaca-py client has no requests session; HTTP timeout not applied")
    if retry_wait is not None and hasattr(client, "_retry_wait"):
        client._retry_wait = retry_wait
    if retry_attempts is not None and hasattr(client, "_retry"):
        client._retry = retry_attempts


def _alpaca_request(request: OrderRequest) -> Any:
    """Our request -> alpaca-py's MarketOrderRequest / LimitOrderRequest (unsigned qty and a side)."""
    from alpaca.trading.enums import OrderSide, TimeInForce
    from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest

    if not math.isfinite(request.qty) or request.qty == 0:
        raise BrokerError(f"alpaca: order {request.client_order_id} has quantity {request.qty}; nothing to send")
    if not request.client_order_id or len(request.client_order_id) > 128:
        raise BrokerError(f"alpaca: client_order_id {request.client_order_id!r} must have 1 to 128 characters")
    fields: dict[str, Any] = {
        "symbol": request.symbol,
        "qty": abs(request.qty),
        "side": OrderSide.BUY if request.qty > 0 else OrderSide.SELL,
        "time_in_force": TimeInForce(request.time_in_force),
        "client_order_id": request.client_order_id,
    }
    if request.limit_price is None:
        return MarketOrderRequest(**fields)
    return LimitOrderRequest(limit_price=request.limit_price, **fields)


def _status(raw: str, qty: float, filled: float) -> OrderStatus:
    """Alpaca's status -> ours; an order still working with shares filled is ``partially_filled``."""
    if raw in _FINAL_STATUS:
        return _FINAL_STATUS[raw]
    if raw == "calculated" and qty and math.isclose(filled, qty):  # done, settlement pending
        return "filled"
    mapped = _OPEN_STATUS.get(raw)
    if mapped is None:
        log.warning("alpaca: unknown order status %r, taken as still open", raw)
        mapped = "accepted"
    return "partially_filled" if filled and mapped in ("new", "accepted") else mapped


def _reason(raw: str, status: OrderStatus, row: AlpacaOrder) -> str | None:
    """Alpaca's own status when ours says less (replaced, pending_cancel, done_for_day, ...)."""
    if raw == "replaced":
        return f"alpaca: replaced by order {row.replaced_by}" if row.replaced_by else "alpaca: replaced"
    return None if raw == status or (raw, status) == ("canceled", "cancelled") else f"alpaca: {raw}"


def _body(exc: Exception) -> Any:
    try:
        return json.loads(str(exc))
    except ValueError:
        return None


def _code(exc: Exception) -> int | None:
    body = _body(exc)
    return body.get("code") if isinstance(body, dict) else None


def _detail(exc: Exception) -> str:
    """Alpaca's message (with its code and any extra fields) on one line, at most 300 characters."""
    body = _body(exc)
    if isinstance(body, dict) and "message" in body:
        extra = [f"{k} {v}" for k, v in body.items() if k not in ("message", "code")]
        code = f"code {body['code']}" if "code" in body else ""
        details = ", ".join(x for x in [code, *extra] if x)
        text = f"{body['message']}" + (f" ({details})" if details else "")
    else:
        text = str(exc)
    return " ".join(text.split())[:300]


def _float(value: Any) -> float:
    return float(value) if value is not None and value != "" else 0.0


def _text(value: Any) -> str:
    """An alpaca-py enum (or plain string) as its string value."""
    return str(getattr(value, "value", value) or "")
