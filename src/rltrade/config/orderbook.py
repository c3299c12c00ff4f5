"""Configs of the order-book strategy (``strategy: orderbook``, seed 003): :class:`OrderBookConfig`.

One session of level-I events (a LOBSTER day, a trades-and-quotes file or the synthetic
generator) is cut into three windows of exchange time, in order and disjoint in what they teach:
``fit`` (the state scalers and clusters are fitted here), ``train`` (the agent learns here) and
``test`` (scored here, out of sample). The agent section is a union discriminated by
``agent.kind``: ``qlearning`` (tabular Q-learning) or ``random``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from rltrade.config.base import _Model

#: The sources of tick data a config may name (``lobster:MESSAGE_FILE``, ``taq:PATH``, ``synthetic:``).
TICK_SOURCES: tuple[str, ...] = ("lobster", "taq", "synthetic")


class TickDataConfig(_Model):
    """Where the session's events come from."""

    source: str = Field(
        "synthetic:",
        description="lobster:MESSAGE_FILE (its orderbook file beside it), taq:PATH, or synthetic:[SEED].",
    )
    orderbook: str | None = Field(None, description="lobster: the orderbook file, when not beside the message file.")
    symbol: str | None = Field(None, description="The symbol (taq: required; lobster: from the file name).")
    date: dt.date | None = Field(None, description="The session date (lobster: from the file name).")
    store: str | None = Field(None, description="Store directory or URI; default $RLTRADE_STORE or ./rltrade-data.")
    synthetic_hours: float = Field(
        6.5, gt=0, le=240, description="synthetic: hours of generated session from 09:30 (6.5 = one NYSE day)."
    )

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        kind, sep, arg = value.partition(":")
        if kind not in TICK_SOURCES or not sep:
            raise ValueError(f"unknown tick source {value!r}; use lobster:MESSAGE_FILE, taq:PATH or synthetic:")
        if kind != "synthetic" and not arg:
            raise ValueError(f"{kind}: needs a file path, e.g. {kind}:data/FILE.csv")
        if kind == "synthetic" and arg and not arg.isdigit():
            raise ValueError(f"synthetic:{arg}: the argument is the generator's seed, a whole number")
        return value


class SessionWindow(_Model):
    """A window of exchange time in the session, ``start`` inclusive, ``end`` exclusive."""

    start: dt.time
    end: dt.time

    @field_validator("start", "end", mode="before")
    @classmethod
    def _time(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):  # YAML reads 10:30 as 630 (sexagesimal)
            return dt.time(value // 60, value % 60)
        return value

    @model_validator(mode="after")
    def _ordered(self) -> SessionWindow:
        if self.end <= self.start:
            raise ValueError(f"end: {self.end} is not after start {self.start}")
        return self


class OrderBookEnvConfig(_Model):
    """The order-book env (:class:`rltrade.envs.orderbook.OrderBookEnv`)."""

    decision_interval: float = Field(2.0, gt=0, le=3600, description="Seconds between decisions.")
    order_size: int = Field(100, gt=0, description="Shares per order.")
    position_limit: int = Field(100, gt=0, description="Largest long or short position, in shares.")
    ticks_away: int = Field(0, ge=0, description="Limit orders this many ticks worse than the best price.")
    tick: float = Field(0.01, gt=0, description="Tick size in currency.")
    fee_per_share: float = Field(0.0, ge=0, description="Fee per share traded, in currency.")
    fee_per_order: float = Field(0.0, ge=0, description="Fee per filled order, in currency.")
    trailing_stop: float | None = Field(
        None, gt=0, description="Trailing stop in currency (the seed used 0.04); unlocks the market actions."
    )
    ofi_window: float = Field(10.0, gt=0, description="Seconds of order-flow imbalance summed per decision.")
    latency: float = Field(0.0, ge=0, description="Seconds before an agent's order or cancel reaches the book.")
    queue_model: Literal["ids", "risk_averse", "proportional"] | None = Field(
        None,
        description="The agent's queue position: ids (LOBSTER order ids), risk_averse (cancels come from behind), "
        "proportional; None = ids when the data carry them, else risk_averse.",
    )
    include_own_orders: bool = Field(False, description="Add the agent's resting orders to the book features.")


class QLearningAgentConfig(_Model):
    """Tabular Q-learning over k-means states of (OFI, log book ratio), position and open orders."""

    kind: Literal["qlearning"] = "qlearning"
    episodes: int = Field(30, ge=1, description="Training episodes (passes over the train window).")
    clusters: int = Field(6, ge=1, le=100, description="k of the k-means state clusters.")
    alpha: float | None = Field(None, gt=0, le=1, description="Learning rate; None = 1/(1 + visits of (s, a)).")
    gamma: float = Field(0.5, ge=0, lt=1, description="Discount factor.")
    tau_start: float = Field(1.0, gt=0, description="Boltzmann temperature at the first training step.")
    tau_end: float = Field(0.05, gt=0, description="Temperature at the last training step (exponential decay).")

    @model_validator(mode="after")
    def _taus(self) -> QLearningAgentConfig:
        if self.tau_end > self.tau_start:
            raise ValueError(f"tau_end: {self.tau_end} is above tau_start {self.tau_start}; the temperature decays")
        return self


class RandomAgentConfig(_Model):
    """Uniformly random actions (the benchmark of seed 003)."""

    kind: Literal["random"] = "random"


def _agent_kind(value: Any) -> str:
    return f"kind={value.get('kind', 'qlearning') if isinstance(value, dict) else getattr(value, 'kind', None)}"


OrderBookAgent = Annotated[
    Annotated[QLearningAgentConfig, Tag("kind=qlearning")] | Annotated[RandomAgentConfig, Tag("kind=random")],
    Discriminator(_agent_kind),
]
"""``agent:`` of an order-book config, chosen by ``agent.kind`` (default ``qlearning``)."""


class OrderBookEvaluation(_Model):
    """How the learning agent is compared with the random agent."""

    runs: int = Field(20, ge=2, description="Repeated runs (seeds) of each agent; the t-test needs two or more.")
    significance: float = Field(0.05, gt=0, lt=0.5, description="Level of the one-sided Welch t-test.")


class OrderBookConfig(_Model):
    """An order-book run: one session, a fit, a train and a test window (``strategy: orderbook``)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    seed: int = Field(0, ge=0)
    strategy: Literal["orderbook"] = "orderbook"
    data: TickDataConfig = Field(default_factory=TickDataConfig)
    env: OrderBookEnvConfig = Field(default_factory=OrderBookEnvConfig)
    agent: OrderBookAgent = Field(default_factory=QLearningAgentConfig)
    fit: SessionWindow = Field(
        default_factory=lambda: SessionWindow(start=dt.time(10, 30), end=dt.time(11, 30)),
        description="Exchange time whose observations fit the state scalers and clusters.",
    )
    train: SessionWindow = Field(default_factory=lambda: SessionWindow(start=dt.time(10, 30), end=dt.time(13, 30)))
    test: SessionWindow = Field(default_factory=lambda: SessionWindow(start=dt.time(13, 30), end=dt.time(16, 0)))
    evaluation: OrderBookEvaluation = Field(default_factory=OrderBookEvaluation)

    @model_validator(mode="after")
    def _windows(self) -> OrderBookConfig:
        if self.fit.start < self.train.start or self.fit.end > self.train.end:
            raise ValueError(
                f"fit: {self.fit.start}..{self.fit.end} is not inside the train window "
                f"{self.train.start}..{self.train.end} (scalers and clusters learn from training data only)"
            )
        if self.test.start < self.train.end:
            raise ValueError(
                f"test.start: {self.test.start} is before train.end {self.train.end}; the test window must come "
                "after the training window"
            )
        if self.data.source.startswith("taq:") and not self.data.symbol:
            raise ValueError("data.symbol: a taq: source needs the symbol it holds")
        return self

    def dump_yaml(self) -> str:
        """The config as YAML, suitable for :func:`rltrade.config.load_config`."""
        import yaml

        data = self.model_dump(mode="json")
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
