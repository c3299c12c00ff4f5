"""Seed 002's two predictors: an LSTM forecasting the next close and a 1-D CNN giving P(next close > close).

Quick use::

    from rltrade.agents.predictors import CNNClassifier, LSTMRegressor

    lstm = LSTMRegressor(window=30, hidden=32, seed=0)
    lstm.fit(bars, train_end="2019-12-31", val_end="2021-12-31")
    forecasts = lstm.predict(bars)                 # Series: next-close forecast per (symbol, timestamp)
    scores = lstm.evaluate(bars, start="2022-01-01")  # RMSE, directional accuracy vs naive / always up

Inputs (:mod:`.samples`)
    :func:`predictor_inputs`: seed 002's 8 inputs per bar, ``open, high, low, close, volume`` and
    the SMA 20, 50 and 200 of the close (the SMA at bar t uses the closes of bars ≤ t). A symbol's
    first 199 bars have no SMA 200: they are dropped, never back-filled.
Samples
    Sample t of a symbol is the window of its inputs at bars ``t − L + 1 .. t`` (``L = window``,
    counted in bars, so daily and intraday bars work alike); its target is about bar t + 1: the
    next close (LSTM) or ``1{close_{t+1} > close_t}`` (CNN). Windows never cross symbols.
Split
    A sample trains when its target bar is ≤ ``train_end`` and validates when its whole window is
    after ``train_end`` and its target bar ≤ ``val_end`` (:func:`chronological_split`); the
    samples straddling the boundary are in neither, and bars after ``val_end`` are never read by
    ``fit``. Training samples are shuffled among themselves (seeded); validation scores each epoch
    for early stopping (the best epoch's weights are kept).
Scaling
    Each input column is z-scored (``scaler="zscore"``) or min-max scaled (``"minmax"``) with
    statistics of the training bars only. ``scaling="symbol"`` (default) fits one set of
    statistics per symbol, so symbols at different price levels land in the same range and one
    network can learn from all of them (it then predicts only those symbols); ``"pooled"`` fits
    one set over all symbols.
LSTM target
    The next log return, standardised with the training targets' mean and std, converted back to
    a price, ``close_t · exp(r̂)``: prices trend out of their training range, where a target of the
    next close scaled with the close's scaler would have to extrapolate, while a return stays in
    range. RMSEs are in price units.
One model, or one per symbol
    A model learns from the pooled samples of every symbol it is fitted on; for one model per
    symbol, :func:`fit_per_symbol` and :func:`predict_per_symbol`.
Evaluation (:mod:`.metrics`)
    Plain dicts: the LSTM's RMSE against the naive last-close forecast and its directional
    accuracy against "always up"; the CNN's accuracy, log-loss and AUC against the training
    majority class and "always up".
Speed, reproducibility, files
    Small defaults (hidden 32 / 16 channels, at most 10 epochs, patience 3, batch 256); torch on
    the CPU with ``threads`` threads. The same data, seed and threads give the same model. ``save``
    writes one ``torch.save`` file of tensors and plain types (weights, scaler arrays, settings,
    history), which ``load`` reads with ``weights_only=True``.
"""

from rltrade.agents.predictors.base import SCALERS, SCALINGS, CommonSettings, History, WindowModel
from rltrade.agents.predictors.metrics import classification_metrics, regression_metrics
from rltrade.agents.predictors.models import (
    PREDICTORS,
    CNNClassifier,
    CNNSettings,
    LSTMRegressor,
    LSTMSettings,
    fit_per_symbol,
    load_predictor,
    predict_per_symbol,
)
from rltrade.agents.predictors.samples import (
    INPUT_COLUMNS,
    PredictorError,
    Split,
    bound,
    check_no_overlap,
    chronological_split,
    predictor_inputs,
)

__all__ = [
    "INPUT_COLUMNS",
    "PREDICTORS",
    "SCALERS",
    "SCALINGS",
    "CNNClassifier",
    "CNNSettings",
    "CommonSettings",
    "History",
    "LSTMRegressor",
    "LSTMSettings",
    "PredictorError",
    "Split",
    "WindowModel",
    "bound",
    "check_no_overlap",
    "chronological_split",
    "classification_metrics",
    "fit_per_symbol",
    "load_predictor",
    "predict_per_symbol",
    "predictor_inputs",
    "regression_metrics",
]
