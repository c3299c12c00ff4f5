"""Observation wrappers of the bar envs: feature scaling with a fitted scaler.

The envs emit raw feature values. A scaler (:mod:`rltrade.features.normalize`, fitted on the
training bars, e.g. by :func:`rltrade.agents.scaling.fit_feature_scaler`) is applied unchanged to
every observation, in training and in the backtest, by a wrapper: :class:`ScaledObservation` (a
Gymnasium ``ObservationWrapper``) or :class:`VecScaledObservation` (an SB3 ``VecEnvWrapper``).
Only the feature entries of the observation are scaled; weights, cash, prices and holdings pass
unchanged.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from rltrade.envs.market import Market
from rltrade.features.normalize import Normalizer


def _feature_index(env: gym.Env[Any, Any]) -> NDArray[np.int64]:
    """For each entry of the (flat) observation, the feature it holds, or -1."""
    base = env.unwrapped
    market: Market = base.market  # type: ignore[attr-defined]
    size = int(np.prod(base.observation_space.shape))  # type: ignore[arg-type]
    index = np.full(size, -1, dtype=np.int64)
    layout: dict[str, slice] = getattr(base, "state_layout", {})
    if "features" in layout:  # PortfolioEnv: [look_back, features, assets] flattened
        block = layout["features"]
        positions = np.arange(block.stop - block.start)
        index[block] = (positions // market.n_symbols) % market.n_features
    else:  # StockTradingEnv: one slice per feature column
        for f, name in enumerate(market.feature_names):
            if name in layout:
                index[layout[name]] = f
    if market.n_features and (index < 0).all():
        raise ValueError(f"{type(base).__name__}: cannot locate the features in its observation")
    return index


def observation_affine(env: gym.Env[Any, Any], scaler: Normalizer) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """``(a, b)`` such that the scaled observation is ``a · obs + b`` (identity outside the features)."""
    n_features = env.unwrapped.market.n_features  # type: ignore[attr-defined]
    zero = scaler.transform(np.zeros((1, n_features)))[0]
    one = scaler.transform(np.ones((1, n_features)))[0]
    index = _feature_index(env)
    a = np.ones(index.shape, dtype=np.float64)
    b = np.zeros(index.shape, dtype=np.float64)
    mask = index >= 0
    a[mask] = (one - zero)[index[mask]]
    b[mask] = zero[index[mask]]
    return a.astype(np.float32), b.astype(np.float32)


class ScaledObservation(gym.ObservationWrapper[Any, Any, Any]):
    """Scale the feature entries of a scalar env's observations with a fitted scaler."""

    def __init__(self, env: gym.Env[Any, Any], scaler: Normalizer) -> None:
        super().__init__(env)
        self.scale, self.offset = observation_affine(env, scaler)

    def observation(self, observation: Any) -> Any:
        """``a · obs + b`` in float32."""
        return (observation * self.scale + self.offset).astype(np.float32, copy=False)


class VecScaledObservation(VecEnvWrapper):
    """:class:`ScaledObservation` for an SB3 ``VecEnv``; also scales ``terminal_observation`` in the infos.

    Parameters
    ----------
    venv:
        The vectorised env (e.g. :class:`rltrade.envs.vec.BatchedPortfolioEnv`).
    template:
        A scalar env with the same observation layout (the batched env's own scalar form).
    scaler:
        The fitted scaler.
    """

    def __init__(self, venv: VecEnv, template: gym.Env[Any, Any], scaler: Normalizer) -> None:
        super().__init__(venv)
        self.scale, self.offset = observation_affine(template, scaler)

    def _apply(self, obs: NDArray[Any]) -> NDArray[np.float32]:
        return (obs * self.scale + self.offset).astype(np.float32, copy=False)

    def reset(self) -> NDArray[np.float32]:
        """Reset every copy and scale."""
        return self._apply(np.asarray(self.venv.reset()))

    def step_wait(self) -> Any:
        """Step, then scale the observations (terminal ones too)."""
        obs, rewards, dones, infos = self.venv.step_wait()
        for info in infos:
            if "terminal_observation" in info:
                info["terminal_observation"] = self._apply(info["terminal_observation"])
        return self._apply(np.asarray(obs)), rewards, dones, infos
