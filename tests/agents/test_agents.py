"""The Agent protocol (rltrade.agents.base) and its SB3 kind (rltrade.agents.sb3)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rltrade.agents.base import AGENTS, agent_kind
from rltrade.agents.sb3 import SB3Agent, SB3Kind
from rltrade.config import ConfigError, RunConfig, parse_config
from rltrade.envs.portfolio import PortfolioEnv
from rltrade.testing import synthetic_bars


def _config() -> RunConfig:
    return parse_config(
        {
            "name": "agents",
            "train": {"start": "2020-01-01", "end": "2020-06-30"},
            "test": {"start": "2020-07-01", "end": "2020-12-31"},
            "agent": {
                "kind": "sb3",
                "algorithm": "PPO",
                "params": {"n_steps": 64, "batch_size": 64, "n_epochs": 1},
                "policy_kwargs": {"net_arch": [8, 8]},
            },
        }
    )


def test_sb3_kind_learns_saves_and_loads_the_same_agent(tmp_path: Path) -> None:
    config = _config()
    env = PortfolioEnv(synthetic_bars(3, 120, seed=1), features=["log_return"], look_back=5)
    kind = agent_kind("sb3")
    assert isinstance(kind, SB3Kind)
    agent = kind.build(config, env, seed=0)
    assert isinstance(agent, SB3Agent) and agent.device_name == "cpu"
    assert agent.learn(256, progress=False) is agent
    assert agent.num_timesteps >= 256
    path = tmp_path / kind.model_file(0)
    assert path.name == "seed_0.zip"
    agent.save(path)
    loaded = kind.load(config, path)
    obs, _ = env.reset(seed=0)
    for _ in range(20):
        action = agent.predict(obs)
        np.testing.assert_array_equal(loaded.predict(obs), action)
        assert env.action_space.contains(np.asarray(action, dtype=env.action_space.dtype))
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            break


def test_an_unknown_kind_is_a_config_error_naming_agent_kind() -> None:
    assert "sb3" in AGENTS
    with pytest.raises(ConfigError, match=r"agent\.kind.*'tabular'.*sb3"):
        agent_kind("tabular")
