"""The main job on real data with the two traps a new user hits: hourly FX bars and a stock split.

Each result is checked against an independent computation from the files the run wrote.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rltrade import workflow
from rltrade.config import parse_config

SPLIT_CSV = Path(__file__).parents[1] / "fixtures" / "real" / "aapl_ibm_msft_2005_split.csv"
TINY_PPO = {
    "algorithm": "PPO",
    "timesteps": 256,
    "n_envs": 2,
    "episode_length": 64,
    "params": {"n_steps": 64, "batch_size": 64, "n_epochs": 1},
    "policy_kwargs": {"net_arch": [8]},
}


def _eurusd(store: Path) -> dict[str, Any]:
    return {
        "name": "eurusd-1h",
        "data": {"source": "sample:eurusd", "store": str(store), "freq": "1h"},
        "env": {"type": "single_asset", "params": {"state": "1", "look_back": 3}, "cost": {"model": "bps", "bps": 1}},
        "train": {"start": "2017-05-01", "end": "2017-12-31"},
        "test": {"start": "2018-01-01", "end": "2018-02-07"},
        "agent": TINY_PPO,
        "baselines": {"names": ["buy_and_hold", "random"]},
        "evaluation": {"n_boot": 100},
    }


@pytest.fixture(scope="module")
def hourly_run(tmp_path_factory: pytest.TempPathFactory) -> workflow.RunResult:
    store = tmp_path_factory.mktemp("store") / "bars"
    return workflow.run(parse_config(_eurusd(store)), tmp_path_factory.mktemp("runs"), progress=False)


def test_hourly_files_keep_the_time_of_day(hourly_run: workflow.RunResult) -> None:
    equity = pd.read_csv(hourly_run.run_dir / "equity.csv", index_col="timestamp", parse_dates=True)
    assert equity.index.is_unique and len(equity) > 500  # one row per hourly bar, not per date
    assert (equity.index != equity.index.normalize()).any()
    assert equity.index.to_series().diff().dropna().min() == pd.Timedelta(hours=1)
    weights = pd.read_csv(hourly_run.run_dir / "weights.csv", parse_dates=["timestamp"])
    assert weights.groupby("strategy")["timestamp"].nunique().min() == len(equity)
    costs = pd.read_csv(hourly_run.run_dir / "costs.csv", index_col="timestamp", parse_dates=True)
    assert costs.index.equals(equity.index) and (costs.to_numpy() >= 0).all()


def test_hourly_metrics_annualise_with_fx_hours(hourly_run: workflow.RunResult) -> None:
    run_dir = hourly_run.run_dir
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["annualization"]["periods_per_year"] == 24 * 260
    assert "24×5" in manifest["annualization"]["basis"]
    equity = pd.read_csv(run_dir / "equity.csv", index_col="timestamp", parse_dates=True)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for name in ("ppo", "buy_and_hold", "random"):  # equity.csv has 10 significant digits: rel 1e-6
        values = equity[name].to_numpy()
        r = values[1:] / values[:-1] - 1.0
        n = len(r)
        annual = (values[-1] / values[0]) ** (6240 / n) - 1.0  # independent: geometric, 6240 bars a year
        assert metrics[name]["annual_return"] == pytest.approx(annual, rel=1e-6, abs=1e-9)
        assert metrics[name]["annual_volatility"] == pytest.approx(np.std(r, ddof=1) * math.sqrt(6240), rel=1e-6)
        if np.std(r) > 0:
            sharpe = np.mean(r) / np.std(r, ddof=1) * math.sqrt(6240)
            assert metrics[name]["sharpe"] == pytest.approx(sharpe, rel=1e-6)


def test_split_is_not_a_loss_in_the_main_job(tmp_path: Path) -> None:
    """A user's CSV with adj_close and a real 2:1 split: buy-and-hold matches the adjusted closes."""
    csv = tmp_path / "mine.csv"
    shutil.copy(SPLIT_CSV, csv)
    config = parse_config(
        {
            "name": "split",
            "data": {"source": f"csv:{csv}", "store": str(tmp_path / "store")},
            "env": {"type": "portfolio", "params": {"look_back": 2}, "cost": {"model": "none"}, "timing": "next_close"},
            "train": {"start": "2005-01-03", "end": "2005-02-14"},
            "test": {"start": "2005-02-15", "end": "2005-04-29"},
            "agent": {**TINY_PPO, "episode_length": 16},
            "baselines": {"names": ["buy_and_hold", "random"]},
            "evaluation": {"n_boot": 100},
        }
    )
    result = workflow.run(config, tmp_path / "runs", progress=False)
    equity = pd.read_csv(result.run_dir / "equity.csv", index_col="timestamp", parse_dates=True)
    bars = pd.read_csv(SPLIT_CSV, parse_dates=["timestamp"])
    adj = bars.pivot(index="timestamp", columns="symbol", values="adj_close").loc[equity.index]
    shares = 1e6 / 3 / adj.iloc[1]  # decided at the first test bar, filled at the next close
    expected = (adj * shares).sum(axis=1)
    expected.iloc[0] = 1e6
    np.testing.assert_allclose(equity["buy_and_hold"].to_numpy(), expected.to_numpy(), rtol=1e-9)
    assert equity["buy_and_hold"].pct_change().loc["2005-02-28"] > -0.02
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["prices"] == "adjusted"
