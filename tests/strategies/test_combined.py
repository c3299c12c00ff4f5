"""``strategy: combined`` end to end on embedded daily OHLCV (AAPL, IBM): fit, signal, trade the rules, score.

Checked against computations made here: the equity from the fills of events.csv alone (cash and
shares by hand), every entry against the three signals recomputed from the saved models, every
stop against its entry price, the LSTM's RMSE in predictors.json by hand, and the lookahead
guard on the signals (bars after t truncated or perturbed: the signals at t do not move).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.strategies.test_direct_rl import merged, run_hourly

from rltrade import workflow
from rltrade.agents.direct import DirectRLAgent
from rltrade.agents.predictors import CNNClassifier, LSTMRegressor
from rltrade.config import parse_config
from rltrade.runs import Run
from rltrade.strategies.base import load_data
from rltrade.strategies.combined import signals_frame
from rltrade.testing import assert_causal

SYMBOLS = ["AAPL", "IBM"]
INITIAL = 1_000_000.0
STOP, TAKE, UP = 0.02, 0.04, 0.4
TEST_START = pd.Timestamp("2007-01-01", tz="UTC")
FIRST_TEST_BAR = pd.Timestamp("2007-01-03", tz="UTC")  # markets closed on 2007-01-01 and 01-02


def _config(store: Path, changes: dict[str, Any] | None = None) -> dict[str, Any]:
    tiny = {"window": 10, "size": 4, "epochs": 2, "patience": 1, "batch_size": 256}
    data: dict[str, Any] = {
        "name": "tiny-combined",
        "seed": 5,
        "strategy": "combined",
        "data": {"source": "sample:stocks", "symbols": SYMBOLS, "store": str(store)},
        "env": {"type": "portfolio", "params": {"look_back": 1}, "cost": {"model": "bps", "bps": 10}},
        "train": {"start": "2004-01-01", "end": "2006-12-31"},
        "test": {"start": "2007-01-01", "end": "2007-06-30"},
        "agent": {"kind": "direct", "lookback": 5, "epochs": 20, "patience": 5, "validation_bars": 60},
        "combined": {
            "lstm": tiny,
            "cnn": tiny,
            # a wide allocation, tight stops and a low threshold (tiny models are timid): a short test range
            # then sees entries and stops
            "rules": {"up_threshold": UP, "allocation": 0.4, "stop_loss": STOP, "take_profit": TAKE},
        },
        "baselines": {"names": ["buy_and_hold", "equal_weight", "random"]},
        "evaluation": {"n_boot": 200},
    }
    return merged(data, changes or {})


@pytest.fixture(scope="module")
def run(store: Path, tmp_path_factory: pytest.TempPathFactory) -> workflow.RunResult:
    return workflow.run(parse_config(_config(store)), tmp_path_factory.mktemp("runs"), n_seeds=2, progress=False)


@pytest.fixture(scope="module")
def bars(run: workflow.RunResult) -> pd.DataFrame:
    """The run's bars from the store (adjusted), up to the test end."""
    loaded, _ = load_data(Run.open(run.run_dir).config())
    return loaded[loaded["symbol"].isin(SYMBOLS)].reset_index(drop=True)


@pytest.fixture(scope="module")
def signals(run: workflow.RunResult, bars: pd.DataFrame) -> pd.DataFrame:
    """The first seed's signals, recomputed from its saved models."""
    models = run.run_dir / "models"
    lstm, cnn = LSTMRegressor.load(models / "lstm_seed_5.pt"), CNNClassifier.load(models / "cnn_seed_5.pt")
    agent = DirectRLAgent.load(models / "seed_5.npz")
    return signals_frame(lstm, cnn, agent, bars, TEST_START)


def _equity(run: workflow.RunResult) -> pd.DataFrame:
    return pd.read_csv(run.run_dir / "equity.csv", index_col="timestamp", parse_dates=True)


def _events(run: workflow.RunResult, seed: int) -> pd.DataFrame:
    events = pd.read_csv(run.run_dir / "events.csv", parse_dates=["timestamp"])
    return events[events["seed"] == seed].reset_index(drop=True)


def test_run_directory(run: workflow.RunResult) -> None:
    run_dir = run.run_dir
    names = {p.name for p in run_dir.iterdir()}
    assert {"config.yaml", "manifest.json", "equity.csv", "metrics.json", "summary.json", "report.html"} <= names
    assert {"predictors.json", "events.csv"} <= names
    assert sorted(p.name for p in (run_dir / "models").iterdir()) == [
        "cnn_seed_5.pt",
        "cnn_seed_6.pt",
        "lstm_seed_5.pt",
        "lstm_seed_6.pt",
        "seed_5.npz",
        "seed_6.npz",
    ]
    opened = Run.open(run_dir)
    assert list(opened.equity.columns) == [
        "combined",
        "combined_seed6",
        "buy_and_hold",
        "equal_weight",
        "random",
        "random_seed6",
    ]
    combined = opened.manifest["combined"]
    assert combined["stops_checked_on"] == "high_low"  # the sample has highs and lows
    assert set(combined["exit_counts"]) == {"5", "6"}
    predictors = json.loads((run_dir / "predictors.json").read_text())
    assert set(predictors["seeds"]) == {"5", "6"} and set(predictors["mean"]) == {"lstm", "cnn"}
    report = (run_dir / "report.html").read_text(encoding="utf-8")
    assert 'id="seed002"' in report and "the bars&#x27; high and low" in report and "Naive RMSE" in report


def test_equity_is_the_fills_of_the_events_log(run: workflow.RunResult, bars: pd.DataFrame) -> None:
    """cash = initial − Σ(quantity·price + cost) of the fills so far; equity = cash + shares · close."""
    close = bars.pivot(index="timestamp", columns="symbol", values="close")[SYMBOLS]
    close.index = pd.DatetimeIndex(close.index).tz_convert(None)
    equity = _equity(run)
    close = close.loc[equity.index]
    for seed, column in ((5, "combined"), (6, "combined_seed6")):
        fills = _events(run, seed)
        fills = fills[fills["filled"] & (fills["event"] != "halt")]
        assert len(fills) > 0
        cash = np.full(len(close), INITIAL)
        shares = np.zeros(close.shape)
        for _, fill in fills.iterrows():
            bar, asset = int(fill["bar"]), SYMBOLS.index(fill["symbol"])
            cash[bar:] -= fill["quantity"] * fill["price"] + fill["cost"]
            shares[bar:, asset] += fill["quantity"]
        expected = cash + (shares * close.to_numpy()).sum(axis=1)
        np.testing.assert_allclose(equity[column].to_numpy(), expected, rtol=1e-8)  # the CSVs keep 10 digits


def test_entries_follow_the_signals_and_stops_their_levels(run: workflow.RunResult, signals: pd.DataFrame) -> None:
    """Each entry filled at bar b's open was decided at b − 1's close with all three signals agreeing."""
    events = _events(run, 5)
    stamps = signals.index.unique("timestamp")
    entries = events[events["event"] == "entry"]
    assert len(entries) > 0
    for _, entry in entries.iterrows():
        decided = signals.loc[(stamps[int(entry["bar"]) - 1], entry["symbol"])]
        lstm_up = decided["forecast_close"] > decided["close"]
        if entry["side"] > 0:
            assert lstm_up and decided["p_up"] > UP and decided["rl_signal"] > 0, entry.to_dict()
        else:
            assert not lstm_up and decided["p_up"] < 1 - UP and decided["rl_signal"] < 0, entry.to_dict()
    stops = 0
    for _, trades in events[events["event"] != "halt"].groupby("symbol"):
        entry_price = np.nan
        for _, e in trades.iterrows():
            if e["event"] == "entry":
                entry_price = e["price"]
                continue
            side = e["side"]
            if e["reason"] == "stop_loss":
                stops += 1
                assert e["trigger"] == pytest.approx(entry_price * (1 - side * STOP), rel=1e-8)
                assert side * e["price"] <= side * e["trigger"] * (1 + 1e-8)  # at the stop, or worse after a gap
            elif e["reason"] == "take_profit":
                stops += 1
                assert e["price"] == pytest.approx(entry_price * (1 + side * TAKE), rel=1e-8)
    assert stops > 0


def test_predictor_scores_by_hand(run: workflow.RunResult, bars: pd.DataFrame, signals: pd.DataFrame) -> None:
    """RMSE of the forecasts made at the test bars against the next close, and the naive last-close RMSE."""
    scores = json.loads((run.run_dir / "predictors.json").read_text())["seeds"]["5"]
    errors, naive = [], []
    for symbol in SYMBOLS:
        rows = signals.xs(symbol, level="symbol")
        forecast, close = rows["forecast_close"].to_numpy(), rows["close"].to_numpy()
        errors += list(forecast[:-1] - close[1:])  # the last test bar has no next bar in the data
        naive += list(close[:-1] - close[1:])
    assert scores["lstm"]["n"] == len(errors)
    assert scores["lstm"]["rmse"] == pytest.approx(float(np.sqrt(np.mean(np.square(errors)))), rel=1e-9)
    assert scores["lstm"]["naive_rmse"] == pytest.approx(float(np.sqrt(np.mean(np.square(naive)))), rel=1e-9)
    p_up = signals["p_up"].to_numpy()
    assert np.isfinite(p_up).all() and ((p_up > 0) & (p_up < 1)).all()
    assert 0.0 <= scores["cnn"]["accuracy"] <= 1.0


def test_signals_never_use_a_later_bar(run: workflow.RunResult, bars: pd.DataFrame) -> None:
    """The lookahead guard on the three signals the rules trade (forecast, P(up), F_t)."""
    models = run.run_dir / "models"
    lstm, cnn = LSTMRegressor.load(models / "lstm_seed_6.pt"), CNNClassifier.load(models / "cnn_seed_6.pt")
    agent = DirectRLAgent.load(models / "seed_6.npz")
    recent = bars[bars["timestamp"] >= pd.Timestamp("2006-01-01", tz="UTC")]
    assert_causal(
        lambda b: signals_frame(lstm, cnn, agent, b, TEST_START),
        recent,
        cutoffs=[FIRST_TEST_BAR, -40, -2],
        n_perturbations=1,
    )


def test_baselines_on_the_same_dates(run: workflow.RunResult, bars: pd.DataFrame, signals: pd.DataFrame) -> None:
    equity = _equity(run)
    dates = pd.DatetimeIndex(bars["timestamp"].unique()).tz_convert(None).sort_values()
    test_dates = dates[(dates >= pd.Timestamp("2007-01-01")) & (dates <= pd.Timestamp("2007-06-30"))]
    assert equity.index.equals(pd.DatetimeIndex(test_dates, name="timestamp"))
    assert pd.DatetimeIndex(signals.index.unique("timestamp")).tz_convert(None).equals(test_dates)
    assert (equity.iloc[0] == INITIAL).all() and equity.notna().all().all()


def test_hourly_bars(tmp_path: Path) -> None:
    """The combined strategy on hourly EUR/USD: windows in bars, a daily stop reset each UTC day."""
    equity, manifest = run_hourly(_config(tmp_path), tmp_path)
    assert manifest["combined"]["sessions"] == "UTC calendar days"
    predictors = json.loads((tmp_path / "runs" / manifest["run_id"] / "predictors.json").read_text())
    assert predictors["seeds"]["5"]["lstm"]["n"] == len(equity) - 1
