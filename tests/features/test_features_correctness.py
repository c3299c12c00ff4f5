"""Features against independent implementations written here from their definitions."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from rltrade.features import NEELY_SIGNALS, build_features, turbulence_index
from rltrade.features.neely import ma_signal, on_balance_volume


def by_symbol(table: pd.DataFrame, column: str) -> pd.DataFrame:
    """A feature column as a (timestamp x symbol) frame."""
    return table[column].unstack("symbol")


def wide(bars: pd.DataFrame, column: str = "close") -> pd.DataFrame:
    return bars.pivot(index="timestamp", columns="symbol", values=column)


# ---------------------------------------------------------------- turbulence


def turbulence_loop(close: pd.DataFrame, window: int) -> np.ndarray:
    """Kritzman & Li, one day at a time: np.cov of the previous `window` days and np.linalg.pinv.

    Uses the assets with a return today and on every day of the window; pinv's cut-off is
    rltrade's documented 1e-10 (it matters only for singular covariances).
    """
    returns = close.pct_change(fill_method=None).to_numpy()
    out = np.full(len(returns), np.nan)
    for t in range(window + 1, len(returns)):
        history = returns[t - window : t]
        usable = np.isfinite(history).all(axis=0) & np.isfinite(returns[t])
        if not usable.any():
            continue
        history = history[:, usable]
        deviation = returns[t, usable] - history.mean(axis=0)
        cov = np.atleast_2d(np.cov(history, rowvar=False))
        out[t] = deviation @ np.linalg.pinv(cov, rtol=1e-10) @ deviation
    return out


def test_turbulence_matches_a_per_day_loop_on_real_data(sp500_bars: pd.DataFrame, sp500_prices: pd.DataFrame) -> None:
    recent = sp500_bars[sp500_bars["timestamp"] >= "2014-01-01"]  # ~2,200 days x 20 stocks, several blocks
    ours = by_symbol(build_features(recent, ["turbulence"]), "turbulence")["AAPL"].to_numpy()
    reference = turbulence_loop(wide(recent), 252)
    assert np.isnan(ours[:253]).all() and np.isnan(reference[:253]).all()
    np.testing.assert_allclose(ours, reference, rtol=1e-7, atol=1e-9)
    assert np.nanmax(ours) > 10 * np.nanmedian(ours)  # the March 2020 crash stands out


@pytest.mark.parametrize("window", [5, 30, 252])
def test_turbulence_matches_a_per_day_loop_on_synthetic_data(
    window: int, make_bars: Callable[..., pd.DataFrame]
) -> None:
    bars = make_bars(n_days=700, symbols=("A", "B", "C", "D", "E"), seed=window)
    ours = turbulence_index(wide(bars).to_numpy(), window=window)
    np.testing.assert_allclose(ours, turbulence_loop(wide(bars), window), rtol=1e-8, atol=1e-10)


def test_turbulence_with_late_symbols_gaps_and_singular_covariance(
    make_bars: Callable[..., pd.DataFrame],
) -> None:
    bars = make_bars(n_days=400, symbols=("A", "B", "C", "D"), seed=3)
    close = wide(bars)
    close.iloc[:120, 3] = np.nan  # D enters late
    close.iloc[200, 1] = np.nan  # B misses one bar
    close["E"] = 2.0 * close["A"]  # a collinear asset: singular covariance, needs the pseudo-inverse
    ours = turbulence_index(close.to_numpy(), window=40)
    reference = turbulence_loop(close, 40)
    np.testing.assert_allclose(ours, reference, rtol=1e-6, atol=1e-9)
    assert np.isfinite(ours[41:]).all()


def test_turbulence_of_one_asset_is_its_squared_z_score() -> None:
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 80)))[:, None]
    r = close[1:, 0] / close[:-1, 0] - 1
    t = 50
    expected = (r[t - 1] - r[t - 21 : t - 1].mean()) ** 2 / r[t - 21 : t - 1].var(ddof=1)
    assert turbulence_index(close, window=20)[t] == pytest.approx(expected, rel=1e-10)


# ---------------------------------------------------------------- Neely et al. (2014)


def neely_pandas(close: pd.Series, volume: pd.Series | None) -> pd.DataFrame:
    """The 14 signals with pandas rolling means and a cumulative OBV, straight from the paper."""
    out = {}
    ma = {s: close.rolling(s).mean() for s in (1, 2, 3, 9, 12)}
    for s in (1, 2, 3):
        for lw in (9, 12):
            out[f"neely_ma_{s}_{lw}"] = (ma[s] >= ma[lw]).astype(float).where(ma[lw].notna())
    for m in (9, 12):
        out[f"neely_mom_{m}"] = (close >= close.shift(m)).astype(float).where(close.shift(m).notna())
    if volume is not None:
        direction = np.where(close >= close.shift(1), 1.0, -1.0)
        obv = (volume * direction).iloc[1:].cumsum().reindex(close.index).fillna(0.0)  # OBV_0 = 0
        obv_ma = {s: obv.rolling(s).mean() for s in (1, 2, 3, 9, 12)}
        for s in (1, 2, 3):
            for lw in (9, 12):
                signal = (obv_ma[s] >= obv_ma[lw]).astype(float).where(obv_ma[lw].notna())
                out[f"neely_vol_{s}_{lw}"] = signal
    return pd.DataFrame(out)


def assert_signals_match(ours: pd.DataFrame, reference: pd.DataFrame, levels: pd.DataFrame) -> None:
    """Equal everywhere except at ties up to rounding, where ours must say 1 (MA_s >= MA_l holds)."""
    for column in reference.columns:
        a, b = ours[column].to_numpy(), reference[column].to_numpy()
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=column)
        differ = ~np.isnan(a) & (a != b)
        if differ.any():
            gap = levels[column].to_numpy()[differ]
            assert (np.abs(gap) < 1e-9).all(), (column, gap)
            assert (a[differ] == 1.0).all(), column
        assert differ.sum() <= 0.001 * len(a), column


def ma_gaps(close: pd.Series, volume: pd.Series | None) -> pd.DataFrame:
    """Relative gap between the two averages of each signal (to recognise ties)."""
    out = {}
    series = {"ma": close}
    if volume is not None:
        direction = np.where(close >= close.shift(1), 1.0, -1.0)
        series["vol"] = (volume * direction).iloc[1:].cumsum().reindex(close.index).fillna(0.0)
    for kind, x in series.items():
        for s in (1, 2, 3):
            for lw in (9, 12):
                a, b = x.rolling(s).mean(), x.rolling(lw).mean()
                out[f"neely_{kind}_{s}_{lw}"] = (a - b) / np.maximum(np.abs(b), 1.0)
    for m in (9, 12):
        out[f"neely_mom_{m}"] = close - close.shift(m)
    return pd.DataFrame(out)


def test_neely_signals_match_pandas_on_synthetic_ohlcv(ohlcv_bars: pd.DataFrame) -> None:
    table = build_features(ohlcv_bars, NEELY_SIGNALS)
    for symbol, rows in ohlcv_bars.groupby("symbol"):
        close, volume = rows["close"].reset_index(drop=True), rows["volume"].reset_index(drop=True)
        ours = pd.DataFrame(table.xs(symbol, level="symbol")).reset_index(drop=True)
        assert_signals_match(ours, neely_pandas(close, volume), ma_gaps(close, volume))


def test_neely_price_signals_match_pandas_on_real_data(sp500_bars: pd.DataFrame) -> None:
    names = [n for n in NEELY_SIGNALS if not n.startswith("neely_vol")]
    table = build_features(sp500_bars, names)
    for symbol, rows in sp500_bars.groupby("symbol"):
        close = rows["close"].reset_index(drop=True)
        ours = pd.DataFrame(table.xs(symbol, level="symbol")).reset_index(drop=True)
        assert_signals_match(ours, neely_pandas(close, None), ma_gaps(close, None))


def test_neely_on_flat_prices_and_zero_volume() -> None:
    # exact ties (flat price, no volume): MA_s == MA_l, so every signal is 1
    close = np.full(30, 10.0)
    assert (ma_signal(close, 2, 9)[8:] == 1.0).all()
    assert (ma_signal(on_balance_volume(close, np.zeros(30)), 3, 12)[11:] == 1.0).all()
    # flat price with volume: D = +1 (close_k >= close_{k-1}), OBV rises, so MA_1 >= MA_9
    obv = on_balance_volume(close, np.full(30, 100.0))
    np.testing.assert_array_equal(obv, 100.0 * np.arange(30))
    assert (ma_signal(obv, 1, 9)[8:] == 1.0).all()


def test_obv_definition() -> None:
    close = np.array([10.0, 11.0, 11.0, 9.0, 12.0])
    volume = np.array([5.0, 1.0, 2.0, 4.0, 8.0])
    np.testing.assert_array_equal(on_balance_volume(close, volume), [0.0, 1.0, 3.0, -1.0, 7.0])


def test_ma_windows_include_the_current_bar() -> None:
    # MA off by one was a defect of seed 001: MA_2 at t must be (x_t + x_{t-1}) / 2
    x = np.array([1.0, 1, 1, 1, 1, 1, 1, 1, 1, 5])
    assert ma_signal(x, 1, 9)[-1] == 1.0  # 5 >= (8 + 5) / 9
    y = np.array([9.0, 1, 1, 1, 1, 1, 1, 1, 1, 1])
    # MA_9 at the last bar is 1 (the 9 has left the window): 1 >= 1; with an off-by-one window it would be 0
    assert ma_signal(y, 1, 9)[-1] == 1.0
    assert ma_signal(y, 1, 9)[-2] == 0.0  # window still holds the 9


@settings(max_examples=60, deadline=None)
@given(
    prices=st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=40),
    volumes=st.lists(st.integers(min_value=0, max_value=3), min_size=40, max_size=40),
)
def test_neely_equals_pandas_exactly_on_tie_heavy_integer_data(prices: list[int], volumes: list[int]) -> None:
    # small integers: sums are exact in both implementations, so even ties must agree bit for bit
    close = pd.Series(prices, dtype=float)
    volume = pd.Series(volumes[: len(prices)], dtype=float)
    reference = neely_pandas(close, volume)
    obv = on_balance_volume(close.to_numpy(dtype=np.float64), volume.to_numpy(dtype=np.float64))
    for s in (1, 2, 3):
        for lw in (9, 12):
            np.testing.assert_array_equal(
                ma_signal(close.to_numpy(dtype=np.float64), s, lw), reference[f"neely_ma_{s}_{lw}"]
            )
            np.testing.assert_array_equal(ma_signal(obv, s, lw), reference[f"neely_vol_{s}_{lw}"])


# ---------------------------------------------------------------- TA-Lib pass-through


def test_talib_values_are_passed_through_unchanged(ohlcv_bars: pd.DataFrame) -> None:
    names = [
        "macd",
        "boll_ub",
        "boll_lb",
        "rsi_30",
        "cci_30",
        "dx_30",
        "sma_20",
        "sma_30",
        "sma_50",
        "sma_60",
        "sma_200",
    ]
    table = build_features(ohlcv_bars, names)
    for symbol, rows in ohlcv_bars.groupby("symbol"):
        h, lo, c = (rows[k].to_numpy() for k in ("high", "low", "close"))
        upper, _, lower = talib.BBANDS(c, timeperiod=20, nbdevup=2, nbdevdn=2, matype=talib.MA_Type.SMA)
        expected = {
            "macd": talib.MACD(c, fastperiod=12, slowperiod=26, signalperiod=9)[0],
            "boll_ub": upper,
            "boll_lb": lower,
            "rsi_30": talib.RSI(c, timeperiod=30),
            "cci_30": talib.CCI(h, lo, c, timeperiod=30),
            "dx_30": talib.DX(h, lo, c, timeperiod=30),
            **{f"sma_{p}": talib.SMA(c, timeperiod=p) for p in (20, 30, 50, 60, 200)},
        }
        ours = table.xs(symbol, level="symbol")
        for name, values in expected.items():
            np.testing.assert_array_equal(ours[name].to_numpy(), values, err_msg=f"{symbol} {name}")


# ---------------------------------------------------------------- log changes


def test_log_return_and_deng_diffs(sp500_bars: pd.DataFrame) -> None:
    table = build_features(sp500_bars, ["log_return", "deng_log_diffs"], n_diffs=5)
    for symbol, rows in sp500_bars.groupby("symbol"):
        close = rows["close"].reset_index(drop=True)
        ours = table.xs(symbol, level="symbol").reset_index(drop=True)
        expected = np.log(close / close.shift(1))
        np.testing.assert_allclose(ours["log_return"], expected, rtol=1e-12, atol=1e-15)
        for k in range(5):
            np.testing.assert_array_equal(ours[f"deng_log_diffs_{k}"], ours["log_return"].shift(k))


def test_log_volume_change_is_finite_on_zero_volume(ohlcv_bars: pd.DataFrame) -> None:
    table = build_features(ohlcv_bars, ["log_volume_change"])
    for symbol, rows in ohlcv_bars.groupby("symbol"):
        volume = rows["volume"].reset_index(drop=True)
        assert (volume == 0).any()
        ours = table.xs(symbol, level="symbol")["log_volume_change"].to_numpy()
        expected = np.log((1 + volume.to_numpy()[1:]) / (1 + volume.to_numpy()[:-1]))
        np.testing.assert_allclose(ours[1:], expected, rtol=1e-12, atol=1e-15)
        assert np.isnan(ours[0]) and np.isfinite(ours[1:]).all()
