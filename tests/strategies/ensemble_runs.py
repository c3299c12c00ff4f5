"""The small ensemble run of tests/strategies: two quarters of 2015 at ``timesteps_scale=0.25``, no Ray.

PPO, A2C and DDPG on five stocks of the embedded S&P 500 sample (close-only, ``next_close``
fills, ``hmax`` 100); :func:`ensemble_run` trains it once per test session (the ``sequential_run``
fixture of tests/strategies/conftest.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

SYMBOLS = ["AAPL", "JNJ", "KO", "WMT", "XOM"]


def ensemble_config(store: Path, **extra: Any) -> dict[str, Any]:
    """The run's config data (``extra`` replaces top-level sections)."""
    data: dict[str, Any] = {
        "name": "ens",
        "seed": 1,
        "strategy": "ensemble",
        "data": {
            "source": "sample:sp500",
            "symbols": SYMBOLS,
            "store": str(store),
            "index": {"source": "sample:sp500_index", "symbol": "SP500"},
        },
        "features": {"names": ["macd", "rsi_30", "sma_30"]},
        "env": {"type": "stock_trading", "params": {"hmax": 100}, "timing": "next_close"},
        "train": {"start": "2010-01-01", "end": "2014-12-31"},
        "test": {"start": "2015-01-01", "end": "2015-12-31"},
        "agent": {"n_envs": 2, "episode_length": 63, "policy_kwargs": {"net_arch": [16, 16]}},
        "ensemble": {
            "timesteps": {"PPO": 4096, "A2C": 2048, "DDPG": 1024},
            "params": {
                "PPO": {"n_steps": 64, "batch_size": 64, "n_epochs": 2},
                "A2C": {"n_steps": 5},
                "DDPG": {"learning_starts": 64, "batch_size": 32},
            },
        },
        "baselines": {"min_variance_window": 126},
        "evaluation": {"n_boot": 100},
    }
    data.update(extra)
    return data


_RUNS: dict[str, tuple[Path, Path]] = {}


def ensemble_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two quarters run (sequentially, without Ray) once per test session; the run directory (read only)."""
    return trained_ensemble(tmp_path_factory)[0]


def trained_ensemble(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The session's ensemble run directory and its bar store (trained on first use; tests/signals, tests/live)."""
    if "run" not in _RUNS:
        from rltrade.config import parse_config
        from rltrade.strategies.ensemble import run_ensemble

        store = tmp_path_factory.mktemp("ensemble_store") / "bars"
        config = parse_config(ensemble_config(store))
        result = run_ensemble(
            config, tmp_path_factory.mktemp("seq"), timesteps_scale=0.25, max_quarters=2, use_ray=False, progress=False
        )
        _RUNS["run"] = (Path(result.run_dir), store)
    return _RUNS["run"]
