"""One agent per seed: train on the training range, backtest on the test range (``strategy: single``).

:func:`train` trains one agent per seed and writes a run directory; :func:`backtest` trades the
saved agents over the test range (or another out-of-sample range, into ``backtests/``) and
scores them against the baselines; :class:`SingleAgent` does both and writes the report.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from rltrade.config import ConfigError, RunConfig, bar_config, load_config
from rltrade.data.adjust import price_basis
from rltrade.envs.factory import fit_scaler, make_env, make_training_env
from rltrade.runs.evaluate import RunResult, evaluate
from rltrade.runs.files import MANIFEST_VERSION, read_manifest
from rltrade.runs.manifest import base_manifest, new_run_dir
from rltrade.shared.files import write_json, write_text
from rltrade.strategies.base import BarStrategy, check_config, load_data, seeds_of

log = logging.getLogger(__name__)

#: The ensemble's options and the command-line flags that set them (named in errors).
ENSEMBLE_FLAGS = {
    "timesteps_scale": "--timesteps-scale",
    "max_quarters": "--quarters",
    "resume": "--resume",
    "use_ray": "--no-ray",
    "ray_address": "--ray-address",
}
#: A backtest window shorter than this many calendar days gets a warning: its annualised figures mean little.
SHORT_WINDOW_DAYS = 91


def train(
    config: RunConfig,
    runs_dir: str | Path = "runs",
    n_seeds: int = 1,
    *,
    progress: bool = True,
    bars: pd.DataFrame | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> Path:
    """Train one agent per seed and write a run directory (without the backtest).

    The directory is built under a hidden temporary name and renamed when every model is saved,
    so an interrupted run leaves no half-written run directory.
    """
    from rltrade.agents.base import agent_kind
    from rltrade.agents.scaling import VecScaledObservation

    stage = on_stage or (lambda message: log.info("%s", message))
    started = time.perf_counter()
    if config.strategy == "ensemble":
        raise ConfigError("strategy: an ensemble config trains quarter by quarter: use `rltrade run` for it")
    seeds = seeds_of(config, n_seeds)
    check_config(config)
    if config.sb3.tensorboard:
        from rltrade._optional import require

        require("tensorboard", "tensorboard", "agent.tensorboard: true")
    if bars is None:
        stage("loading data")
        bars, _ = load_data(config, progress)
    stage("building the training env")
    venv, template = make_training_env(config, bars)
    scaler = fit_scaler(config, template)
    market = template.market
    final = new_run_dir(config, runs_dir, create=False)
    work = final.parent / f".{final.name}.partial"
    shutil.rmtree(work, ignore_errors=True)
    (work / "models").mkdir(parents=True)
    try:
        write_text(work / "config.yaml", config.dump_yaml())
        train_seconds: dict[str, float] = {}
        trained: dict[str, int] = {}
        device = None
        kind = agent_kind(config.agent.kind)
        for seed in seeds:
            stage(f"training {config.sb3.algorithm} seed {seed} for {config.sb3.timesteps:,} steps")
            venv_s, _ = make_training_env(config, bars) if seed != seeds[0] else (venv, template)
            env = VecScaledObservation(venv_s, template, scaler) if scaler is not None else venv_s
            t0 = time.perf_counter()
            tensorboard = work / "tensorboard" if config.sb3.tensorboard else None
            agent = kind.build(config, env, seed=seed, tensorboard_log=tensorboard)
            agent.learn(config.sb3.timesteps, progress=progress, label=f"{config.sb3.algorithm} seed {seed}")
            train_seconds[str(seed)] = round(time.perf_counter() - t0, 3)
            trained[str(seed)] = agent.num_timesteps
            device = agent.device_name
            agent.save(work / "models" / kind.model_file(seed))
        manifest = base_manifest(config, final, bars, seeds, list(market.symbols), list(market.feature_names))
        manifest.update(
            {
                "train": {
                    "start": stamp_text(market.times[market.first]),
                    "end": stamp_text(market.times[market.last]),
                },
                "feature_scaler": scaler.to_dict() if scaler is not None else None,
                "timing": template.timing.name if hasattr(template, "timing") else None,
                "cost": repr(template.cost_model),
                "train_seconds": train_seconds,
                "timesteps_trained": trained,
                "device": device,
            }
        )
        write_json(work / "manifest.json", manifest)
        os.replace(work, final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    log.info("trained %d seed(s) in %.1f s: %s", len(seeds), time.perf_counter() - started, final)
    return final


def _load_run(run_dir: Path) -> tuple[RunConfig, dict[str, Any]]:
    manifest = read_manifest(run_dir)
    config = bar_config(load_config(run_dir / "config.yaml"), str(run_dir))
    return config, manifest


def parse_date_option(value: str | dt.date | None, flag: str) -> dt.date | None:
    """A ``YYYY-MM-DD`` date given on the command line as ``flag``; :class:`ConfigError` naming the flag."""
    if value is None or isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ConfigError(f"{flag} {value!r} is not a date; use YYYY-MM-DD, e.g. {flag} 2019-01-02") from None


def backtest_range(
    config: RunConfig,
    start: str | dt.date | None,
    end: str | dt.date | None,
    flags: tuple[str, str] = ("--start", "--end"),
) -> tuple[dt.date, dt.date]:
    """The out-of-sample range of a re-backtest: ``start``/``end`` (defaults: the config's test range), checked.

    Raises :class:`ConfigError` naming the flag (``--start``/``--end``) for an unparseable date, an
    empty range or a range that reaches into the training range (in-sample).
    """
    lo = parse_date_option(start, flags[0]) or config.test.start
    hi = parse_date_option(end, flags[1]) or config.test.end
    if hi <= lo:
        raise ConfigError(f"{flags[1]} {hi} is not after {flags[0]} {lo}")
    train_end = config.train.end
    if train_end is not None and lo <= train_end:
        raise ConfigError(
            f"{flags[0]} {lo} is inside the training range ({config.train.start}..{train_end}): a backtest must "
            f"start after {train_end} to stay out of sample"
        )
    return lo, hi


def backtest(
    run_dir: str | Path,
    start: str | dt.date | None = None,
    end: str | dt.date | None = None,
    *,
    progress: bool = True,
    bars: pd.DataFrame | None = None,
    index_close: pd.Series | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> RunResult:
    """Trade the run's saved agents out of sample and score them against the baselines.

    Parameters
    ----------
    run_dir:
        A directory written by :func:`train`.
    start, end:
        Another range than the config's test range (``YYYY-MM-DD``; a missing bound is the
        config's). The results then go to ``RUN_DIR/backtests/<start>_<end>/`` with a
        ``backtest.json`` recording the range; the run's own files are left as they are. A
        range reaching into the training range is refused (it would be in-sample), and a window
        shorter than three months is logged as too short for annualised figures.

    Returns
    -------
    RunResult
        Its ``run_dir`` is the folder the results were written to.
    """
    from rltrade.runs.policy import load_policy, refuse_ensemble

    stage = on_stage or (lambda message: log.info("%s", message))
    run_dir = Path(run_dir)
    config, manifest = _load_run(run_dir)
    refuse_ensemble(run_dir, manifest)
    other_range = start is not None or end is not None
    if other_range:
        lo, hi = backtest_range(config, start, end)
        window = {"test.start": str(lo), "test.end": str(hi)}
        config = bar_config(load_config(run_dir / "config.yaml", overrides=window))
    if bars is None:
        stage("loading data")
        bars, index_close = load_data(config, progress)
    trained_on = manifest.get("dataset_hash")
    if not other_range and trained_on and bars.attrs.get("content_hash") not in (None, trained_on):
        log.warning("the stored data changed since training (content hash differs from the manifest)")
    trajectories: dict[int, Any] = {}
    for seed in manifest["seeds"]:
        stage(f"backtesting {config.sb3.algorithm} seed {seed}")
        policy = load_policy(run_dir, seed, config, manifest)
        trajectories[seed] = policy.trade(bars, progress=f"backtest seed {seed}" if progress else False)
    groups = {config.sb3.algorithm.lower(): trajectories}

    def score(folder: Path) -> RunResult:
        test_env = lambda: make_env(config, bars, "test")  # noqa: E731
        return evaluate(folder, config, bars, index_close, groups, test_env, progress=progress, on_stage=on_stage)

    if not other_range:
        result = score(run_dir)
        manifest["annualization"] = result.annualization.to_dict()
        manifest.setdefault("prices", price_basis(bars))
        write_json(run_dir / "manifest.json", manifest)
        return result
    final = run_dir / "backtests" / f"{config.test.start}_{config.test.end}"
    work = final.parent / f".{final.name}.partial"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        result = score(work)
        stamps = next(iter(trajectories.values())).timestamps
        days = (stamps[-1] - stamps[0]).days
        warning = None
        if days < SHORT_WINDOW_DAYS:
            warning = (
                f"the window covers {days} days ({len(stamps) - 1} bars): annualised figures (annual return, "
                "volatility, Sharpe, Sortino, Calmar, turnover) extrapolate it to a year and mean little"
            )
            log.warning("%s", warning)
        write_json(
            work / "backtest.json",
            {
                "format": MANIFEST_VERSION,
                "run": "../..",
                "run_id": manifest.get("run_id", run_dir.name),
                "test": {"start": str(config.test.start), "end": str(config.test.end)},
                "first_bar": stamp_text(stamps[0]),
                "last_bar": stamp_text(stamps[-1]),
                "bars": len(stamps),
                "annualization": result.annualization.to_dict(),
                "prices": price_basis(bars),
                "dataset_hash": bars.attrs.get("content_hash"),
                "warning": warning,
                "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            },
        )
        if final.exists():
            shutil.rmtree(final)
        os.replace(work, final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return dataclasses.replace(result, run_dir=final)


def stamp_text(value: Any) -> str:
    """A bar timestamp for people and files: the date of a midnight, else ``YYYY-mm-dd HH:MM`` (UTC)."""
    ts = pd.Timestamp(value)
    ts = ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts
    return str(ts.date()) if ts == ts.normalize() else ts.strftime("%Y-%m-%d %H:%M")


class SingleAgent(BarStrategy):
    """``strategy: single``: one agent per seed, trained, backtested out of sample and reported."""

    def run(
        self,
        config: RunConfig,
        runs_dir: str | Path = "runs",
        n_seeds: int = 1,
        *,
        progress: bool = True,
        on_stage: Callable[[str], None] | None = None,
        **options: Any,
    ) -> RunResult:
        """Train, backtest and report: the main job. Returns the run directory and its metrics."""
        from rltrade.report import write_report

        if options:
            flags = ", ".join(ENSEMBLE_FLAGS.get(name, name) for name in options)
            raise ConfigError(f"{flags}: apply to `strategy: ensemble` configs, not to a single agent")
        started = time.perf_counter()
        stage = on_stage or (lambda message: log.info("%s", message))
        check_config(config)  # before any data is read
        stage("loading data")
        bars, index_close = load_data(config, progress)
        run_dir = train(config, runs_dir, n_seeds, progress=progress, bars=bars, on_stage=on_stage)
        result = backtest(run_dir, progress=progress, bars=bars, index_close=index_close, on_stage=on_stage)
        manifest = read_manifest(run_dir)
        manifest["wall_time_s"] = round(time.perf_counter() - started, 1)
        write_json(run_dir / "manifest.json", manifest)
        stage("writing the report")
        write_report(run_dir)
        return result
