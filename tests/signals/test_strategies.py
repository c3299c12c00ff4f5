"""Signals of seed 002's strategies: what their backtests traded, from data up to each day only.

direct_rl (``next_close`` fills): the long/short env trades the signal weights exactly, so the
weights after each fill (``weights.csv``) are the signals of the day before. combined
(``next_open`` fills, stops off): the orders filled at T+1's open (``events.csv``) take the
position held at T's close to the signal's target.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy.engine import Engine
from tests.signals.runs import TrainedRun, strategy_run

from rltrade.data.adjust import adjust_prices
from rltrade.data.schema import RawBars
from rltrade.data.store import BarStore, load_bars
from rltrade.db import connect
from rltrade.signals import compute_range, compute_signals

SYMBOLS = ["AAPL", "IBM", "MSFT"]
LAST = "2011-03-31"


@pytest.fixture(scope="module")
def direct(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    return strategy_run(tmp_path_factory, "direct_rl")


@pytest.fixture(scope="module")
def combined(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    return strategy_run(tmp_path_factory, "combined")


def _matrix(rows: pd.DataFrame, column: str = "weight") -> pd.DataFrame:
    table = rows.pivot(index="as_of", columns="symbol", values=column)[SYMBOLS]
    table.index = pd.DatetimeIndex([pd.Timestamp(str(d)) for d in table.index])
    return table


def test_direct_rl_signals_are_the_weights_held_after_each_fill(direct: TrainedRun, engine: Engine) -> None:
    rows = compute_range(direct.run_dir, end=LAST, engine=engine)
    signals = _matrix(rows)
    weights = pd.read_csv(direct.run_dir / "weights.csv", parse_dates=["timestamp"])
    held = weights[weights["strategy"] == "direct_rl"].set_index("timestamp")[SYMBOLS]
    held.index = pd.DatetimeIndex(held.index).tz_localize(None).normalize()
    assert list(signals.index) == list(held.index)  # one signal per test day
    # filled and marked at the next close: the weights after the fill are the targets (negative: short)
    np.testing.assert_allclose(held.to_numpy()[1:], signals.to_numpy()[:-1], atol=1e-12)
    assert (signals.to_numpy() < 0).any() or (signals.to_numpy() > 0).any()
    assert (signals.abs().sum(axis=1) <= 1 + 1e-12).all()
    scores = _matrix(rows, "score")
    np.testing.assert_allclose(signals.to_numpy(), scores.to_numpy() / len(SYMBOLS), atol=1e-15)


def test_combined_signals_are_the_positions_its_rules_traded_to(combined: TrainedRun, engine: Engine) -> None:
    rows = compute_range(combined.run_dir, end=LAST, engine=engine)
    signals = _matrix(rows)
    events = pd.read_csv(combined.run_dir / "events.csv", parse_dates=["timestamp"])
    fills = events[events["filled"] & (events["event"] != "halt")]
    traded = fills.pivot_table(index="timestamp", columns="symbol", values="quantity", aggfunc="sum")
    traded.index = pd.DatetimeIndex(traded.index).normalize()
    traded = traded.reindex(index=signals.index, columns=SYMBOLS, fill_value=0.0).fillna(0.0)
    held = traded.cumsum()  # the run starts in cash: the position after each day's fills
    equity = pd.read_csv(combined.run_dir / "equity.csv", index_col="timestamp", parse_dates=True)["combined"]
    equity.index = pd.DatetimeIndex(equity.index).tz_localize(None).normalize()
    bars = adjust_prices(load_bars(SYMBOLS, end=LAST, store=combined.store))
    closes = bars.pivot(index="timestamp", columns="symbol", values="close")[SYMBOLS]
    closes.index = pd.DatetimeIndex(closes.index).tz_convert(None).normalize()
    closes = closes.reindex(signals.index)
    target = signals * equity.reindex(signals.index).to_numpy()[:, None] / closes  # shares after T's decision
    assert len(fills) >= 4
    # the orders filled at T+1's open take the position of T's close to T's target
    np.testing.assert_allclose(target.to_numpy()[:-1], held.to_numpy()[1:], atol=1e-6)
    assert (signals.to_numpy() >= 0).all()  # long only


@pytest.mark.parametrize("strategy", ["direct_rl", "combined"])
def test_a_range_equals_its_days_and_a_future_bar_changes_nothing(
    strategy: str, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    run = strategy_run(tmp_path_factory, strategy)
    store = tmp_path / "store"
    shutil.copytree(run.store, store)
    ranged = compute_range(run.run_dir, end=LAST, engine=connect(f"sqlite:///{tmp_path / 'range.db'}"), store=store)
    days = ["2011-01-03", "2011-02-15", LAST]
    daily = connect(f"sqlite:///{tmp_path / 'daily.db'}")
    one = pd.concat([compute_signals(run.run_dir, d, engine=daily, store=store) for d in days], ignore_index=True)
    picked = ranged[ranged["as_of"].astype(str).isin(days)].reset_index(drop=True)
    cols = ["as_of", "symbol", "weight", "score", "seed"]
    pd.testing.assert_frame_equal(one[cols], picked[cols])
    assert (one["last_bar"].dt.date == one["as_of"]).all()
    # the store's last day, then a far-off bar after it: the earlier day's signals do not move
    last = compute_signals(run.run_dir, "2013-03-01", engine=daily, store=store)
    frame = load_bars(None, store=store)
    future = frame[frame["timestamp"] == frame["timestamp"].max()].copy()
    future["timestamp"] = pd.Timestamp("2013-03-04", tz="UTC")
    for column in ("open", "high", "low", "close", "adj_close"):
        future[column] = future[column] * 0.6
    BarStore(store).ingest([RawBars(future.reset_index(drop=True), "future")], source="sample:stocks")
    again = compute_signals(
        run.run_dir, "2013-03-01", engine=connect(f"sqlite:///{tmp_path / 'after.db'}"), store=store
    )
    pd.testing.assert_frame_equal(last[cols], again[cols])
    assert (again["last_bar"] <= pd.Timestamp("2013-03-01")).all()


def test_ensemble_signals_are_the_share_counts_its_picks_traded_to(
    tmp_path_factory: pytest.TempPathFactory, engine: Engine
) -> None:
    """The ensemble (next_close fills, whole shares): the signal's target shares ``w · V_T / close_T`` are whole,
    and the backtest holds them after the next fill, unless the cash at the fill price cut a buy."""
    run = strategy_run(tmp_path_factory, "ensemble")
    symbols = ["AAPL", "JNJ", "KO", "WMT", "XOM"]
    equity = pd.read_csv(run.run_dir / "equity.csv", index_col="timestamp", parse_dates=True)["ensemble"]
    equity.index = pd.DatetimeIndex(equity.index).tz_localize(None).normalize()
    end = equity.index[-1].date()
    rows = compute_range(run.run_dir, end=end, engine=engine)
    signals = rows.pivot(index="as_of", columns="symbol", values="weight")[symbols]
    signals.index = pd.DatetimeIndex([pd.Timestamp(str(d)) for d in signals.index])
    assert list(signals.index) == list(equity.index)  # a signal per test day, the run's last included
    bars = load_bars(symbols, end=end.isoformat(), store=run.store)
    closes = bars.pivot(index="timestamp", columns="symbol", values="close")[symbols]
    closes.index = pd.DatetimeIndex(closes.index).tz_convert(None).normalize()
    closes = closes.reindex(signals.index)
    target = (signals * equity.to_numpy()[:, None] / closes).to_numpy()
    np.testing.assert_allclose(target, np.round(target), atol=1e-6)  # whole shares
    weights = pd.read_csv(run.run_dir / "weights.csv", parse_dates=["timestamp"])
    held = weights[weights["strategy"] == "ensemble"].set_index("timestamp")[symbols]
    held.index = pd.DatetimeIndex(held.index).tz_localize(None).normalize()
    shares = (held * equity.to_numpy()[:, None] / closes).to_numpy()
    same = np.isclose(np.round(target[:-1]), shares[1:], atol=1e-6)
    cut = ~same & (np.round(target[:-1]) > shares[1:])  # a buy the cash did not pay in full at the fill
    assert (same | cut).all() and same.mean() > 0.75, same.mean()
    assert np.abs(np.diff(np.round(target), axis=0)).sum() > 0  # it trades
