"""Bar-based trading environments (Gymnasium API) and their parts: costs, rewards, execution timing.

Quick use::

    import gymnasium as gym
    import rltrade.envs  # registers the ids below

    env = gym.make("rltrade/StockTrading-v0", bars=bars)
    obs, info = env.reset(seed=0)

Registered ids (entry points are import strings, so importing this package loads neither
numba kernels nor torch/Stable-Baselines3):

- ``rltrade/Portfolio-v0``: :class:`~rltrade.envs.portfolio.PortfolioEnv`
- ``rltrade/StockTrading-v0``: :class:`~rltrade.envs.stock_trading.StockTradingEnv`
- ``rltrade/SingleAsset-v0``: :class:`~rltrade.envs.single_asset.SingleAssetEnv`

The classes are importable from here too (``from rltrade.envs import PortfolioEnv``); they
are loaded on first access. See docs/envs.md.
"""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium

_ENV_IDS: dict[str, str] = {
    "rltrade/Portfolio-v0": "rltrade.envs.portfolio:PortfolioEnv",
    "rltrade/StockTrading-v0": "rltrade.envs.stock_trading:StockTradingEnv",
    "rltrade/SingleAsset-v0": "rltrade.envs.single_asset:SingleAssetEnv",
    "rltrade/OrderBook-v0": "rltrade.envs.orderbook.env:OrderBookEnv",
}

for _env_id, _entry_point in _ENV_IDS.items():
    if _env_id not in gymnasium.registry:
        gymnasium.register(id=_env_id, entry_point=_entry_point)

# public name -> module that defines it (imported on first access)
_LAZY: dict[str, str] = {
    "EnvConfigError": "rltrade.envs.timing",
    "ExecutionTiming": "rltrade.envs.timing",
    "NEXT_OPEN": "rltrade.envs.timing",
    "NEXT_CLOSE": "rltrade.envs.timing",
    "SAME_CLOSE": "rltrade.envs.timing",
    "resolve_timing": "rltrade.envs.timing",
    "CostModel": "rltrade.envs.costs",
    "CostParams": "rltrade.envs.costs",
    "LinearCost": "rltrade.envs.costs",
    "NoCost": "rltrade.envs.costs",
    "BpsCost": "rltrade.envs.costs",
    "PerShareCost": "rltrade.envs.costs",
    "SpreadCost": "rltrade.envs.costs",
    "make_cost": "rltrade.envs.costs",
    "spread_volatility": "rltrade.envs.costs",
    "Market": "rltrade.envs.market",
    "PortfolioEnv": "rltrade.envs.portfolio",
    "StockTradingEnv": "rltrade.envs.stock_trading",
    "BatchedCore": "rltrade.envs.batched",
    "CoreEnv": "rltrade.envs.batched",
    "BatchedPortfolioEnv": "rltrade.envs.vec",
    "BatchedStockTradingEnv": "rltrade.envs.vec",
    "BatchedVecEnv": "rltrade.envs.vec",
    "Reward": "rltrade.envs.rewards",
    "ProfitReward": "rltrade.envs.rewards",
    "LogReturnReward": "rltrade.envs.rewards",
    "DifferentialSharpeReward": "rltrade.envs.rewards",
    "DownsideDeviationReward": "rltrade.envs.rewards",
    "SortinoChangeReward": "rltrade.envs.rewards",
    "make_reward": "rltrade.envs.rewards",
    "SingleAssetEnv": "rltrade.envs.single_asset",
    "BatchedSingleAssetEnv": "rltrade.envs.single_asset",
    "ScaledObservation": "rltrade.envs.wrappers",
    "VecScaledObservation": "rltrade.envs.wrappers",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rltrade.envs' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
