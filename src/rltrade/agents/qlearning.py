"""Tabular Q-learning on the order book (seed 003; ``OrderBookEnv``), behind the Agent protocol.

The env's observation is ``[position / position_limit, has_bid_order, has_ask_order,
ofi_window, log(q^B/q^A), spread_ticks]``; its actions are ``Discrete(6)`` (none, buy, sell,
best_bid, best_ask, best_both).

**States.** The two market features (OFI, log book ratio) are min-max scaled and clustered by
k-means (``k = 6``), both fitted once, on observations of the *training* env, and never refitted
(:meth:`QLearningAgent.fit_states`; by default :meth:`~QLearningAgent.learn` collects them with
a pass of the ``none`` action, so the agent's own orders do not shape the clusters). A cluster is
combined with the position (short / flat / long: the sign of ``obs[0]``) and the two open-order
flags::

    state = ((cluster × 3 + position) × 2 + has_bid) × 2 + has_ask,   position: 0 short, 1 flat, 2 long

so there are ``12 k`` states. The mapping runs on Python scalars (a nearest centre among ``k`` in
2-D), a few µs per step; sklearn is used only to fit.

**Learning.** ``Q ← Q + α (r + γ max_a' Q(s', a') − Q)``, with ``α = 1 / (1 + n)`` where ``n`` is
the number of earlier updates of ``(s, a)`` (so ``Q(s, a)`` is the running mean of its targets;
seed 003 fixed α at 1) or a constant; ``γ = 0.5``. A *terminated* transition does not bootstrap
(target ``r``); a transition cut only by a time limit (*truncated*) does, from its last
observation, as Gymnasium intends.

**Exploration.** Boltzmann: ``P(a | s) ∝ exp(Q(s, a) / τ)`` (computed with the row's maximum
subtracted), so an action is chosen *more* often as its Q grows (seed 003's ``k^Q`` with
``k < 1`` did the opposite). τ decays exponentially from ``tau_start`` to ``tau_end`` over
``tau_decay_steps`` training steps and then stays at ``tau_end``. τ is in reward units: Q starts
at 0, so in a rarely visited state an action whose first targets were positive can crowd out the
untried ones once τ is small against the reward gaps; keep ``tau_end`` on the scale of the
rewards.

The Q-table, visit counts, scaler and centres are saved as plain arrays in one ``.npz`` file
(read back without pickle).
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from rltrade.agents.factory import AgentError

#: Observation layout of ``OrderBookEnv``: the indices the agent reads.
POSITION, HAS_BID, HAS_ASK, OFI, LOG_BOOK_RATIO = 0, 1, 2, 3, 4
#: Position buckets (short, flat, long) × bid flag × ask flag: states per cluster.
STATES_PER_CLUSTER = 3 * 2 * 2
#: What ``agent.params`` may set for ``agent.kind: qlearning``, with the defaults.
DEFAULTS: dict[str, Any] = {
    "k": 6,  # k-means clusters of (OFI, log book ratio)
    "alpha": None,  # None: 1 / (1 + earlier updates of (s, a)); a float in (0, 1]: constant
    "gamma": 0.5,  # discount
    "tau_start": 1.0,  # Boltzmann temperature at the first training step (reward units)
    "tau_end": 0.05,  # ... after tau_decay_steps steps, and for predict(deterministic=False)
    "tau_decay_steps": None,  # None: the timesteps of the first learn call
    "n_init": 10,  # k-means restarts (KMeans(n_init=...))
    "fit_steps": 100_000,  # most observations of the none-action pass that fits the states
}
_FORMAT = "rltrade.qlearning/1"
_UNIFORM_CHUNK = 4096


class StateMap:
    """Observations → state indices: min-max scaling, nearest k-means centre, position and order flags.

    Built by :meth:`fit` (sklearn's ``MinMaxScaler`` and ``KMeans``) or from saved arrays. The
    scaled features are ``x · scale + offset`` (``MinMaxScaler``'s ``scale_`` and ``min_``);
    the cluster is the nearest centre, the lowest index on a tie (as ``KMeans.predict``).
    """

    def __init__(
        self, data_min: np.ndarray, data_max: np.ndarray, scale: np.ndarray, offset: np.ndarray, centres: np.ndarray
    ) -> None:
        self.data_min = np.array(data_min, dtype=np.float64)
        self.data_max = np.array(data_max, dtype=np.float64)
        self.scale = np.array(scale, dtype=np.float64)
        self.offset = np.array(offset, dtype=np.float64)
        self.centres = np.array(centres, dtype=np.float64)
        for array in (self.data_min, self.data_max, self.scale, self.offset, self.centres):
            array.flags.writeable = False  # fitted once: nothing may move them afterwards
        # Python floats for the per-step path: a numpy call per step costs more than the arithmetic.
        self._sx, self._sy = (float(v) for v in self.scale)
        self._ox, self._oy = (float(v) for v in self.offset)
        self._centres = [(float(x), float(y)) for x, y in self.centres]

    @property
    def k(self) -> int:
        """Number of clusters."""
        return len(self._centres)

    @property
    def n_states(self) -> int:
        """``12 k``: clusters × 3 positions × 2 bid flags × 2 ask flags."""
        return self.k * STATES_PER_CLUSTER

    @classmethod
    def fit(cls, observations: np.ndarray, *, k: int, seed: int, n_init: int = 10) -> StateMap:
        """Fit the scaler and k-means on the (OFI, log book ratio) columns of ``observations`` ``[n, 6]``."""
        from sklearn.cluster import KMeans
        from sklearn.preprocessing import MinMaxScaler

        obs = np.asarray(observations, dtype=np.float64)
        if obs.ndim != 2 or obs.shape[1] <= LOG_BOOK_RATIO:
            raise AgentError(f"fit_states: observations must be [n, 6] (OrderBookEnv layout), got shape {obs.shape}")
        features = obs[:, [OFI, LOG_BOOK_RATIO]]
        finite = np.isfinite(features).all(axis=1)
        if not finite.all():
            row = int(np.argmax(~finite))
            raise AgentError(f"fit_states: OFI or log book ratio is NaN/inf in observation {row}")
        if len(features) < k:
            raise AgentError(f"fit_states: {len(features)} observations cannot make k = {k} clusters")
        scaler = MinMaxScaler().fit(features)
        kmeans = KMeans(n_clusters=k, random_state=seed, n_init=n_init).fit(scaler.transform(features))
        return cls(scaler.data_min_, scaler.data_max_, scaler.scale_, scaler.min_, kmeans.cluster_centers_)

    def cluster(self, ofi: float, log_ratio: float) -> int:
        """The nearest centre to the scaled ``(ofi, log_ratio)`` (non-finite features give cluster 0)."""
        x, y = ofi * self._sx + self._ox, log_ratio * self._sy + self._oy
        best, nearest = math.inf, 0
        for i, (cx, cy) in enumerate(self._centres):
            d = (x - cx) * (x - cx) + (y - cy) * (y - cy)
            if d < best:
                best, nearest = d, i
        return nearest

    def state(self, observation: Any) -> int:
        """The state index of one observation (see the module docstring for the layout)."""
        values = observation.tolist() if isinstance(observation, np.ndarray) else list(observation)
        position = values[POSITION]
        bucket = 0 if position < 0 else (1 if position == 0 else 2)
        cluster = self.cluster(values[OFI], values[LOG_BOOK_RATIO])
        return ((cluster * 3 + bucket) * 2 + (values[HAS_BID] > 0.5)) * 2 + (values[HAS_ASK] > 0.5)

    def states(self, observations: np.ndarray) -> np.ndarray:
        """State indices of a batch ``[n, 6]``, vectorised (the same mapping as :meth:`state`)."""
        obs = np.asarray(observations, dtype=np.float64)
        scaled = obs[:, [OFI, LOG_BOOK_RATIO]] * self.scale + self.offset
        distances = ((scaled[:, None, :] - self.centres[None, :, :]) ** 2).sum(axis=2)
        cluster = np.argmin(np.nan_to_num(distances, nan=np.inf), axis=1)  # first minimum: the lowest index
        bucket = np.sign(obs[:, POSITION]).astype(np.int64) + 1
        bid, ask = (obs[:, HAS_BID] > 0.5).astype(np.int64), (obs[:, HAS_ASK] > 0.5).astype(np.int64)
        return ((cluster * 3 + bucket) * 2 + bid) * 2 + ask


def boltzmann_probabilities(q_values: Any, tau: float) -> np.ndarray:
    """``P(a) = exp(Q(a)/τ) / Σ exp(Q(a')/τ)``, computed as ``exp((Q(a) − max Q)/τ)`` normalised."""
    q = np.asarray(q_values, dtype=np.float64)
    weights = np.exp((q - q.max()) / tau)
    return np.asarray(weights / weights.sum())


def sample_boltzmann(q_row: list[float], tau: float, u: float) -> int:
    """The action whose Boltzmann probability interval contains ``u ∈ [0, 1)`` (inverse CDF, on Python floats).

    Action ``a`` is returned for ``u`` in ``[F(a−1), F(a))``, ``F`` the cumulative
    :func:`boltzmann_probabilities`, so a uniform ``u`` samples them exactly.
    """
    top = max(q_row)
    cumulative = list(itertools.accumulate(math.exp((q - top) / tau) for q in q_row))
    action = bisect.bisect_right(cumulative, u * cumulative[-1])
    return action if action < len(q_row) else q_row.index(top)  # u·total rounded up to total


def greedy(q_row: list[float]) -> int:
    """``argmax_a Q(s, a)``, the lowest action on a tie (so an unvisited state gives 0, ``none``)."""
    return q_row.index(max(q_row))


def temperature(step: int, tau_start: float, tau_end: float, decay_steps: int) -> float:
    """``τ(t) = τ₀ (τ_end/τ₀)^(min(t, T)/T)``: exponential decay from τ₀ at t = 0 to τ_end at t ≥ T."""
    return float(tau_start * (tau_end / tau_start) ** (min(step, decay_steps) / decay_steps))


def collect_observations(env: gym.Env[Any, Any], *, seed: int | None, max_steps: int, action: int = 0) -> np.ndarray:
    """Observations ``[n, obs_dim]`` of one episode of ``env`` repeating ``action`` (``none``), ≤ ``max_steps`` rows."""
    obs, _ = env.reset(seed=seed)
    rows = [np.asarray(obs, dtype=np.float64)]
    while len(rows) < max_steps:
        obs, _, terminated, truncated, _ = env.step(action)
        rows.append(np.asarray(obs, dtype=np.float64))
        if terminated or truncated:
            break
    return np.stack(rows)


class QLearningAgent:
    """Tabular Q-learning with k-means states and Boltzmann exploration (see the module docstring).

    Parameters
    ----------
    env:
        The training env (``Discrete`` actions, the ``OrderBookEnv`` observation layout), or
        None for an agent that only predicts (a loaded one).
    k:
        k-means clusters of (OFI, log book ratio).
    alpha:
        None: ``α = 1 / (1 + n)`` with ``n`` earlier updates of ``(s, a)``; a float in (0, 1]: constant α.
    gamma:
        Discount in [0, 1).
    tau_start, tau_end, tau_decay_steps:
        The Boltzmann temperature schedule (:func:`temperature`); ``tau_decay_steps=None``
        spans the first :meth:`learn` call. ``tau_end`` is also the temperature of
        ``predict(deterministic=False)``.
    n_init:
        k-means restarts.
    fit_steps:
        Most observations :meth:`learn` collects to fit the states when :meth:`fit_states` was
        not called.
    seed:
        Seeds k-means, the exploration draws and the env's first reset.
    n_actions:
        The number of actions when ``env`` is None.
    """

    device_name = "-"

    def __init__(
        self,
        env: gym.Env[Any, Any] | None,
        *,
        k: int = 6,
        alpha: float | None = None,
        gamma: float = 0.5,
        tau_start: float = 1.0,
        tau_end: float = 0.05,
        tau_decay_steps: int | None = None,
        n_init: int = 10,
        fit_steps: int = 100_000,
        seed: int = 0,
        n_actions: int | None = None,
    ) -> None:
        _check_params(
            k=k,
            alpha=alpha,
            gamma=gamma,
            tau_start=tau_start,
            tau_end=tau_end,
            tau_decay_steps=tau_decay_steps,
            n_init=n_init,
            fit_steps=fit_steps,
        )
        actions = discrete_actions(env) if env is not None else n_actions
        if actions is None:
            raise AgentError("QLearningAgent: give an env or n_actions")
        self.env, self.n_actions = env, actions
        self.k, self.alpha, self.gamma = int(k), alpha, float(gamma)
        self.tau_start, self.tau_end, self.tau_decay_steps = float(tau_start), float(tau_end), tau_decay_steps
        self.n_init, self.fit_steps, self.seed = int(n_init), int(fit_steps), int(seed)
        self.num_timesteps = 0
        self.state_map: StateMap | None = None
        self.q = np.zeros((self.k * STATES_PER_CLUSTER, self.n_actions))
        self.visits = np.zeros((self.k * STATES_PER_CLUSTER, self.n_actions), dtype=np.int64)
        self._rng = np.random.default_rng(self.seed)
        self._env_seeded = False

    # -- states ----------------------------------------------------------------------------------

    def fit_states(self, observations: np.ndarray) -> StateMap:
        """Fit the scaler and k-means once, on observations ``[n, 6]`` of the training window.

        Refitting is refused: the states the Q-table is indexed by must not move after training
        starts (nor be refitted on test data).
        """
        if self.state_map is not None:
            raise AgentError("fit_states: the states are already fitted (they are fitted once, on training data)")
        self.state_map = StateMap.fit(observations, k=self.k, seed=self.seed, n_init=self.n_init)
        return self.state_map

    def state(self, observation: Any) -> int:
        """The state index of ``observation``."""
        return self._fitted().state(observation)

    # -- the Agent protocol ----------------------------------------------------------------------

    def learn(self, timesteps: int, *, progress: bool = True, label: str | None = None) -> QLearningAgent:
        """Train for ``timesteps`` env steps, from a fresh episode, with Boltzmann exploration.

        The first call fits the states if :meth:`fit_states` was not called (a ``none``-action
        pass of at most ``fit_steps`` observations; not counted in :attr:`num_timesteps`) and
        resets the env with ``seed``; later resets continue the env's own random stream.
        """
        from tqdm.auto import tqdm

        if self.env is None:
            raise AgentError("learn: this agent has no env (a loaded agent predicts only; pass env= to load it)")
        env = self.env
        if self.state_map is None:
            self.fit_states(collect_observations(env, seed=self.seed, max_steps=self.fit_steps))
            self._env_seeded = True
        states = self._fitted()
        if self.tau_decay_steps is None:
            self.tau_decay_steps = int(timesteps)
        decay = self.tau_decay_steps
        # Plain lists in the loop: indexing a numpy array per element costs ~100 ns, a list ~20 ns.
        q, visits = self.q.tolist(), self.visits.tolist()
        uniforms = self._uniforms()
        bar = tqdm(
            total=timesteps,
            desc=label or "train Q-learning",
            unit="step",
            unit_scale=True,
            disable=None if progress else True,
            leave=False,
        )
        try:
            s = states.state(self._reset(env))
            for done in range(1, timesteps + 1):
                tau = temperature(self.num_timesteps, self.tau_start, self.tau_end, decay)
                a = sample_boltzmann(q[s], tau, next(uniforms))
                obs, reward, terminated, truncated, _ = env.step(a)
                s_next = states.state(obs)
                target = float(reward) if terminated else float(reward) + self.gamma * max(q[s_next])
                alpha = 1.0 / (1 + visits[s][a]) if self.alpha is None else self.alpha
                q[s][a] += alpha * (target - q[s][a])
                visits[s][a] += 1
                self.num_timesteps += 1
                s = states.state(self._reset(env)) if terminated or truncated else s_next
                if done % 1024 == 0:  # a bar update per step would cost more than the step
                    bar.update(1024)
            bar.update(timesteps - bar.n)
        finally:
            self.q[:] = q
            self.visits[:] = visits
            bar.close()
        return self

    def predict(self, observation: Any, deterministic: bool = True) -> Any:
        """The action for one observation (an ``int``) or a batch ``[n, 6]`` (an array).

        ``deterministic``: ``argmax Q`` (the lowest action on a tie; ``none`` in an unvisited
        state); otherwise a Boltzmann draw at ``tau_end``.
        """
        states = self._fitted()
        obs = np.asarray(observation)
        if obs.ndim == 2:
            return np.array([self.predict(row, deterministic) for row in obs], dtype=np.int64)
        row = self.q[states.state(obs)].tolist()
        return greedy(row) if deterministic else sample_boltzmann(row, self.tau_end, float(self._rng.random()))

    def save(self, path: str | Path) -> None:
        """Write the Q-table, visit counts, scaler and centres, parameters and RNG state to one ``.npz`` file."""
        states = self._fitted()
        path = Path(path)
        params = {
            "k": self.k,
            "alpha": self.alpha,
            "gamma": self.gamma,
            "tau_start": self.tau_start,
            "tau_end": self.tau_end,
            "tau_decay_steps": self.tau_decay_steps,
            "n_init": self.n_init,
            "fit_steps": self.fit_steps,
            "seed": self.seed,
        }
        arrays = {
            "format": np.array(_FORMAT),
            "params": np.array(json.dumps(params)),
            "rng_state": np.array(json.dumps(self._rng.bit_generator.state)),
            "num_timesteps": np.array(self.num_timesteps, dtype=np.int64),
            "q": self.q,
            "visits": self.visits,
            "scaler_data_min": states.data_min,
            "scaler_data_max": states.data_max,
            "scaler_scale": states.scale,
            "scaler_offset": states.offset,
            "centres": states.centres,
        }
        write_npz(path, arrays)

    @classmethod
    def load(cls, path: str | Path, env: gym.Env[Any, Any] | None = None) -> QLearningAgent:
        """The agent :meth:`save` wrote at ``path`` (on ``env`` if given, to train further)."""
        data = read_npz(Path(path), _FORMAT)
        q = data["q"]
        agent = cls(env, n_actions=q.shape[1], **json.loads(str(data["params"])))
        if agent.n_actions != q.shape[1]:
            raise AgentError(f"{path}: the Q-table has {q.shape[1]} actions, the env {agent.n_actions}")
        agent.state_map = StateMap(
            data["scaler_data_min"],
            data["scaler_data_max"],
            data["scaler_scale"],
            data["scaler_offset"],
            data["centres"],
        )
        agent.q[:] = q
        agent.visits[:] = data["visits"]
        agent.num_timesteps = int(data["num_timesteps"])
        agent._rng.bit_generator.state = json.loads(str(data["rng_state"]))
        return agent

    # -- helpers ---------------------------------------------------------------------------------

    def _fitted(self) -> StateMap:
        if self.state_map is None:
            raise AgentError("the Q-learning states are not fitted: call fit_states(observations) or learn first")
        return self.state_map

    def _reset(self, env: gym.Env[Any, Any]) -> Any:
        obs, _ = env.reset(seed=None if self._env_seeded else self.seed)
        self._env_seeded = True
        return obs

    def _uniforms(self) -> Iterator[float]:
        # Drawn in blocks: one Generator call per step would cost more than the rest of the agent.
        while True:
            yield from self._rng.random(_UNIFORM_CHUNK).tolist()


class QLearningKind:
    """``agent.kind: qlearning``: :data:`DEFAULTS` set from the config's agent section (:func:`params_of`)."""

    def build(self, config: Any, env: Any, *, seed: int, tensorboard_log: str | Path | None = None) -> QLearningAgent:
        """A new agent on ``env`` (a Gymnasium env) for ``config`` (a ``RunConfig`` or an order-book config).

        ``tensorboard_log`` is ignored: there is nothing to log.
        """
        return QLearningAgent(env, seed=seed, **params_of(config.agent))

    def load(self, config: Any, path: str | Path) -> QLearningAgent:
        """The agent a run saved at ``path`` (its parameters are in the file)."""
        return QLearningAgent.load(path)

    def model_file(self, seed: int) -> str:
        """``seed_<s>.npz``."""
        return f"seed_{seed}.npz"


#: Fields of an order-book config's ``agent`` section (``rltrade.config.orderbook``) → parameter names.
_SECTION_FIELDS = {"clusters": "k", "alpha": "alpha", "gamma": "gamma", "tau_start": "tau_start", "tau_end": "tau_end"}


def params_of(section: Any) -> dict[str, Any]:
    """:data:`DEFAULTS` updated from a config's agent section; an unknown name is an :class:`AgentError`.

    ``section`` is a mapping of parameters, a section with a ``params`` mapping (the SB3-shaped
    ``AgentConfig`` of a :class:`~rltrade.config.RunConfig`), or a section with the fields
    ``clusters`` (→ ``k``), ``alpha``, ``gamma``, ``tau_start``, ``tau_end`` (the order-book
    config's Q-learning section; its other fields, e.g. ``episodes``, are for the strategy).
    """
    if isinstance(section, Mapping):
        params = dict(section)
    elif isinstance(getattr(section, "params", None), Mapping):
        params = dict(section.params)
    else:
        params = {name: getattr(section, field) for field, name in _SECTION_FIELDS.items() if hasattr(section, field)}
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise AgentError(f"agent.params.{unknown[0]}: not a Q-learning parameter (it takes: {', '.join(DEFAULTS)})")
    return {**DEFAULTS, **params}


def _check_params(**values: Any) -> None:
    rules = {
        "k": (lambda v: v >= 1, "≥ 1"),
        "alpha": (lambda v: v is None or 0.0 < v <= 1.0, "None or in (0, 1]"),
        "gamma": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
        "tau_end": (lambda v: v > 0.0, "> 0"),
        "tau_start": (lambda v: v >= values["tau_end"], "≥ tau_end"),
        "tau_decay_steps": (lambda v: v is None or v >= 1, "None or ≥ 1"),
        "n_init": (lambda v: v >= 1, "≥ 1"),
        "fit_steps": (lambda v: v >= 2, "≥ 2"),
    }
    for name, (ok, rule) in rules.items():
        if not ok(values[name]):
            raise AgentError(f"Q-learning {name} must be {rule}, got {values[name]!r}")


def discrete_actions(env: Any) -> int:
    """The number of actions of a Gymnasium env with ``Discrete(n)`` actions (from 0); :class:`AgentError` otherwise."""
    if not isinstance(env, gym.Env):
        raise AgentError(f"tabular agents need a Gymnasium env (one copy, not a VecEnv); got {type(env).__name__}")
    space = env.action_space
    if not isinstance(space, gym.spaces.Discrete) or int(space.start) != 0:
        raise AgentError(f"tabular agents need Discrete(n) actions starting at 0; this env's actions are {space}")
    return int(space.n)


def write_npz(path: Path, arrays: dict[str, Any]) -> None:
    """``np.savez`` to a hidden temporary file beside ``path``, renamed into place (no ``.npz`` appended)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as handle:
        np.savez(handle, **arrays)
    os.replace(tmp, path)


def read_npz(path: Path, expected_format: str) -> dict[str, np.ndarray]:
    """The arrays of a file :func:`write_npz` wrote, checked to be of ``expected_format`` (never unpickled)."""
    if not path.exists():
        raise AgentError(f"no saved agent at {path}")
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    found = str(arrays.get("format", "no format"))
    if found != expected_format:
        raise AgentError(f"{path} is not a {expected_format} file (format: {found})")
    return arrays
