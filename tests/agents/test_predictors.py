"""Seed 002's predictors (rltrade.agents.predictors): inputs, split, scalers, learning, metrics, files."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from rltrade.agents.predictors import (
    INPUT_COLUMNS,
    CNNClassifier,
    LSTMRegressor,
    PredictorError,
    Split,
    bound,
    check_no_overlap,
    chronological_split,
    classification_metrics,
    fit_per_symbol,
    load_predictor,
    predict_per_symbol,
    predictor_inputs,
    regression_metrics,
)
from rltrade.agents.predictors import base as predictors_base
from rltrade.testing import assert_causal, synthetic_bars

WARMUP = 199  # bars without an SMA 200


def sine_bars(
    n_bars: int = 700,
    symbols: tuple[str, ...] = ("A", "B"),
    *,
    period: int = 16,
    amp: float = 0.05,
    noise: float = 0.002,
    seed: int = 0,
    freq: str = "B",
) -> pd.DataFrame:
    """Closes ``level · exp(amp · sin(2πt / period + phase) + N(0, noise))``: a clear, learnable cycle."""
    rng = np.random.default_rng(seed)
    stamps = pd.date_range("2010-01-01", periods=n_bars, freq=freq, tz="UTC")
    frames = []
    for k, symbol in enumerate(symbols):
        t = np.arange(n_bars)
        close = (50.0 + 50.0 * k) * np.exp(amp * np.sin(2 * np.pi * t / period + k) + rng.normal(0, noise, n_bars))
        open_ = np.concatenate([[close[0]], close[:-1]])
        frames.append(
            pd.DataFrame(
                {
                    "symbol": symbol,
                    "timestamp": stamps,
                    "open": open_,
                    "high": np.maximum(open_, close) * 1.001,
                    "low": np.minimum(open_, close) * 0.999,
                    "close": close,
                    "volume": rng.integers(1_000, 5_000, n_bars).astype(float),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def stamp(bars: pd.DataFrame, i: int) -> pd.Timestamp:
    """The i-th sorted unique timestamp of ``bars``."""
    return pd.Timestamp(np.sort(bars["timestamp"].unique())[i])


SMALL = {"window": 12, "epochs": 2, "batch_size": 128}


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return sine_bars(600)


@pytest.fixture(scope="module")
def lstm(bars: pd.DataFrame) -> LSTMRegressor:
    model = LSTMRegressor(hidden=8, **SMALL)
    model.fit(bars, stamp(bars, 450), stamp(bars, 530))
    return model


@pytest.fixture(scope="module")
def cnn(bars: pd.DataFrame) -> CNNClassifier:
    model = CNNClassifier(channels=4, **SMALL)
    model.fit(bars, stamp(bars, 450), stamp(bars, 530))
    return model


# --- inputs -----------------------------------------------------------------------------------


def test_inputs_are_the_8_columns_with_brute_force_smas_and_no_warm_up_rows() -> None:
    bars = synthetic_bars(2, 260, seed=4).sample(frac=1.0, random_state=0)  # any row order
    inputs = predictor_inputs(bars)
    assert list(inputs.columns) == list(INPUT_COLUMNS)
    assert inputs.index.names == ["symbol", "timestamp"] and inputs.index.is_monotonic_increasing
    for symbol, group in bars.sort_values("timestamp").groupby("symbol"):
        mine = inputs.xs(symbol, level="symbol")
        assert len(mine) == 260 - WARMUP
        assert mine.index[0] == group["timestamp"].iloc[WARMUP]  # the first bar with 200 closes
        close = group["close"].to_numpy()
        for row, t in [(0, WARMUP), (17, WARMUP + 17), (len(mine) - 1, 259)]:
            for n in (20, 50, 200):
                assert mine[f"sma_{n}"].iloc[row] == pytest.approx(sum(close[t - n + 1 : t + 1]) / n, rel=1e-12)
            for column in ("open", "high", "low", "close", "volume"):
                assert mine[column].iloc[row] == group[column].iloc[t]


def test_inputs_pass_the_lookahead_guard() -> None:
    bars = synthetic_bars(2, 320, seed=1)
    assert_causal(predictor_inputs, bars, [WARMUP, 250, -2])


def test_inputs_refuse_close_only_bars_and_missing_columns() -> None:
    with pytest.raises(PredictorError, match="open is NaN for S00"):
        predictor_inputs(synthetic_bars(1, 230, ohlcv=False))
    with pytest.raises(PredictorError, match="lack the column"):
        predictor_inputs(synthetic_bars(1, 230).drop(columns="volume"))


# --- boundaries and the chronological split ---------------------------------------------------


def test_bound_makes_a_date_cover_its_day_and_a_time_an_instant() -> None:
    assert bound("2020-01-10") == pd.Timestamp("2020-01-11", tz="UTC")
    assert bound(pd.Timestamp("2020-01-10 15:30", tz="UTC")) == pd.Timestamp(
        "2020-01-10 15:30", tz="UTC"
    ) + pd.Timedelta(1, "ns")
    hourly = pd.date_range("2020-01-09", periods=72, freq="1h", tz="UTC")
    split = chronological_split(hourly, 3, "2020-01-10")
    assert hourly[split.train.max() + 1] == pd.Timestamp("2020-01-10 23:00", tz="UTC")  # the day's last bar


def test_split_matches_the_definition_by_brute_force() -> None:
    stamps = pd.date_range("2021-03-01", periods=40, freq="B", tz="UTC")
    window, train_end, val_end = 5, stamps[19], stamps[31]
    split = chronological_split(stamps, window, train_end, val_end)
    train, val = [], []
    for t in range(len(stamps)):
        if t < window - 1 or t + 1 >= len(stamps):
            continue  # no full window, or no target bar
        if stamps[t + 1] <= train_end:
            train.append(t)
        elif stamps[t - window + 1] > train_end and stamps[t + 1] <= val_end:
            val.append(t)
    assert split.train.tolist() == train == list(range(4, 19))
    assert split.val.tolist() == val == list(range(24, 31))  # the window bars 20..23 are in neither
    assert chronological_split(stamps, window, train_end).val.size == 0


def test_split_refuses_shuffled_or_duplicated_timestamps() -> None:
    stamps = pd.date_range("2021-03-01", periods=30, freq="B", tz="UTC")
    shuffled = stamps[np.random.default_rng(0).permutation(30)]
    with pytest.raises(PredictorError, match="must increase strictly"):
        chronological_split(shuffled, 5, stamps[15], stamps[25])
    with pytest.raises(PredictorError, match="position 3"):
        chronological_split(stamps.insert(3, stamps[2]), 5, stamps[15])


def test_every_training_target_precedes_every_validation_window_across_symbols() -> None:
    # Two symbols on different calendars (one has gaps): the boundary is a time, not a row.
    stamps_a = pd.date_range("2021-01-01", periods=120, freq="B", tz="UTC")
    stamps_b = stamps_a[np.random.default_rng(1).random(120) > 0.3]
    train_targets, val_firsts = [], []
    for stamps in (stamps_a, stamps_b):
        split = chronological_split(stamps, 7, stamps_a[60], stamps_a[100])
        train_targets += list(stamps[split.train + 1])
        val_firsts += list(stamps[split.val - 7 + 1])
    assert train_targets and val_firsts
    assert max(train_targets) < min(val_firsts)
    check_no_overlap(train_targets, val_firsts)


def test_a_planted_leak_is_caught() -> None:
    stamps = pd.date_range("2021-01-01", periods=60, freq="B", tz="UTC")
    split = chronological_split(stamps, 5, stamps[30], stamps[50])
    # The classic bug: validation chosen by target bar only, so its first windows reach into training.
    leaky_val = np.arange(27, 50)
    with pytest.raises(PredictorError, match="leaky split"):
        check_no_overlap(stamps[split.train + 1], stamps[leaky_val - 4])


def test_fit_runs_the_leak_guard(monkeypatch: pytest.MonkeyPatch, bars: pd.DataFrame) -> None:
    honest = chronological_split

    def leaky(timestamps: pd.DatetimeIndex, window: int, train_end: pd.Timestamp, val_end: pd.Timestamp) -> Split:
        split = honest(timestamps, window, train_end, val_end)
        return Split(split.train, np.arange(split.train.max() + 1, split.val.max() + 1))

    monkeypatch.setattr(predictors_base, "chronological_split", leaky)
    with pytest.raises(PredictorError, match="leaky split"):
        LSTMRegressor(hidden=4, **SMALL).fit(bars, stamp(bars, 450), stamp(bars, 530))


# --- scalers and targets ------------------------------------------------------------------------


def test_scalers_use_training_bars_only(bars: pd.DataFrame) -> None:
    train_end, val_end = stamp(bars, 450), stamp(bars, 530)
    shifted = bars.copy()
    later = shifted["timestamp"] > train_end
    shifted.loc[later, ["open", "high", "low", "close"]] *= 3.0  # validation (and test) at another level
    shifted.loc[later, "volume"] += 1e6
    a, b = (LSTMRegressor(hidden=4, **{**SMALL, "epochs": 1}) for _ in range(2))
    a.fit(bars, train_end, val_end)
    b.fit(shifted, train_end, val_end)
    assert np.array_equal(a.offset, b.offset) and np.array_equal(a.scale, b.scale)
    assert a.target_stats == b.target_stats
    # Independently: mean and population std of each symbol's training rows, and of its log-return targets.
    inputs = predictor_inputs(bars)
    returns = []
    for i, symbol in enumerate(a.symbols):
        rows = inputs.xs(symbol, level="symbol")
        training = rows.loc[rows.index <= train_end].to_numpy()
        np.testing.assert_allclose(a.offset[i], training.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(a.scale[i], training.std(axis=0), rtol=1e-10)
        close = rows["close"].to_numpy()
        returns += [
            math.log(close[t + 1] / close[t]) for t in range(11, len(rows) - 1) if rows.index[t + 1] <= train_end
        ]
    assert a.target_stats == pytest.approx([np.mean(returns), np.std(returns)], rel=1e-9)


def test_pooled_minmax_scaling_fits_one_set_over_all_symbols(bars: pd.DataFrame) -> None:
    train_end = stamp(bars, 450)
    model = CNNClassifier(channels=4, scaler="minmax", scaling="pooled", **{**SMALL, "epochs": 1})
    model.fit(bars, train_end, stamp(bars, 530))
    inputs = predictor_inputs(bars)
    training = inputs.loc[inputs.index.get_level_values("timestamp") <= train_end].to_numpy()
    assert model.symbols == [] and model.offset.shape == (1, 8)
    np.testing.assert_array_equal(model.offset[0], training.min(axis=0))
    np.testing.assert_allclose(model.scale[0], training.max(axis=0) - training.min(axis=0), rtol=1e-12)
    other = sine_bars(400, ("Z",), seed=9)
    assert len(model.predict(other)) == 400 - WARMUP - 11  # pooled scalers take any symbol


# --- shapes, windows, early stopping ------------------------------------------------------------


def test_predictions_cover_every_full_window(bars: pd.DataFrame, lstm: LSTMRegressor, cnn: CNNClassifier) -> None:
    for model, name in ((lstm, "forecast_close"), (cnn, "p_up")):
        out = model.predict(bars)
        assert out.name == name and out.dtype == np.float64 and out.index.names == ["symbol", "timestamp"]
        assert len(out) == 2 * (600 - WARMUP - 11) and np.isfinite(out).all()
        for symbol in ("A", "B"):
            stamps = out.xs(symbol, level="symbol").index
            assert stamps[0] == stamp(bars, WARMUP + 11) and stamps[-1] == stamp(bars, 599)
    p = cnn.predict(bars)
    assert ((p > 0) & (p < 1)).all()
    forecast = lstm.predict(bars)
    close = bars.set_index(["symbol", "timestamp"])["close"].reindex(forecast.index)
    assert (np.abs(np.log(forecast / close)) < 0.2).all()  # a next-close forecast near the last close


def test_a_prediction_reads_exactly_its_window_and_the_smas_history(bars: pd.DataFrame, lstm: LSTMRegressor) -> None:
    """The forecast at bar k depends on bars k − 11 − 199 .. k (window 12, SMA 200), not on earlier ones."""
    one = bars[bars["symbol"] == "A"].reset_index(drop=True)
    k = 500
    earlier, inside = one.copy(), one.copy()
    earlier.loc[: k - 11 - WARMUP - 1, ["open", "high", "low", "close"]] *= 1.5
    inside.loc[k - 11, ["open", "high", "low", "close"]] *= 1.05

    def at_k(frame: pd.DataFrame) -> float:
        return float(lstm.predict(frame).xs("A", level="symbol").loc[one["timestamp"][k]])

    base = at_k(one)
    assert at_k(earlier) == pytest.approx(base, rel=1e-6)
    assert abs(at_k(inside) - base) > 1e-4 * base


def test_predict_passes_the_lookahead_guard(bars: pd.DataFrame, lstm: LSTMRegressor, cnn: CNNClassifier) -> None:
    one = bars[bars["symbol"] == "B"]
    assert_causal(lstm.predict, one, [WARMUP + 11, 400, -2], n_perturbations=1)
    assert_causal(cnn.predict, bars, [WARMUP + 40, 520, -2], n_perturbations=1)


def test_early_stopping_keeps_the_best_epoch(bars: pd.DataFrame) -> None:
    """The kept weights' validation loss, recomputed from predict() and an independent split, is the best one."""
    train_end, val_end = stamp(bars, 430), stamp(bars, 560)
    model = CNNClassifier(channels=4, window=12, epochs=8, patience=1, lr=0.05, batch_size=64)
    history = model.fit(bars, train_end, val_end)
    best = history.best_epoch
    assert best == int(np.argmin(history.val_loss))
    assert history.stopped_early == (len(history.val_loss) == best + 2)
    p = model.predict(bars)
    losses = []
    for symbol, group in bars.sort_values("timestamp").groupby("symbol"):
        stamps, close = group["timestamp"].to_numpy()[WARMUP:], group["close"].to_numpy()[WARMUP:]
        for t in range(11, len(stamps) - 1):
            if stamps[t - 11] > train_end and stamps[t + 1] <= val_end:
                q = p.loc[(symbol, stamps[t])]
                y = close[t + 1] > close[t]
                losses.append(-math.log(q if y else 1 - q))
    assert len(losses) == history.n_val == 2 * (560 - 430 - 12)
    assert history.n_train == 2 * (430 - WARMUP - 11)  # target bars WARMUP + 12 .. 430
    assert np.mean(losses) == pytest.approx(history.val_loss[best], rel=1e-4)


def test_without_validation_every_epoch_runs_and_the_last_weights_stay(bars: pd.DataFrame) -> None:
    model = CNNClassifier(channels=4, **{**SMALL, "epochs": 3})
    history = model.fit(bars, stamp(bars, 450))
    assert history.n_val == 0 and len(history.train_loss) == 3 and history.best_epoch == 2
    assert all(math.isnan(v) for v in history.val_loss) and not history.stopped_early


# --- learning -----------------------------------------------------------------------------------


def test_the_lstm_beats_the_naive_forecast_on_a_learnable_cycle() -> None:
    bars = sine_bars(1100)
    model = LSTMRegressor(window=16, hidden=16, epochs=12, lr=3e-3, patience=3)
    model.fit(bars, stamp(bars, 800), stamp(bars, 950))
    scores = model.evaluate(bars, start=stamp(bars, 951))
    assert scores["n"] == 2 * (1100 - 951 - 1)
    assert scores["rmse_ratio"] < 0.8 and scores["rmse"] < scores["naive_rmse"]
    assert scores["directional_accuracy"] > scores["always_up_accuracy"] + 0.2


def test_the_cnn_beats_the_majority_class_on_a_learnable_cycle() -> None:
    bars = sine_bars(1100)
    model = CNNClassifier(window=16, channels=8, epochs=12, lr=3e-3)
    model.fit(bars, stamp(bars, 800), stamp(bars, 950))
    scores = model.evaluate(bars, start=stamp(bars, 951))
    assert scores["accuracy"] > scores["majority_accuracy"] + 0.2
    assert scores["accuracy"] > scores["always_up_accuracy"] + 0.2
    assert scores["auc"] > 0.8 and scores["log_loss"] < scores["base_rate_log_loss"]


def test_intraday_bars_work_alike() -> None:
    bars = sine_bars(520, ("X",), freq="1h")
    model = CNNClassifier(channels=4, **SMALL)
    model.fit(bars, stamp(bars, 420), stamp(bars, 470))
    out = model.predict(bars)
    assert (np.diff(out.index.get_level_values("timestamp")) == pd.Timedelta(hours=1)).all()
    assert model.evaluate(bars, start=stamp(bars, 471))["n"] == 520 - 471 - 1


# --- evaluation by hand -------------------------------------------------------------------------


def _hand_bars(close: list[float]) -> pd.DataFrame:
    stamps = pd.date_range("2022-01-03", periods=len(close), freq="B", tz="UTC")
    return pd.DataFrame({"symbol": "H", "timestamp": stamps, "close": close})


def test_regression_metrics_by_hand() -> None:
    bars = _hand_bars([10.0, 11.0, 11.0, 10.0, 12.0])
    stamps = bars["timestamp"]
    index = pd.MultiIndex.from_arrays([["H"] * 5, stamps], names=["symbol", "timestamp"])
    forecasts = pd.Series([10.5, 11.5, 10.5, 10.0, 99.0], index=index)  # the last has no next bar
    scores = regression_metrics(forecasts, bars)
    errors = [10.5 - 11, 11.5 - 11, 10.5 - 10, 10.0 - 12]
    assert scores["n"] == 4
    assert scores["rmse"] == pytest.approx(math.sqrt(np.mean(np.square(errors))))
    assert scores["naive_rmse"] == pytest.approx(math.sqrt((1 + 0 + 1 + 4) / 4))
    # Moves: up, none, down, up; forecast directions: up (right), down (right), none (wrong: 10.0 = close).
    assert scores["n_moves"] == 3
    assert scores["directional_accuracy"] == pytest.approx(2 / 3)
    assert scores["always_up_accuracy"] == pytest.approx(2 / 3)
    assert regression_metrics(forecasts, bars, start=stamps[2], end=stamps[2])["n"] == 1


def test_classification_metrics_by_hand() -> None:
    bars = _hand_bars([10.0, 11.0, 11.0, 10.0, 12.0, 13.0])
    index = pd.MultiIndex.from_arrays([["H"] * 5, bars["timestamp"][:5]], names=["symbol", "timestamp"])
    p = pd.Series([0.9, 0.6, 0.2, 0.4, 0.7], index=index)
    labels = [1, 0, 0, 1, 1]  # an unchanged close is not up
    scores = classification_metrics(p, bars, train_up_rate=0.4)
    assert scores["accuracy"] == pytest.approx(3 / 5)  # calls: up, up, down, down, up
    expected_loss = -np.mean([math.log(q if y else 1 - q) for q, y in zip(p, labels, strict=True)])
    assert scores["log_loss"] == pytest.approx(expected_loss)
    pairs = [(a, b) for a, ya in zip(p, labels, strict=True) for b, yb in zip(p, labels, strict=True) if ya and not yb]
    assert scores["auc"] == pytest.approx(np.mean([1.0 if a > b else 0.5 if a == b else 0.0 for a, b in pairs]))
    assert scores["majority_class"] == 0 and scores["majority_accuracy"] == pytest.approx(2 / 5)
    assert scores["always_up_accuracy"] == pytest.approx(3 / 5)
    assert scores["base_rate_log_loss"] == pytest.approx(-np.mean([math.log(0.4 if y else 0.6) for y in labels]))


# --- files, seeds, settings, per-symbol models ---------------------------------------------------


def test_save_load_round_trip_gives_identical_predictions(
    tmp_path: Path, bars: pd.DataFrame, lstm: LSTMRegressor, cnn: CNNClassifier
) -> None:
    for model in (lstm, cnn):
        path = tmp_path / f"{model.kind}.pt"
        model.save(path)
        assert isinstance(torch.load(path, weights_only=True), dict)  # plain types and tensors only
        back = load_predictor(path)
        assert type(back) is type(model) and back.settings == model.settings and back.history == model.history
        assert back.symbols == model.symbols and back.target_stats == model.target_stats
        pd.testing.assert_series_equal(back.predict(bars), model.predict(bars), check_exact=True)
    with pytest.raises(PredictorError, match="not cnn"):
        CNNClassifier.load(tmp_path / "lstm.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(PredictorError, match="not a saved predictor"):
        load_predictor(tmp_path / "junk.pt")


def test_training_is_seeded_and_restores_the_thread_count(bars: pd.DataFrame) -> None:
    shuffled = bars.sample(frac=1.0, random_state=3)  # row order does not matter
    runs = [LSTMRegressor(hidden=4, seed=s, threads=1, **SMALL) for s in (5, 5, 6)]
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for model, frame in zip(runs, (bars, shuffled, bars), strict=True):
            model.fit(frame, stamp(bars, 450), stamp(bars, 530))
        assert torch.get_num_threads() == 2  # fit ran on 1 thread and gave the process its setting back
    finally:
        torch.set_num_threads(before)
    a, b, c = (m.predict(bars) for m in runs)
    pd.testing.assert_series_equal(a, b, check_exact=True)
    assert not np.array_equal(a.to_numpy(), c.to_numpy())


def test_bad_settings_and_misuse_are_refused(bars: pd.DataFrame, lstm: LSTMRegressor) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"window": 0}, "window must be >= 1"),
        ({"hidden": 0}, "hidden must be >= 1"),
        ({"scaler": "robust"}, "scaler must be one of"),
        ({"scaling": "global"}, "scaling must be one of"),
        ({"channels": 4}, "unexpected keyword"),
    ]
    for kwargs, message in cases:
        with pytest.raises(PredictorError, match=message):
            LSTMRegressor(**kwargs)
    with pytest.raises(PredictorError, match="must exceed"):
        CNNClassifier(window=4, kernel=3)
    with pytest.raises(PredictorError, match="not fitted"):
        CNNClassifier().predict(bars)
    with pytest.raises(PredictorError, match=r"no scaler for \['Z'\]"):
        lstm.predict(sine_bars(300, ("Z",)))
    with pytest.raises(PredictorError, match="no training sample"):
        LSTMRegressor(**SMALL).fit(bars, stamp(bars, WARMUP + 5), stamp(bars, 530))


def test_one_model_per_symbol(bars: pd.DataFrame) -> None:
    models = fit_per_symbol(lambda: CNNClassifier(channels=4, **SMALL), bars, stamp(bars, 450), stamp(bars, 530))
    assert sorted(models) == ["A", "B"] and all(m.symbols == [s] for s, m in models.items())
    joint = predict_per_symbol(models, bars)
    for symbol, model in models.items():
        own = model.predict(bars[bars["symbol"] == symbol])
        pd.testing.assert_series_equal(joint.loc[[symbol]], own, check_exact=True)
