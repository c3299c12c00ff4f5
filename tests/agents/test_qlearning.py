"""Tabular Q-learning (rltrade.agents.qlearning) on fake envs with the OrderBookEnv observation layout.

Every expectation is computed independently: the Q update replayed by hand from the env's log,
the Boltzmann probabilities from the formula, the optimal policy by value iteration on the
known MDP, the states by sklearn's own scaler and k-means.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.preprocessing import MinMaxScaler

from rltrade.agents.factory import AgentError
from rltrade.agents.qlearning import (
    DEFAULTS,
    QLearningAgent,
    QLearningKind,
    StateMap,
    boltzmann_probabilities,
    collect_observations,
    params_of,
    sample_boltzmann,
    temperature,
)

GAMMA, COST, PERSIST = 0.5, 0.1, 0.7
WRONG_SIDE, ORDER_PENALTY = 0.1, 0.2


class SignalEnv(gym.Env[np.ndarray, Any]):
    """A small MDP in the OrderBookEnv layout whose optimal policy is known (by value iteration).

    A hidden signal z ∈ {−1, +1} (kept with probability ``PERSIST``) shows as OFI ≈ 10 z and log
    book ratio ≈ 0.5 z (plus noise and ``shift``). Action 1 goes long, 2 short (``COST`` per unit
    traded; ``WRONG_SIDE`` if already there), 3/4/5 open a bid/ask/both (flags only, penalty
    ``ORDER_PENALTY``), 0/1/2 leave no order open. Reward = new position × z − costs − penalty.
    The env logs every transition ``(obs, action, reward, next_obs, terminated, truncated)``.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012

    def __init__(
        self, length: int = 400, shift: float = 0.0, truncate: bool = False, random_start: bool = False
    ) -> None:
        self.length, self.shift, self.truncate, self.random_start = length, shift, truncate, random_start
        self.action_space = gym.spaces.Discrete(6)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (6,), np.float32)
        self.log: list[tuple[np.ndarray, int, float, np.ndarray, bool, bool]] = []
        self.resets: list[np.ndarray] = []

    def _obs(self) -> np.ndarray:
        ofi = 10.0 * self.z + self.np_random.normal(0.0, 1.0) + 10.0 * self.shift
        ratio = 0.5 * self.z + self.np_random.normal(0.0, 0.05) + self.shift
        return np.array([self.pos, self.bid, self.ask, ofi, ratio, 1.0], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.pos, self.bid, self.ask, self.t = 0, 0, 0, 0
        if self.random_start:  # every state is a start: flat ones are reached no other way
            self.pos, self.bid, self.ask = (int(v) for v in self.np_random.integers((-1, 0, 0), (2, 2, 2)))
        self.z = 1 if self.np_random.random() < 0.5 else -1
        self.current = self._obs()
        self.resets.append(self.current)
        return self.current, {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        reward, self.pos = _reward(self.pos, self.z, int(action))
        self.bid, self.ask = int(action in (3, 5)), int(action in (4, 5))
        if self.np_random.random() >= PERSIST:
            self.z = -self.z
        self.t += 1
        done = self.t >= self.length
        terminated, truncated = done and not self.truncate, done and self.truncate
        obs = self._obs()
        self.log.append((self.current, int(action), reward, obs, terminated, truncated))
        self.current = obs
        return obs, reward, terminated, truncated, {}


def _reward(pos: int, z: int, action: int) -> tuple[float, int]:
    target = {1: 1, 2: -1}.get(action, pos)
    penalty = ORDER_PENALTY if action >= 3 else (WRONG_SIDE if action in (1, 2) and target == pos else 0.0)
    return target * z - COST * abs(target - pos) - penalty, target


def _optimal_q(gamma: float = GAMMA) -> dict[tuple[int, int], np.ndarray]:
    """Q*(pos, z, ·) of SignalEnv by value iteration (the order flags change neither rewards nor moves)."""
    q = {(p, z): np.zeros(6) for p in (-1, 0, 1) for z in (-1, 1)}
    for _ in range(200):
        new = {}
        for (p, z), _row in q.items():
            row = np.zeros(6)
            for a in range(6):
                r, p2 = _reward(p, z, a)
                future = PERSIST * q[(p2, z)].max() + (1 - PERSIST) * q[(p2, -z)].max()
                row[a] = r + gamma * future
            new[(p, z)] = row
        q = new
    return q


def _fitted_agent(**kwargs: Any) -> tuple[QLearningAgent, SignalEnv]:
    env = SignalEnv()
    agent = QLearningAgent(env, **kwargs)
    agent.fit_states(collect_observations(env, seed=99, max_steps=400))
    return agent, env


def _replay(agent: QLearningAgent, env: SignalEnv, q0: np.ndarray, n0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Q-table and visits that the logged transitions give, updated by an independent loop."""
    assert agent.state_map is not None
    q, n = q0.copy(), n0.copy()
    for obs, a, r, obs2, terminated, _truncated in env.log:
        s, s2 = agent.state_map.states(np.stack([obs, obs2]))
        alpha = 1.0 / (1.0 + n[s, a]) if agent.alpha is None else agent.alpha
        target = r if terminated else r + agent.gamma * q[s2].max()
        q[s, a] = q[s, a] + alpha * (target - q[s, a])
        n[s, a] += 1
    return q, n


# -- states -------------------------------------------------------------------------------------


def test_state_index_layout_by_hand() -> None:
    # scale (OFI, ratio) by (0.1, 1) with offsets (0.5, 0): centres at scaled (0, 0), (1, 0), (0, 1)
    states = StateMap(
        data_min=[-5.0, 0.0], data_max=[5.0, 1.0], scale=[0.1, 1.0], offset=[0.5, 0.0], centres=[[0, 0], [1, 0], [0, 1]]
    )
    assert states.k == 3 and states.n_states == 36
    # OFI 4 → 0.9, ratio 0.2: nearest centre 1; long (2), bid open, no ask: ((1·3 + 2)·2 + 1)·2 + 0 = 22
    assert states.state(np.array([0.5, 1, 0, 4.0, 0.2, 3], dtype=np.float32)) == 22
    # OFI −5 → 0, ratio 0.9: centre 2; short (0), no bid, ask open: ((2·3 + 0)·2 + 0)·2 + 1 = 25
    assert states.state([-1.0, 0, 1, -5.0, 0.9, 1]) == 25
    # a tie between centres 0 and 1 (scaled x = 0.5, y = 0) goes to the lowest; flat (1), both open: 7
    assert states.state([0.0, 1, 1, 0.0, 0.0, 1]) == ((0 * 3 + 1) * 2 + 1) * 2 + 1
    batch = np.array([[0.5, 1, 0, 4.0, 0.2, 3], [-1.0, 0, 1, -5.0, 0.9, 1], [0.0, 1, 1, 0.0, 0.0, 1]])
    np.testing.assert_array_equal(states.states(batch), [22, 25, 7])


def test_fitted_states_match_sklearn_and_the_vectorised_form() -> None:
    rng = np.random.default_rng(5)
    train = np.column_stack(
        [
            *(rng.integers(-1, 2, 500), rng.integers(0, 2, 500), rng.integers(0, 2, 500)),
            *(rng.normal(0, 300, 500), rng.normal(0, 1.5, 500), rng.integers(1, 4, 500)),
        ]
    )
    states = StateMap.fit(train, k=6, seed=3)
    scaler = MinMaxScaler().fit(train[:, 3:5])
    kmeans = KMeans(n_clusters=6, random_state=3, n_init=10).fit(scaler.transform(train[:, 3:5]))
    np.testing.assert_array_equal(states.data_min, train[:, 3:5].min(axis=0))
    np.testing.assert_array_equal(states.data_max, train[:, 3:5].max(axis=0))
    np.testing.assert_allclose(states.centres, kmeans.cluster_centers_, rtol=0, atol=1e-12)
    later = train + np.array([0, 0, 0, 200.0, 1.0, 0])  # outside the training range: no clipping, no refit
    for obs in (train, later):
        cluster = kmeans.predict(scaler.transform(obs[:, 3:5]))
        position = np.sign(obs[:, 0]).astype(int) + 1
        expected = ((cluster * 3 + position) * 2 + obs[:, 1].astype(int)) * 2 + obs[:, 2].astype(int)
        np.testing.assert_array_equal(states.states(obs), expected)
        assert [states.state(row) for row in obs.astype(np.float32)] == list(states.states(obs.astype(np.float32)))


def test_states_are_fitted_on_training_data_only_and_never_refitted() -> None:
    env = SignalEnv(length=300)
    agent = QLearningAgent(env, seed=1)
    agent.learn(600, progress=False)  # fits on a none-action pass over the training env first
    assert agent.state_map is not None
    # the fit pass: one episode of action 0 from reset(seed=1), replayed here by hand
    check = SignalEnv(length=300)
    rows = [check.reset(seed=1)[0]] + [check.step(0)[0] for _ in range(300)]
    features = np.stack(rows)[:, 3:5].astype(np.float64)
    np.testing.assert_array_equal(agent.state_map.data_min, features.min(axis=0))
    np.testing.assert_array_equal(agent.state_map.data_max, features.max(axis=0))
    fitted = [a.copy() for a in (agent.state_map.data_min, agent.state_map.data_max, agent.state_map.centres)]
    # later data from a shifted distribution: learning and predicting on it moves nothing
    agent.env = SignalEnv(length=300, shift=3.0)
    agent.learn(600, progress=False)
    shifted = np.stack([entry[3] for entry in agent.env.log])
    assert shifted[:, 3].min() > features[:, 0].max()  # really out of the training range
    agent.predict(shifted, deterministic=True)
    after = (agent.state_map.data_min, agent.state_map.data_max, agent.state_map.centres)
    for before, now in zip(fitted, after, strict=True):
        np.testing.assert_array_equal(before, now)
    with pytest.raises(AgentError, match="already fitted"):
        agent.fit_states(shifted)
    with pytest.raises(ValueError, match="read-only"):
        agent.state_map.centres[0, 0] = 1.0


def test_fit_states_refuses_bad_observations() -> None:
    agent = QLearningAgent(SignalEnv(), k=3)
    with pytest.raises(AgentError, match=r"\[n, 6\]"):
        agent.fit_states(np.zeros(6))
    with pytest.raises(AgentError, match="NaN/inf in observation 1"):
        agent.fit_states(np.array([[0, 0, 0, 1.0, 0.0, 1], [0, 0, 0, 1.0, np.inf, 1], [0, 0, 0, 2.0, 1.0, 1]]))
    with pytest.raises(AgentError, match="2 observations cannot make k = 3"):
        agent.fit_states(np.zeros((2, 6)))
    with pytest.raises(AgentError, match="not fitted"):
        agent.predict(np.zeros(6))


# -- the update ---------------------------------------------------------------------------------


def test_one_q_update_by_hand() -> None:
    agent, env = _fitted_agent(seed=2)
    first, _ = SignalEnv().reset(seed=2)  # learn's first reset is reset(seed=2): this observation
    s = agent.state(first)
    agent.q[s] = [0.3, -0.2, 0.1, 0.0, 0.4, -1.0]
    agent.visits[s] = [3, 3, 3, 3, 3, 3]  # the next update of (s, a) has α = 1/(1 + 3) = 1/4
    agent.q[agent.q == 0] = 0.7  # other states: a bootstrap value to pick up
    q_before, n_before = agent.q.copy(), agent.visits.copy()
    env.log.clear()
    agent.learn(1, progress=False)
    ((obs0, a, r, obs1, terminated, _),) = env.log
    np.testing.assert_array_equal(obs0, first)
    assert not terminated
    s1 = agent.state(obs1)
    expected = q_before[s, a] + 0.25 * (r + 0.5 * q_before[s1].max() - q_before[s, a])
    assert agent.q[s, a] == pytest.approx(expected, abs=1e-15)
    assert agent.q[s, a] != q_before[s, a]
    assert agent.visits[s, a] == 4 and agent.num_timesteps == 1
    assert np.argwhere(agent.q != q_before).tolist() == [[s, a]]  # nothing else moved
    assert (agent.visits - n_before).sum() == 1


@pytest.mark.parametrize("alpha", [None, 0.3])
def test_learn_is_the_q_update_replayed_by_hand(alpha: float | None) -> None:
    agent, env = _fitted_agent(seed=4, alpha=alpha)
    env.log.clear()
    agent.learn(2500, progress=False)  # six episodes and a bit: terminal steps included
    assert len(env.log) == 2500 and sum(t for *_, t, _ in env.log) == 6
    q, n = _replay(agent, env, np.zeros_like(agent.q), np.zeros_like(agent.visits))
    np.testing.assert_allclose(agent.q, q, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(agent.visits, n)


def test_default_alpha_makes_q_the_mean_of_its_rewards_when_gamma_is_zero() -> None:
    # α = 1/(1 + n): with γ = 0 every target is the reward, so Q(s, a) is the plain mean of its rewards
    agent, env = _fitted_agent(seed=6, gamma=0.0)
    env.log.clear()
    agent.learn(3000, progress=False)
    assert agent.state_map is not None
    rewards: dict[tuple[int, int], list[float]] = {}
    for obs, a, r, *_ in env.log:
        rewards.setdefault((agent.state_map.states(obs[None])[0], a), []).append(r)
    assert len(rewards) > 50
    for (s, a), values in rewards.items():
        assert agent.q[s, a] == pytest.approx(float(np.mean(values)), abs=1e-12)
        assert agent.visits[s, a] == len(values)


@pytest.mark.parametrize("truncate", [False, True])
def test_terminated_does_not_bootstrap_but_truncated_does(truncate: bool) -> None:
    agent, _ = _fitted_agent(seed=8)
    env = SignalEnv(length=1, truncate=truncate)
    agent.env = env
    agent.q[:] = 5.0  # every bootstrap would add γ·5
    agent.learn(1, progress=False)
    ((obs, a, r, _, terminated, truncated),) = env.log
    assert (terminated, truncated) == (not truncate, truncate)
    s = agent.state(obs)
    assert agent.q[s, a] == pytest.approx(r + (0.5 * 5.0 if truncate else 0.0), abs=1e-12)


# -- exploration --------------------------------------------------------------------------------


def test_boltzmann_probabilities_are_the_formula() -> None:
    rng = np.random.default_rng(11)
    for tau in (0.05, 0.3, 1.0, 7.0):
        q = rng.normal(0.0, 1.0, 6)
        by_hand = [math.exp(v / tau) for v in q]
        expected = [w / sum(by_hand) for w in by_hand]
        np.testing.assert_allclose(boltzmann_probabilities(q, tau), expected, rtol=0, atol=1e-12)
    # numerically stable where the plain formula overflows: exp(1000/0.01)
    huge = boltzmann_probabilities([1000.0, 999.99, 0.0], 0.01)
    np.testing.assert_allclose(huge, [1 / (1 + math.exp(-1.0)), math.exp(-1.0) / (1 + math.exp(-1.0)), 0.0], atol=1e-12)


def test_a_larger_q_is_exploited_more() -> None:
    # at a fixed τ, raising Q(s, best) over the others raises P(best) (seed 003's k^Q rule, k < 1, lowered it)
    others = [0.2, -0.1, 0.0, 0.3, -0.4]
    for tau in (0.1, 1.0):
        p_best = [boltzmann_probabilities([q, *others], tau)[0] for q in np.linspace(0.3, 3.0, 10)]
        assert all(b > a for a, b in itertools.pairwise(p_best))
        by_hand = math.exp(3.0 / tau) / (math.exp(3.0 / tau) + sum(math.exp(o / tau) for o in others))
        assert p_best[-1] == pytest.approx(by_hand, rel=1e-12)
    # and a lower temperature exploits more
    q = [1.0, *others]
    assert boltzmann_probabilities(q, 0.1)[0] > boltzmann_probabilities(q, 1.0)[0]


def test_the_sampler_draws_the_boltzmann_probabilities() -> None:
    q, tau = [0.5, -0.3, 0.5, 2.0, -5.0, 0.1], 0.7
    grid = (np.arange(100_000) + 0.5) / 100_000  # u evenly over [0, 1): the share of u per action is P(a)
    counts = np.bincount([sample_boltzmann(q, tau, u) for u in grid], minlength=6) / len(grid)
    np.testing.assert_allclose(counts, boltzmann_probabilities(q, tau), atol=2e-5)
    assert sample_boltzmann([0.0, 1.0, 0.0], 1e-9, 0.999999) == 1  # τ → 0: the greedy action


def test_temperature_decays_exponentially_then_stays() -> None:
    assert temperature(0, 1.0, 0.05, 1000) == 1.0
    assert temperature(500, 1.0, 0.05, 1000) == pytest.approx(math.sqrt(0.05), rel=1e-12)
    assert temperature(1000, 1.0, 0.05, 1000) == pytest.approx(0.05, rel=1e-12)
    assert temperature(5000, 1.0, 0.05, 1000) == pytest.approx(0.05, rel=1e-12)
    assert temperature(250, 2.0, 2.0, 1000) == 2.0


def test_learn_draws_its_actions_from_boltzmann_at_the_scheduled_temperature() -> None:
    agent, env = _fitted_agent(seed=12, tau_start=2.0, tau_end=0.1, tau_decay_steps=800)
    env.log.clear()
    agent.learn(1000, progress=False)
    uniforms = np.random.default_rng(12).random(4096)  # the agent's generator: one block per 4096 steps
    q, n = np.zeros_like(agent.q), np.zeros_like(agent.visits)
    assert agent.state_map is not None
    for t, (obs, a, r, obs2, terminated, _) in enumerate(env.log):
        s, s2 = agent.state_map.states(np.stack([obs, obs2]))
        tau = 2.0 * (0.1 / 2.0) ** (min(t, 800) / 800)
        weights = np.exp((q[s] - q[s].max()) / tau)
        expected = int(np.searchsorted(np.cumsum(weights), uniforms[t] * weights.sum(), side="right"))
        assert a == expected, f"step {t}"
        q[s, a] += 1.0 / (1 + n[s, a]) * ((r if terminated else r + 0.5 * q[s2].max()) - q[s, a])
        n[s, a] += 1


def test_predict_is_greedy_with_ties_to_the_lowest_action() -> None:
    agent, env = _fitted_agent(seed=13)
    obs, _ = env.reset(seed=0)
    s = agent.state(obs)
    assert agent.predict(obs) == 0  # unvisited: all zero, the lowest action (none)
    agent.q[s] = [0.0, 1.0, 3.0, 3.0, -1.0, 2.0]
    assert agent.predict(obs) == 2 and isinstance(agent.predict(obs), int)
    np.testing.assert_array_equal(agent.predict(np.stack([obs, obs])), [2, 2])
    # deterministic=False: Boltzmann at tau_end (0.05 → P(2) = P(3) ≈ 1/2)
    draws = np.bincount([agent.predict(obs, deterministic=False) for _ in range(4000)], minlength=6) / 4000
    expected = boltzmann_probabilities(agent.q[s], 0.05)
    assert expected[2] == pytest.approx(0.5, abs=1e-6)
    np.testing.assert_allclose(draws, expected, atol=0.03)


# -- convergence --------------------------------------------------------------------------------


def test_converges_to_the_optimal_policy_of_the_known_mdp() -> None:
    q_star = _optimal_q()
    best = {key: int(np.argmax(row)) for key, row in q_star.items()}
    # the known policy: follow the signal, trade only when not already on its side
    assert best == {(-1, -1): 0, (0, -1): 2, (1, -1): 2, (-1, 1): 1, (0, 1): 1, (1, 1): 0}
    # Short episodes from random starts (flat states are reached no other way), cut by a time limit
    # (truncated: bootstrapped, as the infinite-horizon Q* assumes); states fitted on a long
    # none-action pass; τ kept ≥ 0.2 so that rarely visited states still try every action.
    env = SignalEnv(length=10, truncate=True, random_start=True)
    agent = QLearningAgent(env, seed=0, tau_start=2.0, tau_end=0.2)
    agent.fit_states(collect_observations(SignalEnv(length=3000), seed=0, max_steps=5000))
    agent.learn(60_000, progress=False)
    probe = SignalEnv()
    probe.reset(seed=123)
    for (pos, z), action in best.items():
        for bid, ask in itertools.product((0, 1), repeat=2):
            probe.pos, probe.z, probe.bid, probe.ask = pos, z, bid, ask
            for _ in range(5):
                obs = probe._obs()
                assert agent.predict(obs) == action, (pos, z, bid, ask)
                # the learned values of the optimal actions are near Q*
                assert agent.q[agent.state(obs), action] == pytest.approx(q_star[(pos, z)][action], abs=0.1)


# -- save, load, kinds --------------------------------------------------------------------------


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    agent, env = _fitted_agent(seed=14, alpha=0.2, gamma=0.4, tau_decay_steps=500, k=5)
    agent.learn(1500, progress=False)
    path = tmp_path / QLearningKind().model_file(14)
    agent.save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed_14.npz"]  # no .npz.npz, no temporary left
    with np.load(path, allow_pickle=False) as data:  # plain arrays only
        assert {"q", "visits", "scaler_data_min", "scaler_data_max", "centres"} <= set(data.files)
    loaded = QLearningAgent.load(path)
    assert (loaded.k, loaded.alpha, loaded.gamma, loaded.tau_decay_steps) == (5, 0.2, 0.4, 500)
    assert loaded.num_timesteps == 1500 and loaded.device_name == "-"
    np.testing.assert_array_equal(loaded.q, agent.q)
    np.testing.assert_array_equal(loaded.visits, agent.visits)
    assert loaded.state_map is not None and agent.state_map is not None
    np.testing.assert_array_equal(loaded.state_map.centres, agent.state_map.centres)
    observations = np.stack([entry[0] for entry in env.log[-300:]])
    np.testing.assert_array_equal(loaded.predict(observations), agent.predict(observations))
    stochastic = [(agent.predict(o, False), loaded.predict(o, False)) for o in observations]
    assert all(a == b for a, b in stochastic)  # the generator's state is saved too
    with pytest.raises(AgentError, match="no env"):
        loaded.learn(10, progress=False)
    trained_on = QLearningAgent.load(path, env=SignalEnv())
    trained_on.learn(10, progress=False)
    assert trained_on.num_timesteps == 1510


def test_load_refuses_a_missing_or_foreign_file(tmp_path: Path) -> None:
    with pytest.raises(AgentError, match="no saved agent"):
        QLearningAgent.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", q=np.zeros((2, 2)))
    with pytest.raises(AgentError, match=r"not a rltrade\.qlearning/1 file"):
        QLearningAgent.load(tmp_path / "other.npz")


def test_kind_builds_from_config_params(tmp_path: Path) -> None:
    from rltrade.config import parse_config

    config = parse_config(
        {
            "name": "q",
            "strategy": "orderbook",
            "agent": {"kind": "qlearning", "clusters": 4, "alpha": 0.5, "tau_end": 0.2},
        }
    )
    kind = QLearningKind()
    agent = kind.build(config, SignalEnv(length=100), seed=3)
    assert (agent.k, agent.alpha, agent.gamma, agent.tau_end, agent.seed) == (4, 0.5, DEFAULTS["gamma"], 0.2, 3)
    assert agent.learn(200, progress=False) is agent and agent.num_timesteps == 200
    agent.save(tmp_path / kind.model_file(3))
    loaded = kind.load(config, tmp_path / "seed_3.npz")
    np.testing.assert_array_equal(loaded.q, agent.q)
    # an order-book config's agent section: clusters → k
    section = SimpleNamespace(kind="qlearning", episodes=3, clusters=3, alpha=None, gamma=0.9, tau_start=2, tau_end=1)
    assert params_of(section) == {**DEFAULTS, "k": 3, "alpha": None, "gamma": 0.9, "tau_start": 2, "tau_end": 1}
    with pytest.raises(AgentError, match=r"agent\.params\.learning_rate: not a Q-learning parameter"):
        params_of({"learning_rate": 0.1})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "k must be ≥ 1"),
        ({"alpha": 1.5}, r"alpha must be None or in \(0, 1\]"),
        ({"gamma": 1.0}, r"gamma must be in \[0, 1\)"),
        ({"tau_start": 0.01}, "tau_start must be ≥ tau_end"),
        ({"tau_end": 0.0}, "tau_end must be > 0"),
    ],
)
def test_bad_parameters_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(AgentError, match=message):
        QLearningAgent(SignalEnv(), **kwargs)


def test_envs_it_cannot_use_are_refused() -> None:
    box = SignalEnv()
    box.action_space = gym.spaces.Box(-1, 1, (1,))
    with pytest.raises(AgentError, match="Discrete"):
        QLearningAgent(box)
    with pytest.raises(AgentError, match="VecEnv"):
        QLearningAgent(SimpleNamespace(action_space=gym.spaces.Discrete(6)))


# -- speed --------------------------------------------------------------------------------------


class ReplayEnv(gym.Env[np.ndarray, Any]):
    """Precomputed observations and rewards, so that stepping costs almost nothing."""

    def __init__(self, steps: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.steps = steps
        self.action_space = gym.spaces.Discrete(6)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (6,), np.float32)
        data = np.column_stack(
            [
                *(rng.integers(-1, 2, steps + 1), rng.integers(0, 2, (steps + 1, 2))),
                *(rng.normal(0, 500, steps + 1), rng.normal(0, 1, steps + 1), rng.integers(1, 3, steps + 1)),
            ]
        ).astype(np.float32)
        self.rows = list(data)
        self.rewards = rng.normal(0, 1, steps + 1).tolist()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.t = 0
        return self.rows[0], {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.t += 1
        return self.rows[self.t], self.rewards[self.t], self.t >= self.steps, False, {}
