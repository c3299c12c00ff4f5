"""Normalisers and the k-means state discretiser, fitted on a training window and applied unchanged later.

Every object is fitted with ``fit(train)`` on training rows only, then ``transform(x)`` uses
the stored statistics whatever ``x`` is. ``to_dict()`` gives a JSON-able dict stored with the
model; ``from_dict`` (or :func:`normalizer_from_dict`) restores an object that gives
bit-identical output (floats survive a JSON round trip exactly).

Inputs are 2-D: a DataFrame (its column names are stored and checked on transform) or an
array of shape (rows, features). NaN rows (e.g. feature warm-ups) are ignored when fitting and
stay NaN when transforming.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self, TypeVar, overload

import numpy as np
import pandas as pd

from rltrade.features.base import FeatureError, FloatArray

IntArray = np.ndarray[Any, np.dtype[np.int64]]
ArrayOrFrame = TypeVar("ArrayOrFrame", FloatArray, pd.DataFrame)

FORMAT_VERSION = 1


def _values(x: pd.DataFrame | FloatArray) -> FloatArray:
    values = x.to_numpy(dtype=np.float64, na_value=np.nan) if isinstance(x, pd.DataFrame) else np.asarray(x, float)
    if values.ndim != 2:
        raise FeatureError(f"expected a 2-D table (rows, features), got shape {values.shape}")
    return values


def _columns(x: pd.DataFrame | FloatArray) -> list[str] | None:
    return [str(c) for c in x.columns] if isinstance(x, pd.DataFrame) else None


class _ColumnScaler:
    """Shared machinery: ``(x - offset) / scale`` column by column with fitted ``offset`` and ``scale``."""

    kind: ClassVar[str] = ""

    def __init__(self) -> None:
        self.columns: list[str] | None = None
        self.offset: FloatArray | None = None
        self.scale: FloatArray | None = None

    def _fit_stats(self, values: FloatArray) -> tuple[FloatArray, FloatArray]:
        raise NotImplementedError

    def fit(self, x: pd.DataFrame | FloatArray) -> Self:
        """Fit on training rows ``x`` (NaN entries ignored per column).

        Parameters
        ----------
        x:
            Training features, 2-D.
        """
        values = _values(x)
        if not np.isfinite(values).any(axis=0).all():
            raise FeatureError(f"{type(self).__name__}.fit: some column has no finite training value")
        self.columns = _columns(x)
        self.offset, self.scale = self._fit_stats(values)
        return self

    def _check_fitted(self, x: pd.DataFrame | FloatArray) -> tuple[FloatArray, FloatArray]:
        if self.offset is None or self.scale is None:
            raise FeatureError(f"{type(self).__name__} is not fitted; call fit(train) first")
        columns = _columns(x)
        if self.columns is not None and columns is not None and columns != self.columns:
            raise FeatureError(f"{type(self).__name__}: columns {columns} differ from the fitted {self.columns}")
        if _values(x).shape[1] != len(self.offset):
            raise FeatureError(f"{type(self).__name__}: expected {len(self.offset)} columns, got {_values(x).shape[1]}")
        return self.offset, self.scale

    def transform(self, x: ArrayOrFrame) -> ArrayOrFrame:
        """Scale ``x`` with the fitted statistics; returns the same type (a DataFrame keeps its index)."""
        offset, scale = self._check_fitted(x)
        scaled = (_values(x) - offset) / scale
        if isinstance(x, pd.DataFrame):
            return pd.DataFrame(scaled, index=x.index, columns=x.columns)
        return scaled

    def inverse_transform(self, x: ArrayOrFrame) -> ArrayOrFrame:
        """Undo :meth:`transform`."""
        offset, scale = self._check_fitted(x)
        values = _values(x) * scale + offset
        if isinstance(x, pd.DataFrame):
            return pd.DataFrame(values, index=x.index, columns=x.columns)
        return values

    def fit_transform(self, x: ArrayOrFrame) -> ArrayOrFrame:
        """``fit(x)`` then ``transform(x)`` (only for training data)."""
        return self.fit(x).transform(x)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description of the fitted scaler."""
        if self.offset is None or self.scale is None:
            raise FeatureError(f"{type(self).__name__} is not fitted; nothing to serialise")
        return {
            "kind": self.kind,
            "version": FORMAT_VERSION,
            "columns": self.columns,
            "offset": self.offset.tolist(),
            "scale": self.scale.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Restore a scaler written by :meth:`to_dict`."""
        _check_kind(data, cls.kind)
        scaler = cls()
        scaler.columns = None if data["columns"] is None else [str(c) for c in data["columns"]]
        scaler.offset = np.asarray(data["offset"], dtype=np.float64)
        scaler.scale = np.asarray(data["scale"], dtype=np.float64)
        return scaler


class ZScoreNormalizer(_ColumnScaler):
    """``(x - mean) / std`` with the mean and population std (ddof=0) of the training rows.

    A column with zero training std is only centred (scale 1), so it maps to 0, not to inf.
    """

    kind = "zscore"

    def _fit_stats(self, values: FloatArray) -> tuple[FloatArray, FloatArray]:
        mean = np.nanmean(values, axis=0)
        std = np.nanstd(values, axis=0)
        return mean, np.where(std > 0, std, 1.0)


class MinMaxNormalizer(_ColumnScaler):
    """``(x - min) / (max - min)`` with the training min and max: training rows land in [0, 1].

    Later rows may fall outside [0, 1] (they are not clipped). A constant training column maps to 0.
    """

    kind = "minmax"

    def _fit_stats(self, values: FloatArray) -> tuple[FloatArray, FloatArray]:
        low = np.nanmin(values, axis=0)
        span = np.nanmax(values, axis=0) - low
        return low, np.where(span > 0, span, 1.0)


class KMeansDiscretizer:
    """Discrete states from k-means clusters of min-max scaled features (the order-book Q-learning state).

    ``fit`` scales the training rows to [0, 1] with a :class:`MinMaxNormalizer` fitted on
    them, then runs scikit-learn's ``KMeans`` with a fixed seed. ``transform`` assigns each row
    to the nearest stored centroid (squared Euclidean distance, lowest index on ties),
    computed with numpy, so a restored discretiser needs no scikit-learn object. Rows with a
    NaN get state -1.

    Parameters
    ----------
    n_clusters:
        Number of states k (default 6).
    seed:
        ``random_state`` of ``KMeans``.
    n_init:
        Number of k-means restarts.
    """

    kind: ClassVar[str] = "kmeans"

    def __init__(self, n_clusters: int = 6, seed: int = 0, n_init: int = 10) -> None:
        self.n_clusters = n_clusters
        self.seed = seed
        self.n_init = n_init
        self.scaler: MinMaxNormalizer | None = None
        self.centroids: FloatArray | None = None

    def fit(self, x: pd.DataFrame | FloatArray) -> Self:
        """Fit the scaler and the clusters on training rows ``x`` (rows with NaN are skipped)."""
        from sklearn.cluster import KMeans  # imported here: scikit-learn is slow to import

        self.scaler = MinMaxNormalizer().fit(x)
        scaled = self._scaled(x)
        rows = scaled[np.isfinite(scaled).all(axis=1)]
        if len(rows) < self.n_clusters:
            raise FeatureError(
                f"KMeansDiscretizer.fit: {len(rows)} complete training rows for {self.n_clusters} clusters"
            )
        model = KMeans(n_clusters=self.n_clusters, n_init=self.n_init, random_state=self.seed).fit(rows)
        self.centroids = np.asarray(model.cluster_centers_, dtype=np.float64)
        return self

    @overload
    def transform(self, x: pd.DataFrame) -> pd.Series: ...
    @overload
    def transform(self, x: FloatArray) -> IntArray: ...
    def transform(self, x: pd.DataFrame | FloatArray) -> IntArray | pd.Series:
        """State of each row (0..k-1, or -1 for a row with NaN); a Series on ``x``'s index for a DataFrame."""
        if self.scaler is None or self.centroids is None:
            raise FeatureError("KMeansDiscretizer is not fitted; call fit(train) first")
        scaled = self._scaled(x)
        distances = ((scaled[:, None, :] - self.centroids[None, :, :]) ** 2).sum(axis=2)
        complete = np.isfinite(scaled).all(axis=1)
        states = np.full(len(scaled), -1, dtype=np.int64)
        if complete.any():
            states[complete] = np.argmin(distances[complete], axis=1)
        if isinstance(x, pd.DataFrame):
            return pd.Series(states, index=x.index, name="state")
        return states

    def _scaled(self, x: pd.DataFrame | FloatArray) -> FloatArray:
        if self.scaler is None:
            raise FeatureError("KMeansDiscretizer is not fitted; call fit(train) first")
        if isinstance(x, pd.DataFrame):
            return _values(self.scaler.transform(x))
        return self.scaler.transform(_values(x))

    @overload
    def fit_transform(self, x: pd.DataFrame) -> pd.Series: ...
    @overload
    def fit_transform(self, x: FloatArray) -> IntArray: ...
    def fit_transform(self, x: pd.DataFrame | FloatArray) -> IntArray | pd.Series:
        """``fit(x)`` then ``transform(x)`` (only for training data)."""
        return self.fit(x).transform(x)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description of the fitted discretiser."""
        if self.scaler is None or self.centroids is None:
            raise FeatureError("KMeansDiscretizer is not fitted; nothing to serialise")
        return {
            "kind": self.kind,
            "version": FORMAT_VERSION,
            "n_clusters": self.n_clusters,
            "seed": self.seed,
            "n_init": self.n_init,
            "scaler": self.scaler.to_dict(),
            "centroids": self.centroids.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Restore a discretiser written by :meth:`to_dict`."""
        _check_kind(data, cls.kind)
        discretizer = cls(n_clusters=int(data["n_clusters"]), seed=int(data["seed"]), n_init=int(data["n_init"]))
        discretizer.scaler = MinMaxNormalizer.from_dict(data["scaler"])
        discretizer.centroids = np.asarray(data["centroids"], dtype=np.float64)
        return discretizer


Normalizer = ZScoreNormalizer | MinMaxNormalizer | KMeansDiscretizer

_KINDS: dict[str, type[ZScoreNormalizer] | type[MinMaxNormalizer] | type[KMeansDiscretizer]] = {
    "zscore": ZScoreNormalizer,
    "minmax": MinMaxNormalizer,
    "kmeans": KMeansDiscretizer,
}


def _check_kind(data: dict[str, Any], kind: str) -> None:
    if data.get("kind") != kind:
        raise FeatureError(f"expected a serialised {kind!r} object, got kind {data.get('kind')!r}")
    if data.get("version") != FORMAT_VERSION:
        raise FeatureError(f"unsupported {kind!r} format version {data.get('version')!r} (expected {FORMAT_VERSION})")


def normalizer_from_dict(data: dict[str, Any]) -> Normalizer:
    """Restore any object of this module from its :meth:`to_dict` output (dispatch on ``kind``)."""
    kind = data.get("kind")
    if kind not in _KINDS:
        raise FeatureError(f"unknown normaliser kind {kind!r}; known: {sorted(_KINDS)}")
    return _KINDS[str(kind)].from_dict(data)
