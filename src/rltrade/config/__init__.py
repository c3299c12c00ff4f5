"""Run configurations: YAML files validated by pydantic (``rltrade run CONFIG``).

A config is data. :func:`load_config` reads a YAML file and returns a :class:`RunConfig`; every
mistake that can be seen without the data (unknown algorithm, DQN on a continuous action space,
a test range overlapping the training range, unknown features, unknown env or agent
parameters, ...) raises :class:`ConfigError` naming the field, before anything is trained.
Mistakes that need the data (dates outside it) are caught by :func:`check_dates` right after
the data is loaded, still before any training.

The file format, field by field, is in ``docs/training.md``; ``configs/quickstart.yaml`` is the
smallest complete example.
"""

from rltrade.config.bars import (
    AGENT_MANAGED,
    ALGORITHMS,
    BASELINES,
    CONTINUOUS_ONLY,
    DATE_SLACK_DAYS,
    DEVICES,
    DISCRETE_ONLY,
    ENV_MANAGED,
    ENV_TYPES,
    WEIGHT_BASELINES,
    AgentConfig,
    BaselineName,
    BaselinesConfig,
    CombinedConfig,
    CostConfig,
    DataConfig,
    DateRange,
    DirectAgentConfig,
    EnsembleConfig,
    EnvConfig,
    EvaluationConfig,
    FeaturesConfig,
    IndexConfig,
    PredictorConfig,
    RulesConfig,
    RunConfig,
    TrainRange,
    check_dates,
)
from rltrade.config.base import ConfigError, raise_problems
from rltrade.config.loading import AnyConfig, bar_config, load_config, parse_config, resolve_paths
from rltrade.config.orderbook import OrderBookConfig

__all__ = [
    "AGENT_MANAGED",
    "ALGORITHMS",
    "BASELINES",
    "CONTINUOUS_ONLY",
    "DATE_SLACK_DAYS",
    "DEVICES",
    "DISCRETE_ONLY",
    "ENV_MANAGED",
    "ENV_TYPES",
    "WEIGHT_BASELINES",
    "AgentConfig",
    "AnyConfig",
    "BaselineName",
    "BaselinesConfig",
    "CombinedConfig",
    "ConfigError",
    "CostConfig",
    "DataConfig",
    "DateRange",
    "DirectAgentConfig",
    "EnsembleConfig",
    "EnvConfig",
    "EvaluationConfig",
    "FeaturesConfig",
    "IndexConfig",
    "OrderBookConfig",
    "PredictorConfig",
    "RulesConfig",
    "RunConfig",
    "TrainRange",
    "bar_config",
    "check_dates",
    "load_config",
    "parse_config",
    "raise_problems",
    "resolve_paths",
]
