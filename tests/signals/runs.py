"""Tiny trained runs per test session, shared by tests/signals, tests/live and tests/cli/test_signals_cli.py.

PPO on the portfolio env over three OHLCV stocks of the embedded bokeh sample (AAPL, IBM,
MSFT), 256 timesteps (a few seconds): trained on 2009-2010, backtested on 2011-01..03 with
``next_open`` fills (the default for bars with opens) and 10 bps costs. :func:`next_close_copy`
gives the same model under ``next_close`` fills, as a second run directory.

:func:`strategy_run` trains a run of seed 002's strategies on the same stocks and dates in a few
seconds: ``direct_rl`` (the direct agent, long/short weights, ``next_close`` fills) and
``combined`` (the LSTM, the CNN and the direct agent under the trading rules, stops off, long
only, ``next_open`` fills); and it hands out the ensemble run of tests/strategies.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

SYMBOLS = ["AAPL", "IBM", "MSFT"]
CONFIG = {
    "name": "signals",
    "seed": 7,
    "data": {"source": "sample:stocks", "symbols": SYMBOLS},
    "features": {"names": ["log_return"], "scaler": "zscore"},
    "env": {"type": "portfolio", "params": {"look_back": 3}, "cost": {"model": "bps", "bps": 10}},
    "train": {"start": "2009-01-01", "end": "2010-12-31"},
    "test": {"start": "2011-01-01", "end": "2011-03-31"},
    "agent": {
        "timesteps": 256,
        "n_envs": 2,
        "episode_length": 32,
        "params": {"n_steps": 64, "batch_size": 64, "n_epochs": 1},
        "policy_kwargs": {"net_arch": [8]},
    },
    "baselines": {"names": ["equal_weight"]},
    "evaluation": {"n_boot": 100},
}


PREDICTOR = {"window": 30, "size": 8, "epochs": 2, "patience": 1, "batch_size": 256}
DIRECT_AGENT = {"kind": "direct", "lookback": 8, "epochs": 20, "patience": 5, "validation_bars": 252}
_SEED_002: dict = {  # what the seed-002 runs share: the three stocks, 2007-10 to train, 2011 Q1 to test
    "data": {"source": "sample:stocks", "symbols": SYMBOLS},
    "env": {"type": "portfolio", "params": {"look_back": 1}, "cost": {"model": "bps", "bps": 10}},
    "train": {"start": "2007-01-01", "end": "2010-12-31"},
    "test": {"start": "2011-01-01", "end": "2011-03-31"},
    "agent": DIRECT_AGENT,
    "baselines": {"names": ["equal_weight"]},
    "evaluation": {"n_boot": 100},
}
STRATEGY_CONFIGS: dict[str, dict] = {
    "combined": {
        **_SEED_002,
        "name": "combined-live",
        "seed": 0,
        "strategy": "combined",
        "env": {**_SEED_002["env"], "timing": "next_open"},
        "combined": {
            "lstm": PREDICTOR,
            "cnn": PREDICTOR,
            # no stops (a live loop learns of one at the close, the backtest fills it inside the bar) and no
            # shorts; exits as soon as the entry conditions fail
            "rules": {"allow_short": False, "stop_loss": None, "take_profit": None, "exit_rule": "conditions"},
        },
    },
    "direct_rl": {
        **_SEED_002,
        "name": "direct-signals",
        "seed": 3,
        "strategy": "direct_rl",
        "env": {**_SEED_002["env"], "timing": "next_close"},
    },
}


@dataclass(frozen=True)
class TrainedRun:
    """A trained and backtested run directory and the bar store it reads (leave both unchanged)."""

    run_dir: Path
    store: Path


_TRAINED: dict[str, TrainedRun] = {}


def trained_run(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    """The session's run (trained on first use)."""
    if "run" not in _TRAINED:
        from rltrade import workflow
        from rltrade.config import parse_config

        root = tmp_path_factory.mktemp("signals-run")
        store = root / "store"
        config = parse_config({**CONFIG, "data": {**CONFIG["data"], "store": str(store)}})
        run_dir = workflow.train(config, root / "runs", 1, progress=False)
        workflow.backtest(run_dir, progress=False)
        _TRAINED["run"] = TrainedRun(run_dir, store)
    return _TRAINED["run"]


def next_close_copy(run: TrainedRun, folder: Path) -> Path:
    """A copy of ``run`` whose config fills at the next close (another run id, the same model)."""
    target = folder / f"{run.run_dir.name}-next-close"
    shutil.copytree(run.run_dir, target)
    config = yaml.safe_load((target / "config.yaml").read_text())
    config["env"]["timing"] = "next_close"
    (target / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["run_id"] = target.name
    (target / "manifest.json").write_text(json.dumps(manifest))
    return target


def strategy_run(tmp_path_factory: pytest.TempPathFactory, strategy: str) -> TrainedRun:
    """The session's run of ``strategy`` (``direct_rl``, ``combined`` or ``ensemble``; trained on first use).

    The ensemble run is tests/strategies' (two quarters of 2015 on five S&P 500 stocks).
    """
    if strategy == "ensemble":
        from tests.strategies.ensemble_runs import trained_ensemble

        return TrainedRun(*trained_ensemble(tmp_path_factory))
    if strategy not in _TRAINED:
        from rltrade import workflow
        from rltrade.config import parse_config

        base = STRATEGY_CONFIGS[strategy]
        root = tmp_path_factory.mktemp(strategy)
        store = root / "store"
        config = parse_config({**base, "data": {**base["data"], "store": str(store)}})
        _TRAINED[strategy] = TrainedRun(workflow.run(config, root / "runs", 1, progress=False).run_dir, store)
    return _TRAINED[strategy]
