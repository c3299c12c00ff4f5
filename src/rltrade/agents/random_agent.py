"""A seeded uniform random agent over ``Discrete(n)`` actions (seed 003's benchmark), behind the Agent protocol.

It draws every action uniformly, whatever the observation and ``deterministic`` (a random agent
has no greedy action); :meth:`RandomAgent.learn` only counts steps. Its generator's state is
saved, so a loaded agent continues the very same sequence of actions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from rltrade.agents.factory import AgentError
from rltrade.agents.qlearning import discrete_actions, read_npz, write_npz

_FORMAT = "rltrade.random/1"


class RandomAgent:
    """Uniform over ``Discrete(n)``: ``RandomAgent(env, seed=0)`` or ``RandomAgent(n_actions=6, seed=0)``."""

    device_name = "-"

    def __init__(self, env: gym.Env[Any, Any] | None = None, *, n_actions: int | None = None, seed: int = 0) -> None:
        actions = discrete_actions(env) if env is not None else n_actions
        if actions is None or actions < 1:
            raise AgentError(f"RandomAgent: give an env or n_actions ≥ 1, got n_actions={n_actions!r}")
        self.n_actions, self.seed = actions, int(seed)
        self.num_timesteps = 0
        self._rng = np.random.default_rng(self.seed)

    def learn(self, timesteps: int, *, progress: bool = True, label: str | None = None) -> RandomAgent:
        """Nothing to learn: count ``timesteps``."""
        self.num_timesteps += int(timesteps)
        return self

    def predict(self, observation: Any, deterministic: bool = True) -> Any:
        """A uniform action (an ``int``), or one per row of a batch ``[n, obs_dim]`` (an array)."""
        if np.ndim(observation) == 2:
            return self._rng.integers(self.n_actions, size=len(observation))
        return int(self._rng.integers(self.n_actions))

    def save(self, path: str | Path) -> None:
        """Write the action count, seed, step count and generator state to one ``.npz`` file."""
        write_npz(
            Path(path),
            {
                "format": np.array(_FORMAT),
                "n_actions": np.array(self.n_actions, dtype=np.int64),
                "seed": np.array(self.seed, dtype=np.int64),
                "num_timesteps": np.array(self.num_timesteps, dtype=np.int64),
                "rng_state": np.array(json.dumps(self._rng.bit_generator.state)),
            },
        )

    @classmethod
    def load(cls, path: str | Path) -> RandomAgent:
        """The agent :meth:`save` wrote at ``path``, its generator where it was."""
        data = read_npz(Path(path), _FORMAT)
        agent = cls(n_actions=int(data["n_actions"]), seed=int(data["seed"]))
        agent.num_timesteps = int(data["num_timesteps"])
        agent._rng.bit_generator.state = json.loads(str(data["rng_state"]))
        return agent


class RandomKind:
    """``agent.kind: random``: no parameters (``agent.params``, where the config has it, must be empty)."""

    def build(self, config: Any, env: Any, *, seed: int, tensorboard_log: str | Path | None = None) -> RandomAgent:
        """A random agent over ``env``'s actions, seeded with ``seed``."""
        params = getattr(config.agent, "params", None) or {}  # an order-book config's section has none
        if params:
            raise AgentError(f"agent.params.{next(iter(params))}: the random agent takes no parameters")
        return RandomAgent(env, seed=seed)

    def load(self, config: Any, path: str | Path) -> RandomAgent:
        """The agent a run saved at ``path``."""
        return RandomAgent.load(path)

    def model_file(self, seed: int) -> str:
        """``seed_<s>.npz``."""
        return f"seed_{seed}.npz"
