"""The ensemble strategy: two quarters at a small timesteps scale on embedded data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.strategies.ensemble_runs import ensemble_config

from rltrade.config import ConfigError, parse_config
from rltrade.strategies.base import check_config
from rltrade.strategies.ensemble import Quarter, quarter_schedule, run_ensemble, turbulence_threshold


def test_two_quarters_write_the_run_directory(sequential_run: Path) -> None:
    quarters = pd.read_csv(sequential_run / "quarters.csv")
    assert list(quarters["quarter"]) == [0, 1]
    for column in ("train_start", "train_end", "val_start", "val_end", "trade_start", "trade_end", "picked"):
        assert column in quarters.columns
    assert {"sharpe_ppo", "sharpe_a2c", "sharpe_ddpg", "turbulence_threshold"} <= set(quarters.columns)
    # the pick is the agent with the best validation Sharpe
    for _, row in quarters.iterrows():
        sharpes = {a: row[f"sharpe_{a}"] for a in ("ppo", "a2c", "ddpg")}
        assert row["picked"] == max(sharpes, key=lambda a: -np.inf if np.isnan(sharpes[a]) else sharpes[a])
    # windows: training grows from train.start, validation right before the quarter, quarters chained
    assert quarters["train_start"].nunique() == 1
    assert (quarters["train_end"] == quarters["val_start"]).all() and (
        quarters["val_end"] == quarters["trade_start"]
    ).all()
    assert quarters["trade_start"].iloc[1] == quarters["trade_end"].iloc[0]
    assert quarters["trade_start"].iloc[0] >= "2015-01-01"

    equity = pd.read_csv(sequential_run / "equity.csv", index_col="timestamp")
    assert list(equity.columns[:4]) == ["ensemble", "ppo", "a2c", "ddpg"]
    assert {"buy_and_hold", "equal_weight", "min_variance", "random", "index"} <= set(equity.columns)
    assert len(equity) == 2 * 63 + 1 and (equity.iloc[0] == 1_000_000).all()
    metrics = json.loads((sequential_run / "metrics.json").read_text())
    assert list(metrics) == list(equity.columns)
    assert (sequential_run / "report.html").exists()
    manifest = json.loads((sequential_run / "manifest.json").read_text())
    assert manifest["strategy"] == "ensemble" and manifest["timesteps"] == {"PPO": 1024, "A2C": 512, "DDPG": 256}


def test_the_ensemble_follows_the_picked_agent(sequential_run: Path) -> None:
    quarters = pd.read_csv(sequential_run / "quarters.csv")
    equity = pd.read_csv(sequential_run / "equity.csv", index_col="timestamp")
    first = quarters.iloc[0]
    # quarter 0 starts from the same cash for everyone: the ensemble is its pick, bar for bar
    q0 = equity.loc[first["trade_start"] : first["trade_end"]]
    np.testing.assert_array_equal(q0["ensemble"].to_numpy(), q0[first["picked"]].to_numpy())


def test_cash_and_holdings_carry_over(sequential_run: Path) -> None:
    weights = pd.read_csv(sequential_run / "weights.csv")
    quarters = pd.read_csv(sequential_run / "quarters.csv")
    boundary = quarters["trade_end"].iloc[0]
    ens = weights[weights["strategy"] == "ensemble"].set_index("timestamp")
    assert boundary in ens.index  # one row at the boundary bar: no gap and no duplicate
    assert ens.index.is_unique


def test_ray_gives_the_same_result_as_sequential(store: Path, sequential_run: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    config = parse_config(ensemble_config(store))
    result = run_ensemble(config, tmp_path, timesteps_scale=0.25, max_quarters=2, use_ray=True, progress=False)
    for name in ("equity.csv", "quarters.csv", "metrics.json", "weights.csv"):
        assert (result.run_dir / name).read_bytes() == (sequential_run / name).read_bytes(), name


def test_without_ray_and_without_train_end(
    store: Path, sequential_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No Ray installed: the agents train one after the other, the run says so; train.end is not needed."""
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as in the base install
    data = ensemble_config(store)
    data["train"] = {"start": data["train"]["start"]}
    stages: list[str] = []
    result = run_ensemble(
        parse_config(data),
        tmp_path,
        timesteps_scale=0.25,
        max_quarters=2,
        use_ray=True,
        progress=False,
        on_stage=stages.append,
    )
    assert any("Ray is not installed" in line and "one after the other" in line for line in stages)
    assert json.loads((result.run_dir / "manifest.json").read_text())["ray"]["used"] is False
    for name in ("equity.csv", "quarters.csv", "metrics.json", "weights.csv"):
        assert (result.run_dir / name).read_bytes() == (sequential_run / name).read_bytes(), name


def test_resume_gives_the_same_result(store: Path, sequential_run: Path, tmp_path: Path) -> None:
    interrupted = tmp_path / "interrupted"
    shutil.copytree(sequential_run, interrupted)
    for name in ("equity.csv", "quarters.csv", "metrics.json", "summary.json", "weights.csv", "report.html"):
        (interrupted / name).unlink()
    for path in (interrupted / "state" / "seed_1").glob("q001.*"):
        path.unlink()  # as if killed during the second quarter
    result = run_ensemble(parse_config(ensemble_config(store)), resume=interrupted, use_ray=False, progress=False)
    assert result.run_dir == interrupted
    for name in ("equity.csv", "quarters.csv", "metrics.json"):
        assert (interrupted / name).read_bytes() == (sequential_run / name).read_bytes(), name
    # the resumed quarter keeps its pick again (a zip file: its bytes hold the time it was written)
    meta = json.loads((interrupted / "state" / "seed_1" / "q001.json").read_text())
    assert (interrupted / "models" / "seed_1" / meta["decision"]["model"]).is_file()
    assert (sequential_run / "models" / "seed_1" / meta["decision"]["model"]).is_file()


def test_resume_of_a_run_written_before_the_models_were_kept(store: Path, sequential_run: Path, tmp_path: Path) -> None:
    """A finished quarter of state version 1 (no decision, no model) still resumes; the new quarters keep theirs."""
    old = tmp_path / "old"
    shutil.copytree(sequential_run, old)
    for name in ("equity.csv", "quarters.csv", "metrics.json", "summary.json", "weights.csv", "report.html"):
        (old / name).unlink()
    shutil.rmtree(old / "models")
    state = old / "state" / "seed_1"
    meta = json.loads((state / "q000.json").read_text())
    del meta["decision"]
    meta["version"] = 1
    (state / "q000.json").write_text(json.dumps(meta, indent=1))
    for path in state.glob("q001.*"):
        path.unlink()
    run_ensemble(parse_config(ensemble_config(store)), resume=old, use_ray=False, progress=False)
    for name in ("equity.csv", "quarters.csv", "metrics.json", "weights.csv"):
        assert (old / name).read_bytes() == (sequential_run / name).read_bytes(), name
    assert json.loads((state / "q000.json").read_text())["version"] == 1  # a finished quarter is not rewritten
    assert "decision" in json.loads((state / "q001.json").read_text())
    assert [p.name for p in (old / "models" / "seed_1").iterdir()] == [
        p.name for p in (sequential_run / "models" / "seed_1").glob("q001_*")
    ]


def test_quarter_schedule_and_turbulence_rule() -> None:
    times = np.arange(1000).astype("datetime64[D]")
    quarters = quarter_schedule(times, 10, 600, 800, 63, 63)
    assert [(q.trade_start, q.trade_end) for q in quarters] == [(600, 663), (663, 726), (726, 789), (789, 800)]
    assert all(q.train_end == q.val_start == q.trade_start - 63 and q.train_start == 10 for q in quarters)
    with pytest.raises(ConfigError, match="training bars"):
        quarter_schedule(times, 500, 600, 800, 63, 63)
    turbulence = np.concatenate([np.arange(100.0), np.full(20, 500.0)])
    quarter = Quarter(0, 0, 99, 99, 119, 150)
    assert turbulence_threshold(turbulence, quarter, 0.9, 63) == pytest.approx(np.quantile(np.arange(100.0), 0.9))
    calm = np.concatenate([np.arange(100.0), np.full(20, 1.0)])
    assert turbulence_threshold(calm, quarter, 0.9, 63) == 99.0  # calm: the in-sample maximum


def test_config_errors() -> None:
    base = ensemble_config(Path("unused"))
    with pytest.raises(ConfigError, match=r"env\.type"):
        parse_config(base | {"env": {"type": "portfolio"}})
    with pytest.raises(ConfigError, match=r"ensemble.agents\[1\]"):
        parse_config(base | {"ensemble": {"agents": ["PPO", "XYZ"]}})
    with pytest.raises(ConfigError, match="DQN"):
        parse_config(base | {"ensemble": {"agents": ["PPO", "DQN"], "timesteps": {"PPO": 10, "DQN": 10}}})
    with pytest.raises(ConfigError, match=r"ensemble\.params\.PPO\.n_stepz"):  # the agents' registry checks it
        check_config(parse_config(base | {"ensemble": {"params": {"PPO": {"n_stepz": 5}}}}))


def test_backtest_refuses_an_ensemble_run(sequential_run: Path) -> None:
    from rltrade import workflow

    with pytest.raises(ConfigError, match="ensemble run"):
        workflow.backtest(sequential_run, progress=False)
