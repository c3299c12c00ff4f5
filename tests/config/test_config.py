"""Run configs: every bad config fails before training with a message naming the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from rltrade.config import ConfigError, OrderBookConfig, RunConfig, check_dates, load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]


def _base() -> dict[str, Any]:
    return {
        "name": "t",
        "train": {"start": "2005-01-01", "end": "2016-12-31"},
        "test": {"start": "2017-01-01", "end": "2022-12-31"},
    }


def _error(data: dict[str, Any]) -> str:
    """The error of a config: its fields (parse_config), then the names and parameters it gives (check_config)."""
    from rltrade.strategies.base import check_config

    with pytest.raises(ConfigError) as info:
        check_config(parse_config(data, "config t.yaml"), "config t.yaml")
    return str(info.value)


def test_every_shipped_config_is_valid() -> None:
    from rltrade.live.config import load_live_config

    for path in sorted((ROOT / "configs").glob("*.yaml")):
        if path.name.startswith("live_"):  # a live loop's config (rltrade live), not a run config
            assert load_live_config(path).run
            continue
        config = load_config(path)
        assert isinstance(config, RunConfig | OrderBookConfig), path
        # the dump is itself a valid config that gives the same object
        assert parse_config(yaml.safe_load(config.dump_yaml())) == config


def test_defaults_fill_in() -> None:
    config = parse_config(_base())
    assert config.agent.algorithm == "PPO"
    assert config.env.type == "portfolio"
    from rltrade.envs.factory import make_cost

    assert make_cost(config.env.cost).__class__.__name__ == "BpsCost"


def test_unknown_algorithm_names_the_field() -> None:
    data = _base() | {"agent": {"algorithm": "PPO2"}}
    message = _error(data)
    assert "agent.algorithm" in message and "PPO2" in message and "DQN" in message


def test_algorithm_is_case_insensitive() -> None:
    assert parse_config(_base() | {"agent": {"algorithm": "a2c"}}).agent.algorithm == "A2C"


def test_dqn_with_continuous_actions() -> None:
    message = _error(_base() | {"agent": {"algorithm": "DQN"}})
    assert "agent.algorithm" in message and "discrete" in message


def test_dqn_on_the_discrete_single_asset_env_is_fine() -> None:
    config = parse_config(_base() | {"agent": {"algorithm": "DQN"}, "env": {"type": "single_asset"}})
    assert config.env.discrete


def test_ddpg_on_a_discrete_env() -> None:
    message = _error(_base() | {"agent": {"algorithm": "DDPG"}, "env": {"type": "single_asset"}})
    assert "agent.algorithm" in message and "continuous" in message


def test_test_range_overlapping_training_range() -> None:
    data = _base() | {"test": {"start": "2016-06-01", "end": "2022-12-31"}}
    message = _error(data)
    assert "test.start" in message and "overlaps" in message


def test_reversed_range() -> None:
    message = _error(_base() | {"train": {"start": "2016-01-01", "end": "2005-01-01"}})
    assert "train" in message and "not after" in message


def test_unknown_feature_names_the_position() -> None:
    message = _error(_base() | {"features": {"names": ["log_return", "rsi_300"]}})
    assert "features.names[1]" in message and "rsi_300" in message and "rsi_30" in message


def test_unknown_feature_parameter() -> None:
    message = _error(_base() | {"features": {"names": ["log_return"], "params": {"windw": 3}}})
    assert "features.params" in message and "windw" in message


def test_unknown_env_parameter() -> None:
    message = _error(_base() | {"env": {"params": {"look_bak": 5}}})
    assert "env.params.look_bak" in message and "look_back" in message


def test_env_parameter_set_elsewhere() -> None:
    message = _error(_base() | {"env": {"params": {"cost": 5}}})
    assert "env.params.cost" in message and "env.cost" in message


def test_unknown_agent_parameter() -> None:
    message = _error(_base() | {"agent": {"params": {"n_step": 64}}})
    assert "agent.params.n_step" in message and "n_steps" in message


def test_unknown_top_level_field() -> None:
    message = _error(_base() | {"trian": {}})
    assert "trian" in message and "unknown field" in message


def test_missing_required_field() -> None:
    data = _base()
    del data["test"]
    assert "test: required field is missing" in _error(data)


def test_several_errors_are_all_listed() -> None:
    data = _base() | {"agent": {"algorithm": "XYZ", "timesteps": -1}}
    message = _error(data)
    assert "2 invalid fields" in message and "agent.timesteps" in message and "agent.algorithm" in message


def test_index_baseline_without_an_index() -> None:
    message = _error(_base() | {"baselines": {"names": ["index"]}})
    assert "baselines.names" in message and "data.index" in message


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: t\ntrain: {start: 2005-01-01\n")
    with pytest.raises(ConfigError, match=r"bad.yaml line \d+"):
        load_config(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.yaml")


def test_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(_base()))
    config = load_config(path, {"agent.timesteps": 2048, "env.cost.bps": 5})
    assert config.agent.timesteps == 2048 and config.env.cost.bps == 5


def test_dates_outside_the_data() -> None:
    config = parse_config(_base())
    first, last = pd.Timestamp("1990-01-02", tz="UTC"), pd.Timestamp("2022-12-28", tz="UTC")
    check_dates(config, first, last)  # 2022-12-31 is within the slack of a weekend/holiday
    with pytest.raises(ConfigError, match=r"test.end 2023-06-30 is after the data: the data runs from 1990-01-02"):
        check_dates(parse_config(_base() | {"test": {"start": "2017-01-01", "end": "2023-06-30"}}), first, last)
    with pytest.raises(ConfigError, match=r"train.start 2005-01-01 is before the data"):
        check_dates(config, pd.Timestamp("2010-01-04"), last)


def test_saved_config_reads_back_without_an_index() -> None:
    # the run directory's config.yaml and the ensemble's Ray tasks re-parse the dumped config
    config = parse_config(_base())
    assert "index" not in config.baselines.names
    assert parse_config(yaml.safe_load(config.dump_yaml())) == config
    with_index = parse_config(_base() | {"data": {"index": {"source": "sample:sp500_index", "symbol": "SP500"}}})
    assert "index" in with_index.baselines.names
    assert parse_config(yaml.safe_load(with_index.dump_yaml())) == with_index


def test_paths_resolve_relative_to_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "project" / "configs"
    folder.mkdir(parents=True)
    data = {
        **_base(),
        "data": {
            "source": "csv:data/my bars.csv",
            "store": "../store",
            "index": {"source": "finrl:~/idx.csv", "symbol": "IDX"},
        },
    }
    path = folder / "mine.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # the working directory plays no part
    config = load_config(path)
    assert config.data.source == f"csv:{folder / 'data' / 'my bars.csv'}"
    assert config.data.store == str(tmp_path / "project" / "store")
    assert config.data.index is not None and config.data.index.source == f"finrl:{Path.home() / 'idx.csv'}"
    saved = tmp_path / "elsewhere.yaml"
    saved.write_text(config.dump_yaml(), encoding="utf-8")  # a run directory's copy reads back the same
    assert load_config(saved) == config


def test_uris_and_non_file_sources_are_kept(tmp_path: Path) -> None:
    data = {**_base(), "data": {"source": "sample:sp500", "store": "s3://bucket/bars"}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    config = load_config(path)
    assert (config.data.source, config.data.store) == ("sample:sp500", "s3://bucket/bars")
    data["data"] = {"source": "csv:s3://bucket/bars.csv"}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert load_config(path).data.source == "csv:s3://bucket/bars.csv"


def test_train_end_is_optional_for_the_ensemble_only() -> None:
    data = {**_base(), "train": {"start": "2005-01-01"}}
    assert "train.end: required field is missing" in _error(data)
    assert parse_config({**data, "strategy": "ensemble", "env": {"type": "stock_trading"}}).train.end is None


def test_a_quoted_date_that_does_not_exist_is_named() -> None:
    message = _error({**_base(), "train": {"start": "2017-02-30", "end": "2018-01-01"}})
    assert "train.start: 2017-02-30 is not a date" in message
