"""Stable-Baselines3 algorithms as :class:`~rltrade.agents.base.Agent` (``agent.kind: sb3``).

``agent.algorithm`` names the class (PPO, A2C, DDPG, TD3, SAC, DQN), built by
:mod:`rltrade.agents.factory`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rltrade.agents.factory import load_agent, make_agent, train_agent
from rltrade.config import RunConfig


class SB3Agent:
    """An SB3 model behind the :class:`~rltrade.agents.base.Agent` protocol (``model`` is the SB3 object)."""

    def __init__(self, model: Any, tb_log_name: str | None = None) -> None:
        self.model = model
        self.tb_log_name = tb_log_name

    @property
    def num_timesteps(self) -> int:
        """Steps trained, as SB3 counts them (whole rollouts of ``n_steps × n_envs``)."""
        return int(self.model.num_timesteps)

    @property
    def device_name(self) -> str:
        """The torch device of the policy."""
        return str(self.model.device)

    def learn(self, timesteps: int, *, progress: bool = True, label: str | None = None) -> SB3Agent:
        """Train for ``timesteps`` steps (a tqdm bar unless ``progress=False``)."""
        train_agent(self.model, timesteps, progress=progress, label=label, tb_log_name=self.tb_log_name)
        return self

    def predict(self, observation: Any, deterministic: bool = True) -> Any:
        """SB3's ``predict``: the action only."""
        return self.model.predict(observation, deterministic=deterministic)[0]

    def save(self, path: str | Path) -> None:
        """SB3's zip file."""
        self.model.save(str(path))


class SB3Kind:
    """``agent.kind: sb3``: ``agent.algorithm`` names the SB3 class, ``agent.params`` its parameters."""

    def build(self, config: RunConfig, env: Any, *, seed: int, tensorboard_log: str | Path | None = None) -> SB3Agent:
        """A new SB3 model on ``env`` with the config's algorithm, parameters, policy, device and threads."""
        agent = config.sb3
        model = make_agent(
            agent.algorithm,
            env,
            seed=seed,
            params=agent.params,
            policy=agent.policy,
            policy_kwargs=agent.policy_kwargs,
            device=agent.device,
            tensorboard_log=tensorboard_log,
            torch_threads=agent.torch_threads,
        )
        return SB3Agent(model, tb_log_name=f"seed_{seed}")

    def load(self, config: RunConfig, path: str | Path) -> SB3Agent:
        """The model a run saved at ``path``."""
        agent = config.sb3
        return SB3Agent(load_agent(agent.algorithm, path, agent.device, agent.torch_threads))

    def model_file(self, seed: int) -> str:
        """``seed_<s>.zip``."""
        return f"seed_{seed}.zip"
