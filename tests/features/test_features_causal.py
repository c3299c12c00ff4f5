"""The lookahead guard: every registered feature is causal, and the guard catches planted leaks."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
import pytest

from rltrade.features import FEATURES, Feature, build_features
from rltrade.testing import assert_causal, perturb_after

# Cutoffs (indices into the 300 timestamps): the first bar, inside every warm-up, just after the
# long TA-Lib ones, around the first turbulence value and one bar before the end.
CUTOFFS = [0, 7, 40, 252, 253, 298]


@pytest.mark.parametrize("name", sorted(FEATURES))
def test_every_registered_feature_is_causal(name: str, ohlcv_bars: pd.DataFrame) -> None:
    assert_causal(lambda bars: build_features(bars, [name]), ohlcv_bars, CUTOFFS, n_perturbations=2)


def test_turbulence_is_causal_across_its_blocks(make_bars: Callable[..., pd.DataFrame]) -> None:
    # with window 10, blocks of timestamps start at 10, 266, 522 (turbulence.BLOCK = 256)
    bars = make_bars(n_days=600, symbols=("A", "B", "C"), seed=11)
    assert_causal(
        lambda b: build_features(b, ["turbulence"], turbulence_window=10),
        bars,
        [10, 11, 265, 266, 267, 521, 522, 598],
        n_perturbations=1,
    )


def test_close_only_features_are_causal_on_real_data(sp500_bars: pd.DataFrame) -> None:
    recent = sp500_bars[sp500_bars["timestamp"] >= "2021-01-01"]
    names = [n for n, f in FEATURES.items() if set(f.inputs) == {"close"}]
    assert_causal(
        lambda bars: build_features(bars, names, turbulence_window=60),
        recent,
        [0, 30, 61, 62, 200, -2],
        n_perturbations=1,
    )


def test_causal_with_symbols_entering_late_and_missing_bars(make_bars: Callable[..., pd.DataFrame]) -> None:
    bars = make_bars(n_days=120, symbols=("A", "B", "C", "D"), seed=5)
    late = (bars["symbol"] == "D") & (bars["timestamp"] < bars["timestamp"].unique()[50])
    gap = (bars["symbol"] == "B") & (bars["timestamp"] == bars["timestamp"].unique()[70])
    bars = bars[~(late | gap)].reset_index(drop=True)
    assert_causal(
        lambda b: build_features(b, sorted(FEATURES), turbulence_window=15),
        bars,
        [3, 49, 50, 51, 69, 70, 71, 90, 118],
        n_perturbations=1,
    )


# ---------------------------------------------------------------- planted leaks


def _leaky(name: str, compute: Callable[[Mapping[str, np.ndarray]], np.ndarray]) -> dict[str, Feature]:
    def wrapped(data: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {name: compute(data)}

    return {name: Feature(name, wrapped, ("close",), lambda: 0, "planted leak")}


def test_guard_catches_a_shift_minus_one(ohlcv_bars: pd.DataFrame) -> None:
    # next bar's close, as `close.shift(-1)` would give
    registry = _leaky("next_close", lambda d: np.append(d["close"][1:], np.nan))
    with pytest.raises(AssertionError, match=r"lookahead in output \(bars (truncated|perturbed).*'next_close'"):
        assert_causal(lambda bars: build_features(bars, ["next_close"], registry=registry), ohlcv_bars, [100])


def test_guard_catches_a_pandas_shift_minus_one(ohlcv_bars: pd.DataFrame) -> None:
    def leaky_frame(bars: pd.DataFrame) -> pd.DataFrame:
        frame = bars.set_index(["timestamp", "symbol"]).sort_index()
        return frame.groupby(level="symbol")["close"].shift(-1).to_frame("next_close")

    with pytest.raises(AssertionError, match="lookahead"):
        assert_causal(leaky_frame, ohlcv_bars, [100])


def test_guard_catches_a_back_fill(ohlcv_bars: pd.DataFrame) -> None:
    # FinRL's defect: indicators back-filled, so the warm-up rows hold a later value
    registry = _leaky("sma_bfill", lambda d: pd.Series(d["close"]).rolling(20).mean().bfill().to_numpy())
    with pytest.raises(AssertionError, match="sma_bfill"):
        assert_causal(lambda bars: build_features(bars, ["sma_bfill"], registry=registry), ohlcv_bars, [5])


def test_guard_catches_full_sample_normalisation(ohlcv_bars: pd.DataFrame) -> None:
    registry = _leaky("zclose", lambda d: (d["close"] - d["close"].mean()) / d["close"].std())
    with pytest.raises(AssertionError, match="zclose"):
        assert_causal(lambda bars: build_features(bars, ["zclose"], registry=registry), ohlcv_bars, [150])


def test_guard_catches_a_volume_leak(ohlcv_bars: pd.DataFrame) -> None:
    def next_volume(bars: pd.DataFrame) -> pd.DataFrame:
        frame = bars.set_index(["timestamp", "symbol"]).sort_index()
        return frame.groupby(level="symbol")["volume"].shift(-1).to_frame("next_volume")

    with pytest.raises(AssertionError, match=r"lookahead.*next_volume"):
        assert_causal(lambda b: next_volume(b).fillna(0.0), ohlcv_bars, [100])


# ---------------------------------------------------------------- the guard's API


def test_guard_accepts_arrays_mappings_and_series(ohlcv_bars: pd.DataFrame) -> None:
    def observations(bars: pd.DataFrame) -> dict[str, object]:
        close = bars.pivot(index="timestamp", columns="symbol", values="close").to_numpy()
        mean = np.cumsum(close, axis=0) / np.arange(1, len(close) + 1)[:, None]
        return {
            "obs": close / mean,  # aligned with timestamps
            "per_row": bars["close"].to_numpy() * 2.0,  # aligned with input rows
            "series": bars.groupby("timestamp")["volume"].sum(),  # DatetimeIndex
            "frame": bars[["timestamp", "symbol", "close"]].reset_index(drop=True),  # timestamp column
            "pair": (np.zeros(len(close)), np.ones((len(close), 2, 2))),
        }

    assert_causal(observations, ohlcv_bars, [0, 50, "2020-06-01", pd.Timestamp("2020-09-01", tz="UTC")])

    def leaky_observations(bars: pd.DataFrame) -> dict[str, object]:
        out = observations(bars)
        out["obs"] = np.roll(out["obs"], -1, axis=0)  # type: ignore[call-overload]
        return out

    with pytest.raises(AssertionError, match=r"output\['obs'\]"):
        assert_causal(leaky_observations, ohlcv_bars, [50])


def test_guard_refuses_useless_cutoffs_and_outputs(ohlcv_bars: pd.DataFrame) -> None:
    fn = lambda bars: build_features(bars, ["log_return"])  # noqa: E731
    with pytest.raises(ValueError, match="leave data after it"):
        assert_causal(fn, ohlcv_bars, [-1])
    with pytest.raises(ValueError, match="within the bars"):
        assert_causal(fn, ohlcv_bars, ["1999-01-01"])
    with pytest.raises(TypeError, match="scalar"):
        assert_causal(lambda bars: float(bars["close"].mean()), ohlcv_bars, [10])
    with pytest.raises(TypeError, match="rows"):
        assert_causal(lambda bars: np.zeros(3), ohlcv_bars, [10])
    with pytest.raises(AssertionError, match="no output"):
        assert_causal(lambda bars: build_features(bars, ["log_return"]).iloc[-4:], ohlcv_bars, [10])


def test_guard_is_bit_strict(ohlcv_bars: pd.DataFrame) -> None:
    # a dependence on later data that moves values by one ulp only (an allclose check would miss it)
    def one_ulp(bars: pd.DataFrame) -> pd.DataFrame:
        frame = build_features(bars, ["sma_20"])
        if bars["timestamp"].nunique() % 2:
            return pd.DataFrame(np.nextafter(frame.to_numpy(), np.inf), index=frame.index, columns=frame.columns)
        return frame

    with pytest.raises(AssertionError, match=r"lookahead.*truncated"):
        assert_causal(one_ulp, ohlcv_bars, [20])


def test_perturbation_keeps_bars_valid_and_the_past_untouched(ohlcv_bars: pd.DataFrame) -> None:
    cutoff = ohlcv_bars["timestamp"].unique()[100]
    perturbed = perturb_after(ohlcv_bars, cutoff, np.random.default_rng(1))
    before = ohlcv_bars["timestamp"] <= cutoff
    pd.testing.assert_frame_equal(perturbed[before], ohlcv_bars[before])
    after = ~before
    prices = ["open", "high", "low", "close"]
    assert (perturbed.loc[after, prices] != ohlcv_bars.loc[after, prices]).all().all()
    p = perturbed[after]
    assert (p["high"] >= p[["open", "close", "low"]].max(axis=1)).all()
    assert (p["low"] <= p[["open", "close"]].min(axis=1)).all()
    ratio = p[prices].to_numpy() / ohlcv_bars.loc[after, prices].to_numpy()
    np.testing.assert_allclose(ratio, ratio[:, :1].repeat(4, axis=1), rtol=1e-12)
    assert (p["volume"] >= 0).all()
    moved = ohlcv_bars.loc[after, "volume"] > 0
    assert (perturbed.loc[after & moved, "volume"] != ohlcv_bars.loc[after & moved, "volume"]).all()
