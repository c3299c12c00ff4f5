"""What every strategy shares: the :class:`Strategy` protocol, the registry, the run's data and seeds.

A strategy turns a validated config into a run directory: it trains what it trains, trades the
test range out of sample and scores itself with :func:`rltrade.runs.evaluate.evaluate`.
:func:`rltrade.run` (``rltrade run CONFIG``) looks the config's ``strategy`` up in
:data:`STRATEGIES` and calls its ``run``. A new strategy is one module with a class that has
that method, registered with :func:`register`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from rltrade.config import AnyConfig, ConfigError, RunConfig, bar_config, check_dates, raise_problems
from rltrade.runs.evaluate import RunResult
from rltrade.shared.registry import lookup

log = logging.getLogger(__name__)


class Strategy(Protocol):
    """A way to turn a config into a trained, backtested and reported run directory."""

    def check(self, config: AnyConfig, source: str = "config") -> AnyConfig:
        """``config`` checked against what the layers it names can do (before any data is read)."""
        ...

    def run(
        self,
        config: Any,
        runs_dir: str | Path,
        n_seeds: int,
        *,
        progress: bool,
        on_stage: Callable[[str], None] | None,
        **options: Any,
    ) -> RunResult:
        """Train, backtest out of sample against the baselines, report; return the run directory and metrics."""
        ...


#: Strategy name (the config's ``strategy``) → ``module:Class``.
STRATEGIES: dict[str, str] = {
    "single": "rltrade.strategies.single:SingleAgent",
    "ensemble": "rltrade.strategies.ensemble:Ensemble",
    "direct_rl": "rltrade.strategies.direct_rl:DirectRL",
    "combined": "rltrade.strategies.combined:Combined",
    "orderbook": "rltrade.strategies.orderbook:OrderBookStrategy",
}


def register(name: str, target: str) -> None:
    """Register a strategy class ``module:Class`` under ``name`` (the config's ``strategy``)."""
    STRATEGIES[name] = target


def get_strategy(name: str) -> Strategy:
    """The strategy registered as ``name``."""
    strategy: Strategy = lookup(STRATEGIES, name, "strategy", "strategy", ConfigError)
    return strategy


def check_config(config: RunConfig, source: str = "config") -> RunConfig:
    """Check ``config`` against what the layers it names can do; :class:`ConfigError` listing each field.

    The config itself is data (:mod:`rltrade.config` checks types, ranges, dates and consistency
    when it is parsed); here the registries check the names and parameters it gives: features
    and their parameters, env parameters, SB3 parameters and the device. Every strategy calls it
    before loading data, so each of these mistakes still fails before any training.
    """
    from rltrade.agents.factory import agent_config_problems
    from rltrade.envs.factory import env_config_problems
    from rltrade.features.checks import feature_config_problems

    problems = feature_config_problems(config.features) + env_config_problems(config) + agent_config_problems(config)
    raise_problems(problems, source)
    return config


class BarStrategy:
    """What the strategies that trade bars (``single``, ``ensemble``) share: their config check."""

    def check(self, config: AnyConfig, source: str = "config") -> RunConfig:
        """:func:`check_config` of a :class:`RunConfig` (another strategy's config is refused)."""
        return check_config(bar_config(config, source), source)


def load_data(config: RunConfig, progress: bool = False) -> tuple[pd.DataFrame, pd.Series | None]:
    """The bars of the traded symbols (ingested first when the store lacks them) and the index closes.

    Prices are on the config's basis (``data.prices``; adjusted by default, see
    :mod:`rltrade.data.adjust`): the returned bars carry no ``adj_close`` any more.
    Loads every bar up to ``test.end``: the history before ``train.start`` feeds the feature
    warm-ups and the minimum-variance window; nothing after the test range is read.
    """
    from rltrade.data.adjust import adjust_prices
    from rltrade.data.sources import fetch
    from rltrade.data.store import BarStore, load_bars

    data = config.data
    store = BarStore(data.store)

    def ingest(source: str, symbols: list[str] | None) -> None:
        log.info("ingesting %s%s into %s", source, f" ({', '.join(symbols)})" if symbols else "", store.uri)
        store.ingest(fetch(source, symbols, None, None, data.freq), source=source)

    index_symbol = data.index.symbol if data.index else None
    if data.symbols is None:

        def from_source() -> list[str]:
            return sorted(
                i.symbol for i in store.info(data.freq) if i.source == data.source and i.symbol != index_symbol
            )

        symbols = from_source()
        if not symbols:
            ingest(data.source, None)
            symbols = from_source()
        if not symbols:
            raise ConfigError(f"data.source {data.source!r} gave no symbols")
    else:
        symbols = list(data.symbols)
        missing = sorted(set(symbols) - set(store.symbols(data.freq)))
        if missing:
            ingest(data.source, missing)
    end = pd.Timestamp(config.test.end) + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
    bars = adjust_prices(load_bars(symbols, end=end, freq=data.freq, store=store.uri), data.prices)
    index_close = None
    if data.index is not None and "index" in config.baselines.names:
        if index_symbol not in store.symbols(data.freq):
            ingest(data.index.source, [data.index.symbol])
        frame = adjust_prices(load_bars([data.index.symbol], end=end, freq=data.freq, store=store.uri), data.prices)
        index_close = pd.Series(
            frame["close"].to_numpy(), index=pd.DatetimeIndex(frame["timestamp"]).tz_convert(None), name="index"
        )
    first = bars.groupby("symbol")["timestamp"].min().max()
    last = bars.groupby("symbol")["timestamp"].max().min()
    check_dates(config, first, last)
    return bars, index_close


def seeds_of(config: RunConfig, n_seeds: int) -> list[int]:
    """The seeds of a run: ``config.seed`` and the ``n_seeds - 1`` after it."""
    if n_seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {n_seeds}")
    return [config.seed + i for i in range(n_seeds)]
