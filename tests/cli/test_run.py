"""`rltrade run / train / backtest / report` through the real command line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from typer.testing import CliRunner

from rltrade.cli import app

runner = CliRunner()


def _rltrade() -> str:
    exe = Path(sys.executable).parent / "rltrade"
    return str(exe) if exe.exists() else shutil.which("rltrade") or "rltrade"


def _tiny(tmp_path: Path, **agent: object) -> Path:
    config = {
        "name": "cli",
        "data": {"source": "sample:sp500", "symbols": ["KO", "PEP", "XOM"], "store": str(tmp_path / "store")},
        "env": {"params": {"look_back": 3}},
        "train": {"start": "2013-01-01", "end": "2014-12-31"},
        "test": {"start": "2015-01-01", "end": "2015-06-30"},
        "agent": {
            "timesteps": 256,
            "n_envs": 2,
            "episode_length": 32,
            "params": {"n_steps": 64, "batch_size": 64, "n_epochs": 1},
            **agent,
        },
        "baselines": {"names": ["buy_and_hold", "equal_weight", "random"]},
        "evaluation": {"n_boot": 100},
    }
    path = tmp_path / "cli.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_run_prints_the_metrics_table_and_leaves_a_report(tmp_path: Path) -> None:
    config = _tiny(tmp_path)
    env = {**os.environ, "COLUMNS": "200"}
    runs = tmp_path / "runs"
    result = subprocess.run(
        [_rltrade(), "run", str(config), "--runs-dir", str(runs), "--quiet"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    for name in ("ppo", "buy_and_hold", "equal_weight", "random", "Sharpe", "max DD"):
        assert name in result.stdout
    (run_dir,) = runs.iterdir()
    assert (run_dir / "report.html").stat().st_size > 1_000_000  # plotly.js inlined
    assert f"report: {run_dir / 'report.html'}" in result.stdout

    # backtest and report on the saved run, through the same command line
    again = runner.invoke(app, ["backtest", str(run_dir), "--start", "2015-07-01", "--end", "2015-12-31", "--quiet"])
    assert again.exit_code == 0, again.output
    (run_dir / "report.html").unlink()
    report = runner.invoke(app, ["report", str(run_dir)])
    assert report.exit_code == 0 and (run_dir / "report.html").exists()


def test_bad_config_fails_before_training_naming_the_field(tmp_path: Path) -> None:
    config = _tiny(tmp_path, algorithm="DQN", params={})
    result = runner.invoke(app, ["run", str(config), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 1
    assert "agent.algorithm" in result.output and "discrete" in result.output
    assert not (tmp_path / "runs").exists()
    assert not (tmp_path / "store").exists()  # nothing ingested either


def test_train_then_backtest(tmp_path: Path) -> None:
    config = _tiny(tmp_path, tensorboard=True)
    trained = runner.invoke(app, ["train", str(config), "--runs-dir", str(tmp_path / "runs"), "--quiet"])
    assert trained.exit_code == 0, trained.output
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert not (run_dir / "equity.csv").exists()
    assert list((run_dir / "tensorboard").rglob("events.out.tfevents.*")), "no TensorBoard logs"
    tested = runner.invoke(app, ["backtest", str(run_dir), "--quiet"])
    assert tested.exit_code == 0, tested.output
    assert (run_dir / "equity.csv").exists() and (run_dir / "report.html").exists()


def test_backtest_of_a_missing_run(tmp_path: Path) -> None:
    result = runner.invoke(app, ["backtest", str(tmp_path / "nope")])
    assert result.exit_code == 1 and "not a run directory" in result.output
