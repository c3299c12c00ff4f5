"""What a feature is: a named, documented, causal function of one symbol's bars (or of the panel).

A :class:`Feature` bundles the function that computes it with what a consumer must know
without running it: the input columns it reads, the names of the columns it produces, and
its warm-up (how many leading rows are NaN because the history is too short).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rltrade.errors import RLTradeError

FloatArray = NDArray[np.floating[Any]]  # float64 in practice; floating so pandas-stubs outputs type-check
ComputeFn = Callable[..., dict[str, FloatArray]]


class FeatureError(RLTradeError, ValueError):
    """A feature cannot be computed: unknown name, bad parameter, or an input column is missing."""


@dataclass(frozen=True)
class Feature:
    """One named feature.

    Parameters
    ----------
    name:
        Registry name, e.g. ``"rsi_30"``.
    compute:
        For a per-symbol feature: ``compute(data, **params) -> {column: array}`` where ``data``
        maps each input column to one symbol's float64 values in timestamp order, and every
        returned array has the same length. For a cross-sectional feature
        (``cross_sectional=True``): ``data`` maps each input column to a ``(T, D)`` matrix
        (timestamps x symbols, NaN where a symbol has no bar) and each returned array has
        length ``T`` (one value per timestamp).
    inputs:
        Bar columns the feature reads (``close``, ``volume``, ``high``, ...).
    warmup:
        ``warmup(**params) -> int``: the number of leading rows (per symbol; per timestamp
        for a cross-sectional feature) that are NaN, assuming the inputs have no NaN.
    doc:
        What the feature is: formula, price used, conventions.
    columns:
        ``columns(**params) -> list[str]``, the output column names; defaults to ``[name]``.
    params:
        The keyword parameters the feature accepts and their defaults.
    cross_sectional:
        True when the feature is computed across all symbols at each timestamp.
    """

    name: str
    compute: ComputeFn
    inputs: tuple[str, ...]
    warmup: Callable[..., int]
    doc: str
    columns: Callable[..., list[str]] | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    cross_sectional: bool = False

    @property
    def summary(self) -> str:
        """The first line of :attr:`doc`."""
        return self.doc.strip().splitlines()[0] if self.doc.strip() else self.name

    def resolve_params(self, **params: Any) -> dict[str, Any]:
        """Return this feature's parameters: its defaults updated with the ones it declares in ``params``."""
        return {key: params.get(key, default) for key, default in self.params.items()}

    def warmup_rows(self, **params: Any) -> int:
        """Number of leading NaN rows for the given parameters (unknown keys are ignored)."""
        return int(self.warmup(**self.resolve_params(**params)))

    def output_columns(self, **params: Any) -> list[str]:
        """Output column names for the given parameters (unknown keys are ignored)."""
        if self.columns is None:
            return [self.name]
        return list(self.columns(**self.resolve_params(**params)))


def nan_array(n: int) -> FloatArray:
    """A float64 array of ``n`` NaN."""
    return np.full(n, np.nan, dtype=np.float64)


def lagged(x: FloatArray, lag: int) -> FloatArray:
    """``x`` shifted ``lag`` rows into the future (value at t is ``x[t - lag]``), NaN-padded at the start."""
    out = nan_array(len(x))
    if lag == 0:
        out[:] = x
    elif lag < len(x):
        out[lag:] = x[:-lag]
    return out
