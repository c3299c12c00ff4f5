"""SingleAssetEnv: trade one asset (share, FX unit or futures contract) short / flat / long.

Quick use::

    from rltrade.data.sources import fetch
    from rltrade.data.validate import validate_bars
    from rltrade.envs.single_asset import SingleAssetEnv

    bars = validate_bars(fetch("sample:eurusd")[0])
    env = SingleAssetEnv(bars, state="3", reward="differential_sharpe", by_day=True)
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(2)  # go long

The model (all of it precomputed into numpy arrays at construction; ``step`` is numpy only):

- The agent observes bar t and picks a target position ``a_t`` (discrete ``{short, flat, long}``
  → ``{-1, 0, 1}``, or a Box in ``[-1, 1]`` with ``continuous=True``); it holds
  ``a_t · units`` shares / FX units / contracts.
- The order fills at ``p_t``, the *fill price* of the :class:`~rltrade.envs.timing.ExecutionTiming`:
  ``open[t+1]`` (``next_open``, the default when the bars have opens), ``close[t+1]``
  (``next_close``, the default for close-only data) or ``close[t]`` (``same_close``, the seed's
  optimistic assumption, opt-in only). The step returns the observation of bar t+1.
- Rewards are the seed's two conventions, with ``p`` the fill price and ``m`` the contract
  multiplier (1 for shares), and ``cost_t`` from the cost model (charged in **both** modes):

  - ``forward_reward=False``: ``R_t = a_{t-1}·units·m·(p_t − p_{t−1}) − cost_t``: the P&L of the
    position held until this fill, minus the cost of this trade. It uses data up to bar t+1 only
    (the bar of the returned observation), so it passes the lookahead guard.
  - ``forward_reward=True``: ``R_t = a_t·units·m·(p_{t+1} − p_t) − cost_t``: the P&L of the *new*
    position until the next fill. It is computed from prices after the returned observation
    (``p_{t+1}``): a training signal that credits an action with its own outcome, as in the
    seed; the observations and infos stay causal, but the reward itself is not.

  These are the ``profit`` reward. The other rewards (``log_return``, ``differential_sharpe``,
  ``downside_deviation``, ``sortino_change``) are computed by the same reward objects on the two
  account values whose difference is that profit: the value just after the previous and the current
  fill (``forward_reward=False``), or just before the current and the next fill (``True``).

- ``by_day=True``: an episode is one session (the bars of one calendar date in ``session_tz``,
  UTC by default). Decisions are taken at every bar but the last of the session; at the session
  close (``close`` of its last bar) the position is flattened and the cost of flattening is
  charged, in the reward of the final step. ``by_day=False``: one continuous episode over the
  range (or windows of ``episode_length`` steps), never flattened.
- A :class:`FuturesContract` makes the asset a contract: P&L is ``position·Δprice·multiplier``,
  costs apply to the contract notional ``|Δcontracts|·price·multiplier``, positions are whole
  contracts and opening or increasing one needs the initial margin (``margin_rate`` of its
  notional) out of the account value. Without a contract a position may be at most the account
  value (no leverage; long purchases never make cash negative; short sales credit their proceeds).
- Accounting: ``value = cash + position·close·multiplier`` at every step (``cash`` counts the
  contract notional too, so for futures it is negative while long: a bookkeeping convention that
  keeps the identity; the margin is reported separately in ``info``).

``info`` (every step and reset): ``bar``, ``timestamp``, ``portfolio_value`` (the value above),
``cash``, ``position`` (units / contracts), ``position_fraction`` (δ), ``price`` (close of the
observed bar), ``fill_price``, ``cost`` (this step, flattening included), ``total_cost``,
``turnover`` (traded notional / value), ``traded`` and ``total_traded`` (notional),
``open_return``, ``margin_required`` and ``margin_call`` (contracts), ``flattened``, ``bankrupt``
(value <= 0 ends the episode) and ``cheat``.

:class:`BatchedSingleAssetEnv` steps K copies in one numpy call as a Stable-Baselines3 ``VecEnv``
(copy k with K = 1 gives the same bits as this env).

The seed's fixed cost ``c·|a_t − a_{t−1}|`` is ``cost=PerShareCost(per_share=c, minimum=0.0)``
with ``units=1``: ``c`` per share or contract traded.

Observations are ``(look_back, n_columns)`` float32 windows, oldest row first, last row = bar t
(see :data:`STATE_COLUMNS`). ``state="cheat"`` shows the *next* ``look_back`` log price
differences: deliberate lookahead, only to prove the learning stack can learn. It is logged as a
warning, flagged in ``repr``, in ``env.lookahead`` and in every ``info`` (``info["cheat"]``).
"""

from __future__ import annotations

from typing import Any

from rltrade.envs.single_asset.config import ACTION_POSITIONS, STATE_COLUMNS, FuturesContract
from rltrade.envs.single_asset.env import SingleAssetEnv


def __getattr__(name: str) -> Any:
    # BatchedSingleAssetEnv is built lazily so that importing this module (gym.make) loads no torch.
    if name == "BatchedSingleAssetEnv":
        from rltrade.envs.single_asset.env import batched_class

        cls = batched_class()
        cls.__module__ = __name__
        cls.__qualname__ = name
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ACTION_POSITIONS",
    "STATE_COLUMNS",
    "BatchedSingleAssetEnv",
    "FuturesContract",
    "SingleAssetEnv",
]
