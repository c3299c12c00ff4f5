"""The seeded uniform random agent (rltrade.agents.random_agent)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import scipy.stats

from rltrade.agents.factory import AgentError
from rltrade.agents.random_agent import RandomAgent, RandomKind


class SixActionEnv(gym.Env[np.ndarray, Any]):
    """The OrderBookEnv spaces and nothing else."""

    def __init__(self) -> None:
        self.action_space = gym.spaces.Discrete(6)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (6,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        return np.zeros(6, dtype=np.float32), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        return np.zeros(6, dtype=np.float32), 0.0, False, False, {}


OBS = np.zeros(6, dtype=np.float32)


def test_actions_are_uniform_seeded_and_ignore_the_observation() -> None:
    agent = RandomAgent(SixActionEnv(), seed=7)
    actions = [agent.predict(OBS) for _ in range(12_000)]
    assert all(isinstance(a, int) and 0 <= a < 6 for a in actions)
    counts = np.bincount(actions, minlength=6)
    assert scipy.stats.chisquare(counts).pvalue > 1e-3  # uniform over the six actions
    # the seed's own draws: numpy's generator with that seed, one integer per call
    rng = np.random.default_rng(7)
    assert actions[:50] == [int(rng.integers(6)) for _ in range(50)]
    other = RandomAgent(n_actions=6, seed=8)
    assert [other.predict(OBS) for _ in range(50)] != actions[:50]
    # deterministic=True draws too (a random agent has no greedy action) and a batch gets one per row
    again = RandomAgent(n_actions=6, seed=7)
    assert [again.predict(np.full(6, 9.0), deterministic=True) for _ in range(50)] == actions[:50]
    assert RandomAgent(n_actions=6, seed=7).predict(np.zeros((4, 6))).shape == (4,)


def test_learn_only_counts_steps() -> None:
    agent = RandomAgent(SixActionEnv(), seed=0)
    assert agent.learn(100, progress=False) is agent
    agent.learn(23)
    assert agent.num_timesteps == 123 and agent.device_name == "-"
    assert agent.predict(OBS) == RandomAgent(n_actions=6, seed=0).predict(OBS)  # learning drew nothing


def test_save_and_load_continue_the_same_sequence(tmp_path: Path) -> None:
    agent = RandomAgent(SixActionEnv(), seed=3)
    agent.learn(500)
    [agent.predict(OBS) for _ in range(17)]  # move the generator along
    kind = RandomKind()
    path = tmp_path / kind.model_file(3)
    agent.save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed_3.npz"]
    loaded = kind.load(SimpleNamespace(), path)
    assert (loaded.n_actions, loaded.seed, loaded.num_timesteps) == (6, 3, 500)
    assert [loaded.predict(OBS) for _ in range(40)] == [agent.predict(OBS) for _ in range(40)]


def test_kind_builds_and_refuses_what_it_cannot_use(tmp_path: Path) -> None:
    kind = RandomKind()
    config = SimpleNamespace(agent=SimpleNamespace(params={}))
    agent = kind.build(config, SixActionEnv(), seed=5)
    reference = RandomAgent(n_actions=6, seed=5)
    assert [agent.predict(OBS) for _ in range(10)] == [reference.predict(OBS) for _ in range(10)]
    with pytest.raises(AgentError, match=r"agent\.params\.k: the random agent takes no parameters"):
        kind.build(SimpleNamespace(agent=SimpleNamespace(params={"k": 6})), SixActionEnv(), seed=0)
    box = SixActionEnv()
    box.action_space = gym.spaces.Box(-1, 1, (1,))
    with pytest.raises(AgentError, match="Discrete"):
        RandomAgent(box)
    with pytest.raises(AgentError, match="n_actions"):
        RandomAgent()
    np.savez(tmp_path / "q.npz", format=np.array("rltrade.qlearning/1"))
    with pytest.raises(AgentError, match=r"not a rltrade\.random/1 file"):
        RandomAgent.load(tmp_path / "q.npz")


def test_an_order_book_config_section_without_params_builds() -> None:
    agent = RandomKind().build(SimpleNamespace(agent=SimpleNamespace(kind="random")), SixActionEnv(), seed=1)
    assert agent.n_actions == 6 and agent.seed == 1
