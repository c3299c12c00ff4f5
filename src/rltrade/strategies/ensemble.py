"""The quarterly ensemble strategy of Yang et al. (ICAIF 2020), with Ray-parallel training.

Over the trading period, quarter after quarter (``rebalance_window`` bars, 63 by default):

1. every agent (PPO, A2C, DDPG by default) trains on a window growing from ``train.start`` to
   the start of the validation window; the agents of one quarter train in parallel as Ray tasks,
   each with its own seed;
2. each agent trades the ``validation_window`` bars (63) just before the quarter, from fresh
   cash, and is scored by the Sharpe ratio of its per-bar returns, annualised with the bars per
   year of the data (√252 for daily bars; FinRL's code annualised with √4);
3. the agent with the best validation Sharpe trades the quarter, starting from the cash and
   holdings the ensemble ended the previous quarter with.

Turbulence rule (validation and trading): with q = the 90 % quantile of the turbulence index
over the training window, the threshold is q when the mean turbulence of the last 63 bars up to
the quarter's first decision exceeds q, else the training window's maximum. Above the
threshold the env sells everything and blocks buys (``StockTradingEnv``'s switch).

Each agent is also traded alone through every quarter (retrained each quarter, always picked),
which gives the PPO / A2C / DDPG columns of the paper's table.

Every finished quarter is written to ``RUN_DIR/state/`` (its trajectories, picks, thresholds
and the accounts carried over), so ``--resume RUN_DIR`` continues an interrupted run from the
last finished quarter and ends with the same result as an uninterrupted one.

The picked agent of each quarter is kept: ``RUN_DIR/models/seed_<s>/q<NNN>_<algo>.<ext>`` (the
agent kind's model file, ``.zip`` for SB3), written atomically before the quarter's state json,
which records under ``decision`` the model's file name, the quarter's feature scaler
(``scaler_data``), the turbulence threshold applied to the env (``env_threshold``, None with
``ensemble.turbulence`` off) and the ensemble's account at the quarter's start
(``start_carry``). :func:`rltrade.strategies.ensemble_signals.ensemble_targets` rebuilds the
ensemble's decision for any trading day from them. A run resumed from quarters written before
(state version 1, no ``decision``) resumes as before; only those quarters' decisions cannot be
rebuilt.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from rltrade.backtest.runner import Trajectory, run_policy
from rltrade.config import ConfigError, RunConfig, bar_config, load_config, parse_config
from rltrade.errors import RLTradeError
from rltrade.report import write_report
from rltrade.runs.evaluate import RunResult, evaluate
from rltrade.runs.files import read_manifest
from rltrade.runs.manifest import annualization_of, base_manifest, new_run_dir
from rltrade.shared.files import write_csv, write_json, write_text
from rltrade.shared.ray import ray_available, start_ray, stop_ray
from rltrade.strategies.base import BarStrategy, check_config, load_data, seeds_of

log = logging.getLogger(__name__)

STATE_VERSION = 2
"""Version of the quarter state files: 1 had no decision (no saved model, scaler, threshold or start account)."""


@dataclass(frozen=True)
class Quarter:
    """Bar indices of one step of the loop (inclusive; the trade window runs ``trade_start → trade_end``)."""

    number: int
    train_start: int
    train_end: int
    val_start: int
    trade_start: int
    trade_end: int


def quarter_schedule(
    times: np.ndarray, train_start: int, trade_first: int, trade_last: int, rebalance: int, validation: int
) -> list[Quarter]:
    """The quarters of the loop over bars ``trade_first .. trade_last``.

    A quarter's first observation is the previous quarter's last bar, so the holdings are marked
    to every close exactly once. Its validation window is the ``validation`` bars before it, and
    its training window ends where the validation starts.
    """
    quarters: list[Quarter] = []
    start = trade_first
    while start < trade_last:
        end = min(start + rebalance, trade_last)
        val_start = start - validation
        if val_start - train_start < 2 * rebalance:
            raise ConfigError(
                f"quarter {len(quarters)}: only {max(val_start - train_start, 0)} training bars before the validation "
                f"window starting {pd.Timestamp(times[max(val_start, 0)]).date()}; start train earlier or test later"
            )
        quarters.append(Quarter(len(quarters), train_start, val_start, val_start, start, end))
        start = end
    return quarters


def turbulence_threshold(turbulence: np.ndarray, quarter: Quarter, quantile: float, lookback: int) -> float:
    """The turbulence threshold of a quarter (data up to its first decision bar only)."""
    insample = turbulence[quarter.train_start : quarter.train_end + 1]
    insample = insample[np.isfinite(insample)]
    if insample.size == 0:
        raise RLTradeError(f"quarter {quarter.number}: no turbulence values in the training window")
    limit = float(np.quantile(insample, quantile))
    recent = turbulence[max(quarter.trade_start - lookback + 1, 0) : quarter.trade_start + 1]
    recent = recent[np.isfinite(recent)]
    return limit if recent.size and float(recent.mean()) > limit else float(insample.max())


def validation_sharpe(traj: Trajectory, periods_per_year: int = 252) -> float:
    """Sharpe of a validation trajectory's per-bar returns, annualised with √periods_per_year (NaN if flat)."""
    from rltrade.backtest.stats import sharpe_ratio

    returns = np.diff(traj.values) / traj.values[:-1]
    return float(sharpe_ratio(returns, periods_per_year=periods_per_year))


def concat_trajectories(parts: list[Trajectory]) -> Trajectory:
    """Join consecutive windows; each part's first row repeats the previous part's last bar and is dropped."""
    first = parts[0]
    rest = parts[1:]

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(first, name)] + [getattr(p, name)[1:] for p in rest])

    stamps = first.timestamps.append([p.timestamps[1:] for p in rest]) if rest else first.timestamps
    return Trajectory(
        timestamps=pd.DatetimeIndex(stamps, name="timestamp"),
        values=cat("values"),
        turnover=cat("turnover"),
        costs=cat("costs"),
        weights=cat("weights"),
        holdings=cat("holdings"),
        symbols=first.symbols,
        closes=cat("closes"),
        multiplier=first.multiplier,
        final_info=parts[-1].final_info,
    )


# ----------------------------------------------------------------------------------- training tasks
def _window_env(
    config: RunConfig, bars: pd.DataFrame, start: Any, end: Any, market: Any = None, **overrides: Any
) -> Any:
    """The stock-trading env over ``start``..``end``; on ``market`` (one Market of the whole data) when given,
    so that the features and the turbulence index are computed once, not once per env."""
    from rltrade.envs.factory import env_kwargs
    from rltrade.envs.stock_trading import StockTradingEnv

    kwargs = env_kwargs(config, "test", start, end)
    kwargs.update(overrides)
    return StockTradingEnv(bars, market=market, **kwargs)


def train_window_agent(
    config_data: dict[str, Any],
    bars: pd.DataFrame,
    agent: str,
    start: pd.Timestamp,
    end: pd.Timestamp,
    timesteps: int,
    seed: int,
    scaler_data: dict[str, Any] | None,
) -> bytes:
    """Train one agent on one window and return it saved (the bytes of its model file).

    A plain function of its arguments, so it runs the same in this process or as a Ray task.
    The agent is built, trained and saved through the Agent protocol (``agent.kind``).
    """
    from rltrade.agents.base import agent_kind
    from rltrade.agents.scaling import VecScaledObservation
    from rltrade.envs.factory import env_kwargs
    from rltrade.envs.vec import BatchedStockTradingEnv
    from rltrade.features.normalize import normalizer_from_dict

    config = bar_config(parse_config(config_data))
    kwargs = env_kwargs(config, "train", start, end)
    venv: Any = BatchedStockTradingEnv(bars, n_envs=config.sb3.n_envs, **kwargs)
    if scaler_data is not None:
        venv = VecScaledObservation(venv, venv.template, normalizer_from_dict(scaler_data))
    one = agent_config(config, agent)
    kind = agent_kind(one.agent.kind)
    trained = kind.build(one, venv, seed=seed).learn(timesteps, progress=False)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / kind.model_file(seed)
        trained.save(path)
        return path.read_bytes()


def agent_config(config: RunConfig, agent: str) -> RunConfig:
    """The config as one of the ensemble's agents sees it: ``agent.algorithm`` and its ``ensemble.params``."""
    section = config.agent.model_copy(update={"algorithm": agent.upper(), "params": config.ensemble.params_of(agent)})
    return config.model_copy(update={"agent": section})


class _Trainer:
    """Runs the training tasks of a window: Ray tasks, or one after the other in this process."""

    def __init__(self, use_ray: bool, address: str | None, bars: pd.DataFrame) -> None:
        self.use_ray = use_ray
        self.bars = bars
        self.started_ray = False
        if use_ray:
            import ray

            self.started_ray = start_ray(address)
            self._remote = ray.remote(num_cpus=1)(train_window_agent)
            self._bars_ref = ray.put(bars)

    def run(self, tasks: list[tuple[Any, ...]]) -> list[bytes]:
        if not self.use_ray:
            return [train_window_agent(task[0], self.bars, *task[1:]) for task in tasks]
        import ray

        return list(ray.get([self._remote.remote(task[0], self._bars_ref, *task[1:]) for task in tasks]))

    def close(self) -> None:
        """Shut down the local Ray this trainer started (a Ray the caller started is left running)."""
        stop_ray(self.started_ray)


def model_suffix(config: RunConfig, agent: str, seed: int) -> str:
    """The file extension of ``agent``'s saved model (``.zip`` for SB3), from its kind's ``model_file`` naming."""
    from rltrade.agents.base import agent_kind

    return "".join(Path(agent_kind(agent_config(config, agent).agent.kind).model_file(seed)).suffixes)


def model_path(run_dir: Path, seed: int, number: int, agent: str, suffix: str) -> Path:
    """``RUN_DIR/models/seed_<s>/q<NNN>_<algo><suffix>``: the picked agent of a quarter."""
    return run_dir / "models" / f"seed_{seed}" / f"q{number:03d}_{agent.lower()}{suffix}"


def _load_model(agent: str, data: bytes, config: RunConfig) -> Any:
    """The trained agent from :func:`train_window_agent`'s bytes (an :class:`~rltrade.agents.base.Agent`)."""
    from rltrade.agents.base import agent_kind

    one = agent_config(config, agent)
    kind = agent_kind(one.agent.kind)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / kind.model_file(0)
        path.write_bytes(data)
        return kind.load(one, path)


# ----------------------------------------------------------------------------------- state files
def _save_quarter(
    folder: Path,
    number: int,
    row: dict[str, Any],
    carry: dict[str, Any],
    parts: dict[str, Trajectory],
    decision: dict[str, Any],
) -> None:
    """Write a finished quarter: its trajectories (``.npz``), then its ``.json`` (last: the quarter is finished).

    The json holds the row of ``quarters.csv``, the accounts carried to the next quarter and
    ``decision``: what the pick's decisions need (:func:`_run_quarter`).
    """
    arrays: dict[str, np.ndarray] = {}
    for name, traj in parts.items():
        arrays[f"{name}.timestamps"] = traj.timestamps.to_numpy("datetime64[ns]")
        for field in ("values", "turnover", "costs", "weights", "holdings", "closes"):
            arrays[f"{name}.{field}"] = getattr(traj, field)
    tmp = folder / f".q{number:03d}.npz"
    with open(tmp, "wb") as fh:
        np.savez(fh, allow_pickle=False, **arrays)
    os.replace(tmp, folder / f"q{number:03d}.npz")
    meta = {
        "version": STATE_VERSION,
        "row": row,
        "carry": carry,
        "symbols": list(next(iter(parts.values())).symbols),
        "decision": decision,
    }
    tmp = folder / f".q{number:03d}.json"
    tmp.write_text(json.dumps(meta, indent=1))
    os.replace(tmp, folder / f"q{number:03d}.json")  # written last: the quarter is finished


def _load_quarter(folder: Path, number: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Trajectory]] | None:
    path = folder / f"q{number:03d}.json"
    if not path.exists():
        return None
    meta = json.loads(path.read_text())
    parts: dict[str, Trajectory] = {}
    with np.load(folder / f"q{number:03d}.npz") as data:
        for name in meta["carry"]:
            parts[name] = Trajectory(
                timestamps=pd.DatetimeIndex(data[f"{name}.timestamps"], name="timestamp"),
                values=data[f"{name}.values"],
                turnover=data[f"{name}.turnover"],
                costs=data[f"{name}.costs"],
                weights=data[f"{name}.weights"],
                holdings=data[f"{name}.holdings"],
                symbols=tuple(meta["symbols"]),
                closes=data[f"{name}.closes"],
            )
    return meta["row"], meta["carry"], parts


# ----------------------------------------------------------------------------------- the loop
def run_ensemble(
    config: RunConfig,
    runs_dir: str | Path = "runs",
    n_seeds: int = 1,
    *,
    timesteps_scale: float = 1.0,
    max_quarters: int | None = None,
    resume: str | Path | None = None,
    use_ray: bool = True,
    ray_address: str | None = None,
    progress: bool = True,
    on_stage: Callable[[str], None] | None = None,
) -> Any:
    """Run (or resume) the ensemble strategy and write a run directory (a :class:`~rltrade.runs.evaluate.RunResult`).

    Parameters
    ----------
    timesteps_scale:
        Multiplies each agent's timesteps (``ensemble.timesteps``).
    max_quarters:
        Stop after this many quarters (quick looks, tests).
    resume:
        A run directory of an interrupted run: its config, seeds, scale and quarter limit are
        used and its finished quarters are kept.
    use_ray:
        Train the agents of a window as Ray tasks (``ray.init()`` locally unless ``ray_address``).
    """
    stage = on_stage or (lambda message: log.info("%s", message))
    started = time.perf_counter()
    if resume is not None:
        run_dir = Path(resume)
        manifest = read_manifest(run_dir)
        config = bar_config(load_config(run_dir / "config.yaml"), str(run_dir))
        seeds = list(manifest["seeds"])
        timesteps_scale = float(manifest["timesteps_scale"])
        max_quarters = manifest.get("max_quarters")
        stage(f"resuming {run_dir.name}")
    else:
        seeds = seeds_of(config, n_seeds)
    if config.strategy != "ensemble":
        raise ConfigError("strategy: the config is not an ensemble config (set `strategy: ensemble`)")
    check_config(config)
    if timesteps_scale <= 0:
        raise ConfigError(f"--timesteps-scale must be > 0, got {timesteps_scale}")
    stage("loading data")
    bars, index_close = load_data(config, progress)
    ens = config.ensemble
    agents = list(ens.agents)
    template = _window_env(config, bars, None, None, turbulence_threshold=np.inf)
    market = template.market
    times = market.times
    turbulence = np.asarray(template.turbulence)  # the env's own index: returns up to each bar only
    warm = max(market.warmup, int(config.env.params.get("turbulence_window", 252)) + 1)  # features and turbulence
    asked = int(np.searchsorted(times, np.datetime64(config.train.start)))
    train_start = max(asked, warm)
    if train_start > asked:
        stage(
            f"the first training window starts {pd.Timestamp(times[train_start]).date()}, not at train.start "
            f"{config.train.start}: the features and the {warm - 1}-bar turbulence window need {warm} bars of history"
        )
    trade_first, trade_last = market.first, market.last  # the template env spans the test range
    quarters = quarter_schedule(
        times, train_start, trade_first, trade_last, ens.rebalance_window, ens.validation_window
    )
    if max_quarters is not None:
        quarters = quarters[:max_quarters]
    first_end = pd.Timestamp(times[quarters[0].train_end]).date()
    if config.train.end is not None and config.train.end != first_end:
        stage(
            f"train.end {config.train.end} is not used by the ensemble: its first training window ends {first_end}, "
            f"{ens.validation_window} bars before the first trading day, and grows by a quarter each quarter"
        )
    annual = annualization_of(config, bars)
    if use_ray and not ray_available():
        stage("Ray is not installed (pip install 'rltrade[ray]'): training the agents one after the other")
        use_ray = False
    if resume is None:
        run_dir = new_run_dir(config, runs_dir)
        (run_dir / "state").mkdir()
        write_text(run_dir / "config.yaml", config.dump_yaml())
        manifest = base_manifest(config, run_dir, bars, seeds, list(market.symbols), list(market.feature_names))
        manifest.update(
            {
                "strategy": "ensemble",
                "algorithm": "ENSEMBLE",
                "agents": agents,
                "timesteps": {a: ens.timesteps_of(a, timesteps_scale) for a in agents},
                "timesteps_scale": timesteps_scale,
                "max_quarters": max_quarters,
                "quarters": len(quarters),
                "train": {  # the window grows: its end is that of the last quarter's training
                    "start": str(pd.Timestamp(times[train_start]).date()),
                    "end": str(pd.Timestamp(times[quarters[-1].train_end]).date()),
                },
                "test": {
                    "start": str(pd.Timestamp(times[trade_first]).date()),
                    "end": str(pd.Timestamp(times[quarters[-1].trade_end]).date()),
                },
                "timing": template.timing.name,
                "cost": repr(template.cost_model),
                "sharpe_annualisation": f"sqrt({annual.periods_per_year}) of per-bar returns ({annual.basis})",
                "ray": {"used": use_ray, "address": ray_address},
            }
        )
        write_json(run_dir / "manifest.json", manifest)
    trainer = _Trainer(use_ray, ray_address, bars)
    config_data = config.model_dump(mode="json")
    names = ["ensemble", *[a.lower() for a in agents]]
    rows: list[dict[str, Any]] = []
    groups: dict[str, dict[int, Trajectory]] = {name: {} for name in names}
    bar = tqdm(
        total=len(quarters) * len(seeds), desc="ensemble quarters", unit="quarter", disable=None if progress else True
    )
    try:
        for seed in seeds:
            folder = run_dir / "state" / f"seed_{seed}"
            folder.mkdir(parents=True, exist_ok=True)
            carry: dict[str, Any] = {
                name: {"cash": config.env.initial_value, "shares": [0] * market.n_symbols} for name in names
            }
            parts: dict[str, list[Trajectory]] = {name: [] for name in names}
            for quarter in quarters:
                done = _load_quarter(folder, quarter.number)
                if done is not None:
                    row, carry, segment = done
                else:
                    row, carry, segment, decision = _run_quarter(
                        config,
                        config_data,
                        bars,
                        market,
                        turbulence,
                        quarter,
                        seed,
                        carry,
                        trainer,
                        timesteps_scale,
                        stage,
                        annual.periods_per_year,
                        run_dir,
                    )
                    _save_quarter(folder, quarter.number, row, carry, segment, decision)
                rows.append(row)
                for name in names:
                    parts[name].append(segment[name])
                bar.update(1)
            for name in names:
                groups[name][seed] = concat_trajectories(parts[name])
    finally:
        bar.close()
        trainer.close()
    stage("scoring against the baselines")
    first, last = times[quarters[0].trade_start], times[quarters[-1].trade_end]
    result = evaluate(
        run_dir,
        config,
        bars,
        index_close,
        groups,
        lambda: _window_env(config, bars, first, last, market=market),
        progress=progress,
        on_stage=on_stage,
    )
    write_csv(run_dir / "quarters.csv", pd.DataFrame(rows), index=False)
    manifest = read_manifest(run_dir)
    manifest["wall_time_s"] = round(manifest.get("wall_time_s", 0.0) + time.perf_counter() - started, 1)
    write_json(run_dir / "manifest.json", manifest)
    stage("writing the report")
    write_report(run_dir)
    return result


def _run_quarter(
    config: RunConfig,
    config_data: dict[str, Any],
    bars: pd.DataFrame,
    market: Any,
    turbulence: np.ndarray,
    quarter: Quarter,
    seed: int,
    carry: dict[str, Any],
    trainer: _Trainer,
    scale: float,
    stage: Callable[[str], None],
    periods_per_year: int = 252,
    run_dir: Path | None = None,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Trajectory], dict[str, Any]]:
    """Train, validate, pick and trade one quarter: ``(row, carry after, trajectories, decision)``.

    With ``run_dir``, the picked agent's model file is written (atomically) to
    ``RUN_DIR/models/seed_<s>/q<NNN>_<algo>.<ext>``; ``decision`` names it and holds what a later
    decision of the pick needs: the feature scaler (``scaler_data``), the turbulence threshold
    applied to the env (``env_threshold``, None with ``ensemble.turbulence`` off) and the
    ensemble's account at the quarter's start (``start_carry``).
    """
    from rltrade.agents.scaling import ScaledObservation, fit_feature_scaler

    ens = config.ensemble
    agents = list(ens.agents)
    times = market.times
    day = lambda i: pd.Timestamp(times[i])  # noqa: E731
    threshold = turbulence_threshold(turbulence, quarter, ens.turbulence_quantile, ens.turbulence_lookback)
    env_threshold = threshold if ens.turbulence else None
    train_env = _window_env(config, bars, day(quarter.train_start), day(quarter.train_end), market=market)
    scaler = fit_feature_scaler(train_env.market, config.features.scaler)
    scaler_data = scaler.to_dict() if scaler is not None else None
    stage(
        f"seed {seed} quarter {quarter.number}: training {', '.join(agents)} on "
        f"{day(quarter.train_start).date()}..{day(quarter.train_end).date()}"
    )
    tasks = [
        (
            config_data,
            a,
            day(quarter.train_start),
            day(quarter.train_end),
            ens.timesteps_of(a, scale),
            seed * 100_000 + quarter.number * 10 + k,
            scaler_data,
        )
        for k, a in enumerate(agents)
    ]
    saved = dict(zip(agents, trainer.run(tasks), strict=True))
    models = {a: _load_model(a, data, config) for a, data in saved.items()}

    def trade(agent: str, start: int, end: int, **account: Any) -> Trajectory:
        env = _window_env(
            config, bars, day(start), day(end), market=market, turbulence_threshold=env_threshold, **account
        )
        env = ScaledObservation(env, scaler) if scaler is not None else env
        return run_policy(env, models[agent].predict, seed=seed)

    sharpes = {a: validation_sharpe(trade(a, quarter.val_start, quarter.trade_start), periods_per_year) for a in agents}
    picked = max(agents, key=lambda a: -np.inf if np.isnan(sharpes[a]) else sharpes[a])
    model_name: str | None = None
    if run_dir is not None:  # before the quarter's json: a finished quarter always has its model
        path = model_path(run_dir, seed, quarter.number, picked, model_suffix(config, picked, seed))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}")
        tmp.write_bytes(saved[picked])
        os.replace(tmp, path)
        model_name = path.name
    decision: dict[str, Any] = {
        "model": model_name,
        "scaler_data": scaler_data,
        "env_threshold": env_threshold,
        "start_carry": {
            "cash": float(carry["ensemble"]["cash"]),
            "shares": [int(s) for s in carry["ensemble"]["shares"]],
        },
    }
    segment: dict[str, Trajectory] = {}
    new_carry: dict[str, Any] = {}
    for name in ["ensemble", *[a.lower() for a in agents]]:
        agent = picked if name == "ensemble" else name.upper()
        account = {
            "initial_value": float(carry[name]["cash"]),
            "initial_shares": [int(s) for s in carry[name]["shares"]],
        }
        traj = trade(agent, quarter.trade_start, quarter.trade_end, **account)
        segment[name] = traj
        info = traj.final_info
        new_carry[name] = {"cash": float(info["cash"]), "shares": [int(np.rint(s)) for s in np.asarray(info["shares"])]}
    row: dict[str, Any] = {
        "seed": seed,
        "quarter": quarter.number,
        "train_start": day(quarter.train_start).date().isoformat(),
        "train_end": day(quarter.train_end).date().isoformat(),
        "val_start": day(quarter.val_start).date().isoformat(),
        "val_end": day(quarter.trade_start).date().isoformat(),
        "trade_start": day(quarter.trade_start).date().isoformat(),
        "trade_end": day(quarter.trade_end).date().isoformat(),
        **{f"sharpe_{a.lower()}": sharpes[a] for a in agents},
        "picked": picked.lower(),
        "turbulence_threshold": threshold,
        "turbulence_applied": bool(ens.turbulence),
    }
    return row, new_carry, segment, decision


class Ensemble(BarStrategy):
    """``strategy: ensemble``: the quarterly ensemble of Yang et al. (2020); see :func:`run_ensemble`."""

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
        """Run (or resume, ``resume=RUN_DIR``) the ensemble; ``options`` are :func:`run_ensemble`'s keywords."""
        result: RunResult = run_ensemble(config, runs_dir, n_seeds, progress=progress, on_stage=on_stage, **options)
        return result
