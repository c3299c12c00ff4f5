"""What each strategy decides after the close of a day: its target weights, from data up to that day.

:func:`decisions` turns a run (:class:`~rltrade.signals.base.SignalRun`), the bars up to the
last of ``days`` and the days into signal rows (``run_id, as_of, symbol, weight, score, seed,
last_bar``), one per symbol and day, by the rule of the run's strategy:

``single``
    The run's policy (its first seed's model, :func:`rltrade.runs.load_policy`) trades the
    portfolio env from the test start; the action after day T's close becomes target weights by
    the env's own rule (:func:`decide`).
``direct_rl``
    The direct agent (``models/seed_<s>.npz``) gives its positions ``F_t`` in [-1, 1] from the
    test start on, each from the returns of bars up to t
    (:func:`rltrade.strategies.direct_rl.rl_positions`), and the long/short env of the backtest
    trades the weights ``F_t / N`` exactly: those are the signals (negative: short), ``score``
    is ``F_t``.
``combined``
    Seed 002's trading rules (:mod:`rltrade.backtest.rules`) run from the test start to T on the
    three signals of the saved models (:class:`RulesModels`), with the run's costs, timing and
    capital, as the backtest runs them; the target of a symbol after T's close is the position
    held at T's close changed by the orders decided at T (an exit: flat; an entry: its side and
    size), as a value weight at T's close (``shares · close_T / equity_T``); ``score`` is the
    direct agent's position. A stop hit inside the next bar is not known at T's close and is not
    part of the target.
``ensemble``
    The quarter's pick (the model the ensemble saved for the quarter whose trades T's decision
    belongs to; after the last quarter, the last pick) trades ``StockTradingEnv`` from the
    quarter's first bar with the account the ensemble carried into it; the share counts it
    targets after T's close are value weights at T's close
    (:func:`rltrade.strategies.ensemble_signals.ensemble_targets`).

The strategies' share-count decisions (combined, ensemble) are thus written as weights at the
close; the live loop trades a combined run through the rules themselves
(:mod:`rltrade.live.combined`), and the weights of any other run as ``w · μ · C / close``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rltrade.envs.factory import closed_range
from rltrade.signals.base import SIGNAL_COLUMNS, SignalError, SignalRun, current_pick

#: The strategies a signal can be computed for.
STRATEGIES: tuple[str, ...] = ("single", "direct_rl", "combined", "ensemble")


def decisions(run: SignalRun, bars: pd.DataFrame, days: list[dt.date], last_bar: pd.Timestamp | None = None) -> Any:
    """Signal rows (without ``created``) of the sorted trading ``days``; ``bars`` end with the last of them.

    ``last_bar``, when given, is the ``last_bar`` of every row (the last bar of the data the
    caller loaded, for a single day); else each row has the bar its decision observed.
    """
    strategy = run.config.strategy
    if strategy == "single":
        from rltrade.runs.policy import load_policy

        return decide(run, load_policy(run.run_dir, run.seed, run.config, run.manifest), bars, days, last_bar)
    if strategy == "direct_rl":
        frame = direct_decisions(run, bars, days)
    elif strategy == "combined":
        frame = rules_decisions(run, bars, days)
    elif strategy == "ensemble":
        frame = ensemble_decisions(run, bars, days)
    else:  # open_run refuses these first
        raise SignalError(f"{run.run_dir.name}: strategy {strategy!r} has no signals")
    return _rows(run, frame, days, last_bar)


def _rows(run: SignalRun, frame: pd.DataFrame, days: list[dt.date], last_bar: pd.Timestamp | None) -> pd.DataFrame:
    """``frame`` (as_of, symbol, weight, score, last_bar) as signal rows, every wanted day present."""
    seen = set(frame["as_of"])
    if seen != set(days):
        first = min(set(days) - seen)
        raise SignalError(
            f"{first}: {run.run_dir.name} does not decide on that day (before its first test bar, or a symbol "
            "has no bar then)"
        )
    out = frame.assign(run_id=run.run_id, seed=int(run.seed))
    if last_bar is not None:
        out["last_bar"] = last_bar
    out = out.sort_values(["as_of", "symbol"], kind="stable").reset_index(drop=True)
    return out[[c for c in SIGNAL_COLUMNS if c != "created"]]


def aligned_bars(bars: pd.DataFrame, symbols: tuple[str, ...]) -> pd.DataFrame:
    """The bars of the timestamps every symbol has (the aligned market the backtest's models read), sorted."""
    frame = bars[bars["symbol"].isin(symbols)].copy()
    frame["timestamp"] = pd.DatetimeIndex(frame["timestamp"]).tz_convert("UTC")
    counts = frame.groupby("timestamp")["symbol"].nunique()
    keep = counts.index[counts.to_numpy() == len(symbols)]
    frame = frame[frame["timestamp"].isin(keep)]
    columns = ["symbol", "timestamp", "open", "high", "low", "close", "volume"]
    return frame.sort_values(["timestamp", "symbol"], kind="stable")[columns].reset_index(drop=True)


def _test_start(run: SignalRun) -> pd.Timestamp:
    return pd.Timestamp(run.test_start, tz="UTC")


def _long_frame(
    matrix: np.ndarray, scores: np.ndarray, stamps: pd.DatetimeIndex, symbols: list[str], days: list[dt.date]
) -> pd.DataFrame:
    """Rows (as_of, symbol, weight, score, last_bar) of the ``[T, N]`` weights and scores at the wanted ``days``."""
    naive = pd.DatetimeIndex(stamps).tz_convert("UTC").tz_localize(None)
    dates = np.array([d.date() for d in naive])
    keep = np.isin(dates, np.array(days, dtype=object))
    n = len(symbols)
    k = int(keep.sum())
    return pd.DataFrame(
        {
            "as_of": np.repeat(dates[keep], n),
            "symbol": np.tile(np.asarray(symbols, dtype=object), k),
            "weight": matrix[keep].reshape(-1).astype(np.float64),
            "score": scores[keep].reshape(-1).astype(np.float64),
            "last_bar": np.repeat(naive[keep].to_numpy(), n),
        }
    )


# ----------------------------------------------------------------------------------- single
def portfolio_targets(env: Any, action: Any, held: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(weights, scores)`` of the N symbols for one action of a portfolio env, by the env's own rule.

    ``scores`` are the action's components of the symbols (logits, long/short numbers or raw
    weights). A "hold" (``action_mode: weights`` with an all-zero action: no trade) targets the
    weights held at the close, ``held``.
    """
    base = env.unwrapped
    a = np.asarray(action, dtype=np.float64).reshape(-1)
    return base.target_weights(a, held), a[: base.market.n_symbols].copy()


def decide(
    run: SignalRun, policy: Any, bars: pd.DataFrame, days: list[dt.date], last_bar: pd.Timestamp | None = None
) -> pd.DataFrame:
    """The policy's target weights after each of ``days`` (sorted trading days), trading from the test start.

    ``bars`` must end with the last of ``days``. Each row's ``last_bar`` is ``last_bar`` when given
    (the last bar of the data the caller loaded), else the bar of the observation it was decided on.
    Returns signal rows without ``created``.
    """
    wanted = set(days)
    closed, end = closed_range(bars, days[-1])
    env = policy.env(closed, None, end)
    obs, info = env.reset(seed=policy.seed)
    symbols = tuple(env.unwrapped.market.symbols)
    rows: list[dict[str, Any]] = []
    seen: set[dt.date] = set()
    while True:
        stamp = pd.Timestamp(info["timestamp"])
        day = stamp.date()
        if day > days[-1]:
            raise SignalError(f"lookahead guard: the episode reached {stamp}, after {days[-1]}")
        action = policy(obs)
        if day in wanted:
            seen.add(day)
            weights, scores = portfolio_targets(env, action, np.asarray(info["weights"])[: len(symbols)])
            rows += [
                {
                    "run_id": run.run_id,
                    "as_of": day,
                    "symbol": symbol,
                    "weight": float(weights[j]),
                    "score": float(scores[j]),
                    "seed": int(policy.seed),
                    "last_bar": stamp if last_bar is None else last_bar,
                }
                for j, symbol in enumerate(symbols)
            ]
        if day == days[-1]:
            break
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break
    if seen != wanted:
        first = min(wanted - seen)
        raise SignalError(
            f"{first}: the policy of {run.run_dir.name} does not trade that day (its first test bar is later, "
            "or a symbol has no bar then)"
        )
    return pd.DataFrame(rows, columns=[c for c in SIGNAL_COLUMNS if c != "created"])


# ----------------------------------------------------------------------------------- direct_rl
def direct_decisions(run: SignalRun, bars: pd.DataFrame, days: list[dt.date]) -> pd.DataFrame:
    """The direct agent's long/short weights ``F_t / N`` after each of ``days`` (module docstring)."""
    from rltrade.agents.direct import DirectRLKind
    from rltrade.strategies.direct_rl import close_frame, rl_positions

    kind = DirectRLKind()
    path = run.run_dir / "models" / kind.model_file(run.seed)
    if not path.is_file():
        raise SignalError(f"{run.run_dir.name}: no direct agent at {path} (is the run finished?)")
    agent = kind.load(run.config, path)
    close = close_frame(aligned_bars(bars, run.symbols))
    positions = rl_positions(agent, close, _test_start(run))
    f = positions.to_numpy(dtype=np.float64)
    return _long_frame(f / agent.n_assets, f, pd.DatetimeIndex(positions.index), list(close.columns), days)


# ----------------------------------------------------------------------------------- combined
class RulesModels:
    """The saved models of a combined run's first seed and its trading rules; its signals from data up to a day."""

    def __init__(self, run: SignalRun) -> None:
        from rltrade.agents.direct import DirectRLKind
        from rltrade.agents.predictors import CNNClassifier, LSTMRegressor
        from rltrade.agents.predictors.models import load_predictor
        from rltrade.backtest.rules import TradingRules

        models = Path(run.run_dir) / "models"
        seed = run.seed
        paths = [models / f"lstm_seed_{seed}.pt", models / f"cnn_seed_{seed}.pt", models / f"seed_{seed}.npz"]
        lacking = [p.name for p in paths if not p.is_file()]
        if lacking:
            raise SignalError(f"{run.run_dir.name}: models/ lacks {', '.join(lacking)} (is the run finished?)")
        lstm, cnn = load_predictor(paths[0]), load_predictor(paths[1])
        if not isinstance(lstm, LSTMRegressor) or not isinstance(cnn, CNNClassifier):
            raise SignalError(f"{run.run_dir.name}: {paths[0].name} or {paths[1].name} is not the predictor it names")
        self.run = run
        self.lstm = lstm
        self.cnn = cnn
        self.agent = DirectRLKind().load(run.config, paths[2])
        rules = (run.manifest.get("combined") or {}).get("rules") or run.config.combined.rules.model_dump()
        self.rules = TradingRules.from_dict(rules)
        self._frame: pd.DataFrame | None = None

    def compute(self, bars: pd.DataFrame) -> pd.DataFrame:
        """The three signals of every bar of ``bars`` (on the run's price basis) from the run's test start."""
        from rltrade.strategies.combined import signals_frame

        common = aligned_bars(bars, self.run.symbols)
        self._frame = signals_frame(self.lstm, self.cnn, self.agent, common, _test_start(self.run))
        return self._frame

    def at(self, day: dt.date) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(lstm_up, p_up, rl_signal)`` of the symbols (sorted) at the bar of ``day`` of the last :meth:`compute`."""
        from rltrade.strategies.combined import to_signals

        if self._frame is None:
            raise RuntimeError("RulesModels.at before compute")
        stamps = pd.DatetimeIndex(self._frame.index.get_level_values("timestamp"))
        part = self._frame.loc[np.asarray(stamps.normalize() == pd.Timestamp(day, tz="UTC"))]
        if part.empty:
            raise KeyError(day)
        signals = to_signals(part, len(self.run.symbols))
        return np.asarray(signals.lstm_up)[-1], np.asarray(signals.p_up)[-1], np.asarray(signals.rl_signal)[-1]


def rules_decisions(run: SignalRun, bars: pd.DataFrame, days: list[dt.date]) -> pd.DataFrame:
    """The combined run's target positions after each of ``days`` as value weights at the close (module docstring)."""
    from rltrade.backtest.rules import PriceBars, sessions_of, simulate
    from rltrade.envs.factory import make_cost
    from rltrade.strategies.combined import to_signals

    models = RulesModels(run)
    frame = models.compute(bars)
    symbols = list(run.symbols)
    n = len(symbols)
    stamps = pd.DatetimeIndex(frame.index.get_level_values("timestamp")[::n])

    def matrix(column: str) -> np.ndarray:
        return frame[column].to_numpy(dtype=np.float64).reshape(-1, n)

    prices = PriceBars(
        close=matrix("close"),
        open=_field(bars, "open", stamps, symbols),
        high=_field(bars, "high", stamps, symbols),
        low=_field(bars, "low", stamps, symbols),
        timestamps=stamps,
        symbols=tuple(symbols),
    )
    outcome = simulate(
        prices,
        to_signals(frame, n),
        models.rules,
        cost=make_cost(run.config.env.cost),
        timing=run.timing,
        sessions=sessions_of(prices.timestamps),
        initial_value=run.config.env.initial_value,
    )
    target = np.array(outcome.holdings, dtype=np.float64)
    orders = outcome.orders
    for bar, symbol, action, side, shares in zip(
        orders["bar"], orders["symbol"], orders["action"], orders["side"], orders["shares"], strict=True
    ):
        j = symbols.index(symbol)
        target[int(bar), j] = 0.0 if action == "exit" else float(side) * float(shares)
    with np.errstate(divide="ignore", invalid="ignore"):
        weights = np.where(outcome.values[:, None] > 0, target * prices.close / outcome.values[:, None], 0.0)
    return _long_frame(weights, matrix("rl_signal"), stamps, symbols, days)


def _field(bars: pd.DataFrame, name: str, stamps: pd.DatetimeIndex, symbols: list[str]) -> np.ndarray | None:
    """``name`` prices of ``bars`` at ``stamps`` × ``symbols`` (None when the bars lack the column)."""
    if name not in bars.columns:
        return None
    frame = bars.assign(timestamp=pd.DatetimeIndex(bars["timestamp"]).tz_convert("UTC"))
    table = frame.pivot_table(index="timestamp", columns="symbol", values=name, aggfunc="last", dropna=False)
    return table.reindex(index=stamps, columns=symbols).to_numpy(dtype=np.float64)


# ----------------------------------------------------------------------------------- ensemble
def ensemble_decisions(run: SignalRun, bars: pd.DataFrame, days: list[dt.date]) -> pd.DataFrame:
    """The ensemble's current pick's targets after each of ``days`` (module docstring)."""
    from rltrade.errors import RLTradeError

    if not (run.run_dir / "models" / f"seed_{run.seed}").is_dir():
        raise SignalError(
            f"{run.run_dir.name} is an ensemble run{current_pick(run.run_dir)} that keeps no quarterly models "
            "(written before they were saved): re-run it with this version to compute its signals"
        )
    from rltrade.strategies.ensemble_signals import ensemble_targets

    try:
        frame = ensemble_targets(run.run_dir, run.config, run.manifest, run.seed, bars, days)
    except SignalError:
        raise
    except RLTradeError as exc:
        raise SignalError(str(exc)) from None
    return frame[["as_of", "symbol", "weight", "score", "last_bar"]]
