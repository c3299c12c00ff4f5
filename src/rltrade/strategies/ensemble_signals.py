"""The ensemble's decisions for any trading day: the target holdings its pick chooses after the close.

A run of :mod:`rltrade.strategies.ensemble` keeps, for every seed and finished quarter,

- the picked agent's model file, ``RUN_DIR/models/seed_<s>/q<NNN>_<algo>.<ext>`` (``.zip`` for
  SB3 agents), written atomically before the quarter's state json;
- in ``RUN_DIR/state/seed_<s>/q<NNN>.json`` (``version`` 2), under ``decision``: the model
  file's name (``model``), the feature scaler of the quarter (``scaler_data``), the turbulence
  threshold applied to the env (``env_threshold``, None with ``ensemble.turbulence`` off) and
  the ensemble's account at the quarter's start (``start_carry``: cash and shares).

That is what :func:`ensemble_targets` needs to rebuild any decision of the ensemble.

Which agent decides day T. A quarter's first decision is at its ``trade_start`` bar (the
previous quarter's last bar); the decisions at bars ``trade_start .. trade_end - 1`` are its
own. Its picked model, with its scaler and threshold, starts from the ensemble's account at the
quarter's start and trades from ``trade_start`` to T exactly as the backtest did (the same
``StockTradingEnv`` window, ``ScaledObservation`` and deterministic ``predict``); the action
chosen at T's observation is the decision. Days from the last finished quarter's ``trade_end``
on (the run's test end, or weeks later in a live loop) are decided by the last quarter's pick,
trading on from that quarter's start: the "current pick", older than a quarter, which the
function says once in a warning (retrain with ``rltrade run --resume`` or a new run).

The target. The action is turned into share counts by the env's own rule
(:meth:`~rltrade.envs.stock_trading.StockTradingEnv.target_shares`: ``trunc(a · hmax)``, sells
first and at most the shares held, buys within the cash including costs, everything sold when
turbulent), priced at T's close, the last price known after the close. The row of a symbol
holds its value weight at T's close, ``target_shares · close_T / value_T`` (``value_T`` = cash +
shares · close_T, before the trade), and ``score``, the raw action component. With a
``next_close`` or ``next_open`` timing the backtest fills that order at T+1's price, so a buy the
cash pays at T's close may be cut at the fill (the test of this module allows exactly that).

No lookahead. The bars must end with the last asked day (checked): the env's range is closed by
a copy of bar T dated a day later, which the loop never steps into (checked), so no price after
T is ever read; every observation depends on the bars up to its own bar only.

Runs written before the models were kept (state version 1) have nothing to rebuild:
:class:`NoQuarterlyModelsError` says so in one line.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rltrade.config import RunConfig
from rltrade.envs.factory import closed_range
from rltrade.errors import RLTradeError
from rltrade.strategies.ensemble import STATE_VERSION, _load_model, _window_env

log = logging.getLogger(__name__)

#: The columns of :func:`ensemble_targets`' rows.
TARGET_COLUMNS = ("as_of", "symbol", "weight", "score", "last_bar")


class EnsembleSignalError(RLTradeError):
    """The ensemble's decisions cannot be computed for these days or this run; the message says why."""


class NoQuarterlyModelsError(EnsembleSignalError):
    """The run keeps no model of a quarter that decides an asked day (written before the models were kept)."""


@dataclass(frozen=True)
class QuarterState:
    """A finished quarter of one seed, as ``state/seed_<s>/q<NNN>.json`` records it.

    ``decision`` is None for a quarter written before the models were kept (state version 1).
    """

    number: int
    trade_start: dt.date
    trade_end: dt.date
    picked: str
    symbols: tuple[str, ...]
    version: int
    decision: dict[str, Any] | None


def finished_quarters(run_dir: str | Path, seed: int) -> list[QuarterState]:
    """The finished quarters of ``seed`` in order (``q000``, ``q001``, ... up to the first missing one)."""
    folder = Path(run_dir) / "state" / f"seed_{seed}"
    out: list[QuarterState] = []
    while (path := folder / f"q{len(out):03d}.json").exists():
        meta = json.loads(path.read_text())
        version = int(meta.get("version", 1))
        if version > STATE_VERSION:
            raise EnsembleSignalError(
                f"{path} has state version {version}, newer than this rltrade's {STATE_VERSION}; upgrade rltrade"
            )
        row = meta["row"]
        out.append(
            QuarterState(
                number=len(out),
                trade_start=dt.date.fromisoformat(row["trade_start"]),
                trade_end=dt.date.fromisoformat(row["trade_end"]),
                picked=str(row["picked"]),
                symbols=tuple(meta["symbols"]),
                version=version,
                decision=meta.get("decision"),
            )
        )
    return out


def _model_file(run_dir: Path, seed: int, quarter: QuarterState) -> Path:
    """The quarter's model file; :class:`NoQuarterlyModelsError` (one line) when the run does not keep it."""
    name = quarter.decision.get("model") if quarter.decision else None
    path = run_dir / "models" / f"seed_{seed}" / str(name)
    if name is None:
        detail = f"state version {quarter.version}, written before the picked agents were saved"
    elif not path.is_file():
        detail = f"{path.relative_to(run_dir)} is missing"
    else:
        return path
    raise NoQuarterlyModelsError(
        f"{run_dir.name} keeps no quarterly models (seed {seed}, quarter {quarter.number}: {detail}), so the "
        "ensemble's pick cannot be rebuilt; re-run it with this version of rltrade (`rltrade run CONFIG`)"
    )


def _utc(stamps: Any) -> pd.DatetimeIndex:
    index = pd.DatetimeIndex(stamps)
    return index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")


def _check_inputs(bars: pd.DataFrame, days: list[dt.date], symbols: tuple[str, ...]) -> pd.DataFrame:
    """The bars of ``symbols``; :class:`EnsembleSignalError` for unsorted days or bars after the last day."""
    if list(days) != sorted(set(days)):
        raise EnsembleSignalError("days must be sorted trading days without repeats")
    missing = sorted(set(symbols) - set(bars["symbol"].unique()))
    if missing:
        raise EnsembleSignalError(f"the bars have no {', '.join(missing)} (the run trades {', '.join(symbols)})")
    part = bars.loc[bars["symbol"].isin(symbols).to_numpy()].reset_index(drop=True)
    part.attrs = dict(bars.attrs)
    later = _utc(part["timestamp"]).normalize() > pd.Timestamp(days[-1], tz="UTC")
    if later.any():  # the caller's bargain; checked so a decision can never see a later bar
        raise EnsembleSignalError(
            f"lookahead guard: the bars reach {part['timestamp'].max()}, after the last day asked ({days[-1]})"
        )
    return part


def ensemble_targets(
    run_dir: Path, config: RunConfig, manifest: dict[str, Any], seed: int, bars: pd.DataFrame, days: list[dt.date]
) -> pd.DataFrame:
    """The target holdings the ensemble's pick of ``seed`` chooses after the close of each of ``days``.

    Rule (the module docstring has the details): day T is decided by the quarter whose trade
    window holds the decision (bars ``trade_start .. trade_end - 1``; after the last finished
    quarter, its pick, with a warning). Its picked model, feature scaler and turbulence threshold,
    from the ensemble's cash and shares at the quarter's start, trade from ``trade_start`` to T
    as in the backtest; the action at T's observation is turned into target shares by the env's
    rule (:meth:`~rltrade.envs.stock_trading.StockTradingEnv.target_shares`, priced at T's close).

    Parameters
    ----------
    run_dir:
        An ensemble run directory (``rltrade run`` of an ensemble config).
    config:
        The run's config (its ``config.yaml``).
    manifest:
        The run's manifest (its symbols, in the env's order).
    seed:
        The seed whose ensemble decides (one of the manifest's seeds).
    bars:
        Canonical bars of the run's symbols up to and including ``days[-1]``, none later (checked),
        prices on the run's basis (as :func:`rltrade.signals.compute.load_until` gives them),
        with the history before the test range that the features and the turbulence index need.
    days:
        Sorted trading days (every symbol has a bar) from the run's first decision day on.

    Returns
    -------
    pandas.DataFrame
        One row per (day, symbol): ``as_of`` (date), ``symbol``, ``weight`` (``target_shares ·
        close_T / value_T``, value at T's close before the trade), ``score`` (the raw action
        component), ``last_bar`` (tz-naive UTC timestamp of the bar observed: T's).

    Raises
    ------
    NoQuarterlyModelsError
        The run keeps no model of a quarter that decides one of ``days`` (written before this
        version): re-run it.
    EnsembleSignalError
        No finished quarter, a day before the first decision or not a trading day of ``bars``, or
        bars after the last day.
    """
    from rltrade.features.normalize import normalizer_from_dict

    run_dir = Path(run_dir)
    if not days:
        return pd.DataFrame(columns=list(TARGET_COLUMNS))
    if manifest.get("strategy", "ensemble") != "ensemble":
        raise EnsembleSignalError(f"{run_dir.name} is not an ensemble run (strategy {manifest.get('strategy')!r})")
    quarters = finished_quarters(run_dir, seed)
    if not quarters:
        raise EnsembleSignalError(f"{run_dir.name} has no finished quarter of seed {seed} (state/seed_{seed}/)")
    symbols = tuple(str(s) for s in manifest.get("symbols") or quarters[0].symbols)
    if symbols != quarters[0].symbols:
        raise EnsembleSignalError(f"the manifest's symbols {symbols} are not the state's {quarters[0].symbols}")
    bars = _check_inputs(bars, days, symbols)
    first = quarters[0].trade_start
    if days[0] < first:
        raise EnsembleSignalError(
            f"{days[0]} is before the first decision of {run_dir.name} ({first}, its first test bar): the "
            "ensemble decides out of sample only"
        )
    # the quarter deciding each day: the last one starting on or before it
    starts = [q.trade_start for q in quarters]
    deciding: dict[int, list[dt.date]] = {}
    for day in days:
        number = int(np.searchsorted(np.array(starts, dtype="datetime64[D]"), np.datetime64(day, "D"), "right")) - 1
        deciding.setdefault(number, []).append(day)
    last = quarters[-1]
    stale = [d for d in deciding.get(last.number, []) if d >= last.trade_end]
    for number in deciding:
        _model_file(run_dir, seed, quarters[number])  # every model is there before any work
    if stale:
        log.warning(
            "%s seed %d: %s%s is after the last quarter (its trades ended %s): the last pick (%s, quarter %d, "
            "deciding from %s) keeps deciding and is older than a quarter; retrain with `rltrade run --resume` "
            "or a new run",
            run_dir.name,
            seed,
            stale[0],
            f"..{stale[-1]}" if len(stale) > 1 else "",
            last.trade_end,
            last.picked,
            last.number,
            last.trade_start,
        )

    closed, end = closed_range(bars, days[-1])
    template = _window_env(config, closed, None, end, turbulence_threshold=np.inf)  # features, turbulence: once
    market = template.market
    if tuple(market.symbols) != symbols:
        raise EnsembleSignalError(f"the env trades {tuple(market.symbols)}, the run {symbols}")
    index = {day: i for i, day in enumerate(pd.DatetimeIndex(market.times).date)}
    absent = [d for d in days if d not in index or index[d] >= market.n_times - 1]
    if absent:
        raise EnsembleSignalError(f"{absent[0]} is not a trading day of the bars ({', '.join(symbols)})")

    rows: list[dict[str, Any]] = []
    for number, wanted in sorted(deciding.items()):
        quarter = quarters[number]
        decision = quarter.decision or {}
        if quarter.trade_start not in index:
            raise EnsembleSignalError(f"the bars have no bar on {quarter.trade_start}, quarter {number}'s first day")
        model = _load_model(quarter.picked, _model_file(run_dir, seed, quarter).read_bytes(), config)
        carry = decision["start_carry"]
        env: Any = _window_env(
            config,
            closed,
            pd.Timestamp(market.times[index[quarter.trade_start]]),
            end,
            market=market,
            turbulence_threshold=decision["env_threshold"],
            initial_value=float(carry["cash"]),
            initial_shares=[int(s) for s in carry["shares"]],
        )
        if decision.get("scaler_data") is not None:
            from rltrade.agents.scaling import ScaledObservation

            env = ScaledObservation(env, normalizer_from_dict(decision["scaler_data"]))
        base = env.unwrapped
        rows += _trade_to(env, base, model, seed, set(wanted), wanted[-1], symbols)
    return pd.DataFrame(rows, columns=list(TARGET_COLUMNS))


def _trade_to(
    env: Any, base: Any, model: Any, seed: int, wanted: set[dt.date], until: dt.date, symbols: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Trade ``env`` with ``model`` up to the observation of ``until``; the target rows of the ``wanted`` days."""
    rows: list[dict[str, Any]] = []
    obs, info = env.reset(seed=seed)
    while True:
        stamp = pd.Timestamp(info["timestamp"])
        day = stamp.date()
        if day > until:
            raise EnsembleSignalError(f"lookahead guard: the episode reached {stamp}, after {until}")
        action = model.predict(obs)
        if day in wanted:
            target = base.target_shares(action)
            close = base.market.close[int(info["bar"])]
            value = float(info["portfolio_value"])
            weights = target * close / value if value > 0.0 else np.zeros(len(symbols))
            score = np.asarray(action, dtype=np.float64).reshape(-1)
            rows += [
                {
                    "as_of": day,
                    "symbol": symbol,
                    "weight": float(weights[j]),
                    "score": float(score[j]),
                    "last_bar": stamp,
                }
                for j, symbol in enumerate(symbols)
            ]
        if day == until:
            return rows
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            raise EnsembleSignalError(f"the episode ended at {info['timestamp']}, before {until}")
