"""The main job end to end on embedded data: train, backtest against baselines, score, report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from rltrade import workflow
from rltrade.backtest.metrics import METRIC_NAMES
from rltrade.config import ConfigError, parse_config
from rltrade.errors import RLTradeError

SYMBOLS = ["AAPL", "JNJ", "KO", "WMT", "XOM"]


def _config(store: Path, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "tiny",
        "seed": 3,
        "data": {
            "source": "sample:sp500",
            "symbols": SYMBOLS,
            "store": str(store),
            "index": {"source": "sample:sp500_index", "symbol": "SP500"},
        },
        "features": {"names": ["log_return"], "scaler": "zscore"},
        "env": {"type": "portfolio", "params": {"look_back": 5}, "cost": {"model": "bps", "bps": 10}},
        "train": {"start": "2012-01-01", "end": "2014-12-31"},
        "test": {"start": "2015-01-01", "end": "2015-12-31"},
        "agent": {
            "algorithm": "PPO",
            "timesteps": 512,
            "n_envs": 4,
            "episode_length": 64,
            "params": {"n_steps": 64, "batch_size": 128, "n_epochs": 2},
            "policy_kwargs": {"net_arch": [16, 16]},
        },
        "baselines": {"min_variance_window": 126, "refit_every": 21},
        "evaluation": {"n_boot": 200},
    }
    for key, value in changes.items():
        node = data
        *parents, last = key.split(".")
        for part in parents:
            node = node[part]
        node[last] = value
    return data


@pytest.fixture(scope="module")
def two_seed_run(store: Path, tmp_path_factory: pytest.TempPathFactory) -> workflow.RunResult:
    config = parse_config(_config(store))
    return workflow.run(config, tmp_path_factory.mktemp("runs"), n_seeds=2, progress=False)


def test_run_writes_every_file(two_seed_run: workflow.RunResult) -> None:
    run_dir = two_seed_run.run_dir
    assert run_dir.name.startswith("tiny-")
    names = {p.name for p in run_dir.iterdir()}
    assert {"config.yaml", "manifest.json", "models", "equity.csv", "weights.csv", "metrics.json"} <= names
    assert {"summary.json", "report.html"} <= names
    assert sorted(p.name for p in (run_dir / "models").iterdir()) == ["seed_3.zip", "seed_4.zip"]
    assert not [p for p in run_dir.parent.iterdir() if p.name.startswith(".")], "temporary files left behind"


def test_equity_columns_and_dates(two_seed_run: workflow.RunResult) -> None:
    equity = pd.read_csv(two_seed_run.run_dir / "equity.csv", index_col="timestamp", parse_dates=True)
    assert list(equity.columns) == [
        "ppo",
        "ppo_seed4",
        "buy_and_hold",
        "equal_weight",
        "min_variance",
        "random",
        "random_seed4",
        "index",
    ]
    assert (equity.iloc[0] == 1_000_000).all()  # every strategy starts from the same capital on the same day
    assert equity.index[0] >= pd.Timestamp("2015-01-01") and equity.index[-1] <= pd.Timestamp("2015-12-31")
    assert len(equity) > 240 and equity.notna().all().all()
    assert equity["ppo"].iloc[-1] != equity["random"].iloc[-1]


def test_metrics_per_column(two_seed_run: workflow.RunResult) -> None:
    run_dir = two_seed_run.run_dir
    metrics = json.loads((run_dir / "metrics.json").read_text())
    equity = pd.read_csv(run_dir / "equity.csv", index_col="timestamp")
    assert list(metrics) == list(equity.columns)
    for name, values in metrics.items():
        assert set(METRIC_NAMES) <= set(values), name
        assert values["final_value"] == pytest.approx(equity[name].iloc[-1])
    assert metrics["index"]["turnover"] is None  # the index is not traded
    assert metrics["buy_and_hold"]["turnover"] < metrics["equal_weight"]["turnover"]


def test_seed_summary(two_seed_run: workflow.RunResult) -> None:
    summary = json.loads((two_seed_run.run_dir / "summary.json").read_text())
    assert summary["n_seeds"] == 2
    names = [s["name"] for s in summary["strategies"]]
    assert names == ["ppo", "random"]
    ppo = summary["strategies"][0]
    lo, hi = ppo["sharpe_ci"]
    assert lo < ppo["mean"]["sharpe"] < hi
    assert 0.0 <= ppo["psr"] <= 1.0
    assert summary["welch"]["vs"] == "random" and 0.0 <= summary["welch"]["p"] <= 1.0


def test_manifest(two_seed_run: workflow.RunResult) -> None:
    manifest = json.loads((two_seed_run.run_dir / "manifest.json").read_text())
    assert manifest["seeds"] == [3, 4]
    assert manifest["symbols"] == SYMBOLS
    assert len(manifest["dataset_hash"]) == 64
    assert manifest["feature_scaler"]["kind"] == "zscore"
    assert manifest["packages"]["stable-baselines3"] and manifest["packages"]["torch"]
    assert manifest["wall_time_s"] > 0
    config = yaml.safe_load((two_seed_run.run_dir / "config.yaml").read_text())
    assert config["agent"]["timesteps"] == 512


def test_weights_file(two_seed_run: workflow.RunResult) -> None:
    weights = pd.read_csv(two_seed_run.run_dir / "weights.csv")
    assert list(weights.columns) == ["timestamp", "strategy", *SYMBOLS, "cash"]
    assert set(weights["strategy"]) >= {"ppo", "buy_and_hold", "min_variance", "random"}
    assert (weights[[*SYMBOLS, "cash"]].sum(axis=1) - 1.0).abs().max() < 1e-9


def test_same_config_and_seed_reproduce_the_metrics(store: Path, tmp_path: Path) -> None:
    config = parse_config(_config(store, **{"baselines.names": ["random"]}))
    first = workflow.run(config, tmp_path / "a", progress=False)
    second = workflow.run(config, tmp_path / "b", progress=False)
    assert (first.run_dir / "metrics.json").read_bytes() == (second.run_dir / "metrics.json").read_bytes()
    assert (first.run_dir / "equity.csv").read_bytes() == (second.run_dir / "equity.csv").read_bytes()
    other = workflow.run(parse_config(_config(store, seed=4, **{"baselines.names": ["random"]})), tmp_path / "c")
    assert (other.run_dir / "metrics.json").read_bytes() != (first.run_dir / "metrics.json").read_bytes()


def test_backtest_on_another_range(
    two_seed_run: workflow.RunResult, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A re-backtest goes to its own subfolder with its range; the run's own results stay byte-identical."""
    import json
    import shutil

    run_dir = tmp_path / "copy"
    shutil.copytree(two_seed_run.run_dir, run_dir)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    with caplog.at_level("WARNING"):
        result = workflow.backtest(run_dir, "2016-01-01", "2016-02-26", progress=False)
    assert result.run_dir == run_dir / "backtests" / "2016-01-01_2016-02-26"
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before
    equity = pd.read_csv(result.run_dir / "equity.csv", index_col="timestamp", parse_dates=True)
    assert equity.index[0] >= pd.Timestamp("2016-01-01") and equity.index[-1] <= pd.Timestamp("2016-02-26")
    assert set(result.metrics) == set(equity.columns)
    info = json.loads((result.run_dir / "backtest.json").read_text())
    assert info["test"] == {"start": "2016-01-01", "end": "2016-02-26"}
    assert info["first_bar"] == str(equity.index[0].date()) and info["last_bar"] == str(equity.index[-1].date())
    assert "mean little" in info["warning"] and "mean little" in caplog.text  # under 3 months
    assert not list((run_dir / "backtests").glob(".*"))  # no partial folder left
    with pytest.raises(ConfigError, match=r"^--start 2014-06-01 is inside the training range"):
        workflow.backtest(run_dir, "2014-06-01", "2015-06-30", progress=False)
    with pytest.raises(ConfigError, match=r"^--start 'yesterday' is not a date"):
        workflow.backtest(run_dir, "yesterday", None, progress=False)


def test_backtest_needs_a_run_directory(tmp_path: Path) -> None:
    with pytest.raises(RLTradeError, match="not a run directory"):
        workflow.backtest(tmp_path, progress=False)


def test_dates_outside_the_data_fail_before_training(store: Path, tmp_path: Path) -> None:
    config = parse_config(_config(store, **{"test.end": "2024-06-30"}))
    with pytest.raises(ConfigError, match=r"test.end 2024-06-30 is after the data"):
        workflow.run(config, tmp_path / "runs", progress=False)
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


def test_unknown_symbol_fails_before_training(store: Path, tmp_path: Path) -> None:
    config = parse_config(_config(store, **{"data.symbols": ["AAPL", "NOPE"]}))
    with pytest.raises(RLTradeError, match="NOPE"):
        workflow.run(config, tmp_path / "runs", progress=False)
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


@pytest.mark.parametrize(
    ("env", "algorithm", "params"),
    [
        ({"type": "stock_trading", "params": {"hmax": 50}}, "A2C", {"n_steps": 8}),
        ({"type": "single_asset", "params": {"state": "0", "look_back": 5}}, "DQN", {"learning_starts": 64}),
        ({"type": "portfolio", "params": {"look_back": 3}}, "SAC", {"learning_starts": 64, "batch_size": 32}),
    ],
    ids=["stock_trading-A2C", "single_asset-DQN", "portfolio-SAC"],
)
def test_other_envs_and_algorithms(
    store: Path, tmp_path: Path, env: dict[str, Any], algorithm: str, params: dict[str, Any]
) -> None:
    symbols = ["KO"] if env["type"] == "single_asset" else ["KO", "PEP", "XOM"]
    data = _config(store, **{"data.symbols": symbols, "env": env, "agent.algorithm": algorithm})
    data["agent"].update({"params": params, "timesteps": 256, "n_envs": 2})
    data["features"] = {"names": ["log_return", "sma_20"], "scaler": "minmax"}
    result = workflow.run(parse_config(data), tmp_path, progress=False)
    equity = pd.read_csv(result.run_dir / "equity.csv", index_col="timestamp")
    column = algorithm.lower()
    assert equity.columns[0] == column and "random" in equity.columns and "buy_and_hold" in equity.columns
    assert (equity.iloc[0] == 1_000_000).all()
    if env["type"] != "portfolio":
        trades = pd.read_csv(result.run_dir / "trades.csv")
        assert set(trades["symbol"]) <= set(symbols) and len(trades) > 0
