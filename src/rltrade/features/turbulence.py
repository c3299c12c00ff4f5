"""The turbulence index of Kritzman & Li (2010), vectorised.

``turb_t = (r_t - mu_t)^T pinv(Sigma_t) (r_t - mu_t)`` where ``r_t`` is the vector of simple
close-to-close returns on timestamp t and ``mu_t``, ``Sigma_t`` are the mean and the sample
covariance (ddof=1) of the returns of the previous ``window`` timestamps, ``t-window .. t-1``
(t itself excluded).

Window sums of ``r`` and ``r r^T`` come from prefix sums (O(T * D^2) work), restarted at
fixed block boundaries so that rounding never depends on how much data follows (the value at t
is bit-identical whatever comes after t) and cancellation stays small on long histories. The
pseudo-inverse quadratic form uses one batched symmetric eigendecomposition per distinct set of
usable assets (O(D^3) per timestamp with D, the number of symbols, small).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from rltrade.features.base import Feature, FeatureError, FloatArray, nan_array

DEFAULT_WINDOW = 252
# Eigenvalues of the covariance below PINV_RTOL x the largest count as zero. A covariance is
# singular when the window has fewer days than assets or assets are collinear; its zero
# eigenvalues then come out as rounding noise (~1e-16 relative) and NumPy's default cut-off
# (D * eps) would invert some of them, blowing the index up to ~1e15.
PINV_RTOL = 1e-10
# Target timestamps per block. Blocks start at fixed multiples of BLOCK, never at a position that
# depends on the length of the input, so truncating the data cannot change the rounding.
BLOCK = 256


def simple_returns(close: FloatArray) -> FloatArray:
    """Row-wise simple returns ``close_t / close_{t-1} - 1`` of a ``(T, D)`` matrix; the first row is NaN."""
    returns = np.full(close.shape, np.nan)
    returns[1:] = close[1:] / close[:-1] - 1.0
    return returns


def _quadratic_form_pinv(cov: FloatArray, dev: FloatArray) -> FloatArray:
    """``dev_n^T pinv(cov_n) dev_n`` for a batch ``cov`` (n, k, k), ``dev`` (n, k).

    The pseudo-inverse keeps eigenvalues whose magnitude exceeds ``PINV_RTOL * max|eigenvalue|``,
    i.e. ``numpy.linalg.pinv(cov, rtol=PINV_RTOL)``.
    """
    eigenvalues, eigenvectors = np.linalg.eigh(cov)
    magnitude = np.abs(eigenvalues)
    cutoff = PINV_RTOL * magnitude.max(axis=1, keepdims=True)
    keep = magnitude > cutoff
    inverse = np.zeros_like(eigenvalues)
    np.divide(1.0, eigenvalues, out=inverse, where=keep)
    projection = np.einsum("nij,ni->nj", eigenvectors, dev)
    result: FloatArray = np.einsum("nj,nj->n", projection * projection, inverse)
    return result


def turbulence_index(close: FloatArray, window: int = DEFAULT_WINDOW) -> FloatArray:
    """Turbulence per timestamp of a ``(T, D)`` close matrix (NaN where a symbol has no bar).

    At timestamp t an asset is used when it has a finite return at t and at each of the
    ``window`` previous timestamps; the index is NaN when no asset qualifies (in particular for
    the first ``window + 1`` timestamps). A missing bar therefore removes that asset from the
    index for the next ``window + 1`` timestamps.

    Parameters
    ----------
    close:
        ``(T, D)`` matrix of closes, timestamps in increasing order.
    window:
        Number of previous timestamps used to estimate the mean and covariance (>= 2).

    Returns
    -------
    numpy.ndarray
        ``(T,)`` float64 array. Nothing is cached here: envs over the same bars share the index of
        one :class:`~rltrade.envs.market.Market` (:meth:`~rltrade.envs.market.Market.turbulence`).
    """
    if window < 2:
        raise FeatureError(f"turbulence: turbulence_window must be >= 2, got {window}")
    return _compute_turbulence(np.ascontiguousarray(close, dtype=np.float64), window)


def _compute_turbulence(close: FloatArray, window: int) -> FloatArray:
    n_times, n_assets = close.shape
    out = nan_array(n_times)
    if n_times <= window or n_assets == 0:
        return out
    returns = simple_returns(close)
    finite = np.isfinite(returns)
    filled = np.where(finite, returns, 0.0)
    for start in range(window, n_times, BLOCK):
        stop = min(start + BLOCK, n_times)
        out[start:stop] = _turbulence_block(filled, finite, start, stop, window)
    return out


def _turbulence_block(filled: FloatArray, finite: NDArray[np.bool_], start: int, stop: int, window: int) -> FloatArray:
    """Turbulence for timestamps ``start .. stop-1`` from rows ``start-window .. stop-1``."""
    first = start - window
    rows = filled[first:stop]
    zero = np.zeros((1, *rows.shape[1:]))
    # Prefix sums over the block's rows, with a leading zero row: prefix[j] = sum of rows[:j].
    prefix_1 = np.concatenate([zero, np.cumsum(rows, axis=0)])
    prefix_2 = np.concatenate(
        [zero[:, :, None] * zero[:, None, :], np.cumsum(rows[:, :, None] * rows[:, None, :], axis=0)]
    )
    prefix_n = np.concatenate([np.zeros((1, rows.shape[1]), dtype=np.int64), np.cumsum(finite[first:stop], axis=0)])

    local = np.arange(start, stop) - first  # index of t in `rows`; its window is rows[local-window:local]
    counts = prefix_n[local] - prefix_n[local - window]
    usable = (counts == window) & finite[start:stop]
    mean = (prefix_1[local] - prefix_1[local - window]) / window
    second = prefix_2[local] - prefix_2[local - window]
    cov = (second - window * mean[:, :, None] * mean[:, None, :]) / (window - 1)
    dev = rows[local] - mean

    result = nan_array(stop - start)
    # One batched solve per distinct set of usable assets; the set rarely changes.
    patterns, inverse = np.unique(usable, axis=0, return_inverse=True)
    for p, pattern in enumerate(patterns):
        assets = np.flatnonzero(pattern)
        if assets.size == 0:
            continue
        days = np.flatnonzero(inverse.reshape(-1) == p)
        sub_cov = cov[np.ix_(days, assets, assets)]
        sub_dev = dev[np.ix_(days, assets)]
        result[days] = _quadratic_form_pinv(sub_cov, sub_dev)
    return result


def _turbulence(data: Mapping[str, FloatArray], turbulence_window: int = DEFAULT_WINDOW) -> dict[str, FloatArray]:
    """Turbulence index (Kritzman & Li): ``(r_t - mu)^T pinv(Sigma) (r_t - mu)``, one value per timestamp.

    ``r_t``: simple close-to-close returns of all symbols at t; ``mu``, ``Sigma``: mean and
    sample covariance (ddof=1) over the previous ``turbulence_window`` timestamps (default 252),
    t excluded; pseudo-inverse with relative cut-off 1e-10 on eigenvalues. Only symbols with
    a return at t and at every timestamp of the window are used. The value is repeated on
    every symbol's row. Input: close. Warm-up:
    ``turbulence_window + 1`` timestamps.
    """
    return {"turbulence": turbulence_index(data["close"], window=int(turbulence_window))}


TURBULENCE_FEATURES: tuple[Feature, ...] = (
    Feature(
        name="turbulence",
        compute=_turbulence,
        inputs=("close",),
        warmup=lambda turbulence_window: int(turbulence_window) + 1,
        doc=_turbulence.__doc__ or "",
        params={"turbulence_window": DEFAULT_WINDOW},
        cross_sectional=True,
    ),
)
