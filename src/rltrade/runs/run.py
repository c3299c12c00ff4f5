"""The one reader of run directories: :meth:`Run.open` (the report, the CLI and later tools read through it)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from rltrade.data.annualization import Annualization
from rltrade.errors import RLTradeError
from rltrade.runs.files import (
    backtest_manifest,
    read_backtest,
    read_equity,
    read_json_object,
    read_metrics,
    read_quarters,
    read_summary,
    read_text,
    read_trades,
    read_weights,
)


@dataclass(frozen=True)
class Run:
    """Everything the report shows, read and checked from one run directory (or re-backtest folder).

    :param run_dir: the run directory, or the re-backtest folder ``RUN_DIR/backtests/NAME``.
    :param config_text: ``config.yaml`` verbatim (a re-backtest's: its run's).
    :param manifest: ``manifest.json`` (a re-backtest's: its run's, with the test range, the
        annualisation, the prices and the dataset hash replaced by those of ``backtest.json``).
    :param equity: ``equity.csv``: a DatetimeIndex and one float column of portfolio value per strategy.
    :param metrics: ``metrics.json``: strategy -> metric -> number or None.
    :param weights: ``weights.csv`` (timestamp, strategy, symbols..., cash) or None.
    :param summary: ``summary.json`` (statistics over seeds) or None.
    :param quarters: ``quarters.csv`` (the ensemble's pick per quarter) or None.
    :param costs: ``costs.csv``: a DatetimeIndex and the cost paid per bar per strategy, or None.
    :param trades: ``trades.csv`` (timestamp, strategy, symbol, quantity, holding, price, notional) or None.
    :param backtest: ``backtest.json`` of a re-backtest folder, else None.
    """

    run_dir: Path
    config_text: str
    manifest: dict[str, Any]
    equity: pd.DataFrame
    metrics: dict[str, dict[str, float | None]]
    weights: pd.DataFrame | None = None
    summary: dict[str, Any] | None = None
    quarters: pd.DataFrame | None = None
    costs: pd.DataFrame | None = None
    trades: pd.DataFrame | None = None
    backtest: dict[str, Any] | None = None

    @classmethod
    def open(cls, run_dir: str | Path) -> Run:
        """Read ``run_dir``; raise :class:`RLTradeError` naming the file that is missing or malformed.

        A folder with a ``backtest.json`` is a re-backtest: its ``config.yaml`` and ``manifest.json``
        are those of the run ``backtest.json["run"]`` points to (``../..``).
        """
        root = Path(run_dir)
        if not root.is_dir():
            raise RLTradeError(f"run directory {root} does not exist (expected the output of a training run)")
        backtest = read_backtest(root / "backtest.json") if (root / "backtest.json").exists() else None
        source = root
        if backtest is not None:
            source = Path(os.path.normpath(root / str(backtest.get("run") or "../..")))
            if not source.is_dir():
                raise RLTradeError(f"backtest.json in {root} points to run {source}, which does not exist")
        config_text = read_text(source / "config.yaml")
        manifest = read_json_object(source / "manifest.json")
        if backtest is not None:
            manifest = backtest_manifest(manifest, backtest)

        def optional(name: str, reader: Any) -> Any:
            return reader(root / name) if (root / name).exists() else None

        return cls(
            run_dir=root,
            config_text=config_text,
            manifest=manifest,
            equity=read_equity(root / "equity.csv"),
            metrics=read_metrics(root / "metrics.json"),
            weights=optional("weights.csv", read_weights),
            summary=optional("summary.json", read_summary),
            quarters=optional("quarters.csv", read_quarters),
            costs=optional("costs.csv", read_equity),
            trades=optional("trades.csv", read_trades),
            backtest=backtest,
        )

    @property
    def annualization(self) -> Annualization:
        """Bars per year and their basis (``manifest["annualization"]``; 252, daily, when absent)."""
        return Annualization.from_manifest(self.manifest)

    @property
    def intraday(self) -> bool:
        """True when a bar of ``equity.csv`` is stamped at a time of day (tables and axes show hours)."""
        index = pd.DatetimeIndex(self.equity.index)
        return not bool((index == index.normalize()).all())

    @property
    def risk_free(self) -> float:
        """The annual risk-free rate of ``config.yaml`` (``evaluation.risk_free``), 0 when unset or unreadable."""
        import yaml

        try:
            config = yaml.safe_load(self.config_text)
            value = config["evaluation"]["risk_free"]
        except (yaml.YAMLError, KeyError, TypeError):
            return 0.0
        if isinstance(value, bool) or not isinstance(value, int | float) or not -1.0 < value < 10.0:
            return 0.0
        return float(value)

    @classmethod
    def read(cls, run_dir: str | Path) -> Run:
        """Another name of :meth:`open`."""
        return cls.open(run_dir)

    def config(self) -> Any:
        """The run's :class:`~rltrade.config.RunConfig` (parsed from ``config.yaml``)."""
        import yaml

        from rltrade.config import parse_config

        return parse_config(yaml.safe_load(self.config_text), f"config.yaml of {self.run_dir}")
