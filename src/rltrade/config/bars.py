"""Configs of the strategies that trade bars (``strategy: single`` and ``ensemble``): :class:`RunConfig`."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args

import pandas as pd
import yaml
from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from rltrade.config.base import ConfigError, _Model

ALGORITHMS: tuple[str, ...] = ("PPO", "A2C", "DDPG", "TD3", "SAC", "DQN")
"""The Stable-Baselines3 algorithms a config may name."""
DISCRETE_ONLY = frozenset({"DQN"})
"""Algorithms that need a discrete action space."""
CONTINUOUS_ONLY = frozenset({"DDPG", "TD3", "SAC"})
"""Algorithms that need a continuous (Box) action space."""
DEVICES = "cpu, auto (cuda when torch sees a GPU, else cpu), cuda or cuda:N"
"""The torch devices an agent may train on, as an error message lists them."""
ENV_TYPES: tuple[str, ...] = ("portfolio", "stock_trading", "single_asset")
BaselineName = Literal["buy_and_hold", "equal_weight", "min_variance", "random", "index"]
BASELINES: tuple[BaselineName, ...] = get_args(BaselineName)
"""Every baseline, in table order (the one list; the others are taken from it)."""
WEIGHT_BASELINES: tuple[str, ...] = BASELINES[:3]
"""The baselines that are target-weight policies on the agent's bars (the rest: the random agent, the index)."""

# Env constructor parameters the config sets through its own fields (so they cannot also be in env.params).
ENV_MANAGED = {
    "bars": "data",
    "features": "features.names",
    "feature_params": "features.params",
    "cost": "env.cost",
    "timing": "env.timing",
    "start": "train/test",
    "end": "train/test",
    "initial_value": "env.initial_value",
    "random_start": "agent.random_start",
    "episode_length": "agent.episode_length",
}
# Stable-Baselines3 constructor parameters set through the agent fields.
AGENT_MANAGED = {
    "policy": "agent.policy",
    "env": "env",
    "seed": "seed / --seeds",
    "device": "agent.device",
    "tensorboard_log": "agent.tensorboard",
    "verbose": "(always 0)",
    "policy_kwargs": "agent.policy_kwargs",
    "_init_setup_model": "(internal)",
}
# How far (calendar days) a date range may overhang the data: weekends and holidays at the edges.
DATE_SLACK_DAYS = 5


class IndexConfig(_Model):
    """The benchmark index, drawn as a baseline (not traded)."""

    source: str = Field(description="Source spec to ingest it from when the store lacks it, e.g. sample:sp500_index.")
    symbol: str = Field(description="Its symbol in the store, e.g. SP500.")


class DataConfig(_Model):
    """Where the bars come from."""

    source: str = Field("sample:sp500", description="Source spec ingested when the store lacks the symbols.")
    symbols: list[str] | None = Field(None, description="Symbols to trade; None = every symbol the source gives.")
    store: str | None = Field(None, description="Store directory or URI; default $RLTRADE_STORE or ./rltrade-data.")
    freq: Literal["1d", "1h", "1min"] = "1d"
    index: IndexConfig | None = None
    prices: Literal["adjusted", "raw"] = Field(
        "adjusted",
        description="adjusted: bars with adj_close trade split- and dividend-adjusted OHLC (docs/data.md); "
        "raw: the stored close, corporate actions traded as price moves.",
    )

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            if not value:
                raise ValueError("an empty list; leave it out (null) to use every symbol of the source")
            dupes = sorted({s for s in value if value.count(s) > 1})
            if dupes:
                raise ValueError(f"duplicate symbol(s) {dupes}")
        return value


class FeaturesConfig(_Model):
    """Observation features (names from ``rltrade.features.FEATURES``) and their scaling."""

    names: list[str] = Field(default_factory=lambda: ["log_return"])
    params: dict[str, Any] = Field(default_factory=dict)
    scaler: Literal["none", "zscore", "minmax"] = Field(
        "zscore", description="Fitted on the training range only, applied unchanged to the test range."
    )


class CostConfig(_Model):
    """Transaction cost model (``rltrade.envs.costs``), the same for the agent and every baseline."""

    model: Literal["none", "bps", "per_share", "spread"] = "bps"
    bps: float = Field(10.0, ge=0, description="bps: basis points of the traded notional, per side.")
    per_share: float = Field(0.005, ge=0, description="per_share: currency per share traded.")
    minimum: float = Field(1.0, ge=0, description="per_share: minimum fee per traded asset.")
    k: float = Field(1.0, ge=0, description="spread: spread = k × volatility.")
    window: int = Field(20, ge=2, description="spread: volatility window in bars.")


class EnvConfig(_Model):
    """The trading environment."""

    type: Literal["portfolio", "stock_trading", "single_asset"] = "portfolio"
    params: dict[str, Any] = Field(default_factory=dict, description="Other constructor parameters of the env.")
    cost: CostConfig = Field(default_factory=CostConfig)
    timing: Literal["next_open", "next_close", "same_close"] | None = Field(
        None, description="Fill timing; default next_open with opens, next_close for close-only data."
    )
    initial_value: float = Field(1_000_000.0, gt=0)

    @model_validator(mode="after")
    def _params(self) -> EnvConfig:
        for key in self.params:
            if key in ENV_MANAGED:
                raise ValueError(f"params.{key}: set it with `{ENV_MANAGED[key]}`, not env.params")
        if self.type == "single_asset" and self.params.get("by_day"):
            raise ValueError("params.by_day: `rltrade run` trades one continuous episode; by_day is not supported")
        return self

    @property
    def discrete(self) -> bool:
        """Whether the env's action space is discrete."""
        return self.type == "single_asset" and not self.params.get("continuous", False)


class DateRange(_Model):
    """Inclusive date range."""

    start: dt.date
    end: dt.date

    @model_validator(mode="after")
    def _order(self) -> DateRange:
        if self.end <= self.start:
            raise ValueError(f"end {self.end} is not after start {self.start}")
        return self


class TrainRange(_Model):
    """The training range. ``end`` is required for a single agent; the ensemble grows its windows itself.

    For ``strategy: ensemble`` the first training window ends where the first validation window
    starts (``ensemble.validation_window`` bars before ``test.start``) and grows by a quarter each
    quarter, so ``train.end`` is not used and may be left out; when given it must lie before
    ``test.start``, and the run says where the first window really ended.
    """

    start: dt.date
    end: dt.date | None = None

    @model_validator(mode="after")
    def _order(self) -> TrainRange:
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"end {self.end} is not after start {self.start}")
        return self


class AgentConfig(_Model):
    """A Stable-Baselines3 agent and how it is trained (``agent.kind: sb3``, the default)."""

    kind: Literal["sb3"] = Field("sb3", description="sb3 = a Stable-Baselines3 algorithm (rltrade.agents.sb3).")
    algorithm: str = "PPO"
    timesteps: int = Field(100_000, gt=0, description="Training timesteps (summed over the env copies).")
    n_envs: int = Field(8, ge=1, description="Env copies stepped together (one batched VecEnv).")
    random_start: bool = Field(True, description="Start each training episode at a random bar.")
    episode_length: int | None = Field(252, gt=1, description="Steps per training episode; None = to the end.")
    policy: str = "MlpPolicy"
    params: dict[str, Any] = Field(default_factory=dict, description="Constructor parameters of the SB3 algorithm.")
    policy_kwargs: dict[str, Any] = Field(default_factory=dict)
    device: str = Field(
        "cpu", description="cpu, auto (cuda when torch sees a GPU, else cpu), cuda or cuda:N; checked on this machine."
    )
    torch_threads: int | None = Field(1, ge=1, description="torch.set_num_threads; None leaves torch's default.")
    tensorboard: bool = Field(False, description="Write TensorBoard logs to RUN_DIR/tensorboard.")

    @field_validator("algorithm")
    @classmethod
    def _algorithm(cls, value: str) -> str:
        name = value.upper()
        if name not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {value!r}; choose one of {', '.join(ALGORITHMS)}")
        return name

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        name = value.strip().lower()
        if not re.fullmatch(r"cpu|auto|cuda(?::\d+)?", name):
            raise ValueError(f"unknown device {value!r}; use {DEVICES}")
        return name  # whether this machine has it is checked with the agents (rltrade.agents.factory)


SB3AgentConfig = AgentConfig


class DirectAgentConfig(_Model):
    """Direct reinforcement (Moody & Saffell; ``agent.kind: direct``, :mod:`rltrade.agents.direct`).

    Positions ``F_t = tanh(θ·[1, r_t .. r_{t-M+1}, F_{t-1}])`` per asset, trained by gradient
    ascent on the Sharpe ratio of ``R_t = F_{t-1}·r_t − δ|F_t − F_{t-1}|`` over the training
    range; the last ``validation_bars`` of it are held out for early stopping.
    """

    kind: Literal["direct"] = "direct"
    lookback: int = Field(8, ge=1, le=250, description="M: lagged returns per decision.")
    shared: bool = Field(False, description="One θ for every asset (else one per asset).")
    cost_rate: float | None = Field(
        None, ge=0, lt=1, description="δ per unit of turnover; None = env.cost.bps / 10⁴ (the backtest's cost)."
    )
    lr: float = Field(0.02, gt=0, description="Learning rate of the gradient ascent.")
    epochs: int = Field(300, ge=1, description="Most epochs (full passes over the training range).")
    patience: int = Field(30, ge=1, description="Epochs without a better validation Sharpe before stopping.")
    optimizer: Literal["adam", "sgd"] = "adam"
    init_scale: float = Field(0.1, ge=0, description="Standard deviation of the initial θ.")
    scale_inputs: bool = Field(True, description="Divide the lagged inputs by their training std (R stays raw).")
    validation_bars: int = Field(252, ge=20, description="Bars at the end of the training range used to stop early.")


def _bar_agent_kind(value: Any) -> str:
    return f"kind={value.get('kind', 'sb3') if isinstance(value, Mapping) else getattr(value, 'kind', None)}"


BarAgent = Annotated[
    Annotated[AgentConfig, Tag("kind=sb3")] | Annotated[DirectAgentConfig, Tag("kind=direct")],
    Discriminator(_bar_agent_kind),
]
"""``agent:`` of a bar strategy, chosen by ``agent.kind`` (default ``sb3``)."""


class EnsembleConfig(_Model):
    """The quarterly ensemble strategy of Yang et al. (2020) (``strategy: ensemble``).

    Each quarter the agents train on a window growing from ``train.start`` to the validation
    window, are validated on ``validation_window`` bars, and the one with the best validation
    Sharpe (annualised with the bars per year of the data) trades the next ``rebalance_window``
    bars, carrying cash and holdings over.
    """

    agents: list[str] = Field(default_factory=lambda: ["PPO", "A2C", "DDPG"])
    timesteps: dict[str, int] = Field(
        default_factory=lambda: {"PPO": 100_000, "A2C": 30_000, "DDPG": 10_000},
        description="Training timesteps per agent and quarter (the paper's); scaled by --timesteps-scale.",
    )
    params: dict[str, dict[str, Any]] = Field(default_factory=dict, description="SB3 parameters per agent.")
    rebalance_window: int = Field(63, ge=2, description="Bars traded by one pick (a quarter).")
    validation_window: int = Field(63, ge=2, description="Bars each agent is validated on before a pick.")
    turbulence: bool = Field(True, description="Apply the turbulence threshold rule in validation and trading.")
    turbulence_quantile: float = Field(0.90, gt=0.5, lt=1.0)
    turbulence_lookback: int = Field(63, ge=1, description="Bars whose mean turbulence is compared with the quantile.")

    @field_validator("agents")
    @classmethod
    def _agents(cls, agents: list[str]) -> list[str]:
        names = [a.upper() for a in agents]
        for i, name in enumerate(names):
            if name not in ALGORITHMS:
                raise ValueError(f"[{i}] unknown algorithm {agents[i]!r}; choose from {', '.join(ALGORITHMS)}")
        if not names or len(set(names)) != len(names):
            raise ValueError(f"needs one or more distinct algorithms, got {agents}")
        return names

    @field_validator("timesteps", "params")
    @classmethod
    def _upper_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        upper = {key.upper(): item for key, item in value.items()}
        if len(upper) != len(value):
            raise ValueError(f"an agent is named twice (names ignore case): {list(value)}")
        return upper

    @model_validator(mode="after")
    def _per_agent(self) -> EnsembleConfig:
        for key in list(self.timesteps) + list(self.params):
            if key not in self.agents:
                raise ValueError(f"timesteps/params: {key!r} is not one of the agents {self.agents}")
        for name in self.agents:
            if name not in self.timesteps:
                raise ValueError(f"timesteps: no timesteps for {name}")
        if any(v <= 0 for v in self.timesteps.values()):
            raise ValueError(f"timesteps: must be > 0, got {self.timesteps}")
        return self

    def timesteps_of(self, agent: str, scale: float = 1.0) -> int:
        """Training timesteps of ``agent`` times ``scale`` (at least 1)."""
        return max(1, round(self.timesteps[agent.upper()] * scale))

    def params_of(self, agent: str) -> dict[str, Any]:
        """SB3 parameters of ``agent``."""
        return dict(self.params.get(agent.upper(), {}))


class PredictorConfig(_Model):
    """One of the combined strategy's predictors (:mod:`rltrade.agents.predictors`)."""

    window: int = Field(30, ge=2, description="Bars per input window.")
    size: int = Field(32, ge=1, description="LSTM: hidden units; CNN: channels.")
    epochs: int = Field(10, ge=1)
    patience: int = Field(3, ge=1, description="Epochs without a better validation loss before stopping.")
    batch_size: int = Field(256, ge=1)
    lr: float = Field(1e-3, gt=0)
    scaling: Literal["symbol", "pooled"] = Field("symbol", description="One input scaler per symbol, or one for all.")


class RulesConfig(_Model):
    """Seed 002's trading rules (:class:`rltrade.backtest.rules.TradingRules`)."""

    up_threshold: float = Field(0.5, ge=0.0, lt=1.0, description="P(up) above it allows a long, below 1 − it a short.")
    allow_short: bool = True
    allocation: float = Field(0.10, gt=0, le=1, description="Fraction of equity per new position.")
    max_positions: int | None = Field(None, ge=1)
    max_gross_exposure: float | None = Field(1.0, gt=0)
    stop_loss: float | None = Field(0.02, gt=0, lt=1, description="Fraction of the entry price; None = off.")
    take_profit: float | None = Field(0.04, gt=0, description="Fraction of the entry price; None = off.")
    daily_stop: float | None = Field(0.02, gt=0, lt=1, description="Session loss that flattens and halts; None = off.")
    exit_rule: Literal["opposite", "conditions", "stops_only"] = "opposite"


class CombinedConfig(_Model):
    """Seed 002's combined strategy (``strategy: combined``): LSTM, CNN and the direct agent under the rules."""

    lstm: PredictorConfig = Field(default_factory=PredictorConfig)
    cnn: PredictorConfig = Field(default_factory=lambda: PredictorConfig(size=16))
    rules: RulesConfig = Field(default_factory=RulesConfig)


class BaselinesConfig(_Model):
    """Baselines run on the agent's test dates with the same costs and timing."""

    names: list[BaselineName] = Field(default_factory=lambda: list(BASELINES))
    min_variance_window: int = Field(252, ge=20, description="Trailing bars the minimum-variance fit sees.")
    refit_every: int = Field(21, ge=1, description="Bars between minimum-variance refits (holdings drift between).")


class EvaluationConfig(_Model):
    """How the test period is scored."""

    risk_free: float = Field(0.0, ge=-0.05, le=0.5, description="Annual risk-free rate for Sharpe and Sortino.")
    periods_per_year: int | None = Field(
        None, gt=0, description="Bars per year for annualising; None = from the bar frequency and the market."
    )
    market: Literal["auto", "exchange", "24x5", "24x7"] = Field(
        "auto", description="The market's hours, for periods_per_year: auto reads them from the timestamps."
    )
    confidence: float = Field(0.95, gt=0.5, lt=1.0)
    n_boot: int = Field(2000, ge=100)


class RunConfig(_Model):
    """One run: data → features → env → agent → backtest → baselines → report."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    seed: int = Field(0, ge=0)
    data: DataConfig = Field(default_factory=DataConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    env: EnvConfig = Field(default_factory=EnvConfig)
    agent: BarAgent = Field(default_factory=AgentConfig)
    train: TrainRange
    test: DateRange
    baselines: BaselinesConfig = Field(default_factory=BaselinesConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    strategy: Literal["single", "ensemble", "direct_rl", "combined"] = Field(
        "single",
        description="single: one agent per seed; ensemble: the quarterly ensemble; direct_rl: the direct agent "
        "alone; combined: seed 002's LSTM + CNN + direct-RL rules.",
    )
    ensemble: EnsembleConfig = Field(default_factory=EnsembleConfig)
    combined: CombinedConfig = Field(default_factory=CombinedConfig)

    @model_validator(mode="before")
    @classmethod
    def _default_baselines(cls, data: Any) -> Any:
        """Without ``data.index``, the default baselines are the four that need no index.

        Resolved here, before validation, so that the saved config (which lists the names) reads
        back as the same config.
        """
        if not isinstance(data, Mapping):
            return data
        baselines, source = data.get("baselines") or {}, data.get("data") or {}
        no_index = isinstance(source, Mapping) and source.get("index") is None
        if no_index and isinstance(baselines, Mapping) and "names" not in baselines:
            names = [name for name in BASELINES if name != "index"]
            return {**data, "baselines": {**baselines, "names": names}}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> RunConfig:
        if self.train.end is None and self.strategy != "ensemble":
            raise ValueError("train.end: required field is missing (only the ensemble strategy may leave it out)")
        if self.test.start <= self.train.start:
            raise ValueError(f"test.start: {self.test.start} is not after train.start {self.train.start}")
        if self.train.end is not None and self.test.start <= self.train.end:
            raise ValueError(
                f"test.start: the test range ({self.test.start}..{self.test.end}) overlaps the training range "
                f"({self.train.start}..{self.train.end}); the test must start after train.end"
            )
        sb3_strategy = self.strategy in ("single", "ensemble")
        if sb3_strategy != isinstance(self.agent, AgentConfig):
            wanted = "sb3" if sb3_strategy else "direct"
            raise ValueError(f"agent.kind: strategy {self.strategy} trains {wanted} agents, not {self.agent.kind}")
        algo = self.agent.algorithm if isinstance(self.agent, AgentConfig) else ""
        if algo in DISCRETE_ONLY and not self.env.discrete:
            raise ValueError(
                f"agent.algorithm: {algo} needs a discrete action space, but the {self.env.type} env's actions are "
                "continuous; use PPO, A2C, SAC, TD3 or DDPG (or env.type single_asset)"
            )
        if algo in CONTINUOUS_ONLY and self.env.discrete:
            raise ValueError(
                f"agent.algorithm: {algo} needs a continuous action space, but the single_asset env is discrete; "
                "use PPO, A2C or DQN, or set env.params.continuous: true"
            )
        if "index" in self.baselines.names and self.data.index is None:
            raise ValueError("baselines.names: 'index' is listed but data.index is not set")
        if self.strategy == "ensemble":
            if self.env.type != "stock_trading":
                raise ValueError(
                    f"env.type: the ensemble strategy trades the stock_trading env (FinRL's), not {self.env.type}"
                )
            for i, name in enumerate(self.ensemble.agents):
                if name in DISCRETE_ONLY:
                    raise ValueError(
                        f"ensemble.agents[{i}]: {name} needs discrete actions; stock_trading is continuous"
                    )
            if "turbulence_threshold" in self.env.params:
                raise ValueError(
                    "env.params.turbulence_threshold: the ensemble sets it each quarter (ensemble.turbulence)"
                )
        return self

    @property
    def sb3(self) -> AgentConfig:
        """``agent`` of a Stable-Baselines3 strategy (``single``, ``ensemble``); the config checks it is one."""
        if not isinstance(self.agent, AgentConfig):
            raise ConfigError(f"agent.kind: {self.agent.kind} is not a Stable-Baselines3 agent")
        return self.agent

    def dump_yaml(self) -> str:
        """The config as YAML (dates as ISO strings), suitable for :func:`load_config`."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def check_dates(config: RunConfig, first: pd.Timestamp, last: pd.Timestamp, source: str = "config") -> None:
    """Refuse train/test ranges outside the data (beyond :data:`DATE_SLACK_DAYS` at the edges).

    Parameters
    ----------
    config:
        The run config.
    first, last:
        The first and last timestamp of the loaded bars (all symbols present).
    """
    lo, hi = (
        pd.Timestamp(t).tz_convert("UTC").tz_localize(None) if pd.Timestamp(t).tzinfo else pd.Timestamp(t)
        for t in (first, last)
    )
    slack = pd.Timedelta(days=DATE_SLACK_DAYS)
    span = f"the data runs from {lo.date()} to {hi.date()}"
    for field in ("train", "test"):
        rng: DateRange | TrainRange = getattr(config, field)
        end = rng.end if rng.end is not None else config.test.start
        if pd.Timestamp(rng.start) < lo - slack:
            raise ConfigError(f"{source}: {field}.start {rng.start} is before the data: {span}")
        if pd.Timestamp(end) > hi + slack:
            raise ConfigError(f"{source}: {field}.end {end} is after the data: {span}")
        if pd.Timestamp(rng.start) > hi or pd.Timestamp(end) < lo:
            raise ConfigError(f"{source}: {field} {rng.start}..{end} lies outside the data: {span}")
