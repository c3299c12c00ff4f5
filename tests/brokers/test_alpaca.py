"""The Alpaca broker driven offline: alpaca-py's real TradingClient against a stand-in on 127.0.0.1.

The stand-in (tests/brokers/alpaca_server.py) answers with the response shapes of
tests/fixtures/alpaca/ (written from Alpaca's documented schemas; see the README there) plus a
small state machine, so every request goes through alpaca-py's request building, headers,
retry loop and response models, and through ``requests`` to a real socket.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
from tests.brokers.alpaca_server import AlpacaServer, fixture, parse_time

from rltrade.brokers import alpaca as alpaca_module
from rltrade.brokers.alpaca import AlpacaBroker
from rltrade.brokers.base import (
    Account,
    BrokerError,
    ConnectionLost,
    Fill,
    Order,
    OrderRejected,
    OrderRequest,
    Position,
    client_order_id,
)

RETRY_WAIT = 0.01  # alpaca-py waits 3 s between retries by default


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy from the environment must not capture requests meant for 127.0.0.1."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setattr(alpaca_module, "CANCEL_POLL_S", 0.01)


@pytest.fixture
def server() -> Iterator[AlpacaServer]:
    stand_in = AlpacaServer()
    yield stand_in
    stand_in.close()


@pytest.fixture
def broker(server: AlpacaServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[AlpacaBroker]:
    monkeypatch.setenv("ALPACA_API_KEY", server.key_id)
    monkeypatch.setenv("ALPACA_SECRET_KEY", server.secret_key)
    with AlpacaBroker(url_override=server.url, retry_wait=RETRY_WAIT, timeout=5.0) as b:
        yield b


def cid(symbol: str, leg: str = "rebalance", day: str = "2024-06-04") -> str:
    return client_order_id("run-7", day, symbol, leg)


def seeded(symbol: str) -> dict[str, Any]:
    return next(o for o in fixture("orders.json") if o["symbol"] == symbol)


# --------------------------------------------------------------------------- account and positions


def test_account_maps_cash_equity_and_buying_power(broker: AlpacaBroker, server: AlpacaServer) -> None:
    account = fixture("account.json")
    positions = fixture("positions.json")
    cash = float(account["cash"])
    # equity = cash + every position at its current price; buying power = cash less open buys
    equity = cash + sum(float(p["qty"]) * float(p["current_price"]) for p in positions)
    open_buys = [o for o in fixture("orders.json") if o["side"] == "buy" and o["status"] == "new"]
    buying_power = cash - sum(float(o["qty"]) * float(o["limit_price"]) for o in open_buys)

    assert broker.account() == Account(cash=cash, equity=pytest.approx(equity), buying_power=buying_power)
    assert equity == pytest.approx(float(account["equity"]))  # the fixture is self-consistent
    (request,) = server.requests_to("GET", "/v2/account")
    assert request.headers["APCA-API-KEY-ID"] == server.key_id


def test_positions_are_signed_by_side(broker: AlpacaBroker, server: AlpacaServer) -> None:
    assert broker.positions() == {
        "AAPL": Position("AAPL", 10.0, 189.5, 1923.0),
        "TSLA": Position("TSLA", -3.0, 180.1, -534.0),
    }
    # Some Alpaca answers give a short's qty unsigned; the side still makes it negative.
    server.positions["TSLA"]["qty"] = "3"
    assert broker.positions()["TSLA"].qty == -3.0


def test_positions_and_account_follow_fills(broker: AlpacaBroker, server: AlpacaServer) -> None:
    before = broker.account()
    buy = broker.submit(OrderRequest("SPY", 5, cid("SPY")))
    server.fill(buy.client_order_id, 5, 531.2)
    sell = broker.submit(OrderRequest("AAPL", -4, cid("AAPL", "stop"), limit_price=190.0))
    server.fill(sell.client_order_id, 4, 190.0)

    positions = broker.positions()
    assert positions["SPY"] == Position("SPY", 5.0, 531.2, 5 * 531.2)
    assert positions["AAPL"].qty == 6.0 and positions["AAPL"].avg_price == 189.5  # a sale keeps the entry
    assert positions["AAPL"].market_value == pytest.approx(6 * 190.0)  # marked at the last fill
    account = broker.account()
    assert account.cash == pytest.approx(before.cash - 5 * 531.2 + 4 * 190.0)
    assert account.equity == pytest.approx(account.cash + 5 * 531.2 + 6 * 190.0 - 3 * 178.0)


# --------------------------------------------------------------------------- orders


def test_submit_sends_the_client_order_id_and_maps_the_answer(broker: AlpacaBroker, server: AlpacaServer) -> None:
    request = OrderRequest("SPY", -3, cid("SPY", "short"), limit_price=531.5, time_in_force="gtc")

    order = broker.submit(request)

    (post,) = server.requests_to("POST", "/v2/orders")
    assert post.body["client_order_id"] == request.client_order_id
    assert (post.body["symbol"], post.body["side"], float(post.body["qty"])) == ("SPY", "sell", 3.0)
    assert (post.body["type"], post.body["time_in_force"], post.body["limit_price"]) == ("limit", "gtc", 531.5)
    stored = server.order_by_client_id(request.client_order_id)
    assert order == Order(
        client_order_id=request.client_order_id,
        broker_order_id=stored["id"],
        symbol="SPY",
        qty=-3.0,
        filled_qty=0.0,
        status="accepted",
        limit_price=531.5,
        avg_fill_price=None,
        submitted_at=parse_time(stored["submitted_at"]),
    )
    assert order.open and order.submitted_at is not None and order.submitted_at.tzinfo is not None
    assert broker.order(request.client_order_id) == order


def test_market_order_has_no_limit_price(broker: AlpacaBroker, server: AlpacaServer) -> None:
    order = broker.submit(OrderRequest("SPY", 2, cid("SPY")))
    (post,) = server.requests_to("POST", "/v2/orders")
    assert post.body["type"] == "market" and "limit_price" not in post.body
    assert (order.qty, order.limit_price, order.status) == (2.0, None, "accepted")


def test_gateway_timeout_then_duplicate_returns_the_one_order(
    broker: AlpacaBroker, server: AlpacaServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Alpaca stores the order but its gateway answers 504; alpaca-py retries the POST by itself,
    # and the retry is refused as a duplicate client_order_id.
    status, page = server.error("gateway_timeout")
    server.fail("POST", "/v2/orders", status, page, apply=True)
    request = OrderRequest("SPY", 10, cid("SPY"))

    with caplog.at_level(logging.WARNING, logger="rltrade.brokers.alpaca"):
        order = broker.submit(request)

    posts = server.requests_to("POST", "/v2/orders")
    assert [p.status for p in posts] == [504, 422]
    assert {p.body["client_order_id"] for p in posts} == {request.client_order_id}
    new_orders = [o for o in server.orders.values() if o["client_order_id"] == request.client_order_id]
    assert len(new_orders) == 1 and len(server.orders) == len(fixture("orders.json")) + 1
    assert order.broker_order_id == new_orders[0]["id"]
    assert (order.symbol, order.qty, order.status) == ("SPY", 10.0, "accepted")
    assert len(server.requests_to("GET", "/v2/orders:by_client_order_id")) == 1
    assert "already at Alpaca" in caplog.text and "not sent again" in caplog.text


@pytest.mark.parametrize("status", [429, 504])
def test_retryable_status_on_every_attempt_raises_and_places_nothing(
    broker: AlpacaBroker, server: AlpacaServer, status: int
) -> None:
    server.fail("POST", "/v2/orders", status, '{"message": "try again"}', times=99)
    request = OrderRequest("SPY", 1, cid("SPY"))

    with pytest.raises(BrokerError, match=rf"kept failing .*HTTP {status}.*holds no order") as info:
        broker.submit(request)

    assert not isinstance(info.value, OrderRejected | ConnectionLost)
    # alpaca-py: the first attempt and DEFAULT_RETRY_ATTEMPTS (3) retries, then it gives up
    assert len(server.requests_to("POST", "/v2/orders")) == 4
    assert request.client_order_id not in server.by_client_id


@pytest.mark.parametrize("stored", [True, False])
def test_server_error_is_not_retried_by_alpaca_py_and_is_reconciled(
    broker: AlpacaBroker, server: AlpacaServer, stored: bool
) -> None:
    server.fail("POST", "/v2/orders", 500, '{"code": 50010000, "message": "internal server error"}', apply=stored)
    request = OrderRequest("SPY", 1, cid("SPY"))

    if stored:  # the order went in; the answer did not come back
        assert broker.submit(request).client_order_id == request.client_order_id
    else:
        with pytest.raises(BrokerError, match="HTTP 500"):
            broker.submit(request)
    assert len(server.requests_to("POST", "/v2/orders")) == 1  # 500 is not among alpaca-py's retry codes
    assert (request.client_order_id in server.by_client_id) is stored


@pytest.mark.parametrize("stored", [True, False])
def test_lost_connection_on_submit_then_reconcile_by_client_order_id(
    broker: AlpacaBroker, server: AlpacaServer, stored: bool
) -> None:
    server.fail("POST", "/v2/orders", None, apply=stored)  # the socket closes without an answer
    request = OrderRequest("SPY", 7, cid("SPY"))

    with pytest.raises(ConnectionLost, match=r"may or may not be at Alpaca.*client_order_id"):
        broker.submit(request)

    found = broker.order(request.client_order_id)
    if stored:
        assert found is not None and (found.symbol, found.qty, found.status) == ("SPY", 7.0, "accepted")
    else:
        assert found is None
    again = broker.submit(request)  # the loop's retry: returned (duplicate) or placed now, once either way
    assert again.client_order_id == request.client_order_id
    assert [o["client_order_id"] for o in server.orders.values()].count(request.client_order_id) == 1
    assert len(server.requests_to("POST", "/v2/orders")) == 2


def test_insufficient_buying_power_is_rejected_with_alpacas_message(broker: AlpacaBroker, server: AlpacaServer) -> None:
    buying_power = broker.account().buying_power
    qty = int(buying_power // 530.0) + 1  # one share more than the cash buys at SPY's 530
    request = OrderRequest("SPY", qty, cid("SPY"))

    with pytest.raises(OrderRejected) as info:
        broker.submit(request)

    message = str(info.value)
    assert "insufficient buying power" in message and "HTTP 403" in message and "40310000" in message
    assert f"buying_power {buying_power:g}" in message and f"cost_basis {qty * 530.0:g}" in message
    assert request.client_order_id in message and "\n" not in message
    assert broker.order(request.client_order_id) is None  # nothing was placed
    assert len(server.requests_to("POST", "/v2/orders")) == 1  # a 403 is final: not retried


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (OrderRequest("AAPL", -12, "rt-sell-too-many"), r"insufficient qty available .*requested: 12, available: 10"),
        (OrderRequest("NOTAREALSYM", 1, "rt-unknown-symbol"), r'asset "NOTAREALSYM" not found.*HTTP 422'),
    ],
)
def test_other_refusals_are_rejections(broker: AlpacaBroker, request_: OrderRequest, expected: str) -> None:
    with pytest.raises(OrderRejected, match=expected):
        broker.submit(request_)


def test_a_client_order_id_reused_for_another_order_is_an_error(broker: AlpacaBroker, server: AlpacaServer) -> None:
    msft = seeded("MSFT")
    with pytest.raises(BrokerError, match=r"already holds client_order_id .* for a different order .*reused"):
        broker.submit(OrderRequest("SPY", 1, msft["client_order_id"]))
    assert len(server.orders) == len(fixture("orders.json"))
    # The same order again is simply returned.
    same = OrderRequest("MSFT", 2, msft["client_order_id"], limit_price=400.0, time_in_force="gtc")
    assert broker.submit(same).broker_order_id == msft["id"]


@pytest.mark.parametrize("qty", [0.0, float("nan")])
def test_an_empty_order_is_not_sent(broker: AlpacaBroker, server: AlpacaServer, qty: float) -> None:
    with pytest.raises(BrokerError, match="nothing to send"):
        broker.submit(OrderRequest("SPY", qty, cid("SPY")))
    assert not server.requests_to("POST", "/v2/orders")


def test_order_by_unknown_client_id_is_none(broker: AlpacaBroker, server: AlpacaServer) -> None:
    assert broker.order("rt-never-sent") is None
    (request,) = server.requests_to("GET", "/v2/orders:by_client_order_id")
    assert request.query == {"client_order_id": "rt-never-sent"}


def test_open_orders_oldest_first(broker: AlpacaBroker, server: AlpacaServer) -> None:
    msft = seeded("MSFT")
    (only,) = broker.open_orders()
    assert (only.client_order_id, only.qty, only.limit_price, only.status) == (
        msft["client_order_id"],
        2.0,
        400.0,
        "new",
    )

    placed = broker.submit(OrderRequest("SPY", 1, cid("SPY")))
    assert [o.client_order_id for o in broker.open_orders()] == [msft["client_order_id"], placed.client_order_id]
    server.fill(placed.client_order_id, 1, 530.0)
    assert [o.client_order_id for o in broker.open_orders()] == [msft["client_order_id"]]
    assert server.requests_to("GET", "/v2/orders")[0].query["status"] == "open"


# Alpaca's statuses (alpaca-py's OrderStatus) and what each becomes, by hand from Alpaca's docs.
STATUS_CASES = [
    ("new", 0, "new", None),
    ("pending_new", 0, "new", "alpaca: pending_new"),
    ("accepted", 0, "accepted", None),
    ("accepted_for_bidding", 0, "accepted", "alpaca: accepted_for_bidding"),
    ("partially_filled", 4, "partially_filled", None),
    ("pending_cancel", 4, "partially_filled", "alpaca: pending_cancel"),
    ("pending_replace", 0, "accepted", "alpaca: pending_replace"),
    ("done_for_day", 4, "partially_filled", "alpaca: done_for_day"),
    ("held", 0, "accepted", "alpaca: held"),
    ("calculated", 10, "filled", "alpaca: calculated"),
    ("filled", 10, "filled", None),
    ("canceled", 4, "cancelled", None),
    ("expired", 0, "expired", None),
    ("rejected", 0, "rejected", None),
    ("replaced", 0, "cancelled", "alpaca: replaced"),
]


@pytest.mark.parametrize(("raw", "filled", "status", "reason"), STATUS_CASES)
def test_status_mapping(
    broker: AlpacaBroker, server: AlpacaServer, raw: str, filled: int, status: str, reason: str | None
) -> None:
    placed = broker.submit(OrderRequest("SPY", -10, cid("SPY"), limit_price=600.0))
    server.order_by_client_id(placed.client_order_id).update(
        status=raw, filled_qty=str(filled), filled_avg_price="600" if filled else None
    )
    server.pending_cancel_reads[placed.broker_order_id] = 1  # a pending cancel stays pending for this read
    order = broker.order(placed.client_order_id)
    assert order is not None
    assert (order.status, order.filled_qty, order.reason) == (status, -float(filled), reason)
    assert order.avg_fill_price == (600.0 if filled else None)


# --------------------------------------------------------------------------- fills


def test_partial_fill_through_order_and_fills(broker: AlpacaBroker, server: AlpacaServer) -> None:
    request = OrderRequest("SPY", 10, cid("SPY"), limit_price=531.0)
    broker.submit(request)
    first = server.fill(request.client_order_id, 4, 530.10)

    order = broker.order(request.client_order_id)
    assert order is not None and order.open
    assert (order.status, order.filled_qty, order.avg_fill_price) == ("partially_filled", 4.0, 530.10)
    assert [o.client_order_id for o in broker.open_orders()].count(request.client_order_id) == 1
    (fill,) = broker.fills(since=parse_time(fixture("activities_fill.json")[-1]["transaction_time"]))
    assert fill == Fill(
        client_order_id=request.client_order_id,
        broker_order_id=order.broker_order_id,
        symbol="SPY",
        qty=4.0,
        price=530.10,
        time=parse_time(first["transaction_time"]),
        fill_id=first["id"],
    )

    server.fill(request.client_order_id, 6, 530.35)
    done = broker.order(request.client_order_id)
    assert done is not None and not done.open
    assert (done.status, done.filled_qty) == ("filled", 10.0)
    assert done.avg_fill_price == pytest.approx((4 * 530.10 + 6 * 530.35) / 10)
    (second,) = broker.fills(since=fill.time)  # only what came after the first
    assert (second.qty, second.price, second.client_order_id) == (6.0, 530.35, request.client_order_id)


def test_fills_name_the_client_id_of_older_orders(broker: AlpacaBroker, server: AlpacaServer) -> None:
    aapl = seeded("AAPL")
    recorded = fixture("activities_fill.json")[0]
    sell = broker.submit(OrderRequest("AAPL", -4, cid("AAPL", "stop")))
    server.fill(sell.client_order_id, 4, 191.0)

    fills = broker.fills()
    broker.fills()

    assert [(f.client_order_id, f.qty, f.price) for f in fills] == [
        (aapl["client_order_id"], 10.0, 189.5),
        (sell.client_order_id, -4.0, 191.0),  # a sale is negative
    ]
    assert fills[0].time == parse_time(recorded["transaction_time"]) and fills[0].fill_id == recorded["id"]
    # The seeded order was looked up once by its Alpaca id; the new one was known from submit.
    assert len(server.requests_to("GET", f"/v2/orders/{aapl['id']}")) == 1
    assert [s.query["direction"] for s in server.requests_to("GET", "/v2/account/activities/FILL")] == ["asc"] * 2


def test_fills_follow_the_page_token(
    broker: AlpacaBroker, server: AlpacaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(alpaca_module, "ACTIVITY_PAGE_SIZE", 2)
    request = OrderRequest("SPY", 3, cid("SPY"))
    broker.submit(request)
    made = [server.fill(request.client_order_id, 1, 530.0 + i) for i in range(3)]

    fills = broker.fills()

    assert [f.fill_id for f in fills] == [fixture("activities_fill.json")[0]["id"]] + [a["id"] for a in made]
    pages = server.requests_to("GET", "/v2/account/activities/FILL")
    # pages of 2, 2 and 0 (a full page asks for the next one, from its last id)
    assert [p.query.get("page_token") for p in pages] == [None, made[0]["id"], made[2]["id"]]
    assert all(p.query["page_size"] == "2" for p in pages)


def test_fills_since_a_naive_time_mean_utc(broker: AlpacaBroker, server: AlpacaServer) -> None:
    recorded = parse_time(fixture("activities_fill.json")[0]["transaction_time"])
    assert broker.fills(since=recorded.replace(tzinfo=None) - dt.timedelta(seconds=1))
    assert broker.fills(since=recorded.replace(tzinfo=None)) == []
    (first, _) = server.requests_to("GET", "/v2/account/activities/FILL")
    assert parse_time(first.query["after"]) == recorded - dt.timedelta(seconds=1)


# --------------------------------------------------------------------------- cancel


def test_cancel_waits_for_alpacas_asynchronous_cancel(broker: AlpacaBroker, server: AlpacaServer) -> None:
    request = OrderRequest("SPY", 3, cid("SPY"), limit_price=500.0, time_in_force="gtc")
    placed = broker.submit(request)

    cancelled = broker.cancel(request.client_order_id)

    assert cancelled is not None and (cancelled.status, cancelled.open) == ("cancelled", False)
    assert len(server.requests_to("DELETE", f"/v2/orders/{placed.broker_order_id}")) == 1
    reads = [s.status for s in server.requests_to("GET", "/v2/orders:by_client_order_id")]
    assert reads == [200, 200, 200]  # before the cancel, pending_cancel, then canceled
    assert request.client_order_id not in [o.client_order_id for o in broker.open_orders()]


def test_cancel_keeps_a_partial_fill(broker: AlpacaBroker, server: AlpacaServer) -> None:
    request = OrderRequest("SPY", 3, cid("SPY"), limit_price=500.0)
    broker.submit(request)
    server.fill(request.client_order_id, 1, 500.0)

    cancelled = broker.cancel(request.client_order_id)

    assert cancelled is not None and (cancelled.status, cancelled.filled_qty) == ("cancelled", 1.0)


def test_cancel_of_an_order_that_filled_meanwhile(broker: AlpacaBroker, server: AlpacaServer) -> None:
    request = OrderRequest("SPY", 3, cid("SPY"), limit_price=500.0)
    placed = broker.submit(request)
    status, body = server.error("not_cancelable")
    path = f"/v2/orders/{placed.broker_order_id}"
    server.fail("DELETE", path, status, body, before=lambda: server.fill(request.client_order_id, 3, 499.5))

    result = broker.cancel(request.client_order_id)

    assert result is not None and (result.status, result.filled_qty, result.avg_fill_price) == ("filled", 3.0, 499.5)


def test_cancel_of_a_final_or_unknown_order_sends_nothing(broker: AlpacaBroker, server: AlpacaServer) -> None:
    filled = broker.cancel(seeded("AAPL")["client_order_id"])
    assert filled is not None and filled.status == "filled"
    assert broker.cancel("rt-never-sent") is None
    assert not [s for s in server.seen if s.method == "DELETE"]


# --------------------------------------------------------------------------- keys and connection


@pytest.mark.parametrize("missing", ["ALPACA_API_KEY", "ALPACA_SECRET_KEY"])
def test_missing_keys_are_named(monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    monkeypatch.setenv("ALPACA_API_KEY", "PKPRESENT")
    monkeypatch.setenv("ALPACA_SECRET_KEY", "present-secret")
    monkeypatch.delenv(missing)

    with pytest.raises(BrokerError, match=f"set {missing} in the environment") as info:
        AlpacaBroker()

    message = str(info.value)
    assert "\n" not in message and "present" not in message.lower()


def test_keys_given_as_arguments_win_over_the_environment(
    server: AlpacaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALPACA_API_KEY", "PKFROMTHEENVIRONMENT")
    monkeypatch.setenv("ALPACA_SECRET_KEY", "secret-from-the-environment")
    b = AlpacaBroker(url_override=server.url, api_key=server.key_id, secret_key=server.secret_key)
    assert b.account().currency == "USD"
    assert server.seen[-1].headers["APCA-API-KEY-ID"] == server.key_id


def test_refused_keys_name_the_variables(server: AlpacaServer) -> None:
    b = AlpacaBroker(url_override=server.url, api_key="PKREFUSED000", secret_key="refused-secret-000")
    with pytest.raises(BrokerError, match=r"HTTP 401.*check ALPACA_API_KEY and ALPACA_SECRET_KEY") as info:
        b.account()
    assert "PKREFUSED000" not in str(info.value) and "refused-secret-000" not in str(info.value)


def free_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_unreachable_broker_is_a_lost_connection(server: AlpacaServer) -> None:
    url = free_port_url()
    b = AlpacaBroker(url_override=url, api_key=server.key_id, secret_key=server.secret_key)
    with pytest.raises(ConnectionLost, match=r"127\.0\.0\.1:\d+ was lost reading the positions"):
        b.positions()


def test_a_stalled_answer_times_out_as_a_lost_connection(server: AlpacaServer) -> None:
    b = AlpacaBroker(url_override=server.url, api_key=server.key_id, secret_key=server.secret_key, timeout=0.2)
    server.fail("GET", "/v2/account", 200, fixture("account.json"), apply=True, stall=1.0)
    with pytest.raises(ConnectionLost, match="ReadTimeout"):
        b.account()
    assert b.account().cash == float(fixture("account.json")["cash"])  # the next call goes through


def test_keys_never_reach_logs_errors_or_results(server: AlpacaServer, caplog: pytest.LogCaptureFixture) -> None:
    """A whole session, every failure path included: the key pair shows up nowhere but in the headers."""
    caplog.set_level(logging.DEBUG)  # every logger: ours, alpaca-py's, urllib3's
    b = AlpacaBroker(url_override=server.url, api_key=server.key_id, secret_key=server.secret_key, retry_wait=0.01)
    results: list[object] = [b, vars(b)]
    errors: list[BaseException] = []

    def attempt(fn: Any, *args: Any) -> None:
        try:
            results.append(fn(*args))
        except BrokerError as exc:
            errors.append(exc)

    attempt(b.account)
    attempt(b.positions)
    attempt(b.open_orders)
    attempt(b.submit, OrderRequest("SPY", 2, cid("SPY")))
    server.fail("POST", "/v2/orders", *server.error("gateway_timeout"), apply=True)
    attempt(b.submit, OrderRequest("SPY", 1, cid("SPY", "b")))
    server.fail("POST", "/v2/orders", 504, "busy", times=9)
    attempt(b.submit, OrderRequest("SPY", 1, cid("SPY", "c")))
    server.fail("POST", "/v2/orders", None, apply=True)
    attempt(b.submit, OrderRequest("SPY", 1, cid("SPY", "d")))
    attempt(b.submit, OrderRequest("SPY", 10_000, cid("SPY", "e")))
    attempt(b.submit, OrderRequest("SPY", 1, seeded("MSFT")["client_order_id"]))
    attempt(b.cancel, cid("SPY"))
    server.fill(cid("SPY", "b"), 1, 530.0)
    attempt(b.fills)
    attempt(AlpacaBroker(url_override=server.url, api_key="PKWRONG", secret_key="wrong-secret").account)
    attempt(AlpacaBroker(url_override=free_port_url(), api_key=server.key_id, secret_key=server.secret_key).account)

    assert len(errors) == 6  # kept failing, lost, rejected, reused id, refused keys, unreachable
    assert caplog.records  # there was something to leak into
    texts = [caplog.text, *(repr(r) for r in results), *("".join(traceback.format_exception(e)) for e in errors)]
    assert all(s.headers.get("APCA-API-SECRET-KEY") == server.secret_key for s in server.seen[:3])  # they were sent
    for secret in (server.key_id, server.secret_key):
        assert not [t for t in texts if secret in t]
