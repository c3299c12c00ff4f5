"""Rebuild a trained policy from a run directory: config + feature scaler + model + env.

>>> from rltrade.runs import load_policy
>>> policy = load_policy("runs/quickstart-20261201-220623")        # doctest: +SKIP
>>> trajectory = policy.trade(bars, start="2023-01-03")             # doctest: +SKIP
>>> policy.target(bars)          # the action after the last bar: target weights for the next one  # doctest: +SKIP

The backtest (``rltrade backtest``), and later the signals job, the brokers and the web page,
all rebuild policies this way, so that each trades exactly what was trained and evaluated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rltrade.config import ConfigError, RunConfig, bar_config, load_config
from rltrade.runs.files import read_manifest


@dataclass
class Policy:
    """A trained agent of a run with what it needs to act: its config, feature scaler and seed.

    Attributes
    ----------
    config:
        The run's config (its test range may be overridden for another backtest).
    manifest:
        The run's manifest.
    seed:
        The seed whose model this is.
    model:
        The trained :class:`~rltrade.agents.base.Agent` (``predict(obs, deterministic=True)`` → action).
    scaler:
        The feature scaler fitted on the training range (None when the env scales nothing).
    """

    config: RunConfig
    manifest: dict[str, Any]
    seed: int
    model: Any
    scaler: Any = None
    _act: Callable[[np.ndarray], Any] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        model = self.model
        self._act = lambda obs: model.predict(obs, deterministic=True)

    def __call__(self, observation: np.ndarray) -> Any:
        """The greedy action for one (scaled) observation."""
        return self._act(observation)

    def env(self, bars: pd.DataFrame, start: Any = None, end: Any = None) -> Any:
        """The run's env over ``bars`` (``start``/``end``: bar timestamps; default the config's test range),
        its observations scaled as in training."""
        from rltrade.agents.scaling import ScaledObservation
        from rltrade.envs.factory import make_env

        env = make_env(self.config, bars, "test", start, end)
        return ScaledObservation(env, self.scaler) if self.scaler is not None else env

    def trade(self, bars: pd.DataFrame, start: Any = None, end: Any = None, progress: bool | str = False) -> Any:
        """One deterministic episode over ``start``..``end``: a :class:`~rltrade.backtest.runner.Trajectory`."""
        from rltrade.backtest.runner import run_policy

        return run_policy(self.env(bars, start, end), self, seed=self.seed, progress=progress)

    def target(self, bars: pd.DataFrame, start: Any = None) -> Any:
        """The action chosen after the last bar of ``bars`` (what to hold over the next bar).

        The policy trades ``start``.. the last bar (default: the config's test start) so that its
        state (holdings, previous weights) is the one it would have; the last observation then
        sees data up to the last bar only.
        """
        last = pd.Timestamp(pd.DatetimeIndex(bars["timestamp"]).max())
        env = self.env(bars, start, last)
        obs, _ = env.reset(seed=self.seed)
        done = False
        while not done:
            obs, _, terminated, truncated, _ = env.step(self(obs))
            done = bool(terminated or truncated)
        return self(obs)


def refuse_ensemble(run_dir: Path, manifest: dict[str, Any]) -> None:
    """:class:`ConfigError` for an ensemble run: it has no policy per seed (it trades quarter by quarter)."""
    if manifest.get("strategy") == "ensemble":
        raise ConfigError(
            f"{run_dir.name} is an ensemble run: it trades quarter by quarter inside `rltrade run` "
            "(continue it with `rltrade run CONFIG --resume RUN_DIR`); its results are in equity.csv and quarters.csv"
        )


def load_policy(
    run_dir: str | Path,
    seed: int | None = None,
    config: RunConfig | None = None,
    manifest: dict[str, Any] | None = None,
) -> Policy:
    """The trained policy of ``run_dir`` for ``seed`` (default: the run's first seed).

    Parameters
    ----------
    run_dir:
        A run directory written by ``rltrade train`` or ``rltrade run``.
    seed:
        One of the run's seeds.
    config:
        The run's config with changes (e.g. another test range); default ``RUN_DIR/config.yaml``.
    manifest:
        The run's manifest when the caller has read it already; default ``RUN_DIR/manifest.json``.

    Raises
    ------
    ConfigError
        An ensemble run (it trades quarter by quarter), or a seed the run did not train.
    """
    from rltrade.agents.base import agent_kind
    from rltrade.features.normalize import normalizer_from_dict

    root = Path(run_dir)
    manifest = manifest if manifest is not None else read_manifest(root)
    refuse_ensemble(root, manifest)
    config = config if config is not None else bar_config(load_config(root / "config.yaml"), str(root))
    seeds = [int(s) for s in manifest.get("seeds", [])]
    seed = seeds[0] if seed is None and seeds else seed
    if seed is None or seed not in seeds:
        raise ConfigError(f"{root.name}: no model for seed {seed}; the run trained seeds {seeds}")
    scaler = normalizer_from_dict(manifest["feature_scaler"]) if manifest.get("feature_scaler") else None
    kind = agent_kind(config.agent.kind)
    agent = kind.load(config, root / "models" / kind.model_file(seed))
    return Policy(config, manifest, seed, agent, scaler)
