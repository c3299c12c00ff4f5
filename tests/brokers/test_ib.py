"""The IB broker: the real ib_async client against a fake TWS gateway on 127.0.0.1 (tests/brokers/fake_tws.py)."""

from __future__ import annotations

import datetime as dt
import gc
import os
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest

pytest.importorskip("ib_async")

from tests.brokers.fake_tws import SERVER_VERSION, FakeTWS, con_id, encode

from rltrade.brokers.base import BrokerError, ConnectionLost, OrderRejected, OrderRequest, Position
from rltrade.brokers.ib import IBBroker

CID = "rt-20240102-AAPL-rebalance-0123456789"


def _sockets() -> set[str]:
    """The open socket file descriptors of this process (Linux; empty elsewhere)."""
    out: set[str] = set()
    for fd in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else []:
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                out.add(fd)
        except OSError:
            pass
    return out


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """No thread and no socket outlives a test (the thread's own event loop, made once, excepted)."""
    from ib_async import util

    util.getLoop()  # the main thread's loop (and its self-pipe) is made once and kept, as ib_async does
    threads, sockets = set(threading.enumerate()), _sockets()
    yield
    gc.collect()
    assert set(threading.enumerate()) <= threads
    assert _sockets() <= sockets


@pytest.fixture
def fake() -> Iterator[FakeTWS]:
    with FakeTWS() as gateway:
        yield gateway


@pytest.fixture
def connect(fake: FakeTWS) -> Iterator[Callable[..., IBBroker]]:
    """Make brokers on the fake gateway; every one is closed after the test."""
    made: list[IBBroker] = []

    def make(**kwargs: Any) -> IBBroker:
        broker = IBBroker(port=fake.port, timeout=2, **kwargs)
        made.append(broker)
        return broker

    yield make
    for broker in made:
        broker.close()


def buy(qty: float = 10, symbol: str = "AAPL", cid: str = CID, limit: float | None = None) -> OrderRequest:
    return OrderRequest(symbol=symbol, qty=qty, client_order_id=cid, limit_price=limit)


def test_connect_syncs_account_and_positions(fake: FakeTWS, connect: Callable[..., IBBroker]) -> None:
    fake.cash, fake.positions = 50_000.0, {"MSFT": [10.0, 350.0], "AAPL": [-5.0, 210.0]}
    broker = connect()
    account = broker.account()
    assert account.cash == 50_000.0
    assert account.equity == pytest.approx(50_000.0 + 10 * 400.0 - 5 * 200.0)  # cash + positions at the fake's prices
    assert account.buying_power == fake.buying_power and account.currency == "USD"
    assert broker.positions() == {
        "MSFT": Position("MSFT", 10.0, 350.0, 4000.0),
        "AAPL": Position("AAPL", -5.0, 210.0, -1000.0),
    }
    assert broker.account_code == fake.account
    assert broker.open_orders() == [] and broker.fills() == [] and broker.order(CID) is None


def test_market_orders_fill_and_update_the_account(fake: FakeTWS, connect: Callable[..., IBBroker]) -> None:
    broker = connect()
    order = broker.submit(buy(10))
    assert (order.status, order.qty, order.filled_qty, order.avg_fill_price) == ("filled", 10, 10, 200.0)
    assert order.client_order_id == CID and order.broker_order_id.isdigit()  # IB's permId
    sold = broker.submit(buy(-4, cid="rt-sell"))
    assert (sold.status, sold.qty, sold.filled_qty) == ("filled", -4, -4)
    # what went over the wire: orderRef carries the client id, a plain SMART/USD stock, market, DAY
    first = fake.placed[0]
    assert (first["orderRef"], first["action"], first["orderType"], first["tif"]) == (CID, "BUY", "MKT", "DAY")
    assert (first["symbol"], first["secType"], first["exchange"], first["currency"]) == ("AAPL", "STK", "SMART", "USD")
    assert float(first["totalQuantity"]) == 10 and fake.placed[1]["action"] == "SELL"
    fills = broker.fills()
    assert [(f.client_order_id, f.qty, f.price) for f in fills] == [(CID, 10, 200.0), ("rt-sell", -4, 200.0)]
    fees = [max(1.0, 0.005 * 10), max(1.0, 0.005 * 4)]  # IB fixed pricing: $0.005 a share, $1 minimum
    assert [f.fee for f in fills] == fees and len({f.fill_id for f in fills}) == 2
    assert broker.positions()["AAPL"] == Position("AAPL", 6.0, 200.0, 6 * 200.0)
    account = broker.account()
    assert account.cash == pytest.approx(100_000.0 - 10 * 200.0 + 4 * 200.0 - sum(fees))
    assert account.equity == pytest.approx(account.cash + 6 * 200.0)
    assert broker.order(CID) == order and broker.open_orders() == []


def test_limit_order_rests_until_cancelled(fake: FakeTWS, connect: Callable[..., IBBroker]) -> None:
    broker = connect()
    order = broker.submit(buy(10, limit=150.0))  # below the price of 200: not marketable
    assert (order.status, order.filled_qty, order.limit_price) == ("accepted", 0, 150.0)
    assert fake.placed[0]["orderType"] == "LMT" and float(fake.placed[0]["lmtPrice"]) == 150.0
    assert broker.open_orders() == [order]
    cancelled = broker.cancel(CID)
    assert cancelled is not None and cancelled.status == "cancelled" and cancelled.filled_qty == 0
    assert broker.open_orders() == [] and broker.order(CID) == cancelled
    assert broker.cancel(CID) == cancelled  # already final: nothing more is sent
    assert [m[0] for m in fake.received].count("4") == 1
    assert broker.cancel("rt-unknown") is None


def test_marketable_limit_fills_at_the_market(fake: FakeTWS, connect: Callable[..., IBBroker]) -> None:
    order = connect().submit(buy(3, limit=205.0))
    assert (order.status, order.filled_qty, order.avg_fill_price, order.limit_price) == ("filled", 3, 200.0, 205.0)


def test_partial_fill_stays_open_and_survives_a_restart(fake: FakeTWS, connect: Callable[..., IBBroker]) -> None:
    fake.partial = 0.4
    broker = connect()
    order = broker.submit(buy(10))
    assert (order.status, order.filled_qty, order.avg_fill_price) == ("partially_filled", 4, 200.0)
    assert broker.open_orders() == [order]
    broker.close()
    again = connect()
    found = again.order(CID)
    assert found is not None and (found.status, found.filled_qty) == ("partially_filled", 4)
    assert [f.qty for f in again.fills()] == [4]
    assert again.submit(buy(10)).status == "partially_filled" and len(fake.placed) == 1


def test_rejection_raises_with_ibs_reason(fake: FakeTWS, connect: Callable[..., IBBroker]) -> None:
    fake.buying_power = 1_000.0
    broker = connect()
    with pytest.raises(OrderRejected, match="Insufficient buying power") as caught:
        broker.submit(buy(10))  # 10 x 200 > 1000
    message = str(caught.value)
    assert "\n" not in message and "IB error 201" in message and CID in message
    rejected = broker.order(CID)
    assert rejected is not None and rejected.status == "rejected" and "201" in (rejected.reason or "")
    assert broker.positions() == {} and broker.account().cash == 100_000.0
    with pytest.raises(OrderRejected, match=r"No security definition.*IB error 200"):
        broker.submit(buy(1, symbol="ZZZZ", cid="rt-unknown-symbol"))


@pytest.mark.parametrize("client_id", [1, 2])
@pytest.mark.parametrize("limit", [None, 150.0], ids=["filled", "resting"])
def test_restart_finds_the_order_by_order_ref(
    fake: FakeTWS, connect: Callable[..., IBBroker], client_id: int, limit: float | None
) -> None:
    first = connect()
    placed = first.submit(buy(10, limit=limit))
    first.close()
    # a new connection (the same client id, or another one) synchronises and finds the order
    restarted = connect(client_id=client_id)
    again = restarted.submit(buy(10, limit=limit))
    assert len(fake.placed) == 1
    assert (again.status, again.filled_qty, again.broker_order_id) == (
        placed.status,
        placed.filled_qty,
        placed.broker_order_id,
    )
    assert restarted.order(CID) == again
    assert [o.client_order_id for o in restarted.open_orders()] == ([CID] if limit else [])
    if limit and client_id != 1:  # IB lets only the client id that placed an order cancel it
        with pytest.raises(BrokerError, match="placed by client id 1"):
            restarted.cancel(CID)


def test_a_reused_id_for_another_order_is_refused(fake: FakeTWS, connect: Callable[..., IBBroker]) -> None:
    broker = connect()
    broker.submit(buy(10))
    with pytest.raises(BrokerError, match="the id was reused"):
        broker.submit(buy(20))
    assert len(fake.placed) == 1


def test_dropped_connection_raises_connection_lost_then_reconnects(
    fake: FakeTWS, connect: Callable[..., IBBroker]
) -> None:
    broker = connect()
    broker.submit(buy(10, limit=150.0))
    fake.drop()
    with pytest.raises(ConnectionLost, match=f"127.0.0.1:{fake.port}") as caught:
        broker.positions()
    assert "\n" not in str(caught.value)
    with pytest.raises(ConnectionLost):
        broker.submit(buy(10, limit=150.0))
    broker.connect()
    found = broker.order(CID)
    assert found is not None and found.status == "accepted"
    assert broker.submit(buy(10, limit=150.0)) == found and len(fake.placed) == 1


def test_drop_while_submitting_then_reconcile(fake: FakeTWS, connect: Callable[..., IBBroker]) -> None:
    fake.drop_on_place = True  # the gateway takes the order and fills it, but the answer never arrives
    broker = connect()
    with pytest.raises(ConnectionLost, match="reconcile"):
        broker.submit(buy(10))
    fake.drop_on_place = False
    broker.connect()
    found = broker.order(CID)
    assert found is not None and (found.status, found.filled_qty) == ("filled", 10)
    assert broker.submit(buy(10)) == found and len(fake.placed) == 1
    assert broker.positions()["AAPL"].qty == 10


def test_no_gateway_is_a_one_line_broker_error() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(BrokerError) as caught:
        IBBroker(port=port, timeout=2)
    assert type(caught.value) is BrokerError
    assert f"127.0.0.1:{port}" in str(caught.value) and "refused" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_account_must_be_one_the_login_manages() -> None:
    with FakeTWS(account="DU111,DU222") as gateway, pytest.raises(BrokerError, match=r"\['DU111', 'DU222'\].*account="):
        IBBroker(port=gateway.port, timeout=2)
    with FakeTWS() as gateway, pytest.raises(BrokerError, match="account DU999 is not among"):
        IBBroker(port=gateway.port, timeout=2, account="DU999")


def test_an_incomplete_sync_refuses_the_connection() -> None:
    """A gateway that never answers reqCompletedOrders: connecting on partial knowledge could resend an order."""
    with FakeTWS(ignore=frozenset({99})) as gateway, pytest.raises(BrokerError) as caught:
        IBBroker(port=gateway.port, timeout=0.3)
    assert type(caught.value) is BrokerError and "completed orders request timed out" in str(caught.value)


def test_time_in_force_and_on_close_orders(fake: FakeTWS, connect: Callable[..., IBBroker]) -> None:
    broker = connect()
    broker.submit(OrderRequest("AAPL", 1, "rt-opg", time_in_force="opg"))
    broker.submit(OrderRequest("AAPL", 1, "rt-gtc", limit_price=150.0, time_in_force="gtc"))
    broker.submit(OrderRequest("AAPL", 1, "rt-moc", time_in_force="cls"))
    broker.submit(OrderRequest("AAPL", 1, "rt-loc", limit_price=150.0, time_in_force="cls"))
    sent = [(p["orderRef"], p["orderType"], p["tif"]) for p in fake.placed]
    assert sent == [
        ("rt-opg", "MKT", "OPG"),
        ("rt-gtc", "LMT", "GTC"),
        ("rt-moc", "MOC", "DAY"),
        ("rt-loc", "LOC", "DAY"),
    ]
    assert float(fake.placed[3]["lmtPrice"]) == 150.0
    with pytest.raises(BrokerError, match="quantity 0"):
        broker.submit(OrderRequest("AAPL", 0, "rt-zero"))


def test_fills_since(fake: FakeTWS, connect: Callable[..., IBBroker]) -> None:
    broker = connect()
    broker.submit(buy(10))
    now = dt.datetime.now(dt.UTC)
    assert len(broker.fills(now - dt.timedelta(minutes=1))) == 1
    assert broker.fills(now + dt.timedelta(minutes=1)) == []
    naive = now.replace(tzinfo=None) - dt.timedelta(minutes=1)  # naive is UTC
    assert len(broker.fills(naive)) == 1


def test_a_closed_broker_says_so(fake: FakeTWS, connect: Callable[..., IBBroker]) -> None:
    broker = connect()
    broker.close()
    broker.close()  # idempotent
    with pytest.raises(BrokerError, match="closed"):
        broker.account()


class _Catch:
    """A stand-in for ib_async's wrapper that records what its decoder hands over."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.ib = type("IB", (), {"TimezoneTWS": ""})()
        self.defaultTimezone = dt.UTC

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args: self.calls.append((name, args))


def _decoded(message: bytes) -> tuple[str, tuple[Any, ...]]:
    from ib_async.decoder import Decoder

    catch = _Catch()
    Decoder(cast(Any, catch), SERVER_VERSION).interpret(message[4:].decode().split("\0")[:-1])
    assert len(catch.calls) == 1, "the decoder failed on the message (see the log)"
    return catch.calls[0]


def test_layouts_decode_field_by_field() -> None:
    """Each named field of the layouts file lands in the ib_async attribute of that name."""
    name, (order_id, contract, order, state) = _decoded(
        encode(
            "openOrder",
            orderId=7,
            conId=con_id("AAPL"),
            symbol="AAPL",
            action="SELL",
            totalQuantity=3,
            orderType="LMT",
            lmtPrice=9.5,
            orderRef="ref",
            clientId=4,
            permId=77,
            status="Submitted",
        )
    )
    assert name == "openOrder" and order_id == 7 and (contract.symbol, contract.conId) == ("AAPL", con_id("AAPL"))
    assert (order.action, order.totalQuantity, order.lmtPrice, order.orderRef) == ("SELL", 3, 9.5, "ref")
    assert (order.clientId, order.permId, state.status) == (4, 77, "Submitted")
    name, (contract, order, state) = _decoded(
        encode("completedOrder", symbol="MSFT", orderRef="done", permId=78, status="Filled", filledQuantity=2)
    )
    assert (name, contract.symbol, order.orderRef, order.permId, order.filledQuantity, state.status) == (
        "completedOrder",
        "MSFT",
        "done",
        78,
        2,
        "Filled",
    )
    name, (req_id, contract, execution) = _decoded(
        encode(
            "execDetails",
            reqId=5,
            orderId=7,
            symbol="AAPL",
            execId="e1",
            time="20240102 15:30:00 UTC",
            side="BOT",
            shares=3,
            price=9.5,
            permId=77,
            clientId=4,
            orderRef="ref",
        )
    )
    assert (name, req_id, execution.execId, execution.shares, execution.price, execution.orderRef) == (
        "execDetails",
        5,
        "e1",
        3,
        9.5,
        "ref",
    )
    assert execution.time == dt.datetime(2024, 1, 2, 15, 30, tzinfo=dt.UTC)
