"""Test helpers shipped with the package: :func:`assert_causal` is the lookahead guard, and
:func:`synthetic_bars` the one generator of synthetic GBM bars the tests and benchmarks use.

The guard proves that a computation on bars is causal: for each cutoff t, its outputs stamped
<= t are bit-identical whether it sees (a) all the bars, (b) only the bars up to t, or (c) the
bars with every value after t randomly perturbed. Any dependence on later data (a ``shift(-1)``,
a back-fill, a statistic over the whole sample, a centred window) changes (b) or (c).

Works for features, env observations, action masks and decisions alike: ``fn`` may return

- a DataFrame or Series whose index is a DatetimeIndex, or a MultiIndex with a ``timestamp``
  level, or a DataFrame with a ``timestamp`` column;
- a numpy array whose first axis is aligned with the sorted unique timestamps of its input, or
  with the rows of its input (in the input's order);
- a dict / list / tuple of the above (e.g. ``{"obs": ..., "mask": ..., "actions": ...}``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "adj_close")
VOLUME_COLUMNS: tuple[str, ...] = ("volume",)

Cutoff = int | str | pd.Timestamp | np.datetime64


def perturb_after(bars: pd.DataFrame, cutoff: pd.Timestamp, rng: np.random.Generator) -> pd.DataFrame:
    """Return a copy of ``bars`` whose rows stamped after ``cutoff`` carry random values.

    Each such row's prices (open, high, low, close, adj_close) are multiplied by one common
    random factor ``exp(N(0, 0.2))``, so high >= open, close >= low still holds; volume is
    multiplied by an independent ``U(0, 3)`` factor. NaN stays NaN (a close-only source stays
    close-only). Rows, their order and timestamps are unchanged.

    Parameters
    ----------
    bars:
        Canonical bars.
    cutoff:
        Last timestamp kept as is.
    rng:
        Random generator.
    """
    out = bars.copy()
    after = (out["timestamp"] > cutoff).to_numpy()
    n = int(after.sum())
    price_factor = np.exp(rng.normal(0.0, 0.2, n))
    for column in PRICE_COLUMNS:
        if column in out.columns:
            values = out[column].to_numpy(dtype=np.float64, copy=True)
            values[after] *= price_factor
            out[column] = values
    for column in VOLUME_COLUMNS:
        if column in out.columns:
            values = out[column].to_numpy(dtype=np.float64, copy=True)
            values[after] *= rng.uniform(0.0, 3.0, n)
            out[column] = values
    return out


def _resolve_cutoffs(bars: pd.DataFrame, cutoffs: Iterable[Cutoff]) -> list[pd.Timestamp]:
    """Integers index the sorted unique timestamps (negative from the end); anything else is a timestamp."""
    times = pd.DatetimeIndex(pd.unique(bars["timestamp"])).sort_values()
    resolved: list[pd.Timestamp] = []
    for cutoff in cutoffs:
        if isinstance(cutoff, (int, np.integer)):
            stamp = times[int(cutoff)]
        else:
            stamp = pd.Timestamp(cutoff)
            if stamp.tzinfo is None and times.tz is not None:
                stamp = stamp.tz_localize(times.tz)
        if stamp < times[0] or stamp >= times[-1]:
            raise ValueError(
                f"cutoff {stamp} must lie within the bars ({times[0]} .. {times[-1]}) and leave data after it"
            )
        resolved.append(stamp)
    return resolved


def _timestamps_of(output: pd.DataFrame | pd.Series) -> pd.DatetimeIndex:
    index = output.index
    if isinstance(index, pd.MultiIndex):
        if "timestamp" in index.names:
            return pd.DatetimeIndex(index.get_level_values("timestamp"))
    elif isinstance(index, pd.DatetimeIndex):
        return index
    if isinstance(output, pd.DataFrame) and "timestamp" in output.columns:
        return pd.DatetimeIndex(output["timestamp"])
    raise TypeError(
        "assert_causal: a DataFrame/Series output needs a DatetimeIndex, a 'timestamp' index level or column"
    )


def _up_to(output: Any, bars: pd.DataFrame, cutoff: pd.Timestamp, path: str) -> Any:
    """The part of ``output`` (computed from ``bars``) stamped <= ``cutoff``."""
    if isinstance(output, Mapping):
        return {key: _up_to(value, bars, cutoff, f"{path}[{key!r}]") for key, value in output.items()}
    if isinstance(output, (list, tuple)):
        return [_up_to(value, bars, cutoff, f"{path}[{i}]") for i, value in enumerate(output)]
    if isinstance(output, (pd.DataFrame, pd.Series)):
        return output.loc[(_timestamps_of(output) <= cutoff)]
    array = np.asarray(output)
    if array.ndim == 0:
        raise TypeError(f"assert_causal: {path} is a scalar; return values aligned with timestamps")
    stamps = bars["timestamp"]
    n_times = stamps.nunique()
    if array.shape[0] == n_times:
        return array[: int((pd.DatetimeIndex(pd.unique(stamps)) <= cutoff).sum())]
    if array.shape[0] == len(bars):
        return array[(stamps <= cutoff).to_numpy()]
    raise TypeError(
        f"assert_causal: {path} has {array.shape[0]} rows, neither the {n_times} timestamps nor the "
        f"{len(bars)} rows of its input"
    )


def _bits_equal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise: both NaN, or the same bits (so 0.0 and -0.0 differ)."""
    if a.dtype.kind in "fc" and b.dtype.kind in "fc" and a.dtype == b.dtype:
        a_nan, b_nan = np.isnan(a), np.isnan(b)
        same = np.equal(a, b) & (np.signbit(a.real) == np.signbit(b.real))
        result: np.ndarray = (a_nan & b_nan) | (~a_nan & ~b_nan & same)
        return result
    if a.dtype.kind == "O" or b.dtype.kind == "O":
        return np.array([x == y or (x != x and y != y) for x, y in zip(a.ravel(), b.ravel(), strict=True)]).reshape(
            a.shape
        )
    return np.asarray(a == b)


def _compare(expected: Any, actual: Any, path: str, variant: str) -> None:
    """Assert ``actual`` is bit-identical to ``expected`` (both already cut at the cutoff)."""
    where = f"{path} ({variant})"
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and list(actual) == list(expected), f"{where}: different keys"
        for key in expected:
            _compare(expected[key], actual[key], f"{path}[{key!r}]", variant)
        return
    if isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{where}: different lengths"
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            _compare(e, a, f"{path}[{i}]", variant)
        return
    if isinstance(expected, (pd.DataFrame, pd.Series)):
        assert type(actual) is type(expected), f"{where}: output type changed"
        assert expected.index.equals(actual.index), (
            f"{where}: index up to the cutoff differs ({len(expected)} vs {len(actual)} rows)"
        )
        if isinstance(expected, pd.DataFrame):
            assert list(expected.columns) == list(actual.columns), f"{where}: columns differ"
            for column in expected.columns:
                _compare_arrays(expected[column].to_numpy(), actual[column].to_numpy(), expected.index, where, column)
        else:
            _compare_arrays(expected.to_numpy(), actual.to_numpy(), expected.index, where, expected.name)
        return
    _compare_arrays(np.asarray(expected), np.asarray(actual), None, where, None)


def _compare_arrays(a: np.ndarray, b: np.ndarray, index: pd.Index | None, where: str, column: Any) -> None:
    label = f" column {column!r}" if column is not None else ""
    assert a.shape == b.shape, f"{where}{label}: shape {b.shape} != {a.shape}"
    assert a.dtype == b.dtype, f"{where}{label}: dtype {b.dtype} != {a.dtype}"
    same = _bits_equal(a, b)
    if not same.all():
        first = np.argwhere(~same)[0]
        row = index[int(first[0])] if index is not None else tuple(int(i) for i in first)
        raise AssertionError(
            f"lookahead in {where}{label}: {int((~same).sum())} value(s) up to the cutoff differ, first at "
            f"{row}: {a[tuple(first)]!r} with all data vs {b[tuple(first)]!r}"
        )


def assert_causal(
    fn: Callable[[pd.DataFrame], Any],
    bars: pd.DataFrame,
    cutoffs: Sequence[Cutoff],
    *,
    seed: int = 0,
    n_perturbations: int = 2,
) -> None:
    """Assert that ``fn``'s outputs stamped <= t never depend on bars stamped after t.

    For each cutoff t, ``fn`` is run on the bars truncated at t and on ``n_perturbations``
    copies whose values after t are randomly changed (:func:`perturb_after`); everything ``fn``
    returns for timestamps <= t must be bit-identical (NaN equal to NaN; index, columns, dtypes
    and shapes equal) to its output on the full bars.

    Parameters
    ----------
    fn:
        ``fn(bars) -> output``; see the module docstring for the accepted outputs.
    bars:
        Canonical bars (``timestamp`` column; prices and volume are perturbed when present).
    cutoffs:
        Timestamps, or integers indexing the sorted unique timestamps (``-2`` = second to last).
        Each must leave at least one timestamp after it.
    seed:
        Seed of the perturbations.
    n_perturbations:
        Perturbed copies per cutoff.

    Raises
    ------
    AssertionError
        On the first difference, naming the cutoff, the variant, the column and the row.
    """
    rng = np.random.default_rng(seed)
    full_output = fn(bars)
    for cutoff in _resolve_cutoffs(bars, cutoffs):
        expected = _up_to(full_output, bars, cutoff, "output")
        if _is_empty(expected):
            raise AssertionError(f"assert_causal: no output stamped <= {cutoff}; the check would prove nothing")
        truncated = bars.loc[(bars["timestamp"] <= cutoff).to_numpy()]
        variants: list[tuple[str, pd.DataFrame]] = [(f"bars truncated at {cutoff}", truncated)]
        variants += [
            (f"bars perturbed after {cutoff} (#{k})", perturb_after(bars, cutoff, rng)) for k in range(n_perturbations)
        ]
        for variant, variant_bars in variants:
            actual = _up_to(fn(variant_bars), variant_bars, cutoff, "output")
            _compare(expected, actual, "output", variant)
        log.debug("causal up to %s", cutoff)


def _is_empty(output: Any) -> bool:
    if isinstance(output, dict):
        return all(_is_empty(v) for v in output.values())
    if isinstance(output, list):
        return all(_is_empty(v) for v in output)
    return len(output) == 0


def synthetic_bars(
    n_symbols: int = 3,
    n_bars: int = 250,
    *,
    seed: int = 0,
    start: str | pd.Timestamp = "2020-01-01",
    freq: str = "B",
    ohlcv: bool = True,
    symbols: Sequence[str] | None = None,
    price: float = 50.0,
    drift: float = 0.0003,
    vol: float = 0.015,
    open_from: Literal["previous_close", "close"] = "previous_close",
    open_vol: float = 0.005,
    wick_vol: float = 0.006,
    volume: tuple[int, int] = (1_000, 100_000),
    zero_volume: float = 0.0,
) -> pd.DataFrame:
    """Canonical bars of independent geometric random walks, one per symbol, sorted by (timestamp, symbol).

    Per symbol, in this order of draws from ``np.random.default_rng(seed)``: the close is
    ``price * exp(cumsum(N(drift, vol)))``; the open is the previous close (or, with
    ``open_from="close"``, the same bar's close) times ``exp(N(0, open_vol))``; the high and low
    are ``max/min(open, close)`` times ``exp(±|N(0, wick_vol)|)``, so high >= open, close >= low;
    the volume is an integer in ``[volume[0], volume[1])``, and, when ``zero_volume > 0``, each
    bar's volume is set to 0 with that probability. The same arguments give the same bars.

    Parameters
    ----------
    n_symbols:
        Number of symbols, named ``S00``, ``S01``, ... (ignored when ``symbols`` is given).
    n_bars:
        Bars per symbol.
    seed:
        Seed of the random walks.
    start:
        First timestamp (UTC).
    freq:
        pandas frequency of the timestamps (``"B"`` business days, ``"1d"``, ``"1h"``, ...).
    ohlcv:
        ``False`` gives close-only bars (open, high, low and volume NaN; the same closes).
    symbols:
        Explicit symbol names.
    price, drift, vol:
        First close's scale, and the mean and standard deviation of the log returns per bar.
    open_from, open_vol:
        What the open is a noisy copy of, and the noise's standard deviation (log).
    wick_vol:
        Standard deviation (log) of the high's and the low's distance from the body.
    volume:
        Range of the integer volumes.
    zero_volume:
        Probability of a bar with zero volume.

    Returns
    -------
    pandas.DataFrame
        Columns ``symbol, timestamp, open, high, low, close, volume`` (``datetime64[ns, UTC]`` stamps).
    """
    names = list(symbols) if symbols is not None else [f"S{j:02d}" for j in range(n_symbols)]
    rng = np.random.default_rng(seed)
    stamps = pd.date_range(start, periods=n_bars, freq=freq, tz="UTC").astype("datetime64[ns, UTC]")
    frames = []
    for symbol in names:
        close = price * np.exp(np.cumsum(rng.normal(drift, vol, n_bars)))
        base = np.concatenate([[close[0]], close[:-1]]) if open_from == "previous_close" else close
        open_ = base * np.exp(rng.normal(0.0, open_vol, n_bars))
        high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, wick_vol, n_bars)))
        low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, wick_vol, n_bars)))
        volumes = rng.integers(volume[0], volume[1], n_bars).astype(float)
        if zero_volume > 0:
            volumes[rng.random(n_bars) < zero_volume] = 0.0
        frame = pd.DataFrame(
            {"symbol": symbol, "timestamp": stamps, "open": open_, "high": high, "low": low, "close": close}
        )
        frame["volume"] = volumes
        if not ohlcv:
            frame[["open", "high", "low", "volume"]] = np.nan
        frames.append(frame)
    bars = pd.concat(frames, ignore_index=True)
    return bars.sort_values(["timestamp", "symbol"], kind="stable").reset_index(drop=True)
