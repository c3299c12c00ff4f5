"""The manifest of a run (identity, data, provenance) and where a new run directory goes."""

from __future__ import annotations

import datetime as dt
import platform
from pathlib import Path
from typing import Any

import pandas as pd

from rltrade.config import AgentConfig, RunConfig
from rltrade.data.adjust import price_basis
from rltrade.runs.files import MANIFEST_VERSION, git_commit, versions


def annualization_of(config: RunConfig, bars: pd.DataFrame) -> Any:
    """The :class:`~rltrade.data.annualization.Annualization` of the run's bars (``evaluation`` settings)."""
    from rltrade.data.annualization import annualization

    ev = config.evaluation
    stamps = pd.DatetimeIndex(pd.unique(bars["timestamp"]))
    return annualization(stamps, config.data.freq, ev.market, ev.periods_per_year)


def new_run_dir(config: Any, runs_dir: str | Path, create: bool = True) -> Path:
    """A fresh ``RUNS_DIR/<name>-<YYYYmmdd-HHMMSS>`` path (with ``-2``, ``-3``... if taken); created unless told."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    runs = Path(runs_dir)
    runs.mkdir(parents=True, exist_ok=True)
    final = runs / f"{config.name}-{stamp}"
    suffix = 1
    while final.exists():
        suffix += 1
        final = runs / f"{config.name}-{stamp}-{suffix}"
    if create:
        final.mkdir()
    return final


def base_manifest(
    config: RunConfig, run_dir: Path, bars: pd.DataFrame, seeds: list[int], symbols: list[str], features: list[str]
) -> dict[str, Any]:
    """The manifest fields every run has: identity, data hash, seeds, versions, commit, price basis, annualisation.

    ``algorithm`` and ``timesteps`` are the SB3 agent's; for another agent kind the strategy's
    name and None, with the agent section under ``agent``.
    """
    sb3 = config.agent if isinstance(config.agent, AgentConfig) else None
    return {
        "format": MANIFEST_VERSION,
        "name": config.name,
        "run_id": run_dir.name,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "strategy": config.strategy,
        "algorithm": sb3.algorithm if sb3 else config.strategy,
        "env": config.env.type,
        "seeds": seeds,
        "timesteps": sb3.timesteps if sb3 else None,
        "agent": config.agent.model_dump(mode="json"),
        "symbols": symbols,
        "train": {"start": str(config.train.start), "end": str(config.train.end)},
        "test": {"start": str(config.test.start), "end": str(config.test.end)},
        "dataset_hash": bars.attrs.get("content_hash"),
        "features": features,
        "feature_scaler": None,
        "initial_value": config.env.initial_value,
        "prices": price_basis(bars),
        "annualization": annualization_of(config, bars).to_dict(),
        "packages": versions(),
        "platform": platform.platform(),
        "git_commit": git_commit(),
    }
