"""Stable-Baselines3 agents from a config: PPO, A2C, DDPG, TD3, SAC and DQN, on the CPU by default.

:func:`make_agent` builds an algorithm on a (vectorised) env with a fixed seed; :func:`train_agent`
trains it with a progress bar; :func:`load_agent` restores a saved one. Seeding is deterministic:
the same seed, env and parameters give the same weights on the same machine (torch on the CPU
with a fixed number of threads).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from rltrade.config import AGENT_MANAGED, ALGORITHMS, CONTINUOUS_ONLY, DEVICES, DISCRETE_ONLY, RunConfig
from rltrade.errors import RLTradeError

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.vec_env import VecEnv

log = logging.getLogger(__name__)


class AgentError(RLTradeError, ValueError):
    """An agent cannot be built for this env or these parameters."""


def algorithm_class(name: str) -> type[BaseAlgorithm]:
    """The Stable-Baselines3 class of an algorithm name (case-insensitive)."""
    import stable_baselines3 as sb3

    upper = name.upper()
    if upper not in ALGORITHMS:  # the config's one list of algorithms; each is a class of that name in SB3
        raise AgentError(f"unknown algorithm {name!r}; choose one of {', '.join(ALGORITHMS)}")
    cls: type[BaseAlgorithm] = getattr(sb3, upper)
    return cls


def check_action_space(algorithm: str, space: gym.Space[Any]) -> None:
    """Refuse an algorithm that cannot act in ``space`` (DQN: discrete only; DDPG/TD3/SAC: continuous only)."""
    name = algorithm.upper()
    if name in DISCRETE_ONLY and not isinstance(space, gym.spaces.Discrete):
        raise AgentError(f"{name} needs a discrete action space; this env's actions are {space}")
    if name in CONTINUOUS_ONLY and not isinstance(space, gym.spaces.Box):
        raise AgentError(f"{name} needs a continuous (Box) action space; this env's actions are {space}")


def check_device(device: str) -> str:
    """Return ``device`` in lower case if this machine can use it; :class:`AgentError` otherwise.

    ``cpu`` and ``auto`` are always accepted; ``cuda`` and ``cuda:N`` need
    ``torch.cuda.is_available()`` (and N below the device count); anything else is refused.
    """
    name = device.strip().lower()
    if name in ("cpu", "auto"):
        return name
    match = re.fullmatch(r"cuda(?::(\d+))?", name)
    if match is None:
        raise AgentError(f"unknown device {device!r}; use {DEVICES}")
    import torch

    if not torch.cuda.is_available():
        raise AgentError(
            f"{device!r} needs a CUDA GPU, but torch.cuda.is_available() is False on this machine; use cpu or auto"
        )
    count = torch.cuda.device_count()
    if match.group(1) is not None and int(match.group(1)) >= count:
        raise AgentError(f"{device!r}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    return name


def resolve_device(device: str) -> str:
    """The torch device to use: ``auto`` is ``cuda`` when torch sees a GPU, else ``cpu`` (see :func:`check_device`)."""
    name = check_device(device)
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def set_torch_threads(threads: int | None) -> None:
    """Fix torch's intra-op thread count (None leaves it). Small policy networks train faster on one thread."""
    if threads is None:
        return
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def make_agent(
    algorithm: str,
    env: gym.Env[Any, Any] | VecEnv,
    *,
    seed: int,
    params: Mapping[str, Any] | None = None,
    policy: str = "MlpPolicy",
    policy_kwargs: Mapping[str, Any] | None = None,
    device: str = "cpu",
    tensorboard_log: str | Path | None = None,
    torch_threads: int | None = 1,
) -> BaseAlgorithm:
    """Build a Stable-Baselines3 algorithm on ``env``.

    Parameters
    ----------
    algorithm:
        ``PPO``, ``A2C``, ``DDPG``, ``TD3``, ``SAC`` or ``DQN``.
    env:
        A Gymnasium env or an SB3 ``VecEnv`` (e.g. :class:`rltrade.envs.vec.BatchedPortfolioEnv`).
    seed:
        Seeds torch, numpy, Python's ``random``, the action space and the env (``VecEnv.seed``).
    params:
        Constructor parameters of the algorithm (``learning_rate``, ``n_steps``, ...).
    policy, policy_kwargs:
        The policy class name and its parameters (e.g. ``{"net_arch": [64, 64]}``).
    device:
        ``cpu`` by default (small MLPs are faster there than on a GPU), ``auto``, ``cuda`` or
        ``cuda:N`` (see :func:`check_device`).
    tensorboard_log:
        A folder for TensorBoard logs (needs the ``tensorboard`` package), or None.
    torch_threads:
        ``torch.set_num_threads`` before building (None: leave torch's setting).

    Raises
    ------
    AgentError
        Unknown algorithm, parameter or device, or an action space the algorithm cannot use.
    """
    cls = algorithm_class(algorithm)
    check_action_space(algorithm, env.action_space)
    device = resolve_device(device)
    set_torch_threads(torch_threads)
    kwargs = dict(params or {})
    if tensorboard_log is not None:
        kwargs["tensorboard_log"] = str(tensorboard_log)
    try:
        return cls(
            policy,
            env,
            seed=seed,
            device=device,
            verbose=0,
            policy_kwargs=dict(policy_kwargs or {}) or None,
            **kwargs,
        )
    except (TypeError, ValueError, AssertionError) as exc:
        raise AgentError(f"cannot build {cls.__name__} with parameters {kwargs}: {exc}") from exc


def _progress_callback(total: int, label: str) -> Any:
    from stable_baselines3.common.callbacks import BaseCallback
    from tqdm.auto import tqdm

    class TqdmCallback(BaseCallback):
        """A tqdm bar over the timesteps (hidden when stderr is not a terminal)."""

        def _on_training_start(self) -> None:
            self.bar = tqdm(total=total, desc=label, unit="step", unit_scale=True, disable=None, leave=False)

        def _on_step(self) -> bool:
            self.bar.n = min(self.num_timesteps, total)
            self.bar.refresh() if self.n_calls % 64 == 0 else None
            return True

        def _on_training_end(self) -> None:
            self.bar.n = min(self.num_timesteps, total)
            self.bar.close()

    return TqdmCallback()


def train_agent(
    model: BaseAlgorithm,
    timesteps: int,
    *,
    progress: bool = True,
    label: str | None = None,
    tb_log_name: str | None = None,
) -> BaseAlgorithm:
    """Train ``model`` for ``timesteps`` steps, with a tqdm progress bar unless ``progress=False``."""
    callback = _progress_callback(timesteps, label or f"train {type(model).__name__}") if progress else None
    kwargs: dict[str, Any] = {"tb_log_name": tb_log_name} if tb_log_name else {}
    model.learn(total_timesteps=timesteps, callback=callback, **kwargs)
    return model


def load_agent(algorithm: str, path: str | Path, device: str = "cpu", torch_threads: int | None = 1) -> BaseAlgorithm:
    """Load a model saved with ``model.save(path)``."""
    cls = algorithm_class(algorithm)
    device = resolve_device(device)
    set_torch_threads(torch_threads)
    path = Path(path)
    if not path.exists():
        raise AgentError(f"no saved model at {path}")
    return cls.load(str(path), device=device)


def deterministic_policy(model: Any) -> Callable[[np.ndarray], Any]:
    """The greedy action of an SB3 model (``predict(obs, deterministic=True)``)."""

    def policy(obs: np.ndarray) -> Any:
        return model.predict(obs, deterministic=True)[0]

    return policy


def _algorithm_param_problems(algorithm: str, params: Mapping[str, Any], where: str) -> list[tuple[str, str]]:
    """Constructor parameters the SB3 class of ``algorithm`` does not take (or the config sets itself)."""
    import inspect

    accepted = set(inspect.signature(algorithm_class(algorithm).__init__).parameters) - {"self"}
    problems = []
    for key in params:
        if key in AGENT_MANAGED:
            problems.append((f"{where}.{key}", f"set it with `{AGENT_MANAGED[key]}`, not in the algorithm parameters"))
        elif key not in accepted:
            options = ", ".join(sorted(accepted - set(AGENT_MANAGED)))
            problems.append((f"{where}.{key}", f"not a parameter of {algorithm} (it takes: {options})"))
    return problems


def agent_config_problems(config: RunConfig) -> list[tuple[str, str]]:
    """What the agent sections of ``config`` ask that the agents cannot do: ``(field, message)`` pairs.

    The device must exist on this machine; SB3 parameters must be parameters of the algorithm
    (``agent.params``, and ``ensemble.params.<AGENT>`` for the ensemble).
    """
    from rltrade.agents.base import AGENTS

    problems: list[tuple[str, str]] = []
    if config.agent.kind not in AGENTS:
        problems.append(("agent.kind", f"unknown agent kind {config.agent.kind!r}; choose one of {', '.join(AGENTS)}"))
        return problems
    if config.agent.kind != "sb3":  # the other kinds' sections are typed: pydantic checked them
        return problems
    try:
        check_device(config.sb3.device)
    except AgentError as exc:
        problems.append(("agent.device", str(exc)))
    problems += _algorithm_param_problems(config.sb3.algorithm, config.sb3.params, "agent.params")
    if config.strategy == "ensemble":
        for name, params in config.ensemble.params.items():
            problems += _algorithm_param_problems(name, params, f"ensemble.params.{name}")
    return problems
