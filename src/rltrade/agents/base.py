"""The :class:`Agent` protocol and the registry that ``agent.kind`` selects from.

An agent learns on an env, maps observations to actions, and saves and loads itself. Every
strategy trains and trades agents only through this protocol, so a new kind of agent (tabular
Q-learning, direct reinforcement, ...) is one module with a class like
:class:`rltrade.agents.sb3.SB3Agent`, registered in :data:`AGENTS` under its ``agent.kind``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from rltrade.config import ConfigError, RunConfig
from rltrade.shared.registry import lookup


class Agent(Protocol):
    """What a strategy needs of an agent."""

    #: Steps the agent has trained (as SB3 counts them: whole rollouts).
    num_timesteps: int
    #: The torch device it runs on (``"cpu"``), or ``"-"`` for agents without one.
    device_name: str

    def learn(self, timesteps: int, *, progress: bool = True, label: str | None = None) -> Agent:
        """Train for ``timesteps`` env steps on the env the agent was built with."""
        ...

    def predict(self, observation: Any, deterministic: bool = True) -> Any:
        """The action for ``observation`` (the greedy one when ``deterministic``)."""
        ...

    def save(self, path: str | Path) -> None:
        """Write the agent to ``path`` (a file the kind's ``load`` reads back)."""
        ...


class AgentKind(Protocol):
    """How a kind of agent is built for a run and loaded from its run directory."""

    def build(self, config: RunConfig, env: Any, *, seed: int, tensorboard_log: str | Path | None = None) -> Agent:
        """A new agent for ``config.agent`` on ``env`` (a Gymnasium env or an SB3 VecEnv), seeded."""
        ...

    def load(self, config: RunConfig, path: str | Path) -> Agent:
        """The agent saved at ``path`` by a run of ``config``."""
        ...

    def model_file(self, seed: int) -> str:
        """The file name of a seed's saved agent in ``RUN_DIR/models/``."""
        ...


#: ``agent.kind`` → ``module:Class`` of its :class:`AgentKind`.
AGENTS: dict[str, str] = {
    "sb3": "rltrade.agents.sb3:SB3Kind",
    "direct": "rltrade.agents.direct:DirectRLKind",
    "qlearning": "rltrade.agents.qlearning:QLearningKind",
    "random": "rltrade.agents.random_agent:RandomKind",
}


def register(kind: str, target: str) -> None:
    """Register an :class:`AgentKind` ``module:Class`` under ``kind``."""
    AGENTS[kind] = target


def agent_kind(kind: str) -> AgentKind:
    """The :class:`AgentKind` registered as ``kind``."""
    built: AgentKind = lookup(AGENTS, kind, "agent.kind", "agent kind", ConfigError)
    return built
