"""Fault tests of the live loop, in real processes: ``python -m rltrade.cli live ...`` in a subprocess.

- SIGKILL between sending an order and recording its fill (the paper broker on a SQLite file;
  the point is reached deterministically through the loop's test hook
  ``RLTRADE_LIVE_TEST_PAUSE_AFTER_SUBMIT``), then a restart: no order sent twice, and the
  account ends exactly where an uninterrupted replay ends.
- Against the Alpaca stand-in (tests/brokers/alpaca_server.py, alpaca-py's real client over a
  socket on 127.0.0.1, in this process; the loop in the subprocess): the connection dropped
  mid-session after Alpaca stored an order (exit code 2, one line; the restart finds the order by
  its id and does not send it again), an order rejected for insufficient buying power, a
  partial fill carried to the next day's decision; and no key in any output, log or file.

The stand-in's account (tests/fixtures/alpaca) holds 10 AAPL, a short TSLA position the run does
not trade and an open MSFT order of another client; the sessions are 2011-02-01 and 2011-02-02 of
the session's trained run (AAPL, IBM, MSFT), with a store that ends on the session's day, as it
does after the day's ingest.
"""

from __future__ import annotations

import collections
import datetime as dt
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from tests.brokers.alpaca_server import AlpacaServer
from tests.signals.runs import TrainedRun, trained_run

from rltrade.brokers.paper import PaperBroker
from rltrade.data.schema import RawBars
from rltrade.data.store import BarStore, load_bars
from rltrade.db import connect, journal
from rltrade.db.signals import read_signals
from rltrade.live import load_live_config, parse_live_config, run_live
from rltrade.live.loop import PAUSE_ENV, PAUSE_SECONDS_ENV

SYMBOLS = ["AAPL", "IBM", "MSFT"]
T1, T2 = dt.date(2011, 2, 1), dt.date(2011, 2, 2)
PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    return trained_run(tmp_path_factory)


@pytest.fixture
def server() -> Iterator[AlpacaServer]:
    stand_in = AlpacaServer()
    yield stand_in
    stand_in.close()


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PROXIES and not k.startswith("ALPACA_")}
    return {**env, "NO_PROXY": "127.0.0.1,localhost", "RLTRADE_DB": f"sqlite:///{tmp_path / 'live.db'}", **extra}


def _live(config: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "rltrade.cli", "live", str(config), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=config.parent, timeout=300, check=False)


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


# ----------------------------------------------------------------------------- SIGKILL on the paper broker
def test_killed_between_submit_and_fill_the_restart_sends_nothing_twice(run: TrainedRun, tmp_path: Path) -> None:
    config = _write(tmp_path / "live.yaml", {"run": str(run.run_dir), "limits": {"max_position_weight": 0.6}})
    env = _env(tmp_path)
    days = ("--start", "2011-01-03", "--end", "2011-01-07")
    settings = {"run": str(run.run_dir), "limits": {"max_position_weight": 0.6}}
    engine = connect(env["RLTRADE_DB"])
    run_live(parse_live_config(settings), "paper", start=dt.date(2011, 1, 3), end=dt.date(2011, 1, 4), engine=engine)
    marker = tmp_path / "paused"
    command = [sys.executable, "-m", "rltrade.cli", "live", str(config), *days]
    paused = {**env, PAUSE_ENV: str(marker), PAUSE_SECONDS_ENV: "300"}
    process = subprocess.Popen(command, env=paused, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), process.communicate(timeout=5)[1].decode()[-2000:]
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    killed = marker.read_text().strip()
    # 01-04 was replayed before (its orders are found at the broker); the first order sent is of 01-05
    assert killed.startswith("rt-20110105-")
    account = run.run_dir.name
    at_kill = journal.get_order(engine, "paper", account, killed)
    assert at_kill is not None and (at_kill.status, at_kill.filled_qty) == ("accepted", 0.0)  # sent, no fill yet
    assert journal.list_fills(engine, "paper", account, since=dt.datetime(2011, 1, 5, 12, tzinfo=dt.UTC)) == []

    again = _live(config, env, *days)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"{killed} is already at paper (accepted, +0 filled): not sent again" in again.stderr

    reference = connect(f"sqlite:///{tmp_path / 'reference.db'}")  # the same days, never interrupted
    run_live(parse_live_config(settings), "paper", start=dt.date(2011, 1, 3), end=dt.date(2011, 1, 7), engine=reference)

    def orders(bind: Any) -> list[tuple[Any, ...]]:
        return [(o.client_order_id, o.qty, o.status, o.filled_qty, o.avg_fill_price) for o in journal.list_orders(bind)]

    assert sorted(orders(engine)) == sorted(orders(reference))
    sent = collections.Counter(e.client_order_id for e in journal.list_events(engine, kind="submit"))
    assert set(sent.values()) == {1} and len(sent) == len(orders(reference))  # each order accepted once
    ours = PaperBroker(account, engine=engine, store=run.store)
    theirs = PaperBroker(account, engine=reference, store=run.store)
    assert ours.positions() == theirs.positions() and ours.account() == theirs.account()
    pd.testing.assert_frame_equal(ours.history(), theirs.history())


# ----------------------------------------------------------------------------- the Alpaca stand-in
def _store_until(run: TrainedRun, root: Path, day: dt.date, since: dt.date | None = None) -> pd.DataFrame:
    """Ingest the run's bars up to ``day`` (after ``since`` only) into the store ``root``; the rows of ``day``."""
    bars = load_bars(SYMBOLS, end=day.isoformat(), store=run.store)
    if since is not None:
        bars = bars[pd.DatetimeIndex(bars["timestamp"]).tz_convert(None).normalize() > pd.Timestamp(since)]
    batches = [RawBars(part.reset_index(drop=True), "test") for _, part in bars.groupby("symbol")]
    BarStore(root).ingest(batches, source="sample:stocks")
    return bars[bars["timestamp"] == bars["timestamp"].max()].set_index("symbol")


def _alpaca(run: TrainedRun, server: AlpacaServer, tmp_path: Path, **fields: Any) -> tuple[Path, dict[str, str]]:
    config = {
        "run": str(run.run_dir),
        "store": str(tmp_path / "store"),
        "limits": {"max_position_weight": 0.6},
        "alpaca": {"url": server.url, "retry_wait": 0.01, "timeout": 10},
        **fields,
    }
    env = _env(tmp_path, ALPACA_API_KEY=server.key_id, ALPACA_SECRET_KEY=server.secret_key)
    return _write(tmp_path / "live.yaml", config), env


def _price(server: AlpacaServer, last: pd.DataFrame) -> None:
    """The stand-in quotes the day's closes (as stored: what a broker trades)."""
    for symbol in SYMBOLS:
        server.prices[symbol] = float(last.loc[symbol, "close"])


def _no_secret(server: AlpacaServer, texts: list[str], *roots: Path) -> None:
    secrets = (server.key_id, server.secret_key)
    for text in texts:
        assert not any(s in text for s in secrets)
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert not any(s.encode() in data for s in secrets), path


def test_a_lost_connection_stops_the_session_with_exit_2_and_the_restart_sends_each_order_once(
    run: TrainedRun, server: AlpacaServer, tmp_path: Path
) -> None:
    _price(server, _store_until(run, tmp_path / "store", T1))
    config, env = _alpaca(run, server, tmp_path)
    stored: list[str] = []
    submit = server._submit

    def first_then_drop(body: dict[str, Any]) -> Any:
        reply = submit(body)
        stored.append(body["client_order_id"])
        if len(stored) == 1:  # the next order is stored by Alpaca, but its answer never comes back
            server.fail("POST", "/v2/orders", None, apply=True)
        return reply

    server._submit = first_then_drop  # type: ignore[method-assign]
    lost = _live(config, env, "--broker", "alpaca", "--date", T1.isoformat())
    assert lost.returncode == 2, lost.stderr[-2000:]
    errors = [line for line in lost.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "connection to 127.0.0.1" in errors[0] and "run the same command again" in errors[0]
    assert len(stored) == 2 and lost.stdout == ""
    engine = connect(env["RLTRADE_DB"])
    assert "lost the connection to alpaca" in journal.list_events(engine, kind="lost")[-1].message

    again = _live(config, env, "--broker", "alpaca", "--date", T1.isoformat())
    assert again.returncode == 0, again.stderr[-2000:]
    posts = collections.Counter(s.body["client_order_id"] for s in server.requests_to("POST", "/v2/orders"))
    ours = [o for o in journal.list_orders(engine, "alpaca") if o.as_of == T1.isoformat()]
    assert len(ours) == 3 and set(posts) == {o.client_order_id for o in ours}
    assert set(posts.values()) == {1}  # every order sent once, the one whose answer was lost included
    assert f"{stored[1]} (IBM +" in again.stderr and "sent before a stop and not journalled: adopted" in again.stderr
    assert f"{T1}: 3 order(s): 1 sent, 2 exists" in again.stdout
    _no_secret(server, [lost.stdout, lost.stderr, again.stdout, again.stderr], tmp_path, run.run_dir)


def test_an_order_rejected_for_buying_power_is_journalled_and_the_session_goes_on(
    run: TrainedRun, server: AlpacaServer, tmp_path: Path
) -> None:
    _price(server, _store_until(run, tmp_path / "store", T1))
    server._book("SPY", 180.0, 530.0)  # the account's cash goes into a position the run does not trade
    config, env = _alpaca(run, server, tmp_path)
    done = _live(config, env, "--broker", "alpaca", "--date", T1.isoformat())
    assert done.returncode == 0, done.stderr[-2000:]
    assert "3 order(s): 0 sent, 3 rejected" in done.stdout
    engine = connect(env["RLTRADE_DB"])
    rejected = journal.list_events(engine, kind="rejected")
    assert len(rejected) == 3 and all("insufficient buying power" in e.message for e in rejected)
    assert [o.status for o in journal.list_orders(engine, "alpaca")] == ["rejected"] * 3
    assert len(server.requests_to("POST", "/v2/orders")) == 3  # each tried once, the session went on
    assert "SPY" in journal.list_events(engine, kind="reconcile")[-1].message  # left alone, named
    _no_secret(server, [done.stdout, done.stderr], tmp_path)


def test_a_partial_fill_is_carried_to_the_next_decision(
    run: TrainedRun, server: AlpacaServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store"
    _price(server, _store_until(run, store, T1))
    config, env = _alpaca(run, server, tmp_path)
    for name in PROXIES:  # the first session in this process, the next one in a subprocess
        monkeypatch.delenv(name, raising=False)
    for name in ("NO_PROXY", "ALPACA_API_KEY", "ALPACA_SECRET_KEY"):
        monkeypatch.setenv(name, env[name])
    engine = connect(env["RLTRADE_DB"])
    run_live(load_live_config(config), "alpaca", date=T1, engine=engine)
    day1 = {o.symbol: o for o in journal.list_orders(engine, "alpaca") if o.as_of == T1.isoformat()}
    assert sorted(day1) == SYMBOLS and all(o.qty > 2 for o in day1.values())
    # the next morning: half the AAPL buy fills, the IBM buy fills, the MSFT buy does not
    part = float(day1["AAPL"].qty // 2)
    server.fill(day1["AAPL"].client_order_id, part, server.prices["AAPL"])
    server.fill(day1["IBM"].client_order_id, day1["IBM"].qty, server.prices["IBM"])
    last = _store_until(run, store, T2, since=T1)  # the day's ingest
    _price(server, last)

    second = _live(config, env, "--broker", "alpaca", "--date", T2.isoformat())
    assert second.returncode == 0, second.stderr[-2000:]
    aapl, msft = day1["AAPL"].client_order_id, day1["MSFT"].client_order_id
    cancelled = {e.client_order_id for e in journal.list_events(engine, kind="cancelled")}
    assert cancelled == {aapl, msft}  # the stale decisions of T1, the one the other client placed left alone
    (partial,) = journal.list_events(engine, kind="carried")
    assert partial.client_order_id == aapl and f"filled {part:+g} of {day1['AAPL'].qty:+g}" in partial.message
    assert {(f.client_order_id, f.qty) for f in journal.list_fills(engine, "alpaca")} == {
        (aapl, part),
        (day1["IBM"].client_order_id, day1["IBM"].qty),
    }
    # the decision of T2 from the shares actually held: 10 + the part AAPL, the IBM fill, no MSFT
    held = {"AAPL": 10.0 + part, "IBM": day1["IBM"].qty, "MSFT": 0.0}
    assert {s: float(p["qty"]) for s, p in server.positions.items() if s in SYMBOLS} == {
        "AAPL": held["AAPL"],
        "IBM": held["IBM"],
    }
    equity = float(server._account()["equity"])  # the T2 orders are not filled: the equity they were sized on
    rows = read_signals(engine, run.run_dir.name, T2, T2).set_index("symbol")
    w = rows.loc[SYMBOLS, "weight"].to_numpy()
    c = np.array([float(last.loc[s, "close"]) for s in SYMBOLS])
    h = np.array([held[s] for s in SYMBOLS])
    mu = 1.0
    for _ in range(100):  # the env's fixed point, brute force: μ·E + 10 bps of the trades = E
        new = 1.0 - sum(10e-4 * abs(w[j] * mu * equity / c[j] - h[j]) * c[j] for j in range(3)) / equity
        mu, done = new, abs(new - mu) <= 1e-14
        if done:
            break
    want = {s: math.trunc(w[j] * mu * (1 - 1e-9) * equity / c[j]) - h[j] for j, s in enumerate(SYMBOLS)}
    day2 = {o.symbol: o.qty for o in journal.list_orders(engine, "alpaca") if o.as_of == T2.isoformat()}
    assert day2 == {s: q for s, q in want.items() if q != 0}
    assert "the rest is carried to it" in second.stderr


# ----------------------------------------------------------------------------- the IB fake gateway
def test_ib_a_connection_dropped_after_placing_then_the_rerun_finds_the_order_by_its_ref(
    run: TrainedRun, tmp_path: Path
) -> None:
    """In this process: the fake gateway fills the first order and drops the socket before it answers."""
    pytest.importorskip("ib_async")
    from tests.brokers.fake_tws import FakeTWS

    from rltrade.brokers import ConnectionLost

    last = _store_until(run, tmp_path / "store", T1)
    engine = connect(f"sqlite:///{tmp_path / 'live.db'}")
    with FakeTWS() as fake:
        fake.prices = {s: float(last.loc[s, "close"]) for s in SYMBOLS}
        fake.drop_on_place = True
        settings = {"host": "127.0.0.1", "port": fake.port, "client_id": 7, "timeout": 2}
        config = parse_live_config(
            {
                "run": str(run.run_dir),
                "store": str(tmp_path / "store"),
                "limits": {"max_position_weight": 0.6},
                "ib": settings,
            }
        )
        with pytest.raises(ConnectionLost):
            run_live(config, "ib", date=T1, engine=engine)
        assert (
            len(fake.placed) == 1
            and "lost the connection to ib" in journal.list_events(engine, kind="lost")[-1].message
        )
        first = fake.placed[0]["orderRef"]
        fake.drop_on_place = False
        report = run_live(config, "ib", date=T1, engine=engine)
    refs = collections.Counter(p["orderRef"] for p in fake.placed)
    assert set(refs.values()) == {1} and len(refs) == 3  # the first order was not placed again
    (session,) = report.sessions
    # the rerun decides from the position the first order left (it filled): nothing more, or the same id
    assert [o.outcome for o in session.orders if o.client_order_id == first] in ([], ["exists"])
    assert [o.outcome for o in session.orders if o.client_order_id != first] == ["sent", "sent"]
    assert {s: p[0] for s, p in fake.positions.items()} == {p["symbol"]: float(p["totalQuantity"]) for p in fake.placed}
    # the first order filled before the drop: adopted with its fill by the rerun's reconcile
    assert [f.client_order_id for f in journal.list_fills(engine, "ib")] == [first]
