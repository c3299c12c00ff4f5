"""The two networks of seed 002: :class:`LSTMRegressor` (next close) and :class:`CNNClassifier` (P(up)).

Both follow :class:`~rltrade.agents.predictors.base.WindowModel`: ``fit(bars, train_end, val_end)``,
``predict(bars)``, ``evaluate(bars, start, end)``, ``save(path)`` / ``load(path)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from rltrade.agents.predictors.base import CommonSettings, FloatArray, WindowModel, read_file
from rltrade.agents.predictors.metrics import classification_metrics, regression_metrics
from rltrade.agents.predictors.samples import INPUT_COLUMNS, DateLike, IntArray, PredictorError

Model = TypeVar("Model", bound=WindowModel)


@dataclass(frozen=True)
class LSTMSettings(CommonSettings):
    """:class:`LSTMRegressor`'s settings: the common ones, the LSTM's hidden size and number of layers."""

    hidden: int = 32
    layers: int = 1


@dataclass(frozen=True)
class CNNSettings(CommonSettings):
    """:class:`CNNClassifier`'s settings: the common ones, channels and kernel size of both conv layers."""

    channels: int = 16
    kernel: int = 3


class _LSTMNet(nn.Module):
    def __init__(self, hidden: int, layers: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(len(INPUT_COLUMNS), hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)  # [batch, window, hidden]
        result: torch.Tensor = self.head(out[:, -1]).squeeze(-1)
        return result


class LSTMRegressor(WindowModel):
    """Next-close forecaster: ``nn.LSTM`` over the window, a linear head on the last bar's hidden state.

    The network learns the next log return ``log(close_{t+1} / close_t)`` standardised with the
    mean and std of the training targets (:attr:`target_stats` = ``[mean, std]``); ``predict``
    converts back to price units, ``close_t · exp(mean + std · output)`` (name ``forecast_close``).

    Settings: :class:`LSTMSettings` as keywords, ``window=30, hidden=32, layers=1, epochs=10,
    patience=3, batch_size=256, lr=1e-3, seed=0, threads=1, scaler="zscore", scaling="symbol"``.
    """

    kind = "lstm"
    settings_class = LSTMSettings
    output_name = "forecast_close"
    _positive = ("hidden", "layers")
    settings: LSTMSettings

    def _build(self) -> nn.Module:
        return _LSTMNet(self.settings.hidden, self.settings.layers)

    def _targets(self, close: FloatArray, ends: IntArray) -> FloatArray:
        result: FloatArray = np.log(close[ends + 1] / close[ends])
        return result

    def _target_stats(self, train_targets: FloatArray) -> list[float]:
        std = float(train_targets.std())
        return [float(train_targets.mean()), std if std > 0 else 1.0]

    def _train_form(self, targets: FloatArray) -> FloatArray:
        mean, std = self.target_stats
        result: FloatArray = (targets - mean) / std
        return result

    def _loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(out, y)

    def _convert(self, out: FloatArray, close: FloatArray) -> FloatArray:
        mean, std = self.target_stats
        result: FloatArray = close * np.exp(mean + std * out)
        return result

    def evaluate(
        self, bars: pd.DataFrame, start: DateLike | None = None, end: DateLike | None = None
    ) -> dict[str, Any]:
        """:func:`regression_metrics` of :meth:`predict` on ``bars``, for forecasts made at bars in ``start .. end``."""
        return regression_metrics(self.predict(bars), bars, start=start, end=end)


class _CNNNet(nn.Module):
    def __init__(self, window: int, channels: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv1d(len(INPUT_COLUMNS), channels, kernel),
            nn.ReLU(),
            nn.Conv1d(channels, channels, kernel),
            nn.ReLU(),
        )
        # Flattened, not pooled: where in the window a pattern sits (how recent it is) matters.
        self.head = nn.Linear(channels * (window - 2 * (kernel - 1)), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.conv(x.transpose(1, 2))  # [batch, 8 inputs as channels, window]
        result: torch.Tensor = self.head(features.flatten(1)).squeeze(-1)
        return result


class CNNClassifier(WindowModel):
    """P(close_{t+1} > close_t): two ``Conv1d`` + ReLU layers along the window (channels = the 8 inputs),
    then a logistic head on the flattened feature maps.

    Trained on the binary cross-entropy of the label ``1{close_{t+1} > close_t}``; ``predict`` gives
    the probability (name ``p_up``). :attr:`target_stats` = ``[share of up labels in training]``.

    Settings: :class:`CNNSettings` as keywords, ``window=30, channels=16, kernel=3, epochs=10,
    patience=3, batch_size=256, lr=1e-3, seed=0, threads=1, scaler="zscore", scaling="symbol"``;
    ``window`` must exceed ``2 · (kernel − 1)``.
    """

    kind = "cnn"
    settings_class = CNNSettings
    output_name = "p_up"
    _positive = ("channels", "kernel")
    settings: CNNSettings

    @property
    def train_up_rate(self) -> float:
        """The share of training labels that are up (NaN before fitting); majority class up when ≥ 0.5."""
        return self.target_stats[0] if self.target_stats else math.nan

    def _check_settings(self) -> None:
        super()._check_settings()
        if self.settings.window <= 2 * (self.settings.kernel - 1):
            raise PredictorError(
                f"cnn predictor: window {self.settings.window} must exceed 2·(kernel − 1) = "
                f"{2 * (self.settings.kernel - 1)} (two convolutions without padding)"
            )

    def _build(self) -> nn.Module:
        return _CNNNet(self.settings.window, self.settings.channels, self.settings.kernel)

    def _targets(self, close: FloatArray, ends: IntArray) -> FloatArray:
        return (close[ends + 1] > close[ends]).astype(np.float64)

    def _target_stats(self, train_targets: FloatArray) -> list[float]:
        return [float(train_targets.mean())]

    def _loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.binary_cross_entropy_with_logits(out, y)

    def _convert(self, out: FloatArray, close: FloatArray) -> FloatArray:
        result: FloatArray = 1.0 / (1.0 + np.exp(-out))
        return result

    def evaluate(
        self, bars: pd.DataFrame, start: DateLike | None = None, end: DateLike | None = None
    ) -> dict[str, Any]:
        """:func:`classification_metrics` of :meth:`predict` on ``bars``, for predictions made at ``start .. end``."""
        return classification_metrics(self.predict(bars), bars, self.train_up_rate, start=start, end=end)


PREDICTORS: Mapping[str, type[LSTMRegressor] | type[CNNClassifier]] = {"lstm": LSTMRegressor, "cnn": CNNClassifier}
"""The predictor classes by the ``kind`` their files record."""


def load_predictor(path: str | Path) -> LSTMRegressor | CNNClassifier:
    """Whichever predictor :meth:`~WindowModel.save` wrote to ``path``."""
    kind = read_file(path)["kind"]
    if kind not in PREDICTORS:
        raise PredictorError(f"{path}: unknown predictor kind {kind!r}; known: {list(PREDICTORS)}")
    return PREDICTORS[kind].load(path)


def fit_per_symbol(
    make: Callable[[], Model], bars: pd.DataFrame, train_end: DateLike, val_end: DateLike | None = None
) -> dict[str, Model]:
    """One model per symbol instead of one pooled model: ``{symbol: make()`` fitted on that symbol's bars ``}``."""
    models = {}
    for symbol, group in bars.groupby("symbol", sort=True):
        model = make()
        model.fit(group, train_end, val_end)
        models[str(symbol)] = model
    return models


def predict_per_symbol(models: Mapping[str, WindowModel], bars: pd.DataFrame) -> pd.Series:
    """Each symbol's predictions from its own model (:func:`fit_per_symbol`), in one sorted Series."""
    parts = []
    for symbol, group in bars.groupby("symbol", sort=True):
        if str(symbol) not in models:
            raise PredictorError(f"predict_per_symbol: no model for {symbol}; models exist for {sorted(models)}")
        parts.append(models[str(symbol)].predict(group))
    return pd.concat(parts).sort_index()
