"""Seed 002's combined strategy (``strategy: combined``): LSTM, CNN and direct RL under the trading rules.

Per seed:

1. the LSTM regressor (next close) and the 1-D CNN classifier (P(up)) of
   :mod:`rltrade.agents.predictors` are fitted, seeded, on the training range, with the last
   ``agent.validation_bars`` bars of it as their chronological validation tail (early stopping);
   the direct agent (:mod:`rltrade.strategies.direct_rl`) trains on the same split;
2. for every test bar t the three signals are made from the bars up to t (:func:`signals_frame`):
   the LSTM's forecast made at t (up when it is above ``close_t``), the CNN's P(up) made at t and
   the direct agent's position ``F_t``;
3. :func:`rltrade.backtest.rules.simulate` trades them with ``TradingRules(**combined.rules)``,
   the config's cost model, fill timing and capital, and the daily stop reset at each session
   (UTC calendar days: one bar per session on daily data, a day of bars on intraday data);
4. the trajectory is scored against the baselines on the same dates and costs
   (:func:`rltrade.runs.evaluate.evaluate`).

Besides the usual files the run directory holds ``models/seed_<s>.npz`` (direct agent),
``models/lstm_seed_<s>.pt``, ``models/cnn_seed_<s>.pt``, ``predictors.json`` (the predictors'
out-of-sample scores on the test range against their naive references, per seed and over seeds)
and ``events.csv`` (every entry, exit and halt of every seed, at its real fill price, with its
reason); ``manifest.json`` records the rules, the exits per reason (``combined.exit_counts``) and
which prices the stops were checked on (``combined.stops_checked_on``: the bars' high/low when
the data have them, else the close).

The predictors need complete OHLCV bars (close-only sources are refused when they are fitted);
the direct agent is trained on Moody & Saffell's close-to-close convention while the rules fill
with the run's timing (see :mod:`rltrade.strategies.direct_rl`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rltrade.agents.direct import DirectRLAgent, DirectRLKind
from rltrade.agents.predictors import (
    INPUT_COLUMNS,
    CNNClassifier,
    LSTMRegressor,
    WindowModel,
    classification_metrics,
    regression_metrics,
)
from rltrade.agents.predictors.samples import SMA_INPUTS, utc
from rltrade.backtest.rules import PriceBars, Signals, TradingRules, sessions_of, simulate
from rltrade.config import PredictorConfig, RunConfig
from rltrade.envs.factory import make_env
from rltrade.envs.market import Market
from rltrade.report.combined import EVENTS_FILE, PREDICTORS_FILE
from rltrade.runs.evaluate import RunResult, column_name
from rltrade.shared.files import is_intraday, write_csv, write_json
from rltrade.strategies.direct_rl import Rows, SeedStrategy, Setup, close_frame, fit_direct, rl_positions

GROUP = "combined"
"""The strategy's column in ``equity.csv`` (``combined_seed<s>`` for the later seeds)."""
SESSIONS = "UTC calendar days"
"""What a session of the daily stop is (:func:`rltrade.backtest.rules.sessions_of` in UTC)."""

# The predictors' inputs drop each symbol's first bars until the longest SMA has a value.
SMA_WARMUP = max(int(name.removeprefix("sma_")) for name in SMA_INPUTS) - 1


# --------------------------------------------------------------------------------------------
# Models and signals
# --------------------------------------------------------------------------------------------


def predictor_settings(section: PredictorConfig, size_name: str, seed: int) -> dict[str, Any]:
    """The keyword arguments of a predictor from its config section (``size`` is ``size_name``)."""
    settings = section.model_dump()
    settings[size_name] = settings.pop("size")
    return {**settings, "seed": seed}


def fit_predictors(
    config: RunConfig, bars: pd.DataFrame, train_end: pd.Timestamp, val_end: pd.Timestamp, seed: int
) -> tuple[LSTMRegressor, CNNClassifier, dict[str, Any]]:
    """The LSTM and the CNN of ``config.combined`` fitted with ``seed`` (validation: after ``train_end``)."""
    section = config.combined
    lstm = LSTMRegressor(**predictor_settings(section.lstm, "hidden", seed))
    cnn = CNNClassifier(**predictor_settings(section.cnn, "channels", seed))
    records = {}
    for model in (lstm, cnn):
        t0 = time.perf_counter()
        history = model.fit(bars, train_end, val_end)
        records[model.kind] = {
            "train_seconds": round(time.perf_counter() - t0, 3),
            "best_epoch": history.best_epoch,
            "epochs_run": len(history.train_loss),
            "stopped_early": history.stopped_early,
            "n_train": history.n_train,
            "n_val": history.n_val,
            "samples_per_second": round(history.n_train * len(history.train_loss) / (time.perf_counter() - t0)),
        }
    return lstm, cnn, records


def _predictions(model: WindowModel, bars: pd.DataFrame, close: pd.DataFrame, first: int) -> pd.Series:
    """``model``'s predictions made at the bars of ``close`` from row ``first``, as ``(timestamp, symbol)``.

    Only the bars its first prediction needs are passed before row ``first`` (the SMA warm-up,
    then one window): a prediction at bar t depends on bars ``≤ t`` alone, however many precede.
    """
    lo = max(first - SMA_WARMUP - (model.settings.window - 1), 0)
    recent = bars.loc[np.asarray(utc(bars["timestamp"]) >= close.index[lo])]
    predicted = model.predict(recent)
    return predicted.swaplevel().rename_axis(["timestamp", "symbol"])


def signals_frame(
    lstm: LSTMRegressor, cnn: CNNClassifier, agent: DirectRLAgent, bars: pd.DataFrame, start: Any
) -> pd.DataFrame:
    """The three signals of every symbol at every bar of ``bars`` from ``start`` on, each made at that bar.

    Parameters
    ----------
    lstm, cnn, agent:
        The fitted models (over the symbols of ``bars``).
    bars:
        Canonical OHLCV bars, every symbol at every timestamp, with the history the models need
        before ``start`` (SMA warm-up and window; the agent's lookback).
    start:
        The first bar to signal at.

    Returns
    -------
    pandas.DataFrame
        Indexed by (UTC timestamp, symbol), sorted: ``close`` (of the bar), ``forecast_close``
        (the LSTM's forecast of the next close), ``p_up`` (the CNN's), ``rl_signal`` (the agent's
        position in [-1, 1]); NaN where a model has no output yet.
    """
    close = close_frame(bars)
    rl = rl_positions(agent, close, start)
    first = len(close) - len(rl)
    index = pd.MultiIndex.from_product([rl.index, close.columns], names=["timestamp", "symbol"])
    frame = pd.DataFrame(index=index)
    frame["close"] = close.to_numpy()[first:].reshape(-1)
    frame["forecast_close"] = _predictions(lstm, bars, close, first).reindex(index).to_numpy()
    frame["p_up"] = _predictions(cnn, bars, close, first).reindex(index).to_numpy()
    frame["rl_signal"] = rl.to_numpy().reshape(-1)
    return frame


def to_signals(frame: pd.DataFrame, n_symbols: int) -> Signals:
    """:class:`~rltrade.backtest.rules.Signals` ``[T, N]`` from :func:`signals_frame` (LSTM up: forecast > close)."""

    def matrix(column: str) -> np.ndarray:
        return frame[column].to_numpy(dtype=np.float64).reshape(-1, n_symbols)

    return Signals.from_forecast(matrix("forecast_close"), matrix("close"), matrix("p_up"), matrix("rl_signal"))


def predictor_scores(frame: pd.DataFrame, bars: pd.DataFrame, train_up_rate: float) -> dict[str, dict[str, Any]]:
    """Out-of-sample scores of the forecasts in ``frame`` (made at its bars) against the next bars of ``bars``.

    ``lstm``: :func:`~rltrade.agents.predictors.regression_metrics` (RMSE against the naive
    last-close forecast, directional accuracy against always-up); ``cnn``:
    :func:`~rltrade.agents.predictors.classification_metrics` (accuracy, log-loss, AUC against the
    majority class and always-up). The last bar of ``bars`` has no next bar and is not scored.
    """
    stamps = frame.index.get_level_values("timestamp")
    start, end = stamps.min(), stamps.max()

    def series(column: str) -> pd.Series:
        return frame[column].swaplevel().sort_index()

    return {
        "lstm": regression_metrics(series("forecast_close"), bars, start=start, end=end),
        "cnn": classification_metrics(series("p_up"), bars, train_up_rate, start=start, end=end),
    }


def over_seeds(per_seed: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Mean and sample std (ddof=1; NaN for one seed) of every numeric score, per predictor."""
    out: dict[str, Any] = {"mean": {}, "std": {}}
    for model in ("lstm", "cnn"):
        keys = [k for k, v in next(iter(per_seed.values()))[model].items() if isinstance(v, int | float)]
        table = np.array([[float(scores[model][k]) for k in keys] for scores in per_seed.values()])
        std = table.std(axis=0, ddof=1) if len(table) > 1 else np.full(len(keys), math.nan)
        out["mean"][model] = dict(zip(keys, table.mean(axis=0).tolist(), strict=True))
        out["std"][model] = dict(zip(keys, std.tolist(), strict=True))
    return out


# --------------------------------------------------------------------------------------------
# The strategy
# --------------------------------------------------------------------------------------------


class Combined(SeedStrategy):
    """``strategy: combined``: seed 002's rules over the LSTM, the CNN and the direct agent, per seed."""

    group = GROUP

    def test_env(self, config: RunConfig, bars: pd.DataFrame, market: Market | None = None) -> Any:
        """The config's env over the test range: the baselines' and the random agent's, whose market, cost
        model and timing the rules trade (``market`` is not reused: not every env type takes one)."""
        return make_env(config, bars, "test")

    def trade_seed(
        self, setup: Setup, seed: int, models: Path, stage: Callable[[str], None], progress: bool
    ) -> tuple[Any, dict[str, Any]]:
        """Fit the three models, save them, trade their signals by the rules; score the predictors."""
        config, rows, close = setup.config, setup.rows, setup.close
        stage(f"training the direct agent, seed {seed}")
        agent, record = fit_direct(config, setup.windows, seed, progress=progress)
        stage(f"fitting the LSTM and the CNN, seed {seed}")
        fit_bars = _training_bars(setup.traded, close, rows)
        lstm, cnn, fits = fit_predictors(
            config, fit_bars, close.index[rows.val_first - 1], close.index[rows.train_last], seed
        )
        agent.save(models / DirectRLKind().model_file(seed))
        lstm.save(models / f"lstm_seed_{seed}.pt")
        cnn.save(models / f"cnn_seed_{seed}.pt")
        stage(f"trading the rules, seed {seed}")
        frame = signals_frame(lstm, cnn, agent, setup.traded, setup.start)
        prices = PriceBars.from_market(setup.market)
        assert prices.timestamps is not None
        outcome = simulate(
            prices,
            to_signals(frame, len(prices.symbols)),
            TradingRules(**config.combined.rules.model_dump()),
            cost=setup.env.cost_model,
            timing=setup.env.timing,
            sessions=sessions_of(prices.timestamps),
            initial_value=config.env.initial_value,
        )
        record = {
            "training": {**record, **fits},
            "scores": predictor_scores(frame, setup.traded, cnn.train_up_rate),
            "exit_counts": outcome.exit_counts(),
            "stops_checked_on": outcome.stops_checked_on,
            "events": outcome.events.assign(seed=seed),
        }
        return outcome.to_trajectory(), record

    def finish(self, setup: Setup, work: Path, result: RunResult, records: dict[int, Any]) -> dict[str, Any]:
        """``predictors.json``, ``events.csv``; the rules, the exits and the stops' prices for the manifest."""
        first = min(records)
        scores = {str(seed): r["scores"] for seed, r in records.items()}
        test = setup.rows.stamps(setup.market.times)["test"]
        write_json(work / PREDICTORS_FILE, {"test": test, "seeds": scores, **over_seeds(scores)})
        events = [r["events"].assign(strategy=column_name(GROUP, seed, first)) for seed, r in records.items()]
        intraday = is_intraday(pd.DatetimeIndex(setup.market.times))
        write_csv(work / EVENTS_FILE, pd.concat(events, ignore_index=True), index=False, intraday=intraday)
        return {
            "env": None,  # the rules trade, not an env; the baselines trade config.env
            "baseline_env": setup.config.env.type,
            "features": list(INPUT_COLUMNS),
            "direct": {"seeds": {str(seed): r["training"] for seed, r in records.items()}},
            "combined": {
                "rules": setup.config.combined.rules.model_dump(),
                "stops_checked_on": records[first]["stops_checked_on"],
                "sessions": SESSIONS,
                "exit_counts": {str(seed): r["exit_counts"] for seed, r in records.items()},
            },
        }


def _training_bars(traded: pd.DataFrame, close: pd.DataFrame, rows: Rows) -> pd.DataFrame:
    """The bars the predictors fit on: the training range and the SMA warm-up before it (nothing later)."""
    stamps = utc(traded["timestamp"])
    lo = close.index[max(rows.train_first - SMA_WARMUP, 0)]
    keep = (stamps >= lo) & (stamps <= close.index[rows.train_last])
    return traded.loc[np.asarray(keep)]
