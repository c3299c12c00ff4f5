"""The main job: data → features → train → backtest → baselines → report (``rltrade run CONFIG``).

:func:`train` trains one agent per seed on the training range and writes a run directory;
:func:`backtest` trades the saved agents over the test range (out of sample), runs the baselines on
the same dates with the same costs and timing, and scores everything; :func:`write_run_report`
renders ``report.html``; :func:`run` does the three. The run directory holds::

    config.yaml      the validated config (defaults filled in)
    manifest.json    dataset content hash, feature scaler, package versions, git commit, seeds, dates
    models/          one SB3 zip per seed (seed_<s>.zip)
    equity.csv       portfolio value per test bar: the agent (per seed) and each baseline
    weights.csv      value weights per bar and strategy (symbols, then cash)
    trades.csv       holdings changes per bar (stock_trading and single_asset envs)
    costs.csv        cost paid per bar and strategy (currency)
    metrics.json     one object of metrics per column of equity.csv
    summary.json     statistics over seeds (mean ± std, Sharpe CI, PSR, Welch t-test vs random)
    report.html      self-contained report
    backtests/       re-backtests over other ranges (``rltrade backtest RUN_DIR --start --end``),
                     one folder each with its own backtest.json, equity, metrics and report

Timestamps in the CSV files are dates for daily bars and full UTC timestamps for intraday bars.
Annualised figures use the bars per year of the data (:mod:`rltrade.data.annualization`),
recorded in the manifest under ``annualization``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rltrade.config import ConfigError, RunConfig, check_dates, load_config
from rltrade.envs.factory import fit_scaler, make_env, make_training_env
from rltrade.errors import RLTradeError
from rltrade.runs.files import MANIFEST_VERSION, is_intraday, read_manifest, write_csv, write_json, write_text
from rltrade.runs.manifest import annualization_of, base_manifest, new_run_dir

log = logging.getLogger(__name__)


#: A backtest window shorter than this many calendar days gets a warning: its annualised figures mean little.
SHORT_WINDOW_DAYS = 91


@dataclass(frozen=True)
class RunResult:
    """What :func:`run` and :func:`backtest` leave behind.

    ``run_dir`` is the folder holding the results: the run directory, or for a backtest over
    another range its ``backtests/<start>_<end>`` subfolder.
    """

    run_dir: Path
    metrics: dict[str, dict[str, float]]
    summary: dict[str, Any] | None
    agent_columns: tuple[str, ...]
    annualization: Any = None


# ----------------------------------------------------------------------------------- data
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


# ----------------------------------------------------------------------------------- train
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
    from rltrade.agents.factory import make_agent, train_agent
    from rltrade.agents.scaling import VecScaledObservation

    stage = on_stage or (lambda message: log.info("%s", message))
    started = time.perf_counter()
    if config.strategy == "ensemble":
        raise ConfigError("strategy: an ensemble config trains quarter by quarter: use `rltrade run` for it")
    seeds = seeds_of(config, n_seeds)
    if config.agent.tensorboard:
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
        for seed in seeds:
            stage(f"training {config.agent.algorithm} seed {seed} for {config.agent.timesteps:,} steps")
            venv_s, _ = make_training_env(config, bars) if seed != seeds[0] else (venv, template)
            env = VecScaledObservation(venv_s, template, scaler) if scaler is not None else venv_s
            t0 = time.perf_counter()
            model = make_agent(
                config.agent.algorithm,
                env,
                seed=seed,
                params=config.agent.params,
                policy=config.agent.policy,
                policy_kwargs=config.agent.policy_kwargs,
                device=config.agent.device,
                tensorboard_log=work / "tensorboard" if config.agent.tensorboard else None,
                torch_threads=config.agent.torch_threads,
            )
            train_agent(
                model,
                config.agent.timesteps,
                progress=progress,
                label=f"{config.agent.algorithm} seed {seed}",
                tb_log_name=f"seed_{seed}",
            )
            train_seconds[str(seed)] = round(time.perf_counter() - t0, 3)
            trained[str(seed)] = int(model.num_timesteps)
            device = str(model.device)
            model.save(str(work / "models" / f"seed_{seed}.zip"))
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


# ----------------------------------------------------------------------------------- backtest
def _load_run(run_dir: Path) -> tuple[RunConfig, dict[str, Any]]:
    manifest = read_manifest(run_dir)
    config = load_config(run_dir / "config.yaml")
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
    from rltrade.runs.policy import load_policy

    stage = on_stage or (lambda message: log.info("%s", message))
    run_dir = Path(run_dir)
    config, manifest = _load_run(run_dir)
    if manifest.get("strategy") == "ensemble":
        load_policy(run_dir)  # raises the ensemble's error
    other_range = start is not None or end is not None
    if other_range:
        lo, hi = backtest_range(config, start, end)
        config = load_config(run_dir / "config.yaml", overrides={"test.start": str(lo), "test.end": str(hi)})
    if bars is None:
        stage("loading data")
        bars, index_close = load_data(config, progress)
    trained_on = manifest.get("dataset_hash")
    if not other_range and trained_on and bars.attrs.get("content_hash") not in (None, trained_on):
        log.warning("the stored data changed since training (content hash differs from the manifest)")
    trajectories: dict[int, Any] = {}
    for seed in manifest["seeds"]:
        stage(f"backtesting {config.agent.algorithm} seed {seed}")
        policy = load_policy(run_dir, seed, config)
        trajectories[seed] = policy.trade(bars, progress=f"backtest seed {seed}" if progress else False)
    groups = {config.agent.algorithm.lower(): trajectories}

    def score(folder: Path) -> RunResult:
        test_env = lambda: make_env(config, bars, "test")  # noqa: E731
        return evaluate(folder, config, bars, index_close, groups, test_env, progress=progress, on_stage=on_stage)

    if not other_range:
        result = score(run_dir)
        manifest = read_manifest(run_dir)
        manifest["annualization"] = result.annualization.to_dict()
        manifest.setdefault("prices", bars.attrs.get("prices", config.data.prices))
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
                "prices": bars.attrs.get("prices", config.data.prices),
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


def deterministic_policy(model: Any) -> Callable[[np.ndarray], Any]:
    """The greedy action of an SB3 model (``predict(obs, deterministic=True)``)."""

    def policy(obs: np.ndarray) -> Any:
        return model.predict(obs, deterministic=True)[0]

    return policy


def column_name(group: str, seed: int, first_seed: int) -> str:
    """Column of a strategy's seed in equity.csv: ``group`` for the first seed, ``group_seed<s>`` after."""
    return group if seed == first_seed else f"{group}_seed{seed}"


def evaluate(
    run_dir: Path,
    config: RunConfig,
    bars: pd.DataFrame,
    index_close: pd.Series | None,
    groups: dict[str, dict[int, Any]],
    random_env: Callable[[], Any],
    *,
    progress: bool = True,
    on_stage: Callable[[str], None] | None = None,
) -> RunResult:
    """Score agent trajectories against the baselines and write equity, weights, trades, costs, metrics, summary.

    Annualised figures use :func:`annualization_of` the bars (the bar frequency and the market).

    Parameters
    ----------
    run_dir:
        The folder the files are written to.
    groups:
        Strategy name (``ppo``, ``ensemble``, ...) → seed → :class:`~rltrade.backtest.runner.Trajectory`;
        every trajectory covers the same timestamps. The first seed's column is the name itself.
    random_env:
        Builds the env the random agent (one per seed) trades: the agents' env over the same bars.
    """
    from rltrade.backtest.baselines import index_baseline, random_agent, weight_baselines
    from rltrade.backtest.metrics import metrics_table

    stage = on_stage or (lambda message: log.info("%s", message))
    first_group = next(iter(groups.values()))
    seeds = sorted(first_group)
    timestamps: pd.DatetimeIndex = first_group[seeds[0]].timestamps
    equity: dict[str, pd.Series] = {}
    turnover: dict[str, pd.Series] = {}
    costs: dict[str, np.ndarray] = {}
    weights: list[pd.DataFrame] = []
    trades: list[pd.DataFrame] = []
    columns: dict[str, list[str]] = {}

    def record(name: str, traj: Any) -> None:
        if not traj.timestamps.equals(timestamps):
            raise RLTradeError(f"{name}: its dates differ from the other strategies' ({timestamps[0]}..)")
        equity[name] = traj.equity(name)
        turnover[name] = traj.turnover_series(name)
        costs[name] = np.asarray(traj.costs, dtype=np.float64)
        weights.append(traj.weights_frame(name))
        if config.env.type != "portfolio":
            trades.append(traj.trades_frame(name))

    for group, by_seed in groups.items():
        columns[group] = []
        for seed in seeds:
            name = column_name(group, seed, seeds[0])
            columns[group].append(name)
            record(name, by_seed[seed])
    if "random" in config.baselines.names:
        stage("running the random agent")
        columns["random"] = []
        for seed in seeds:
            name = column_name("random", seed, seeds[0])
            columns["random"].append(name)
            env = random_env()
            record(name, random_agent(env, seed))
    names = [n for n in config.baselines.names if n in ("buy_and_hold", "equal_weight", "min_variance")]
    if names:
        stage("running the baselines")
        template = random_env()
        base = weight_baselines(
            bars if config.env.type != "single_asset" else bars[bars["symbol"] == template.market.symbols[0]],
            start=timestamps[0],
            end=timestamps[-1],
            cost=template.cost_model,
            timing=template.timing,
            initial_value=config.env.initial_value,
            names=names,
            min_variance_window=config.baselines.min_variance_window,
            refit_every=config.baselines.refit_every,
            progress=progress,
        )
        for name in names:
            record(name, base[name])
    if index_close is not None:
        equity["index"] = index_baseline(index_close, timestamps, config.env.initial_value)
    order = [c for group in groups for c in columns[group]]
    order += [n for n in ("buy_and_hold", "equal_weight", "min_variance") if n in equity]
    order += columns.get("random", []) + (["index"] if "index" in equity else [])
    frame = pd.DataFrame({name: equity[name].to_numpy() for name in order}, index=timestamps)
    frame.index.name = "timestamp"
    turn = pd.DataFrame({name: turnover[name].to_numpy() for name in turnover}, index=timestamps)
    paid = pd.DataFrame({name: costs[name] for name in order if name in costs}, index=frame.index)
    ev = config.evaluation
    ann = annualization_of(config, bars)
    stage(f"annualising with {ann.periods_per_year:,} bars a year ({ann.basis})")
    metrics = metrics_table(frame, turn, risk_free=ev.risk_free, periods_per_year=ann.periods_per_year)
    summary = _seed_summary(
        config, frame, turn, columns, first=next(iter(groups)), periods_per_year=ann.periods_per_year
    )
    summary["annualization"] = ann.to_dict()
    intraday = is_intraday(timestamps)
    write_csv(run_dir / "equity.csv", frame, intraday=intraday)
    write_csv(run_dir / "weights.csv", pd.concat(weights, ignore_index=True), index=False, intraday=intraday)
    if trades:
        write_csv(run_dir / "trades.csv", pd.concat(trades, ignore_index=True), index=False, intraday=intraday)
    write_csv(run_dir / "costs.csv", paid, intraday=intraday)
    write_json(run_dir / "metrics.json", metrics)
    write_json(run_dir / "summary.json", summary)
    return RunResult(run_dir, metrics, summary, tuple(c for group in groups for c in columns[group]), ann)


def _seed_summary(
    config: RunConfig,
    equity: pd.DataFrame,
    turnover: pd.DataFrame,
    columns: dict[str, list[str]],
    first: str,
    periods_per_year: int,
) -> dict[str, Any]:
    from rltrade.backtest.stats import summarize_seeds, welch_t_test

    ev = config.evaluation
    out: dict[str, Any] = {"confidence": ev.confidence, "n_seeds": len(columns[first]), "strategies": []}
    for name, cols in columns.items():
        summary = summarize_seeds(
            name,
            [equity[c] for c in cols],
            [turnover[c] for c in cols],
            risk_free=ev.risk_free,
            periods_per_year=periods_per_year,
            confidence=ev.confidence,
            n_boot=ev.n_boot,
            seed=config.seed,
        )
        out["strategies"].append(summary.to_dict())
    if "random" in columns:
        t, p = welch_t_test(
            [float(equity[c].iloc[-1]) for c in columns[first]], [float(equity[c].iloc[-1]) for c in columns["random"]]
        )
        out["welch"] = {
            "strategy": first,
            "statistic": "final_value",
            "vs": "random",
            "alternative": "greater",
            "t": t,
            "p": p,
            "note": None if len(columns[first]) >= 2 else "needs --seeds >= 2",
        }
    return out


# ----------------------------------------------------------------------------------- report and run
def write_run_report(run_dir: str | Path) -> Path:
    """Render ``report.html`` from the files of a run directory."""
    from rltrade.report import write_report

    return write_report(run_dir)


def run(
    config: RunConfig,
    runs_dir: str | Path = "runs",
    n_seeds: int = 1,
    *,
    progress: bool = True,
    on_stage: Callable[[str], None] | None = None,
) -> RunResult:
    """Train, backtest and report: the main job. Returns the run directory and its metrics."""
    started = time.perf_counter()
    stage = on_stage or (lambda message: log.info("%s", message))
    stage("loading data")
    bars, index_close = load_data(config, progress)
    run_dir = train(config, runs_dir, n_seeds, progress=progress, bars=bars, on_stage=on_stage)
    result = backtest(run_dir, progress=progress, bars=bars, index_close=index_close, on_stage=on_stage)
    manifest = read_manifest(run_dir)
    manifest["wall_time_s"] = round(time.perf_counter() - started, 1)
    write_json(run_dir / "manifest.json", manifest)
    stage("writing the report")
    write_run_report(run_dir)
    return result
