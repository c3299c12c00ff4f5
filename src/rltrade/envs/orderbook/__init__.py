"""Level-I order-book replay and the OrderBookEnv (the seed's qtrader task, done honestly).

Quick use::

    import gymnasium as gym
    import rltrade.envs.orderbook  # registers rltrade/OrderBook-v0

    env = gym.make("rltrade/OrderBook-v0", events=events, ticks_away=1, trailing_stop=True)

- :class:`OrderBookEnv` (``env.py``): Discrete(6) actions, the fixed observation layout of
  ``layout.py`` (``OBS_*``, ``ACTION_*``), per-episode records (:meth:`OrderBookEnv.history`).
- :class:`Replay` (``replay.py``): the numba replay engine with queue position, latency and fills;
  :func:`quote_at_touch_loop` runs the quote-at-the-touch policy entirely in numba.

The layout constants import without numba; the env and the replay load on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium

from rltrade.envs.orderbook.layout import (
    ACTION_BEST_ASK,
    ACTION_BEST_BID,
    ACTION_BEST_BOTH,
    ACTION_BUY,
    ACTION_NAMES,
    ACTION_NONE,
    ACTION_SELL,
    N_ACTIONS,
    OBS_ASK_OPEN,
    OBS_BID_OPEN,
    OBS_LOG_RATIO,
    OBS_NAMES,
    OBS_OFI,
    OBS_POSITION,
    OBS_SIZE,
    OBS_SPREAD,
)

ENV_ID = "rltrade/OrderBook-v0"
if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="rltrade.envs.orderbook.env:OrderBookEnv")

# public name -> module that defines it (imported on first access)
_LAZY: dict[str, str] = {
    "OrderBookEnv": "rltrade.envs.orderbook.env",
    "EpisodeHistory": "rltrade.envs.orderbook.env",
    "Fill": "rltrade.envs.orderbook.env",
    "DEFAULT_TRAILING_STOP": "rltrade.envs.orderbook.env",
    "Replay": "rltrade.envs.orderbook.replay",
    "ReplayError": "rltrade.envs.orderbook.replay",
    "LoopResult": "rltrade.envs.orderbook.replay",
    "quote_at_touch_loop": "rltrade.envs.orderbook.replay",
    "QUEUE_MODELS": "rltrade.envs.orderbook.replay",
    "FILL_DTYPE": "rltrade.envs.orderbook.replay",
    "FILL_REASONS": "rltrade.envs.orderbook.replay",
}

__all__ = [
    "ACTION_BEST_ASK",
    "ACTION_BEST_BID",
    "ACTION_BEST_BOTH",
    "ACTION_BUY",
    "ACTION_NAMES",
    "ACTION_NONE",
    "ACTION_SELL",
    "DEFAULT_TRAILING_STOP",
    "ENV_ID",
    "FILL_DTYPE",
    "FILL_REASONS",
    "N_ACTIONS",
    "OBS_ASK_OPEN",
    "OBS_BID_OPEN",
    "OBS_LOG_RATIO",
    "OBS_NAMES",
    "OBS_OFI",
    "OBS_POSITION",
    "OBS_SIZE",
    "OBS_SPREAD",
    "QUEUE_MODELS",
    "EpisodeHistory",
    "Fill",
    "LoopResult",
    "OrderBookEnv",
    "Replay",
    "ReplayError",
    "quote_at_touch_loop",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
