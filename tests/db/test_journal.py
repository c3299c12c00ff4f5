"""The order journal and the paper accounts' tables, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import inspect

from rltrade.brokers.base import Fill, Order, OrderRejected, OrderRequest
from rltrade.db import connect, journal

UTC = dt.UTC


def _order(coid: str = "rt-1", status: str = "accepted", **changes: object) -> Order:
    fields = {
        "client_order_id": coid,
        "broker_order_id": "b-1",
        "symbol": "AAPL",
        "qty": 12.5,
        "filled_qty": 0.0,
        "status": status,
        "limit_price": None,
        "avg_fill_price": None,
        "submitted_at": dt.datetime(2010, 1, 4, tzinfo=UTC),
        "reason": None,
    }
    fields.update(changes)
    return Order(**fields)


def test_connect_creates_the_journal_tables(db_url: str) -> None:
    engine = connect(db_url)
    names = set(inspect(engine).get_table_names())
    assert {"orders", "fills", "journal", "paper_accounts", "paper_positions", "paper_equity"} <= names
    connect(db_url)  # a second connect finds them and creates nothing twice


def test_order_upsert_keeps_one_row_per_client_id_and_what_the_first_write_said(db_url: str) -> None:
    engine = connect(db_url)
    journal.record_order(
        engine, _order(), broker="paper", account="a", run="runs/x", as_of="2010-01-04", time_in_force="day"
    )
    first = journal.get_order(engine, "paper", "a", "rt-1")
    filled = _order(status="filled", filled_qty=12.5, avg_fill_price=101.25, reason="done\nin two lines")
    journal.record_order(engine, filled, broker="paper", account="a")
    rows = journal.list_orders(engine, "paper", "a")
    assert len(rows) == 1
    got = rows[0]
    assert (got.status, got.filled_qty, got.avg_fill_price) == ("filled", 12.5, 101.25)
    assert got.reason == "done in two lines"  # one line, always
    assert (got.run, got.as_of, got.time_in_force) == ("runs/x", "2010-01-04", "day")  # kept from the first write
    assert first is not None and got.created_at == first.created_at and got.updated_at >= first.updated_at
    assert got.submitted_at == dt.datetime(2010, 1, 4, tzinfo=UTC)
    # the same client id at another broker or account is another order
    journal.record_order(engine, _order(), broker="alpaca", account="a")
    journal.record_order(engine, _order(), broker="paper", account="b")
    assert len(journal.list_orders(engine)) == 3
    assert journal.list_orders(engine, "paper", "a", open_only=True) == []
    assert [o.broker for o in journal.list_orders(engine, open_only=True)] == ["alpaca", "paper"]
    assert journal.get_order(engine, "paper", "a", "nope") is None


def test_orders_come_back_in_submission_order(db_url: str) -> None:
    engine = connect(db_url)
    ids = [f"rt-{c}" for c in "qbzam"]
    for coid in ids:
        journal.record_order(engine, _order(coid), broker="paper", account="a")
    journal.record_order(
        engine, _order("rt-q", status="cancelled"), broker="paper", account="a"
    )  # an update: same place
    assert [o.client_order_id for o in journal.list_orders(engine, "paper", "a")] == ids
    assert [o.client_order_id for o in journal.list_orders(engine, "paper", "a", open_only=True)] == ids[1:]


def test_fills_are_kept_once_by_fill_id(db_url: str) -> None:
    engine = connect(db_url)
    t0 = dt.datetime(2010, 1, 5, 14, 30, 0, 123456, tzinfo=UTC)
    one = Fill("rt-1", "b-1", "AAPL", 10.0, 0.1 + 0.2, t0, 0.30000000000000004, "f-1")
    two = Fill("rt-1", "b-1", "AAPL", -3.0, 99.0, t0 + dt.timedelta(days=1), 0.5, "f-2")
    assert journal.record_fill(engine, one, broker="paper", account="a")
    assert not journal.record_fill(engine, one, broker="paper", account="a")  # reported again: ignored
    assert journal.record_fill(engine, two, broker="paper", account="a")
    assert journal.record_fill(engine, one, broker="ib", account="a")  # another broker's f-1
    got = journal.list_fills(engine, "paper", "a")
    assert [f.fill_id for f in got] == ["f-1", "f-2"]
    assert got[0].price == 0.1 + 0.2 and got[0].time == t0  # float64 and microseconds round-trip exactly
    assert [f.fill_id for f in journal.list_fills(engine, "paper", "a", since=t0)] == ["f-2"]
    with pytest.raises(Exception, match="no fill_id"):
        journal.record_fill(engine, Fill("rt-1", "b-1", "AAPL", 1.0, 1.0, t0), broker="paper", account="a")


def test_journal_lines_read_back_filtered_and_in_order(db_url: str) -> None:
    engine = connect(db_url)
    journal.log_event(engine, "submit", "rt-1 accepted", broker="paper", account="a", client_order_id="rt-1")
    journal.log_event(engine, "reject", "rt-2 rejected:\n insufficient buying power", level="warning", broker="paper")
    journal.log_event(engine, "halt", "daily stop hit", level="error", time=dt.datetime(2010, 1, 5, 21, 0))
    lines = journal.list_events(engine)
    assert [(e.kind, e.level) for e in lines] == [("submit", "info"), ("reject", "warning"), ("halt", "error")]
    assert lines[1].message == "rt-2 rejected: insufficient buying power"
    assert lines[2].time == dt.datetime(2010, 1, 5, 21, 0, tzinfo=UTC)  # a naive time is UTC
    assert [e.kind for e in journal.list_events(engine, broker="paper")] == ["submit", "reject"]
    assert [e.client_order_id for e in journal.list_events(engine, kind="submit")] == ["rt-1"]
    with pytest.raises(Exception, match="level"):
        journal.log_event(engine, "x", "y", level="debug")


def test_times_are_stored_as_utc(db_url: str) -> None:
    engine = connect(db_url)
    paris = dt.timezone(dt.timedelta(hours=1))
    journal.log_event(engine, "x", "y", time=dt.datetime(2010, 1, 5, 22, 0, tzinfo=paris))
    assert journal.list_events(engine)[0].time == dt.datetime(2010, 1, 5, 21, 0, tzinfo=UTC)


def test_paper_account_state_round_trips(db_url: str) -> None:
    engine = connect(db_url)
    assert journal.load_paper_account(engine, "a") is None
    state = journal.PaperAccountState("a", 1e6 / 3, None, "cost=x", {"MSFT": (1 / 7, 25.5), "AAPL": (3.0, 1 / 3)})
    journal.save_paper_account(engine, state)
    back = journal.load_paper_account(engine, "a")
    assert back == state  # floats bit for bit, positions by symbol
    state.cash, state.clock = 17.25, dt.datetime(2010, 1, 4, tzinfo=UTC)
    state.positions = {"IBM": (2.0, 130.0)}  # replaces the stored positions
    journal.save_paper_account(engine, state)
    assert journal.load_paper_account(engine, "a") == state
    journal.save_paper_account(engine, journal.PaperAccountState("b", 5.0, None, "other"))
    assert journal.load_paper_account(engine, "a") == state  # accounts are apart


def test_equity_history_is_ordered_and_restated_in_place(db_url: str) -> None:
    engine = connect(db_url)
    days = pd.date_range("2010-01-04", periods=4, freq="D", tz="UTC")
    for day, value in zip(days[::-1], [4.0, 3.0, 2.0, 1.0], strict=True):  # written out of order
        journal.record_equity(engine, "a", day.to_pydatetime(), value / 2, value)
    journal.record_equity(engine, "a", days[0].to_pydatetime(), 0.0, 1.5)  # restated
    journal.record_equity(engine, "b", days[0].to_pydatetime(), 9.0, 9.0)
    got = journal.equity_history(engine, "a")
    assert list(got.index) == list(days)
    np.testing.assert_array_equal(got["equity"].to_numpy(), [1.5, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(got["cash"].to_numpy(), [0.0, 1.0, 1.5, 2.0])


def _tiny_store(root: Path) -> Path:
    from rltrade.data.schema import RawBars
    from rltrade.data.store import BarStore

    days = pd.date_range("2010-01-04", periods=5, freq="B", tz="UTC")
    frame = pd.DataFrame(
        {
            "symbol": "XYZ",
            "timestamp": days,
            "open": [10.0, 11.0, 12.0, 13.0, 14.0],
            "high": [10.5, 11.5, 12.5, 13.5, 14.5],
            "low": [9.5, 10.5, 11.5, 12.5, 13.5],
            "close": [10.2, 11.2, 12.2, 13.2, 14.2],
            "volume": 1e6,
        }
    )
    BarStore(root).ingest([RawBars(frame, "hand-written", "1d")], source="test")
    return root


def test_a_paper_account_lives_in_the_database(db_url: str, tmp_path: Path) -> None:
    """Submit, fill, reject, cancel on one broker; a new one on the same URL sees the same account and journal."""
    from rltrade.brokers.paper import PaperBroker

    store = _tiny_store(tmp_path / "bars")
    broker = PaperBroker("acct", engine=connect(db_url), store=store, initial_cash=1000.0, cost=10.0)
    broker.advance("2010-01-04")
    broker.submit(OrderRequest("XYZ", 20.0, "rt-buy"))
    broker.submit(OrderRequest("XYZ", 5.0, "rt-gtc", limit_price=1.0, time_in_force="gtc"))
    with pytest.raises(OrderRejected, match="buying power"):
        broker.submit(OrderRequest("XYZ", 500.0, "rt-big"))
    broker.advance("2010-01-05")  # rt-buy fills at the open, 11.0; rt-gtc waits
    broker.cancel("rt-gtc")
    broker.close()
    del broker

    again = PaperBroker("acct", engine=connect(db_url), store=store, initial_cash=1000.0, cost=10.0)
    fee = 0.001 * 20 * 11.0
    cash = 1000.0 - (20 * 11.0 + fee)
    account = again.account()
    assert account.cash == cash and account.equity == cash + 20 * 11.2
    assert again.positions()["XYZ"].qty == 20.0
    assert [f.client_order_id for f in again.fills()] == ["rt-buy"]
    statuses = {o.client_order_id: o.status for o in journal.list_orders(again.engine, "paper", "acct")}
    assert statuses == {"rt-buy": "filled", "rt-gtc": "cancelled", "rt-big": "rejected"}
    kinds = [(e.kind, e.client_order_id) for e in journal.list_events(again.engine, account="acct")]
    assert kinds == [
        ("open", None),
        ("submit", "rt-buy"),
        ("submit", "rt-gtc"),
        ("reject", "rt-big"),
        ("fill", "rt-buy"),
        ("cancel", "rt-gtc"),
    ]
    history = again.history()
    assert list(history["equity"]) == [1000.0, cash + 20 * 11.2]
