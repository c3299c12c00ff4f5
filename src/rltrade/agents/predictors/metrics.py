"""Out-of-sample scores of the predictors, each against the trivial forecasts it must beat; plain dicts.

A prediction made at bar t is scored against the same symbol's next bar in the given bars.
Restrict ``start .. end`` (the bars the predictions are made at, inclusive; a date covers its
whole day) to the test range.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from rltrade.agents.predictors.samples import DateLike, PredictorError, bound, instant, utc


def outcomes(predictions: pd.Series, bars: pd.DataFrame, start: DateLike | None, end: DateLike | None) -> pd.DataFrame:
    """Predictions made at bars in ``start .. end`` beside that bar's close and the symbol's next close.

    Returns
    -------
    pandas.DataFrame
        Columns ``close, next_close, prediction``, indexed by (symbol, timestamp); bars without a
        next bar (the last of each symbol) are left out.
    """
    frame = bars[["symbol", "timestamp", "close"]].copy()
    frame["timestamp"] = utc(frame["timestamp"])
    frame = frame.sort_values(["symbol", "timestamp"])
    frame["next_close"] = frame.groupby("symbol")["close"].shift(-1)
    table = frame.set_index(["symbol", "timestamp"]).join(predictions.rename("prediction"), how="inner")
    stamps = table.index.get_level_values("timestamp")
    keep = np.ones(len(table), dtype=bool)
    if start is not None:
        keep &= stamps >= instant(start)
    if end is not None:
        keep &= stamps < bound(end)
    table = table.loc[keep].dropna(subset=["next_close", "prediction"])
    if table.empty:
        raise PredictorError("predictor evaluation: no prediction in the range has a next bar to score it against")
    return table


def regression_metrics(
    forecasts: pd.Series, bars: pd.DataFrame, *, start: DateLike | None = None, end: DateLike | None = None
) -> dict[str, Any]:
    """RMSE and directional accuracy of next-close forecasts, against the naive last-close forecast.

    The direction of a forecast is right when ``sign(forecast − close_t) = sign(close_{t+1} −
    close_t)``, counted over the bars whose close changed (a forecast equal to the last close is
    never right). The naive forecast has no direction, so the reference accuracy is that of
    "always up": the share of those changes that are rises.

    Parameters
    ----------
    forecasts:
        :meth:`LSTMRegressor.predict` output: next-close forecasts indexed by (symbol, timestamp).
    bars:
        Canonical bars holding the bars the forecasts are made at and the next ones.
    start, end:
        Range of the bars the forecasts are made at (inclusive).

    Returns
    -------
    dict
        ``n`` forecasts scored; ``rmse`` and ``naive_rmse`` (price units); ``rmse_ratio`` (rmse /
        naive_rmse, < 1 beats naive); ``n_moves``, ``directional_accuracy``, ``always_up_accuracy``.
    """
    table = outcomes(forecasts, bars, start, end)
    close, nxt, forecast = (table[c].to_numpy(np.float64) for c in ("close", "next_close", "prediction"))
    rmse = float(np.sqrt(np.mean((forecast - nxt) ** 2)))
    naive = float(np.sqrt(np.mean((close - nxt) ** 2)))
    actual = np.sign(nxt - close)
    moved = actual != 0
    n_moves = int(moved.sum())
    hits = np.sign(forecast - close)[moved] == actual[moved]
    return {
        "n": len(table),
        "rmse": rmse,
        "naive_rmse": naive,
        "rmse_ratio": rmse / naive if naive > 0 else math.nan,
        "n_moves": n_moves,
        "directional_accuracy": float(hits.mean()) if n_moves else math.nan,
        "always_up_accuracy": float((actual[moved] > 0).mean()) if n_moves else math.nan,
    }


def classification_metrics(
    p_up: pd.Series,
    bars: pd.DataFrame,
    train_up_rate: float,
    *,
    start: DateLike | None = None,
    end: DateLike | None = None,
) -> dict[str, Any]:
    """Accuracy, log-loss and AUC of P(up) forecasts, against the majority class and "always up".

    The label of the forecast made at bar t is ``1{close_{t+1} > close_t}`` (as in training; an
    unchanged close is not up); the forecast says "up" when ``p > 0.5``. The majority class is the
    training set's (up when ``train_up_rate ≥ 0.5``). A hard 0/1 predictor has no finite log-loss,
    so the log-loss reference is the constant forecast ``p = train_up_rate`` (``base_rate_log_loss``);
    a constant forecast's AUC is 0.5.

    Parameters
    ----------
    p_up:
        :meth:`CNNClassifier.predict` output, indexed by (symbol, timestamp).
    bars:
        Canonical bars holding the bars the forecasts are made at and the next ones.
    train_up_rate:
        Share of up labels in the training samples (:attr:`CNNClassifier.train_up_rate`).
    start, end:
        Range of the bars the forecasts are made at (inclusive).

    Returns
    -------
    dict
        ``n, accuracy, log_loss, auc`` (NaN when the labels have one class), ``majority_class``,
        ``majority_accuracy``, ``always_up_accuracy``, ``base_rate_log_loss``.
    """
    from sklearn.metrics import log_loss, roc_auc_score  # imported here: scikit-learn is slow to import

    table = outcomes(p_up, bars, start, end)
    label = (table["next_close"] > table["close"]).to_numpy().astype(np.int64)
    p = table["prediction"].to_numpy(np.float64)
    majority = int(train_up_rate >= 0.5)
    base = float(np.clip(train_up_rate, 1e-6, 1 - 1e-6))
    return {
        "n": len(table),
        "accuracy": float(np.mean((p > 0.5) == label)),
        "log_loss": float(log_loss(label, p, labels=[0, 1])),
        "auc": float(roc_auc_score(label, p)) if 0 < label.sum() < len(label) else math.nan,
        "majority_class": majority,
        "majority_accuracy": float(np.mean(label == majority)),
        "always_up_accuracy": float(label.mean()),
        "base_rate_log_loss": float(log_loss(label, np.full(len(label), base), labels=[0, 1])),
    }
