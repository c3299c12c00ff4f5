"""``strategy: direct_rl`` end to end on the embedded S&P 500 sample: train, trade long/short, score, report.

The equity of the run is recomputed here from the saved model and the bars alone: the positions
by a plain loop over Moody & Saffell's recurrence, the portfolio by a plain loop over the env's
accounting (next-close fills, 10 bp paid out of the portfolio).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rltrade import workflow
from rltrade.agents.direct import DirectRLAgent
from rltrade.config import ConfigError, parse_config
from rltrade.runs import Run
from rltrade.strategies.base import load_data
from rltrade.strategies.direct_rl import DirectRL, close_frame, rl_positions
from rltrade.testing import assert_causal

SYMBOLS = ["AAPL", "JNJ", "KO"]
LOOKBACK = 5
BPS = 10.0


def _config(store: Path, changes: dict[str, Any] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "tiny-direct",
        "seed": 3,
        "strategy": "direct_rl",
        "data": {
            "source": "sample:sp500",
            "symbols": SYMBOLS,
            "store": str(store),
            "index": {"source": "sample:sp500_index", "symbol": "SP500"},
        },
        "env": {"type": "portfolio", "params": {"look_back": 1}, "cost": {"model": "bps", "bps": BPS}},
        "train": {"start": "2012-01-01", "end": "2014-12-31"},
        "test": {"start": "2015-01-01", "end": "2015-06-30"},
        "agent": {"kind": "direct", "lookback": LOOKBACK, "epochs": 15, "patience": 5, "validation_bars": 60},
        "baselines": {"min_variance_window": 60, "refit_every": 21},
        "evaluation": {"n_boot": 200},
    }
    return merged(data, changes or {})


def hourly(store: Path) -> dict[str, Any]:
    """Changes that move a test config to the embedded hourly EUR/USD bars (one symbol, no index)."""
    return {
        "data": {"source": "sample:eurusd", "freq": "1h", "store": str(store), "symbols": None, "index": None},
        "baselines": {"names": ["buy_and_hold", "random"]},
        "train": {"start": "2017-09-01", "end": "2017-12-31"},
        "test": {"start": "2018-01-01", "end": "2018-01-20"},
        "agent": {"validation_bars": 200},
    }


def merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` applied: a nested dict merges into the section it names, anything else replaces."""
    out = dict(base)
    for key, value in changes.items():
        nested = isinstance(value, dict) and isinstance(out.get(key), dict) and value
        out[key] = merged(out[key], value) if nested else value
    return out


@pytest.fixture(scope="module")
def run(store: Path, tmp_path_factory: pytest.TempPathFactory) -> workflow.RunResult:
    config = parse_config(_config(store))
    return workflow.run(config, tmp_path_factory.mktemp("runs"), n_seeds=2, progress=False)


@pytest.fixture(scope="module")
def closes(run: workflow.RunResult) -> pd.DataFrame:
    """The traded closes, from the store (not from the strategy's market): dates × symbols."""
    bars, _ = load_data(Run.open(run.run_dir).config())
    frame = bars.pivot(index="timestamp", columns="symbol", values="close")[SYMBOLS]
    frame.index = pd.DatetimeIndex(frame.index).tz_convert(None)
    return frame


def _equity(run: workflow.RunResult) -> pd.DataFrame:
    return pd.read_csv(run.run_dir / "equity.csv", index_col="timestamp", parse_dates=True)


def test_run_directory(run: workflow.RunResult) -> None:
    run_dir = run.run_dir
    names = {p.name for p in run_dir.iterdir()}
    assert {"config.yaml", "manifest.json", "models", "equity.csv", "weights.csv", "metrics.json"} <= names
    assert {"summary.json", "costs.csv", "report.html"} <= names
    assert sorted(p.name for p in (run_dir / "models").iterdir()) == ["seed_3.npz", "seed_4.npz"]
    assert not [p for p in run_dir.parent.iterdir() if p.name.startswith(".")], "temporary files left behind"
    opened = Run.open(run_dir)
    assert list(opened.equity.columns) == [
        "direct_rl",
        "direct_rl_seed4",
        "buy_and_hold",
        "equal_weight",
        "min_variance",
        "random",
        "random_seed4",
        "index",
    ]
    assert opened.manifest["strategy"] == "direct_rl" and opened.manifest["seeds"] == [3, 4]
    assert opened.manifest["symbols"] == sorted(SYMBOLS)
    report = (run_dir / "report.html").read_text(encoding="utf-8")
    assert 'id="seed002"' in report and "Test Sharpe, training convention" in report
    assert "close-to-close convention" in report and "next_close" in report


def test_validation_window_is_the_end_of_training(run: workflow.RunResult, closes: pd.DataFrame) -> None:
    ranges = json.loads((run.run_dir / "manifest.json").read_text())["ranges"]
    dates = closes.index
    train = dates[(dates >= "2012-01-01") & (dates <= "2014-12-31")]
    assert ranges["validation"] == {"start": str(train[-60].date()), "end": str(train[-1].date())}
    assert ranges["train"] == {"start": str(train[0].date()), "end": str(train[-61].date())}
    assert pd.Timestamp(ranges["validation"]["end"]) < pd.Timestamp(ranges["test"]["start"])


def _positions_by_loop(agent: DirectRLAgent, returns: np.ndarray) -> np.ndarray:
    """F_t = tanh(θ·[1, r_t/s, …, r_{t−M+1}/s, F_{t−1}]) element by element, from flat."""
    n_rows, n_assets = returns.shape
    theta = np.broadcast_to(agent.theta, (n_assets, agent.lookback + 2))
    out = np.zeros((n_rows, n_assets))
    previous = np.zeros(n_assets)
    for t in range(agent.lookback - 1, n_rows):
        for i in range(n_assets):
            x = [1.0] + [returns[t - j, i] / agent.scale[i] for j in range(agent.lookback)] + [previous[i]]
            out[t, i] = math.tanh(sum(a * b for a, b in zip(theta[i], x, strict=True)))
        previous = out[t].copy()
    return out


def _portfolio_by_loop(weights: np.ndarray, close: np.ndarray, initial: float, rate: float) -> np.ndarray:
    """Values at each close of a portfolio rebalanced to ``weights[k]`` at close k+1, costs out of the portfolio."""
    cash, shares, values = initial, np.zeros(close.shape[1]), [initial]
    for k in range(len(close) - 1):
        price = close[k + 1]
        value = cash + shares @ price
        mu = 1.0
        for _ in range(200):  # the post-cost fraction mu solves mu·V + rate·Σ|w·mu·V − h·p| = V
            mu = 1.0 - rate * np.abs(weights[k] * mu * value - shares * price).sum() / value
        target = weights[k] * mu * value / price
        cost = rate * np.abs((target - shares) * price).sum()
        cash, shares = value - target @ price - cost, target
        values.append(cash + shares @ price)
    return np.array(values)


@pytest.mark.parametrize(("seed", "column"), [(3, "direct_rl"), (4, "direct_rl_seed4")])
def test_equity_recomputed_from_the_saved_model(
    run: workflow.RunResult, closes: pd.DataFrame, seed: int, column: str
) -> None:
    agent = DirectRLAgent.load(run.run_dir / "models" / f"seed_{seed}.npz")
    equity = _equity(run)[column]
    first, last = (int(np.flatnonzero(closes.index == equity.index[i])[0]) for i in (0, -1))
    assert last - first + 1 == len(equity)
    prices = closes.to_numpy()
    history = prices[first - LOOKBACK : last + 1]
    returns = history[1:] / history[:-1] - 1.0  # row j: the return of bar first − LOOKBACK + 1 + j
    weights = _positions_by_loop(agent, returns)[LOOKBACK - 1 :] / len(SYMBOLS)
    assert np.abs(weights).sum(axis=1).max() <= 1.0
    assert np.abs(weights).sum() > 0  # the agent trades: the comparison below is not of two flat lines
    expected = _portfolio_by_loop(weights, prices[first : last + 1], 1_000_000.0, BPS / 10_000)
    np.testing.assert_allclose(equity.to_numpy(), expected, rtol=1e-8)


def test_positions_never_use_a_later_bar(run: workflow.RunResult) -> None:
    """The lookahead guard on the weights the strategy trades: bars after t truncated or perturbed, F_t unchanged."""
    config = Run.open(run.run_dir).config()
    bars, _ = load_data(config)
    bars = bars[bars["symbol"].isin(SYMBOLS) & (bars["timestamp"] >= pd.Timestamp("2014-10-01", tz="UTC"))]
    agent = DirectRLAgent.load(run.run_dir / "models" / "seed_3.npz")
    start = pd.Timestamp("2015-01-02", tz="UTC")
    assert_causal(lambda b: rl_positions(agent, close_frame(b), start), bars, cutoffs=[start, -60, -2])


def test_baselines_on_the_same_dates(run: workflow.RunResult, closes: pd.DataFrame) -> None:
    equity = _equity(run)
    test_dates = closes.index[(closes.index >= "2015-01-01") & (closes.index <= "2015-06-30")]
    assert equity.index.equals(pd.DatetimeIndex(test_dates, name="timestamp"))
    assert (equity.iloc[0] == 1_000_000).all()
    assert equity.notna().all().all()
    costs = pd.read_csv(run.run_dir / "costs.csv", index_col="timestamp", parse_dates=True)
    assert costs.index.equals(equity.index)
    # the same 10 bp on every strategy: equal weight pays about 10 bp of its first investment at the first fill
    assert costs["equal_weight"].iloc[1] == pytest.approx(1_000_000 * BPS / 10_000, rel=0.01)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"env": {"type": "stock_trading", "params": {}}}, "env.type"),
        ({"env": {"params": {"long_short": False}}}, "env.params.long_short"),
        ({"env": {"params": {"leverage": 2.0}}}, "env.params.leverage"),
    ],
)
def test_config_the_weights_env_cannot_trade(store: Path, change: dict[str, Any], field: str) -> None:
    config = parse_config(_config(store, change))
    with pytest.raises(ConfigError, match=field):
        DirectRL().check(config)


def test_validation_longer_than_training_fails_before_training(store: Path, tmp_path: Path) -> None:
    config = parse_config(_config(store, {"agent": {"validation_bars": 800}}))
    with pytest.raises(ConfigError, match="validation_bars 800"):
        workflow.run(config, tmp_path / "runs", progress=False)
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


def run_hourly(config: dict[str, Any], tmp_path: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Run ``config`` moved to hourly EUR/USD with one seed; its equity and manifest, checked for what every
    hourly run must show: the hours kept in the files, the bars per year of a 24×5 market, and a
    validation window (counted in bars) that ends before the first test bar."""
    result = workflow.run(parse_config(merged(config, hourly(tmp_path / "store"))), tmp_path / "runs", progress=False)
    equity = _equity(result)
    stamps = pd.DatetimeIndex(equity.index)
    assert (stamps != stamps.normalize()).any()
    assert result.annualization.periods_per_year == 6240
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert pd.Timestamp(manifest["ranges"]["validation"]["end"]) < stamps[0]
    return equity, manifest


def test_hourly_bars(tmp_path: Path) -> None:
    """The same strategy on hourly EUR/USD: bar counts, not days."""
    equity, manifest = run_hourly(_config(tmp_path), tmp_path)
    assert manifest["symbols"] == ["EURUSD"] and len(equity) > 200
