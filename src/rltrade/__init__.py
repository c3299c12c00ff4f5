"""rltrade: deep reinforcement learning for trading, from market data to broker.

>>> import rltrade as rt
>>> result = rt.run("configs/quickstart.yaml")      # doctest: +SKIP
>>> rt.Run.open(result.run_dir).metrics["ppo"]      # doctest: +SKIP

The names below are imported on first use, so ``import rltrade`` stays light.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "run": ("rltrade.workflow", "run"),
    "Run": ("rltrade.runs", "Run"),
    "load_policy": ("rltrade.runs", "load_policy"),
    "load_config": ("rltrade.config", "load_config"),
    "load_bars": ("rltrade.data", "load_bars"),
    "Backtest": ("rltrade.backtest.api", "Backtest"),
    "data": ("rltrade.data", ""),
}

__all__ = ["Backtest", "Run", "__version__", "data", "load_bars", "load_config", "load_policy", "run"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        loaded = importlib.import_module(module)
        return getattr(loaded, attr) if attr else loaded
    raise AttributeError(f"module 'rltrade' has no attribute {name!r}")
