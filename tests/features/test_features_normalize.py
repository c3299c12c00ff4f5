"""Normalisers and the k-means discretiser: fitted on train only, applied unchanged, JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from rltrade.features import (
    FeatureError,
    KMeansDiscretizer,
    MinMaxNormalizer,
    ZScoreNormalizer,
    build_features,
    feature_warmup,
    normalizer_from_dict,
)


@pytest.fixture(scope="module")
def split(ohlcv_bars: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    names = ["log_return", "rsi_30", "cci_30", "log_volume_change"]
    table = build_features(ohlcv_bars, names)
    times = table.index.get_level_values("timestamp")
    cut = times.unique()[200]
    train = table[times <= cut]
    test = table[times > cut]
    return train, test


def json_round_trip(data: dict[str, object]) -> dict[str, object]:
    result: dict[str, object] = json.loads(json.dumps(data))
    return result


def test_zscore_applies_train_statistics(split: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    train, test = split
    scaler = ZScoreNormalizer().fit(train)
    out = scaler.transform(test)
    expected = (test - train.mean()) / train.std(ddof=0)
    pd.testing.assert_frame_equal(out, expected, rtol=1e-12)
    # the test window has its own statistics, which were not used
    assert not np.allclose(out.mean().to_numpy(), 0.0, atol=1e-3)
    fitted = scaler.transform(train)
    np.testing.assert_allclose(fitted.mean().to_numpy(), 0.0, atol=1e-12)
    np.testing.assert_allclose(fitted.std(ddof=0).to_numpy(), 1.0, rtol=1e-12)
    assert fitted.iloc[:4].isna().all().all()  # warm-up rows stay NaN


def test_minmax_applies_train_statistics(split: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    train, test = split
    scaler = MinMaxNormalizer().fit(train)
    fitted = scaler.transform(train)
    np.testing.assert_allclose(fitted.min().to_numpy(), 0.0, atol=1e-15)
    np.testing.assert_allclose(fitted.max().to_numpy(), 1.0, rtol=1e-15)
    expected = (test - train.min()) / (train.max() - train.min())
    pd.testing.assert_frame_equal(scaler.transform(test), expected, rtol=1e-12)
    pd.testing.assert_frame_equal(scaler.inverse_transform(scaler.transform(test)), test, rtol=1e-12)


@pytest.mark.parametrize("cls", [ZScoreNormalizer, MinMaxNormalizer])
def test_scalers_round_trip_through_json(
    cls: type[ZScoreNormalizer] | type[MinMaxNormalizer], split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    train, test = split
    scaler = cls().fit(train)
    restored = normalizer_from_dict(json_round_trip(scaler.to_dict()))
    assert type(restored) is cls
    before, after = scaler.transform(test).to_numpy(), restored.transform(test).to_numpy()
    assert before.tobytes() == after.tobytes()
    restored_direct = cls.from_dict(json_round_trip(scaler.to_dict()))
    assert restored_direct.transform(test).to_numpy().tobytes() == before.tobytes()


def test_arrays_and_degenerate_columns() -> None:
    train = np.array([[1.0, 5.0], [3.0, 5.0], [np.nan, 5.0]])
    z = ZScoreNormalizer().fit(train)
    np.testing.assert_array_equal(z.transform(np.array([[2.0, 7.0]])), [[0.0, 2.0]])
    m = MinMaxNormalizer().fit(train)
    np.testing.assert_array_equal(m.transform(np.array([[2.0, 7.0]])), [[0.5, 2.0]])
    assert z.columns is None


def test_scalers_refuse_misuse(split: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    train, _ = split
    with pytest.raises(FeatureError, match="not fitted"):
        ZScoreNormalizer().transform(train)
    scaler = ZScoreNormalizer().fit(train)
    with pytest.raises(FeatureError, match="columns"):
        scaler.transform(train[train.columns[::-1]])
    with pytest.raises(FeatureError, match="no finite training value"):
        MinMaxNormalizer().fit(np.array([[np.nan, 1.0]]))
    with pytest.raises(FeatureError, match="kind"):
        MinMaxNormalizer.from_dict(scaler.to_dict())
    with pytest.raises(FeatureError, match="unknown normaliser kind"):
        normalizer_from_dict({"kind": "robust"})


def test_kmeans_discretiser(split: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    train, test = split
    start = feature_warmup(["rsi_30", "cci_30"])
    columns = ["rsi_30", "cci_30"]
    discretizer = KMeansDiscretizer(n_clusters=6, seed=0).fit(train[columns])
    assert discretizer.centroids is not None and discretizer.centroids.shape == (6, 2)
    # scaling fitted on the training window only
    assert discretizer.scaler is not None and discretizer.scaler.offset is not None
    np.testing.assert_array_equal(discretizer.scaler.offset, train[columns].min().to_numpy())

    states = discretizer.transform(test[columns])
    assert isinstance(states, pd.Series) and states.index.equals(test.index)
    assert set(np.unique(states)) <= set(range(6))
    train_states = discretizer.transform(train[columns])
    assert (train_states.groupby(level="symbol").head(start) == -1).all()  # warm-up rows: no state
    assert set(np.unique(train_states[train_states >= 0])) == set(range(6))

    # agrees with scikit-learn's own assignment on the training rows
    from sklearn.cluster import KMeans

    scaled = discretizer.scaler.transform(train[columns]).dropna()
    model = KMeans(n_clusters=6, n_init=10, random_state=0).fit(scaled.to_numpy())
    np.testing.assert_array_equal(discretizer.transform(train[columns]).loc[scaled.index], model.labels_)

    # same seed, same clusters; JSON round trip, same states
    again = KMeansDiscretizer(n_clusters=6, seed=0).fit(train[columns])
    np.testing.assert_array_equal(again.centroids, discretizer.centroids)
    restored = normalizer_from_dict(json_round_trip(discretizer.to_dict()))
    assert isinstance(restored, KMeansDiscretizer)
    pd.testing.assert_series_equal(restored.transform(test[columns]), states)
    np.testing.assert_array_equal(
        restored.transform(test[columns].to_numpy()), discretizer.transform(test[columns].to_numpy())
    )


def test_kmeans_needs_enough_rows() -> None:
    with pytest.raises(FeatureError, match="complete training rows"):
        KMeansDiscretizer(n_clusters=6).fit(np.arange(10.0).reshape(5, 2))
    with pytest.raises(FeatureError, match="not fitted"):
        KMeansDiscretizer().transform(np.zeros((2, 2)))
