"""Envs from a run config: one registry of env types instead of ``env.type ==`` ladders.

A new env type is one :class:`EnvType` entry in :data:`ENV_TYPES` (and its name in the config's
``env.type``): its scalar class and its batched class. Every env constructor names the starting
capital ``initial_value``, as the config does (``env.initial_value``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from rltrade.config import ENV_MANAGED, ConfigError, CostConfig, RunConfig
from rltrade.envs.market import Market
from rltrade.features.normalize import MinMaxNormalizer, Normalizer, ZScoreNormalizer
from rltrade.shared.registry import load_target


@dataclass(frozen=True)
class EnvType:
    """Where an env type's classes live (``module:Class``) and how its constructor is called."""

    scalar: str
    batched: str
    features: bool = True
    scaled: bool = True


ENV_TYPES: dict[str, EnvType] = {
    "portfolio": EnvType("rltrade.envs.portfolio:PortfolioEnv", "rltrade.envs.vec:BatchedPortfolioEnv"),
    "stock_trading": EnvType("rltrade.envs.stock_trading:StockTradingEnv", "rltrade.envs.vec:BatchedStockTradingEnv"),
    # single_asset builds its own state (signals and log differences): no feature list, nothing to scale
    "single_asset": EnvType(
        "rltrade.envs.single_asset:SingleAssetEnv",
        "rltrade.envs.single_asset:BatchedSingleAssetEnv",
        features=False,
        scaled=False,
    ),
}


def env_type(config: RunConfig) -> EnvType:
    """The registry entry of ``config.env.type``."""
    return ENV_TYPES[config.env.type]


def make_cost(cost: CostConfig) -> Any:
    """The cost model of a config's ``env.cost`` section (:mod:`rltrade.envs.costs`)."""
    from rltrade.envs.costs import BpsCost, NoCost, PerShareCost, SpreadCost

    if cost.model == "none":
        return NoCost()
    if cost.model == "bps":
        return BpsCost(cost.bps)
    if cost.model == "per_share":
        return PerShareCost(cost.per_share, cost.minimum)
    return SpreadCost(cost.k, cost.window)


def env_config_problems(config: RunConfig) -> list[tuple[str, str]]:
    """``env.params`` keys the env's constructor does not take: ``(field, message)`` pairs."""
    import inspect

    accepted = set(inspect.signature(load_target(env_type(config).scalar)).parameters)
    problems = []
    for key in config.env.params:
        if key not in accepted and key not in ENV_MANAGED:
            options = ", ".join(sorted(accepted - set(ENV_MANAGED)))
            problems.append(
                (f"env.params.{key}", f"not a parameter of the {config.env.type} env (it takes: {options})")
            )
    return problems


def env_kwargs(config: RunConfig, split: str, start: Any = None, end: Any = None) -> dict[str, Any]:
    """Constructor arguments of the config's env for ``split`` (``train``: random starts, episode length).

    ``start``/``end`` default to the split's dates (the whole ``end`` day included); given
    explicitly they are bar timestamps, used as they are.
    """
    env = config.env
    rng = config.train if split == "train" else config.test
    kind = env_type(config)
    kwargs: dict[str, Any] = dict(env.params)
    kwargs["cost"] = make_cost(env.cost)
    kwargs["timing"] = env.timing
    kwargs["start"] = pd.Timestamp(start if start is not None else rng.start)
    if end is not None:
        kwargs["end"] = pd.Timestamp(end)
    elif rng.end is not None:
        kwargs["end"] = pd.Timestamp(rng.end) + pd.Timedelta(hours=23, minutes=59)
    else:
        raise ConfigError(f"{split}.end is not set: pass the window's end explicitly")
    kwargs["initial_value"] = env.initial_value
    if kind.features:
        kwargs["features"] = list(config.features.names)
        kwargs["feature_params"] = dict(config.features.params)
    if split == "train":
        kwargs["random_start"] = config.sb3.random_start
        kwargs["episode_length"] = config.sb3.episode_length
    return kwargs


def make_env(config: RunConfig, bars: pd.DataFrame, split: str, start: Any = None, end: Any = None) -> Any:
    """The scalar env of the config on the ``train`` or ``test`` range (or ``start``..``end``)."""
    return load_target(env_type(config).scalar)(bars, **env_kwargs(config, split, start, end))


def make_training_env(config: RunConfig, bars: pd.DataFrame) -> tuple[Any, Any]:
    """``(vec_env, template)``: the batched training env (``agent.n_envs`` copies) and its scalar form."""
    venv = load_target(env_type(config).batched)(bars, n_envs=config.sb3.n_envs, **env_kwargs(config, "train"))
    return venv, venv.template


def fit_scaler(config: RunConfig, template: Any) -> Any:
    """The feature scaler fitted on the training env's bars (None for env types that scale nothing)."""
    if not env_type(config).scaled:
        return None
    return fit_feature_scaler(template.market, config.features.scaler)


def fit_feature_scaler(market: Market, kind: str) -> Normalizer | None:
    """Fit a ``zscore`` or ``minmax`` scaler on the features of the bars episodes may use.

    Parameters
    ----------
    market:
        The *training* env's market: rows from the first observation's history to ``market.last``.
    kind:
        ``zscore``, ``minmax`` or ``none`` (returns None).
    """
    if kind == "none" or market.n_features == 0:
        return None
    scaler: Normalizer = ZScoreNormalizer() if kind == "zscore" else MinMaxNormalizer()
    rows = market.features[market.first - market.history + 1 : market.last + 1]  # [T, F, N]
    return scaler.fit(rows.transpose(0, 2, 1).reshape(-1, market.n_features))


def closed_range(bars: pd.DataFrame, day: Any) -> tuple[pd.DataFrame, pd.Timestamp]:
    """``bars`` with a copy of each symbol's bar of ``day`` dated a day later, and that (tz-naive UTC) timestamp.

    An env refuses an episode of one bar. A decision loop that must observe bar ``day`` (the last
    of its data) gives the env this range, ending at the returned timestamp, and stops at
    ``day``'s observation: it never steps into the copy, so none of the copied prices is used.
    ``bars``' timestamps may be tz-aware or naive (taken as UTC); the copy keeps their form.
    """
    stamps = pd.DatetimeIndex(bars["timestamp"])
    utc = stamps.tz_localize("UTC") if stamps.tz is None else stamps.tz_convert("UTC")
    last = np.asarray(utc.normalize() == pd.Timestamp(day, tz="UTC"))
    closer = bars.loc[last].copy()
    moved = utc[last] + pd.Timedelta(days=1)
    closer["timestamp"] = moved if stamps.tz is not None else moved.tz_localize(None)
    out = pd.concat([bars, closer], ignore_index=True)
    out.attrs = dict(bars.attrs)
    return out, pd.Timestamp(moved.max()).tz_localize(None)
