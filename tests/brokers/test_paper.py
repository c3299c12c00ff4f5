"""The paper broker: hand-worked fills, rejections and limits, and the backtest reproduced on real bars.

The two replays drive a paper account day by day from the embedded samples and compare it with
the project's own backtest of the same decisions:

- ``PortfolioEnv`` (through :class:`rltrade.backtest.api.Backtest`): the env sizes its
  fractional shares at the fill price (``w·μ·V_fill / p_fill``), which a live loop cannot know
  at the close, so the orders sent are the backtest's own trades (its next holdings minus the
  paper position). Equity, costs and holdings agree to a few ulps (measured: 9e-16 relative):
  the env books a rebalance as ``cash = V_fill − Σ target·p − Σ cost``, the broker order by
  order, so the sums round differently; 1e-12 is the stated tolerance.
- ``StockTradingEnv`` in lockstep, the live loop's way: whole-share orders sized from the paper
  account's equity at the close, sells before buys, buys cut at the fill to what the cash pays
  (the buying-power cap). The broker evaluates the env's very expressions in the env's order,
  so equity, cash and shares agree exactly (bit for bit), partial fills included.
- ``PortfolioEnv(long_short=True, leverage=1)`` with a fixed long/short book whose signs flip
  every few days, replayed like the first through an account with ``shorting=True``: shorts
  opened, extended, covered and flipped to longs, to the same 1e-12.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import event

from rltrade.backtest.api import Backtest
from rltrade.backtest.runner import Trajectory, run_policy
from rltrade.brokers import BrokerError, OrderRejected, OrderRequest, Position, client_order_id, make_broker
from rltrade.brokers.paper import PaperBroker
from rltrade.data.adjust import adjust_prices
from rltrade.data.schema import RawBars
from rltrade.data.store import BarStore, load_bars
from rltrade.db import connect, journal
from rltrade.envs.costs import BpsCost, CostModel, NoCost, PerShareCost, SpreadCost
from rltrade.envs.portfolio import PortfolioEnv
from rltrade.envs.stock_trading import StockTradingEnv

DAYS = pd.bdate_range("2010-01-04", periods=6, tz="UTC")
XYZ = {  # hand-written bars: opens 10, 11, ..., closes 0.2 above, range ±0.5 around the open
    "open": [10.0, 11.0, 12.0, 13.0, 14.0, 15.0],
    "high": [10.5, 11.5, 12.5, 13.5, 14.5, 15.5],
    "low": [9.5, 10.5, 11.5, 12.5, 13.5, 14.5],
    "close": [10.2, 11.2, 12.2, 13.2, 14.2, 15.2],
}


def _ingest(root: Path, frames: list[pd.DataFrame], close_only: bool = False, adjusted: bool = False) -> None:
    raws = [RawBars(f.reset_index(drop=True), "test bars", "1d", close_only, adjusted) for f in frames]
    BarStore(root).ingest(raws, source="test")


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """XYZ (OHLC, above) and CLO (close only: 20, 21, ...) on six business days of January 2010."""
    root = tmp_path_factory.mktemp("tiny") / "bars"
    xyz = pd.DataFrame({"symbol": "XYZ", "timestamp": DAYS, **XYZ, "volume": 1e6})
    nan = np.full(len(DAYS), np.nan)
    clo = pd.DataFrame(
        {"symbol": "CLO", "timestamp": DAYS, "open": nan, "high": nan, "low": nan, "close": 20.0 + np.arange(6)}
    )
    _ingest(root, [xyz])
    _ingest(root, [clo.assign(volume=np.nan)], close_only=True, adjusted=True)
    return root


def _engine(url: str) -> Any:
    """:func:`rltrade.db.connect` with SQLite's fsync off: throw-away test data, ~7 ms saved a commit."""
    engine = connect(url)

    @event.listens_for(engine, "connect")
    def _no_sync(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA synchronous=OFF")

    engine.dispose()  # the pooled connection of connect() predates the listener
    return engine


@pytest.fixture
def engine(tmp_path: Path) -> Any:
    return _engine(f"sqlite:///{tmp_path / 'rltrade.db'}")


def _broker(engine: Any, store: Path, **kwargs: Any) -> PaperBroker:
    kwargs.setdefault("initial_cash", 1000.0)
    return PaperBroker("test", engine=engine, store=store, **kwargs)


def _kinds(broker: PaperBroker) -> list[tuple[str, str | None]]:
    return [(e.kind, e.client_order_id) for e in journal.list_events(broker.engine, account="test")]


# ----------------------------------------------------------------------------- hand-worked cases
@pytest.mark.parametrize(("timing", "price"), [("next_open", 11.0), ("next_close", 11.2)])
def test_an_order_after_the_close_fills_on_the_next_bar_with_the_cost(
    engine: Any, tiny_store: Path, timing: Any, price: float
) -> None:
    broker = _broker(engine, tiny_store, cost=BpsCost(10), timing=timing)
    broker.advance(DAYS[0])
    order = broker.submit(OrderRequest("XYZ", 20.0, "rt-1"))
    assert (order.status, order.submitted_at) == ("accepted", DAYS[0].to_pydatetime())
    broker.advance(DAYS[0] + pd.Timedelta(hours=22))  # later the same day: no new bar, nothing fills
    assert broker.order("rt-1").status == "accepted"
    account = broker.advance(DAYS[1])
    fee = 20 * price * 0.001
    cash = 1000.0 - (20 * price + fee)
    assert account.cash == cash and account.equity == cash + 20 * 11.2
    (fill,) = broker.fills()
    assert (fill.qty, fill.price, fill.fee, fill.time) == (20.0, price, fee, DAYS[1].to_pydatetime())
    assert broker.order("rt-1").status == "filled"
    position = broker.positions()["XYZ"]
    assert (position.qty, position.avg_price, position.market_value) == (20.0, price, 20 * 11.2)
    # a sell of half: proceeds minus the cost; the average entry price stays
    broker.submit(OrderRequest("XYZ", -10.0, "rt-2"))
    account = broker.advance(DAYS[2])
    sell = XYZ["open" if timing == "next_open" else "close"][2]
    cash += 10 * sell - 10 * sell * 0.001
    assert account.cash == cash and account.equity == cash + 10 * 12.2
    assert broker.positions()["XYZ"].avg_price == price
    equity = broker.history()["equity"]
    assert list(equity.index) == [DAYS[0], DAYS[0] + pd.Timedelta(hours=22), DAYS[1], DAYS[2]]
    assert list(equity) == [1000.0, 1000.0, (1000.0 - (20 * price + fee)) + 20 * 11.2, account.equity]


def test_opg_and_cls_orders_fill_at_the_open_or_close_whatever_the_timing(engine: Any, tiny_store: Path) -> None:
    broker = _broker(engine, tiny_store, cost=None, timing="next_close")
    broker.advance(DAYS[0])
    broker.submit(OrderRequest("XYZ", 1.0, "rt-open", time_in_force="opg"))
    broker.submit(OrderRequest("XYZ", 2.0, "rt-close", time_in_force="cls"))
    broker.advance(DAYS[1])
    assert {f.client_order_id: f.price for f in broker.fills()} == {"rt-open": 11.0, "rt-close": 11.2}


def test_limit_orders(engine: Any, tiny_store: Path) -> None:
    broker = _broker(engine, tiny_store, cost=None, timing="next_open", initial_cash=10_000.0)
    broker.advance(DAYS[0])
    broker.submit(OrderRequest("XYZ", 5.0, "rt-through", limit_price=11.5))  # open 11 <= 11.5: at the open
    broker.submit(OrderRequest("XYZ", 5.0, "rt-touch", limit_price=10.75))  # low 10.5 reaches it: at the limit
    broker.submit(OrderRequest("XYZ", 5.0, "rt-day", limit_price=10.0))  # never reached on the bar: expires
    broker.submit(OrderRequest("XYZ", 5.0, "rt-gtc", limit_price=10.0, time_in_force="gtc"))  # waits
    broker.advance(DAYS[1])
    assert {f.client_order_id: f.price for f in broker.fills()} == {"rt-through": 11.0, "rt-touch": 10.75}
    day = broker.order("rt-day")
    assert day is not None and day.status == "expired" and "limit 10 not reached" in (day.reason or "")
    assert [o.client_order_id for o in broker.open_orders()] == ["rt-gtc"]
    broker.submit(OrderRequest("XYZ", -10.0, "rt-sell", limit_price=12.4))  # sell: open 12 < 12.4, high 12.5 >= it
    broker.advance(DAYS[3])
    assert broker.order("rt-sell").avg_fill_price == 12.4
    assert broker.order("rt-gtc").status == "accepted"
    assert ("expire", "rt-day") in _kinds(broker)


def test_a_buy_the_cash_no_longer_covers_is_cut_to_what_it_pays(engine: Any, tiny_store: Path) -> None:
    """Sized at the close 10.2, filled at the open 11: 1000 cash pays 90 shares and the cost, not 97."""
    broker = _broker(engine, tiny_store, cost=BpsCost(10), timing="next_open")
    broker.advance(DAYS[0])
    broker.submit(OrderRequest("XYZ", 97.0, "rt-1"))  # 97 · 10.2 · 1.001 = 990.4 <= 1000 at the close
    account = broker.advance(DAYS[1])
    want = max(n for n in range(98) if n * 11.0 + 0.001 * n * 11.0 <= 1000.0)  # brute force: 90
    order = broker.order("rt-1")
    assert order is not None and order.filled_qty == want == 90 and order.status == "expired"
    assert "buying-power cap: filled 90 of 97" in (order.reason or "")
    assert account.cash == 1000.0 - (90 * 11.0 + 0.001 * 90 * 11.0)
    assert ("partial", "rt-1") in _kinds(broker)
    # fractional orders are cut to fractional shares (to the bisection's precision)
    broker.submit(OrderRequest("XYZ", 0.5, "rt-2"))
    broker.submit(OrderRequest("XYZ", -90.0, "rt-3"))
    broker.advance(DAYS[2])
    assert broker.order("rt-2").filled_qty == 0.5  # the sell paid for it first


def test_submit_is_idempotent_by_client_order_id(engine: Any, tiny_store: Path) -> None:
    broker = _broker(engine, tiny_store)
    broker.advance(DAYS[0])
    first = broker.submit(OrderRequest("XYZ", 3.0, "rt-1"))
    again = broker.submit(OrderRequest("XYZ", 50.0, "rt-1"))  # same id, whatever it says: the stored order
    assert again == first
    broker.advance(DAYS[1])
    assert broker.submit(OrderRequest("XYZ", 3.0, "rt-1")).status == "filled"
    assert [f.qty for f in broker.fills()] == [3.0]
    assert _kinds(broker) == [("open", None), ("submit", "rt-1"), ("fill", "rt-1")]
    assert len(journal.list_orders(engine, "paper", "test")) == 1


def _reject_cases() -> Iterator[Any]:
    yield pytest.param(OrderRequest("XYZ", 0.0, "rt-x"), "qty must be a non-zero", id="zero")
    yield pytest.param(OrderRequest("XYZ", float("nan"), "rt-x"), "qty must be a non-zero", id="nan")
    yield pytest.param(OrderRequest("XYZ", 1.0, "rt-x", limit_price=-1.0), "limit price", id="limit")
    yield pytest.param(OrderRequest("NOPE", 1.0, "rt-x"), "unknown symbol NOPE", id="unknown")
    yield pytest.param(OrderRequest("XYZ", -1.0, "rt-x"), "would go short: 0 held", id="short")
    yield pytest.param(OrderRequest("XYZ", 98.0, "rt-x"), "insufficient buying power", id="cash")
    yield pytest.param(OrderRequest("CLO", 1.0, "rt-x"), "CLO has no opens", id="close-only")


@pytest.mark.parametrize(("request_", "reason"), list(_reject_cases()))
def test_rejections_raise_are_stored_and_journalled(
    engine: Any, tiny_store: Path, request_: OrderRequest, reason: str
) -> None:
    broker = _broker(engine, tiny_store, cost=BpsCost(10))
    broker.advance(DAYS[0])
    with pytest.raises(OrderRejected, match=reason) as caught:
        broker.submit(request_)
    assert "\n" not in str(caught.value)
    order = broker.order("rt-x")
    assert order is not None and order.status == "rejected" and reason in (order.reason or "")
    (line,) = journal.list_events(engine, kind="reject")
    assert line.level == "warning" and reason in line.message and line.client_order_id == "rt-x"
    assert broker.submit(request_).status == "rejected"  # idempotent: the stored rejection, not a new one


def test_buying_power_counts_pending_orders(engine: Any, tiny_store: Path) -> None:
    broker = _broker(engine, tiny_store, cost=None, initial_cash=1000.0)
    broker.advance(DAYS[0])
    broker.submit(OrderRequest("XYZ", 50.0, "rt-1"))  # 510 at the close 10.2
    assert broker.account().buying_power == 1000.0 - 50 * 10.2
    with pytest.raises(OrderRejected, match="buying power"):
        broker.submit(OrderRequest("CLO", 25.0, "rt-2", time_in_force="cls"))  # 500 > 490 left
    broker.advance(DAYS[1])
    broker.submit(OrderRequest("XYZ", -30.0, "rt-3"))  # sells release 30 · 11.2 for buys
    with pytest.raises(OrderRejected, match="buying power"):
        broker.submit(OrderRequest("CLO", 38.0, "rt-4", time_in_force="cls"))  # 38 · 21 = 798 > 450 + 30 · 11.2
    broker.submit(OrderRequest("CLO", 37.0, "rt-6", time_in_force="cls"))  # 777 fits
    with pytest.raises(OrderRejected, match="would go short: 50 held, 30 already being sold"):
        broker.submit(OrderRequest("XYZ", -21.0, "rt-5"))
    broker.advance(DAYS[2])
    # the sell brought 30 · 12 (open): cash 810 pays 36 at the close 22, not 37 (814)
    assert broker.positions()["CLO"].qty == 36.0 and broker.positions()["XYZ"].qty == 20.0


def test_cancel(engine: Any, tiny_store: Path) -> None:
    broker = _broker(engine, tiny_store)
    broker.advance(DAYS[0])
    broker.submit(OrderRequest("XYZ", 1.0, "rt-1"))
    broker.submit(OrderRequest("XYZ", 1.0, "rt-2"))
    cancelled = broker.cancel("rt-1")
    assert cancelled is not None and cancelled.status == "cancelled" and not cancelled.open
    broker.advance(DAYS[1])
    assert [f.client_order_id for f in broker.fills()] == ["rt-2"]
    assert broker.cancel("rt-2").status == "filled"  # final: unchanged
    assert broker.cancel("nope") is None
    assert _kinds(broker).count(("cancel", "rt-1")) == 1 and ("cancel", "rt-2") not in _kinds(broker)


def test_the_clock(engine: Any, tiny_store: Path) -> None:
    broker = _broker(engine, tiny_store)
    assert broker.clock is None
    with pytest.raises(OrderRejected, match="advance the clock past a bar first"):
        broker.submit(OrderRequest("XYZ", 1.0, "rt-1"))
    broker.advance(DAYS[1])
    with pytest.raises(BrokerError, match=r"clock is at 2010-01-05 00:00:00\+00:00, it cannot go back to 2010-01-04"):
        broker.advance(DAYS[0])
    assert broker.clock == DAYS[1].to_pydatetime()


def test_settings_are_the_accounts(engine: Any, tiny_store: Path) -> None:
    _broker(engine, tiny_store, cost=BpsCost(10))
    with pytest.raises(BrokerError, match="was opened with cost=BpsCost"):
        _broker(engine, tiny_store, cost=BpsCost(5))
    with pytest.raises(BrokerError, match="close already seen"):
        _broker(engine, tiny_store, timing="same_close")


def test_new_bars_in_the_store_are_seen(engine: Any, tmp_path: Path) -> None:
    """A live account: the bar of the next day is ingested after the order was sent."""
    root = tmp_path / "bars"
    frame = pd.DataFrame({"symbol": "XYZ", "timestamp": DAYS, **XYZ, "volume": 1e6})
    _ingest(root, [frame.iloc[:2]])
    broker = _broker(engine, root, cost=None)
    broker.advance(DAYS[1])
    broker.submit(OrderRequest("XYZ", 1.0, "rt-1"))
    broker.advance(DAYS[2])  # no bar yet: nothing happens, one row at DAYS[2]
    assert broker.fills() == []
    _ingest(root, [frame.iloc[:3]])
    broker.advance(DAYS[2] + pd.Timedelta(hours=1))
    assert [(f.price, f.time) for f in broker.fills()] == [(12.0, DAYS[2].to_pydatetime())]


def test_make_broker(engine: Any, tiny_store: Path) -> None:
    broker = make_broker("paper", account="x", engine=engine, store=tiny_store)
    assert isinstance(broker, PaperBroker) and broker.name == "paper"
    with pytest.raises(BrokerError, match="unknown broker 'nope'; use one of paper, alpaca, ib"):
        make_broker("nope")
    assert (broker.shorting, broker.max_gross_leverage) == (False, 1.0)
    short = make_broker("paper", account="y", engine=engine, store=tiny_store, shorting=True, max_gross_leverage=1.5)
    assert isinstance(short, PaperBroker) and (short.shorting, short.max_gross_leverage) == (True, 1.5)


# ----------------------------------------------------------------------------- short selling
def _status(broker: PaperBroker, coid: str) -> str | None:
    order = broker.order(coid)
    return None if order is None else order.status


def test_a_short_is_opened_extended_and_covered(engine: Any, tiny_store: Path) -> None:
    """Sell 20 at the open 11, 10 more at 12, cover 15 at 13 and 15 at 14; 10 bps on |q|·p each time."""
    broker = _broker(engine, tiny_store, cost=BpsCost(10), timing="next_open", shorting=True)
    broker.advance(DAYS[0])
    broker.submit(OrderRequest("XYZ", -20.0, "rt-1"))
    account = broker.advance(DAYS[1])
    cash = 1000.0 + (20 * 11.0 - 20 * 11.0 * 0.001)  # the proceeds, net of the cost, are credited
    assert account.cash == cash and account.equity == cash + -20 * 11.2
    assert broker.positions()["XYZ"] == Position("XYZ", -20.0, 11.0, -20 * 11.2)
    broker.submit(OrderRequest("XYZ", -10.0, "rt-2"))  # extends the short: the average sale price moves
    account = broker.advance(DAYS[2])
    cash += 10 * 12.0 - 10 * 12.0 * 0.001
    avg = (-20 * 11.0 + -10 * 12.0) / -30
    assert account.cash == cash and account.equity == cash + -30 * 12.2
    assert broker.positions()["XYZ"] == Position("XYZ", -30.0, avg, -30 * 12.2)
    broker.submit(OrderRequest("XYZ", 15.0, "rt-3"))  # covers half: the average stays
    account = broker.advance(DAYS[3])
    cash -= 15 * 13.0 + 15 * 13.0 * 0.001
    assert account.cash == cash and account.equity == cash + -15 * 13.2
    assert broker.positions()["XYZ"] == Position("XYZ", -15.0, avg, -15 * 13.2)
    broker.submit(OrderRequest("XYZ", 15.0, "rt-4"))
    account = broker.advance(DAYS[4])
    cash -= 15 * 14.0 + 15 * 14.0 * 0.001
    assert account.cash == cash and account.equity == cash and broker.positions() == {}
    # by hand: sold 20 · 11 + 10 · 12 = 340, bought back 15 · 13 + 15 · 14 = 405, 0.1 % of 745 traded
    assert cash == pytest.approx(1000.0 + 340.0 - 405.0 - 0.745, rel=1e-15)
    fills = broker.fills()
    assert [(f.qty, f.price) for f in fills] == [(-20.0, 11.0), (-10.0, 12.0), (15.0, 13.0), (15.0, 14.0)]
    assert [f.fee for f in fills] == [20 * 11.0 * 0.001, 10 * 12.0 * 0.001, 15 * 13.0 * 0.001, 15 * 14.0 * 0.001]
    assert [_status(broker, f"rt-{i}") for i in range(1, 5)] == ["filled"] * 4
    assert [k for k, _ in _kinds(broker)].count("fill") == 4


def test_the_equity_history_marks_a_short_to_each_close(engine: Any, tiny_store: Path) -> None:
    broker = _broker(engine, tiny_store, cost=None, timing="next_close", shorting=True)
    broker.advance(DAYS[0])
    broker.submit(OrderRequest("XYZ", -50.0, "rt-1"))  # filled at the close 11.2 of DAYS[1]
    broker.advance(DAYS[4])
    cash = 1000.0 + 50 * 11.2
    history = broker.history()
    assert list(history.index) == list(DAYS[:5])
    assert list(history["cash"]) == [1000.0] + [cash] * 4
    assert list(history["equity"]) == [1000.0, *(cash + -50 * c for c in XYZ["close"][1:5])]
    assert history["equity"].iloc[-1] == pytest.approx(1000.0 - 50 * (14.2 - 11.2), rel=1e-15)  # the short lost


def test_a_short_is_refused_without_shorting(engine: Any, tiny_store: Path) -> None:
    broker = _broker(engine, tiny_store, cost=None)
    broker.advance(DAYS[0])
    broker.submit(OrderRequest("XYZ", 5.0, "rt-1"))
    broker.advance(DAYS[1])
    with pytest.raises(OrderRejected, match="selling 6 XYZ would go short: 5 held, 0 already being sold"):
        broker.submit(OrderRequest("XYZ", -6.0, "rt-2"))
    assert _status(broker, "rt-2") == "rejected"
    short = PaperBroker("short", engine=engine, store=tiny_store, cost=None, initial_cash=1000.0, shorting=True)
    short.advance(DAYS[0])
    short.submit(OrderRequest("XYZ", 5.0, "rt-1"))
    short.advance(DAYS[1])
    assert short.submit(OrderRequest("XYZ", -6.0, "rt-2")).status == "accepted"
    short.advance(DAYS[2])
    assert short.positions()["XYZ"] == Position("XYZ", -1.0, 12.0, -12.2)


def test_the_gross_leverage_cap(engine: Any, tiny_store: Path) -> None:
    """1000 of cash at the close 10.2: a short of 98 (999.6) fits the cap of 1 x equity, one share more does not."""
    broker = _broker(engine, tiny_store, cost=None, shorting=True)
    broker.advance(DAYS[0])
    broker.submit(OrderRequest("XYZ", -98.0, "rt-1"))
    message = (
        "gross exposure 1,009.80 after the order (positions and open orders at the last close) "
        "would exceed max_gross_leverage 1 x equity 1,000.00 = 1,000.00"
    )
    with pytest.raises(OrderRejected, match=re.escape(message)) as caught:
        broker.submit(OrderRequest("XYZ", -1.0, "rt-2"))  # the open order counts
    assert "\n" not in str(caught.value) and _status(broker, "rt-2") == "rejected"
    # the short's proceeds are buying power (1000 + 999.6), but not room under the cap
    assert broker.account().buying_power == 1000.0 + 98 * 10.2
    with pytest.raises(OrderRejected, match=r"gross exposure 1,019\.60 after the order"):
        broker.submit(OrderRequest("CLO", 1.0, "rt-3", time_in_force="cls"))
    # filled at the open 11, the close 11.2 leaves the account over the cap (1097.6 > 980.4): it grows nothing
    # more, but a cover, which only shrinks the short, still goes through
    account = broker.advance(DAYS[1])
    assert account.equity == 1000.0 + 98 * 11.0 + -98 * 11.2 and account.equity < 98 * 11.2
    with pytest.raises(OrderRejected, match=r"gross exposure 1,108\.80 after the order .* equity 980\.40"):
        broker.submit(OrderRequest("XYZ", -1.0, "rt-4"))
    broker.submit(OrderRequest("XYZ", 90.0, "rt-5"))
    with pytest.raises(OrderRejected, match="gross exposure"):
        broker.submit(OrderRequest("XYZ", 9.0, "rt-6"))  # 90 + 9 bought against a short of 98: not only a cover
    broker.advance(DAYS[2])
    assert broker.positions()["XYZ"].qty == -8.0
    assert [e.client_order_id for e in journal.list_events(engine, kind="reject")] == ["rt-2", "rt-3", "rt-4", "rt-6"]
    # twice the equity: 195 shares short (1989) fit, 197 (2009.4) do not
    wide = PaperBroker(
        "wide", engine=engine, store=tiny_store, cost=None, initial_cash=1000.0, shorting=True, max_gross_leverage=2.0
    )
    wide.advance(DAYS[0])
    wide.submit(OrderRequest("XYZ", -98.0, "rt-1"))
    wide.submit(OrderRequest("XYZ", -97.0, "rt-2"))
    with pytest.raises(OrderRejected, match=r"gross exposure 2,009\.40 .* max_gross_leverage 2 x equity 1,000\.00"):
        wide.submit(OrderRequest("XYZ", -2.0, "rt-3"))
    with pytest.raises(BrokerError, match="max_gross_leverage must be > 0, got 0"):
        PaperBroker("bad", engine=engine, store=tiny_store, shorting=True, max_gross_leverage=0.0)


def test_a_buy_flips_a_short_to_a_long_and_a_sell_back(engine: Any, tiny_store: Path) -> None:
    broker = _broker(engine, tiny_store, cost=BpsCost(10), timing="next_open", shorting=True)
    broker.advance(DAYS[0])
    broker.submit(OrderRequest("XYZ", -20.0, "rt-1"))
    broker.advance(DAYS[1])
    cash = 1000.0 + (20 * 11.0 - 20 * 11.0 * 0.001)
    broker.submit(OrderRequest("XYZ", 30.0, "rt-2"))  # covers 20, buys 10: a long at the fill price
    account = broker.advance(DAYS[2])
    cash -= 30 * 12.0 + 30 * 12.0 * 0.001
    assert account.cash == cash and account.equity == cash + 10 * 12.2
    assert broker.positions()["XYZ"] == Position("XYZ", 10.0, 12.0, 10 * 12.2)
    broker.submit(OrderRequest("XYZ", -25.0, "rt-3"))  # sells the 10, shorts 15
    account = broker.advance(DAYS[3])
    cash += 25 * 13.0 - 25 * 13.0 * 0.001
    assert account.cash == cash and account.equity == cash + -15 * 13.2
    assert broker.positions()["XYZ"] == Position("XYZ", -15.0, 13.0, -15 * 13.2)
    assert [(f.qty, f.price) for f in broker.fills()] == [(-20.0, 11.0), (30.0, 12.0), (-25.0, 13.0)]


def test_a_restarted_account_keeps_its_short(engine: Any, tiny_store: Path) -> None:
    first = _broker(engine, tiny_store, cost=BpsCost(10), shorting=True)
    first.advance(DAYS[0])
    first.submit(OrderRequest("XYZ", -20.0, "rt-1"))
    first.advance(DAYS[1])
    account, positions = first.account(), first.positions()
    first.close()
    del first
    second = _broker(engine, tiny_store, cost=BpsCost(10), shorting=True)
    assert second.account() == account and second.positions() == positions
    assert positions["XYZ"] == Position("XYZ", -20.0, 11.0, -20 * 11.2)
    assert second.history()["equity"].iloc[-1] == account.equity
    second.submit(OrderRequest("XYZ", -5.0, "rt-2"))
    second.advance(DAYS[2])
    assert second.positions()["XYZ"].qty == -25.0
    # reopened without shorting: the short stays and can be covered, but not extended
    third = _broker(engine, tiny_store, cost=BpsCost(10))
    assert third.positions() == second.positions()
    with pytest.raises(OrderRejected, match="would go short: -25 held"):
        third.submit(OrderRequest("XYZ", -1.0, "rt-3"))
    third.submit(OrderRequest("XYZ", 25.0, "rt-4"))
    third.advance(DAYS[3])
    assert third.positions() == {} and third.account().equity == third.account().cash


# ----------------------------------------------------------------------------- the backtest reproduced
def _sample(spec: str, symbols: list[str], start: str, end: str) -> list[RawBars]:
    from rltrade.data.sources import fetch

    out = []
    for raw in fetch(spec):
        frame = raw.frame[raw.frame["symbol"].isin(symbols)]
        frame = frame[(frame["timestamp"] >= start) & (frame["timestamp"] <= end)].reset_index(drop=True)
        if len(frame):
            out.append(RawBars(frame, raw.origin, raw.freq, raw.close_only, raw.adjusted))
    return out


@pytest.fixture(scope="module")
def stocks_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """AAPL, IBM, MSFT of ``sample:stocks`` (OHLC + adj_close: traded adjusted), late 2009 to mid 2010."""
    root = tmp_path_factory.mktemp("stocks") / "bars"
    BarStore(root).ingest(_sample("sample:stocks", ["AAPL", "IBM", "MSFT"], "2009-10-01", "2010-06-30"), source="s")
    return root


@pytest.fixture(scope="module")
def sp500_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four symbols of ``sample:sp500`` (close only, adjusted at the source), 2019."""
    root = tmp_path_factory.mktemp("sp500") / "bars"
    raws = _sample("sample:sp500", ["AAPL", "JPM", "KO", "XOM"], "2019-01-01", "2019-12-31")
    BarStore(root).ingest(raws, source="sample:sp500")
    return root


def _backtest(store: Path, cost: CostModel, timing: str, start: str, end: str) -> Trajectory:
    """Fixed weights (0.32 each, 4 % cash) rebalanced every day, through the project's Backtest."""
    bars = load_bars(end=end, store=store)
    n = bars["symbol"].nunique()
    weights = np.r_[np.full(n, 0.96 / n), 0.04]
    backtest = Backtest(bars, lambda obs: weights, cost=cost, timing=timing, start=start, end=end, baselines=())
    backtest.run()
    (trajectory,) = backtest.trajectories.values()
    return trajectory


def _replay(broker: PaperBroker, traj: Trajectory, days: range | None = None) -> None:
    """Day k: advance to its bar, then send the backtest's next holdings minus the paper positions."""
    for k in days if days is not None else range(len(traj)):
        stamp = traj.timestamps[k]
        broker.advance(stamp)
        if k + 1 == len(traj):
            break
        held = broker.positions()
        for j, symbol in enumerate(traj.symbols):
            qty = traj.holdings[k + 1, j] - (held[symbol].qty if symbol in held else 0.0)
            if qty != 0.0:
                broker.submit(
                    OrderRequest(symbol, float(qty), client_order_id("bt", stamp.date(), symbol, "rebalance"))
                )


def _replay_matches(broker: PaperBroker, traj: Trajectory, engine: Any) -> None:
    """Replay ``traj`` on ``broker``: its equity, fees and final holdings equal the backtest's to 1e-12."""
    _replay(broker, traj)
    history = broker.history()
    assert list(history.index) == list(traj.timestamps.tz_localize("UTC"))
    np.testing.assert_allclose(history["equity"].to_numpy(), traj.values, rtol=1e-12, atol=0)
    fees: dict[dt.datetime, float] = {}
    for f in broker.fills():
        fees[f.time] = fees.get(f.time, 0.0) + f.fee
    np.testing.assert_allclose(list(fees.values()), traj.costs[1:], rtol=1e-12, atol=0)
    assert traj.costs[1:].min() > 0  # every day traded and paid
    held = broker.positions()
    np.testing.assert_allclose([held[s].qty for s in traj.symbols], traj.holdings[-1], rtol=1e-12)
    assert journal.list_events(engine, kind="reject") == [] and journal.list_events(engine, kind="partial") == []


REPLAY_RANGES = {"stocks": ("2010-01-04", "2010-02-09"), "sp500": ("2019-03-01", "2019-04-05")}
REPLAYS = [
    pytest.param("stocks", BpsCost(10), "next_open", id="stocks-bps-next_open"),
    pytest.param("stocks", PerShareCost(0.005, 1.0), "next_open", id="stocks-per_share-next_open"),
    pytest.param("stocks", SpreadCost(1.0, 20), "next_close", id="stocks-spread-next_close"),
    pytest.param("sp500", BpsCost(10), "next_close", id="sp500-bps-next_close"),
]


@pytest.mark.parametrize(("data", "cost", "timing"), REPLAYS)
def test_a_paper_replay_reproduces_the_backtest(
    request: pytest.FixtureRequest, engine: Any, data: str, cost: CostModel, timing: Any
) -> None:
    store = request.getfixturevalue(f"{data}_store")
    start, end = REPLAY_RANGES[data]
    traj = _backtest(store, cost, timing, start, end)
    broker = PaperBroker("replay", engine=engine, store=store, cost=cost, timing=timing, initial_cash=1_000_000.0)
    _replay_matches(broker, traj, engine)


def _long_short(store: Path, cost: CostModel, timing: str, start: str, end: str) -> Trajectory:
    """``PortfolioEnv(long_short=True, leverage=1)``: a fixed book of alternating signs (Σ|w| = 0.9),
    flipped every third day, so that shorts are opened, grown, shrunk, covered and turned long."""
    bars = adjust_prices(load_bars(end=end, store=store))
    env = PortfolioEnv(
        bars,
        features=(),
        look_back=1,
        cost=cost,
        timing=timing,
        start=start,
        end=end,
        initial_value=1_000_000.0,
        long_short=True,
        leverage=1.0,
    )
    n = env.market.n_symbols
    book = 0.9 * np.array([(-1.0) ** j * (n - j) for j in range(n)]) / (n * (n + 1) / 2)
    steps = itertools.count()
    return run_policy(env, lambda obs: -book if next(steps) % 3 == 2 else book)


LONG_SHORT_REPLAYS = [p for p in REPLAYS if p.id != "stocks-spread-next_close"]


@pytest.mark.parametrize(("data", "cost", "timing"), LONG_SHORT_REPLAYS)
def test_a_paper_replay_with_shorts_reproduces_the_long_short_backtest(
    request: pytest.FixtureRequest, engine: Any, data: str, cost: CostModel, timing: Any
) -> None:
    store = request.getfixturevalue(f"{data}_store")
    start, end = REPLAY_RANGES[data]
    traj = _long_short(store, cost, timing, start, end)
    assert (traj.holdings < 0).any(axis=0).all() and (traj.holdings[1:] > 0).any(axis=0).all()  # every symbol both
    assert np.abs(traj.weights[1:, :-1]).sum(axis=1).max() < 1.0
    broker = PaperBroker(
        "replay", engine=engine, store=store, cost=cost, timing=timing, initial_cash=1_000_000.0, shorting=True
    )
    _replay_matches(broker, traj, engine)


def test_a_restarted_paper_account_carries_on_identically(
    tmp_path: Path, stocks_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dropped mid-range and reopened from the database, and killed mid-advance (the bar's transaction
    rolled back): the same equity curve and fills as an account that ran straight through."""
    cost, timing = BpsCost(10), "next_open"
    traj = _backtest(stocks_store, cost, timing, "2010-01-04", "2010-02-09")
    settings: dict[str, Any] = {"store": stocks_store, "cost": cost, "timing": timing}

    straight = PaperBroker(engine=_engine(f"sqlite:///{tmp_path / 'a.db'}"), **settings)
    _replay(straight, traj)

    url = f"sqlite:///{tmp_path / 'b.db'}"
    first = PaperBroker(engine=_engine(url), **settings)
    half = len(traj) // 2
    _replay(first, traj, range(half))
    first.close()
    del first

    second = PaperBroker(engine=_engine(url), **settings)  # a new process would do exactly this
    calls = {"n": 0}
    real = journal.record_equity

    def crash_once(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt("killed between the fills and the mark")
        real(*args, **kwargs)

    monkeypatch.setattr(journal, "record_equity", crash_once)
    with pytest.raises(KeyboardInterrupt):
        second.advance(traj.timestamps[half])
    del second
    third = PaperBroker(engine=_engine(url), **settings)
    assert third.clock == traj.timestamps[half - 1].tz_localize("UTC").to_pydatetime()  # that bar never happened
    _replay(third, traj, range(half, len(traj)))

    pd.testing.assert_frame_equal(third.history(), straight.history())
    assert third.fills() == straight.fills()
    assert third.account() == straight.account()


def _lockstep(broker: PaperBroker, env: StockTradingEnv, rate: float) -> int:
    """Trade ``env`` and ``broker`` side by side; each day all-in on the next symbol, sized at the close.

    The orders are whole shares sized from the paper account's equity at the close, leaving room
    for the costs of the sell and the buy (``V·(1 − r)/(1 + r)``); the open then often costs more
    than the close did, and the cash cap cuts the buy. Returns the number of steps.
    """
    hmax = 2**20  # a power of two: delta / hmax · hmax is delta exactly
    market = env.market
    symbols = list(market.symbols)
    _, info = env.reset()
    steps, done = 0, False
    while True:
        stamp = pd.Timestamp(info["timestamp"])
        account = broker.advance(stamp)
        held = broker.positions()
        shares = np.array([held[s].qty if s in held else 0.0 for s in symbols])
        assert account.equity == info["portfolio_value"] and account.cash == info["cash"]
        np.testing.assert_array_equal(shares, info["shares"])
        if done:
            return steps
        target = np.eye(len(symbols))[steps % len(symbols)] * account.equity * (1 - rate) / (1 + rate)
        delta = np.trunc(target / market.close[info["bar"]]) - shares
        action = delta / hmax
        order = np.argsort(action, kind="stable")  # the env: sells most negative first, then buys largest first
        for j in [*(j for j in order if action[j] < 0), *(j for j in order[::-1] if action[j] > 0)]:
            coid = client_order_id("lockstep", stamp.date(), symbols[j], "rotate")
            broker.submit(OrderRequest(symbols[j], float(delta[j]), coid))
        _, _, terminated, truncated, info = env.step(action)
        steps += 1
        done = terminated or truncated


@pytest.mark.parametrize(
    ("cost", "rate", "timing"),
    [
        pytest.param(BpsCost(10), 1e-3, "next_open", id="bps-next_open"),
        pytest.param(NoCost(), 0.0, "next_close", id="free-next_close"),
    ],
)
def test_whole_share_orders_sized_at_the_close_match_the_stock_trading_env_exactly(
    engine: Any, stocks_store: Path, cost: CostModel, rate: float, timing: Any
) -> None:
    bars = load_bars(end="2010-03-12", store=stocks_store)
    env = StockTradingEnv(
        bars, features=(), hmax=2**20, cost=cost, timing=timing, start="2010-01-04", end="2010-03-12", initial_value=1e6
    )
    broker = PaperBroker("lockstep", engine=engine, store=stocks_store, cost=cost, timing=timing)
    steps = _lockstep(broker, env, rate)
    assert steps == bars.loc[bars["timestamp"] >= "2010-01-04", "timestamp"].nunique() - 1  # every bar traded
    partial = journal.list_events(engine, kind="partial")
    cut = [o for o in broker.open_orders() + journal.list_orders(engine, "paper", "lockstep") if o.status == "expired"]
    assert len(partial) == len(cut) >= 10  # the buying-power cap really cut orders, as the env cut them
    assert all(0 < o.filled_qty < o.qty for o in cut)
    assert journal.list_events(engine, kind="reject") == []


def test_journal_times_are_wall_clock_fills_are_bar_time(engine: Any, tiny_store: Path) -> None:
    broker = _broker(engine, tiny_store)
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    broker.advance(DAYS[0])
    broker.submit(OrderRequest("XYZ", 1.0, "rt-1"))
    broker.advance(DAYS[1])
    assert all(e.time >= before for e in journal.list_events(engine))
    assert broker.fills()[0].time == DAYS[1].to_pydatetime()


def test_by_default_the_account_lives_in_the_stores_sqlite_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RLTRADE_DB", raising=False)
    root = tmp_path / "bars"
    _ingest(root, [pd.DataFrame({"symbol": "XYZ", "timestamp": DAYS, **XYZ, "volume": 1e6})])
    broker = PaperBroker(store=root, cost=None)
    broker.advance(DAYS[0])
    broker.submit(OrderRequest("XYZ", 2.0, "rt-1"))
    broker.close()
    assert (root / "rltrade.db").is_file()
    again = PaperBroker(engine=connect(f"sqlite:///{root / 'rltrade.db'}"), store=root, cost=None)
    assert [o.client_order_id for o in again.open_orders()] == ["rt-1"]
