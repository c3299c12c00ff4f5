"""rltrade.runs: the one reader of run directories and the policy rebuilt from one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rltrade import workflow
from rltrade.config import ConfigError, parse_config
from rltrade.runs import Run, load_policy


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("store") / "bars"
    config = parse_config(
        {
            "name": "tiny",
            "seed": 5,
            "data": {"source": "sample:sp500", "symbols": ["AAPL", "KO", "XOM"], "store": str(store)},
            "env": {"type": "portfolio", "params": {"look_back": 3}},
            "train": {"start": "2013-01-01", "end": "2014-12-31"},
            "test": {"start": "2015-01-01", "end": "2015-06-30"},
            "agent": {
                "timesteps": 256,
                "n_envs": 2,
                "episode_length": 64,
                "params": {"n_steps": 64, "batch_size": 64, "n_epochs": 1},
                "policy_kwargs": {"net_arch": [8]},
            },
            "baselines": {"names": ["equal_weight", "random"]},
            "evaluation": {"n_boot": 100},
        }
    )
    return workflow.run(config, tmp_path_factory.mktemp("runs"), n_seeds=2, progress=False).run_dir


def test_run_open_reads_every_file(run_dir: Path) -> None:
    run = Run.open(run_dir)
    assert list(run.equity.columns) == ["ppo", "ppo_seed6", "equal_weight", "random", "random_seed6"]
    assert set(run.metrics) == set(run.equity.columns)
    assert run.summary is not None and run.summary["n_seeds"] == 2
    assert run.costs is not None and list(run.costs.columns) == list(run.equity.columns)
    assert run.config().name == "tiny" and run.manifest["seeds"] == [5, 6]
    assert run.annualization.periods_per_year == 252


def test_load_policy_trades_what_the_backtest_traded(run_dir: Path) -> None:
    run = Run.open(run_dir)
    config = run.config()
    bars, _ = workflow.load_data(config)
    for seed, column in ((5, "ppo"), (6, "ppo_seed6")):
        traj = load_policy(run_dir, seed).trade(bars)
        np.testing.assert_allclose(traj.values, run.equity[column].to_numpy(), rtol=1e-9)


def test_target_sees_only_the_bars_it_is_given(run_dir: Path) -> None:
    """The action after bar T from bars up to T equals the backtest's action at T, whatever bars follow."""
    policy = load_policy(run_dir)
    bars, _ = workflow.load_data(policy.config)
    cut = pd.Timestamp("2015-05-29", tz="UTC")
    env = policy.env(bars)  # the whole test range, bars after T included
    obs, info = env.reset(seed=policy.seed)
    actions = {}
    done = False
    while not done:
        action = policy(obs)
        actions[pd.Timestamp(info["timestamp"])] = np.asarray(action)
        obs, _, terminated, truncated, info = env.step(action)
        done = bool(terminated or truncated)
    at_cut = next(a for t, a in actions.items() if t.tz_localize(None) == cut.tz_localize(None))
    np.testing.assert_array_equal(np.asarray(policy.target(bars[bars["timestamp"] <= cut])), at_cut)


def test_load_policy_errors(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no model for seed 9"):
        load_policy(run_dir, 9)
    with pytest.raises(Exception, match="not a run directory"):
        load_policy(tmp_path)
