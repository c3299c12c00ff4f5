"""build_features: registry, warm-ups, columns, errors and input handling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rltrade.errors import DataValidationError, RLTradeError
from rltrade.features import (
    FEATURES,
    FINRL_INDICATORS,
    NEELY_SIGNALS,
    Feature,
    FeatureError,
    build_features,
    feature_columns,
    feature_warmup,
)

ALL = sorted(FEATURES)


def leading_nan_rows(values: np.ndarray) -> int:
    """Length of the leading run of NaN."""
    finite = ~np.isnan(values)
    return int(np.argmax(finite)) if finite.any() else len(values)


def test_registry_has_the_specified_features() -> None:
    expected = {
        "log_return",
        "log_volume_change",
        "deng_log_diffs",
        "macd",
        "boll_ub",
        "boll_lb",
        "rsi_30",
        "cci_30",
        "dx_30",
        "turbulence",
        *(f"sma_{p}" for p in (20, 30, 50, 60, 200)),
        *(f"neely_ma_{s}_{lw}" for s in (1, 2, 3) for lw in (9, 12)),
        *(f"neely_mom_{m}" for m in (9, 12)),
        *(f"neely_vol_{s}_{lw}" for s in (1, 2, 3) for lw in (9, 12)),
    }
    assert set(FEATURES) == expected
    assert len(NEELY_SIGNALS) == 14
    for feature in FEATURES.values():
        assert isinstance(feature, Feature)
        assert feature.doc.strip(), feature.name
        assert "Warm-up" in feature.doc, feature.name
        assert feature.inputs


@pytest.mark.parametrize("name", ALL)
def test_warmup_is_exact_and_nothing_is_back_filled(name: str, ohlcv_bars: pd.DataFrame) -> None:
    table = build_features(ohlcv_bars, [name])
    warmup = FEATURES[name].warmup_rows()
    assert table.columns.tolist() == FEATURES[name].output_columns()
    for symbol, rows in table.groupby(level="symbol"):
        assert len(rows) == 300
        per_column = [leading_nan_rows(rows[c].to_numpy()) for c in rows.columns]
        assert max(per_column) == warmup, (symbol, per_column)
        assert np.isfinite(rows.to_numpy()[warmup:]).all(), symbol


def test_output_index_and_order(ohlcv_bars: pd.DataFrame) -> None:
    names = ["log_return", "sma_20", "turbulence", "deng_log_diffs"]
    table = build_features(ohlcv_bars, names)
    assert table.index.names == ["timestamp", "symbol"]
    assert table.index.is_monotonic_increasing
    assert str(table.index.get_level_values("timestamp").dtype) == "datetime64[ns, UTC]"
    assert (table.dtypes == np.float64).all()
    assert table.columns.tolist() == feature_columns(names)
    shuffled = ohlcv_bars.sample(frac=1.0, random_state=3)
    pd.testing.assert_frame_equal(build_features(shuffled, names), table)


def test_turbulence_is_repeated_per_symbol(ohlcv_bars: pd.DataFrame) -> None:
    turbulence = build_features(ohlcv_bars, ["turbulence"])["turbulence"].unstack("symbol")
    values = turbulence.to_numpy()
    np.testing.assert_array_equal(values, np.repeat(values[:, :1], values.shape[1], axis=1))


def test_feature_warmup_and_columns_of_a_set() -> None:
    assert feature_warmup(FINRL_INDICATORS) == 59
    assert feature_warmup([*FINRL_INDICATORS, "turbulence"]) == 253
    assert feature_warmup(["turbulence"], turbulence_window=20) == 21
    assert feature_warmup(["deng_log_diffs"], n_diffs=4) == 4
    assert feature_warmup(NEELY_SIGNALS) == 12
    assert feature_warmup([]) == 0
    assert feature_columns("deng_log_diffs", n_diffs=3) == [f"deng_log_diffs_{k}" for k in range(3)]


def test_parameters_reach_their_feature(ohlcv_bars: pd.DataFrame) -> None:
    table = build_features(ohlcv_bars, ["deng_log_diffs", "turbulence"], n_diffs=3, turbulence_window=20)
    assert table.columns.tolist() == [
        "deng_log_diffs_0",
        "deng_log_diffs_1",
        "deng_log_diffs_2",
        "turbulence",
    ]
    first = table.xs("AAA", level="symbol")
    assert leading_nan_rows(first["turbulence"].to_numpy()) == 21
    assert leading_nan_rows(first["deng_log_diffs_2"].to_numpy()) == 3


def test_unknown_feature_lists_close_matches(ohlcv_bars: pd.DataFrame) -> None:
    with pytest.raises(FeatureError, match=r"unknown feature 'sma_21'.*did you mean.*sma_20") as info:
        build_features(ohlcv_bars, ["log_return", "sma_21"])
    assert isinstance(info.value, RLTradeError)
    with pytest.raises(FeatureError, match=r"neely_mom_9"):
        build_features(ohlcv_bars, "neely_momentum_9")


def test_unknown_parameter_is_refused(ohlcv_bars: pd.DataFrame) -> None:
    with pytest.raises(FeatureError, match=r"unknown feature parameter.*n_dif.*accept: n_diffs"):
        build_features(ohlcv_bars, ["deng_log_diffs"], n_difs=3)
    with pytest.raises(FeatureError, match="turbulence_window"):
        build_features(ohlcv_bars, ["log_return"], turbulence_window=10)


@pytest.mark.parametrize(
    ("name", "column"),
    [
        ("cci_30", "high"),
        ("dx_30", "high"),
        ("log_volume_change", "volume"),
        ("neely_vol_1_9", "volume"),
        ("neely_vol_3_12", "volume"),
    ],
)
def test_close_only_data_refuses_features_that_need_more(name: str, column: str, sp500_bars: pd.DataFrame) -> None:
    with pytest.raises(FeatureError, match=rf"feature '{name}' needs column '{column}', which is all NaN for AAPL"):
        build_features(sp500_bars, ["log_return", name])


def test_missing_column_is_named(ohlcv_bars: pd.DataFrame) -> None:
    with pytest.raises(FeatureError, match=r"feature 'neely_vol_2_9' needs column 'volume', which the bars do not"):
        build_features(ohlcv_bars.drop(columns="volume"), ["neely_vol_2_9"])
    # features that do not read the column work without it
    build_features(ohlcv_bars.drop(columns=["volume", "open", "high", "low"]), ["neely_ma_1_9", "macd"])


def test_one_symbol_lacking_a_column_is_named(ohlcv_bars: pd.DataFrame) -> None:
    bars = ohlcv_bars.copy()
    bars.loc[bars["symbol"] == "CCC", ["high", "low"]] = np.nan
    with pytest.raises(FeatureError, match=r"'cci_30' needs column 'high', which is all NaN for CCC"):
        build_features(bars, ["cci_30"])


def test_close_only_features_work_on_close_only_data(sp500_bars: pd.DataFrame) -> None:
    close_only = [n for n, f in FEATURES.items() if set(f.inputs) == {"close"}]
    table = build_features(sp500_bars, close_only)
    assert len(table) == len(sp500_bars)
    assert np.isfinite(table.groupby(level="symbol").tail(100).to_numpy()).all()


def test_duplicate_rows_are_refused(ohlcv_bars: pd.DataFrame) -> None:
    bars = pd.concat([ohlcv_bars, ohlcv_bars.iloc[[5]]])
    with pytest.raises(DataValidationError, match="duplicate"):
        build_features(bars, ["log_return"])
    with pytest.raises(DataValidationError, match="timestamp"):
        build_features(ohlcv_bars.drop(columns="timestamp"), ["log_return"])


def test_short_and_empty_inputs(ohlcv_bars: pd.DataFrame) -> None:
    short = ohlcv_bars.iloc[:8]  # two bars per symbol
    table = build_features(short, ALL)
    assert table["log_return"].notna().sum() == 4
    assert table.drop(columns=["log_return", "log_volume_change", "deng_log_diffs_0"]).isna().all().all()
    empty = build_features(ohlcv_bars.iloc[:0], ["log_return", "turbulence"])
    assert empty.empty and empty.columns.tolist() == ["log_return", "turbulence"]


def test_custom_registry(ohlcv_bars: pd.DataFrame) -> None:
    def double_close(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Twice the close. Warm-up: 0 rows."""
        return {"double_close": 2.0 * data["close"]}

    registry = {**FEATURES, "double_close": Feature("double_close", double_close, ("close",), lambda: 0, "x")}
    table = build_features(ohlcv_bars, ["double_close", "log_return"], registry=registry)
    expected = 2.0 * ohlcv_bars.set_index(["timestamp", "symbol"])["close"]
    np.testing.assert_array_equal(table["double_close"].to_numpy(), expected.sort_index().to_numpy())


def test_import_has_no_side_effects() -> None:
    import subprocess
    import sys

    code = "import logging, rltrade.features, rltrade.testing\nassert not logging.getLogger().handlers\nprint('ok')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "ok" and result.stderr == ""
