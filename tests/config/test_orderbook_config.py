"""The order-book config and the unions discriminated by ``strategy`` and ``agent.kind``."""

from __future__ import annotations

import datetime as dt

import pytest

from rltrade.config import ConfigError, OrderBookConfig, RunConfig, bar_config, parse_config
from rltrade.config.orderbook import QLearningAgentConfig, RandomAgentConfig


def error_of(data: dict) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(data, "config t.yaml")
    return str(info.value)


def test_strategy_selects_the_model() -> None:
    assert isinstance(parse_config({"name": "x", "strategy": "orderbook"}), OrderBookConfig)
    bars = {
        "name": "x",
        "train": {"start": "2020-01-01", "end": "2020-06-30"},
        "test": {"start": "2020-07-01", "end": "2020-12-31"},
    }
    assert isinstance(parse_config(bars), RunConfig)  # no strategy: single
    assert isinstance(parse_config(bars | {"strategy": "single"}), RunConfig)


def test_unknown_strategy_and_agent_kind_name_the_field_and_the_choices() -> None:
    assert "strategy: unknown strategy 'sarsa'; choose single, ensemble, direct_rl, combined, orderbook" in error_of(
        {"name": "x", "strategy": "sarsa"}
    )
    message = error_of({"name": "x", "strategy": "orderbook", "agent": {"kind": "ppo"}})
    assert "agent.kind: unknown kind 'ppo'; choose qlearning, random" in message


def test_agent_union_fields_and_errors_without_tags_in_the_location() -> None:
    config = parse_config({"name": "x", "strategy": "orderbook", "agent": {"kind": "random"}})
    assert isinstance(config, OrderBookConfig) and isinstance(config.agent, RandomAgentConfig)
    default = parse_config({"name": "x", "strategy": "orderbook", "agent": {"gamma": 0.9}})
    assert isinstance(default, OrderBookConfig) and isinstance(default.agent, QLearningAgentConfig)
    assert default.agent.gamma == 0.9
    assert "  agent.gamma: Input should be less than 1" in error_of(
        {"name": "x", "strategy": "orderbook", "agent": {"gamma": 1.5}}
    )
    assert "agent.episodez: unknown field" in error_of({"name": "x", "strategy": "orderbook", "agent": {"episodez": 3}})
    # a field of the other member of the union is unknown here
    assert "agent.algorithm: unknown field" in error_of(
        {"name": "x", "strategy": "orderbook", "agent": {"algorithm": "PPO"}}
    )


def test_windows_are_ordered_and_disjoint() -> None:
    assert "test.start: 11:00:00 is before train.end 13:30:00" in error_of(
        {"name": "x", "strategy": "orderbook", "test": {"start": "11:00", "end": "12:00"}}
    )
    assert "fit: 09:30:00..11:30:00 is not inside the train window" in error_of(
        {"name": "x", "strategy": "orderbook", "fit": {"start": "09:30", "end": "11:30"}}
    )
    assert "train.end: 10:00:00 is not after start 10:30:00" in error_of(
        {"name": "x", "strategy": "orderbook", "train": {"start": "10:30", "end": "10:00"}}
    )
    # YAML 1.1 reads an unquoted 10:30 as the sexagesimal integer 630
    config = parse_config({"name": "x", "strategy": "orderbook", "fit": {"start": 630, "end": 660}})
    assert isinstance(config, OrderBookConfig) and config.fit.start == dt.time(10, 30)


def test_tick_sources() -> None:
    assert "unknown tick source 'csv:x.csv'" in error_of(
        {"name": "x", "strategy": "orderbook", "data": {"source": "csv:x.csv"}}
    )
    assert "lobster: needs a file path" in error_of(
        {"name": "x", "strategy": "orderbook", "data": {"source": "lobster:"}}
    )
    assert "data.symbol: a taq: source needs the symbol" in error_of(
        {"name": "x", "strategy": "orderbook", "data": {"source": "taq:t.csv"}}
    )


def test_bar_config_refuses_an_order_book_config() -> None:
    config = parse_config({"name": "x", "strategy": "orderbook"})
    with pytest.raises(ConfigError, match="strategy 'orderbook' does not trade bars"):
        bar_config(config, "runs/x")


def test_dump_reads_back_as_the_same_config() -> None:
    import yaml

    config = parse_config(
        {"name": "x", "strategy": "orderbook", "agent": {"kind": "random"}, "env": {"trailing_stop": 0.04}}
    )
    assert parse_config(yaml.safe_load(config.dump_yaml())) == config
