"""The main job: ``rltrade run CONFIG`` dispatches the config's strategy (``rltrade.run``).

:func:`load` reads and checks a YAML config; :func:`run` looks its ``strategy`` up in the
registry (:mod:`rltrade.strategies.base`) and runs it. The single-agent steps (:func:`train`,
:func:`backtest`) and the scoring (:func:`evaluate`) are re-exported from where they live; the
run directory they write is described in :mod:`rltrade.runs`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rltrade.agents.factory import deterministic_policy
from rltrade.config import AnyConfig, ConfigError, OrderBookConfig, RunConfig, load_config
from rltrade.runs.evaluate import RunResult, column_name, evaluate
from rltrade.runs.manifest import annualization_of, base_manifest, new_run_dir
from rltrade.strategies.base import STRATEGIES, check_config, get_strategy, load_data, seeds_of
from rltrade.strategies.single import backtest, backtest_range, parse_date_option, train

log = logging.getLogger(__name__)

__all__ = [
    "STRATEGIES",
    "RunResult",
    "annualization_of",
    "backtest",
    "backtest_range",
    "base_manifest",
    "check_config",
    "column_name",
    "deterministic_policy",
    "evaluate",
    "load",
    "load_data",
    "new_run_dir",
    "parse_date_option",
    "run",
    "seeds_of",
    "train",
    "write_run_report",
]


def write_run_report(run_dir: str | Path) -> Path:
    """Render ``report.html`` from the files of a run directory (or of a re-backtest folder)."""
    from rltrade.report import write_report

    return write_report(run_dir)


def load(path: str | Path, overrides: dict[str, Any] | None = None) -> AnyConfig:
    """Read a YAML run config and check it completely: its fields, then the names and parameters it gives.

    ``overrides`` replace dotted fields (``{"agent.timesteps": 5000}``). Every mistake raises a
    :class:`~rltrade.config.ConfigError` naming the file and the field, before any data is read.
    """
    config = load_config(path, overrides)
    return get_strategy(config.strategy).check(config, f"config {path}")


def run(
    config: AnyConfig | str | Path,
    runs_dir: str | Path = "runs",
    n_seeds: int = 1,
    *,
    progress: bool = True,
    on_stage: Callable[[str], None] | None = None,
    overrides: dict[str, Any] | None = None,
    **options: Any,
) -> RunResult:
    """Run a config (a :class:`RunConfig` or a YAML path) with its ``strategy``: train, backtest, report.

    ``overrides`` replace dotted fields of a YAML config (``{"agent.timesteps": 20_000}``, as
    ``rltrade run --set``). ``options`` go to the strategy (the ensemble's ``timesteps_scale``,
    ``max_quarters``, ``resume``, ``use_ray``, ``ray_address``); a single agent takes none.
    Printing the result prints its metrics table.
    """
    if isinstance(config, RunConfig | OrderBookConfig):  # the strategy checks it before it reads data
        if overrides:
            raise ConfigError("overrides apply to a YAML config path; change a RunConfig with model_copy(update=...)")
    else:
        config = load(config, overrides)
    strategy = get_strategy(config.strategy)
    return strategy.run(config, runs_dir, n_seeds, progress=progress, on_stage=on_stage, **options)
