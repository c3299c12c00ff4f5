"""Statistics over seeds and honest-evaluation helpers.

- :func:`sharpe_ratio`: annualised Sharpe of per-period returns (empyrical), one per column;
- :func:`sharpe_bootstrap_ci`: stationary-bootstrap (arch) percentile interval of the
  mean-over-seeds Sharpe, resampling dates jointly for all seeds;
- :func:`probabilistic_sharpe_ratio`: Bailey & López de Prado's PSR (scipy);
- :func:`welch_t_test`: one-sided Welch t-test, e.g. learning agent vs random agent (scipy);
- :func:`summarize_seeds`: mean ± std of every metric over seeds, with the bootstrap CI and PSR.

As in :mod:`rltrade.backtest.metrics`, ``risk_free`` is an annual rate and undefined values are
NaN (never ±inf).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import empyrical
import numpy as np
import pandas as pd
import scipy.stats
from arch.bootstrap import StationaryBootstrap
from numpy.typing import NDArray

from rltrade.backtest.metrics import (
    METRIC_NAMES,
    EvaluationError,
    daily_returns,
    format_metric,
    per_period_rate,
    performance_metrics,
)

_ALTERNATIVES = ("greater", "less", "two-sided")


def sharpe_ratio(returns: np.ndarray, *, risk_free: float = 0.0, periods_per_year: int = 252) -> float | np.ndarray:
    """Return the annualised Sharpe ratio ``mean(r − rf) / std(r − rf, ddof=1) × √periods_per_year``.

    Computed by :func:`empyrical.sharpe_ratio` with the per-period risk-free rate; NaN (not
    ±inf) when fewer than two returns or zero dispersion.

    Parameters
    ----------
    returns:
        Per-period simple returns: 1-D (one series, a float is returned) or 2-D
        ``[periods, series]`` (one Sharpe per column, an array is returned).
    risk_free:
        Annual risk-free rate, converted to ``(1 + rf)**(1/periods_per_year) − 1`` per period.
    periods_per_year:
        Periods per year (252 for daily returns).
    """
    data = np.asarray(returns, dtype=np.float64)
    if data.ndim not in (1, 2):
        raise EvaluationError(f"returns must be 1-D or 2-D [periods, series], got shape {data.shape}")
    rf = per_period_rate(risk_free, periods_per_year)
    sharpe = np.asarray(empyrical.sharpe_ratio(data, risk_free=rf, annualization=periods_per_year), dtype=np.float64)
    sharpe = np.where(np.isfinite(sharpe), sharpe, np.nan)
    return float(sharpe) if data.ndim == 1 else sharpe


def sharpe_bootstrap_ci(
    returns: np.ndarray | pd.DataFrame | pd.Series,
    *,
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
    risk_free: float = 0.0,
    periods_per_year: int = 252,
    block_size: float | None = None,
) -> tuple[float, float]:
    """Return a stationary-bootstrap percentile interval ``(low, high)`` of the (mean-over-seeds) Sharpe ratio.

    Rows (periods) are resampled in blocks of random length (Politis & Romano's stationary
    bootstrap, :class:`arch.bootstrap.StationaryBootstrap`), which keeps short-range
    dependence. For a 2-D ``[periods, seeds]`` matrix the rows are resampled *jointly* for all
    seeds and the statistic is the mean over seeds of each seed's annualised Sharpe: the
    interval shows how much the mean-over-seeds Sharpe owes to the particular dates. The
    interval is the ``(1 − confidence)/2`` and ``(1 + confidence)/2`` percentiles of the
    replicates; replicates whose Sharpe is undefined (a resample with zero dispersion) are
    dropped. ``(nan, nan)`` when the Sharpe of the data itself is undefined.

    Parameters
    ----------
    returns:
        Per-period simple returns, 1-D or 2-D ``[periods, seeds]``; finite.
    confidence:
        Coverage of the interval, in (0, 1).
    n_boot:
        Number of bootstrap replicates.
    seed:
        Seed of the resampling: the same seed gives the same interval.
    risk_free:
        Annual risk-free rate.
    periods_per_year:
        Periods per year.
    block_size:
        Mean block length of the stationary bootstrap; default ``periods ** (1/3)`` (the usual
        rate for block bootstraps of smooth statistics), at least 1.
    """
    data = _finite_returns(returns, "returns", ndims=(1, 2))
    if not 0.0 < confidence < 1.0:
        raise EvaluationError(f"confidence must be in (0, 1), got {confidence!r}")
    if n_boot < 1:
        raise EvaluationError(f"n_boot must be >= 1, got {n_boot!r}")
    if block_size is not None and not block_size > 0.0:
        raise EvaluationError(f"block_size must be > 0, got {block_size!r}")

    def mean_sharpe(sample: NDArray[np.float64]) -> NDArray[np.float64]:
        sharpe = sharpe_ratio(sample, risk_free=risk_free, periods_per_year=periods_per_year)
        return np.atleast_1d(np.mean(sharpe))

    if not np.isfinite(mean_sharpe(data)).all():
        return math.nan, math.nan
    mean_block = max(1.0, data.shape[0] ** (1.0 / 3.0)) if block_size is None else float(block_size)
    # arch annotates block_size as int, but the stationary bootstrap's mean block length is real-valued.
    bootstrap = StationaryBootstrap(mean_block, data, seed=seed)  # type: ignore[arg-type]
    replicates = bootstrap.apply(mean_sharpe, reps=n_boot)[:, 0]
    replicates = replicates[np.isfinite(replicates)]
    if replicates.size == 0:
        return math.nan, math.nan
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(replicates, [tail, 100.0 - tail])
    return float(low), float(high)


def probabilistic_sharpe_ratio(
    returns: np.ndarray | pd.Series, sr_benchmark: float = 0.0, *, periods_per_year: int = 252
) -> float:
    """Return the probabilistic Sharpe ratio: P(true Sharpe > ``sr_benchmark``) (Bailey & López de Prado, 2012).

    ``PSR = Φ((SR − SR*) · √(n − 1) / √(1 − γ₃·SR + (γ₄ − 1)/4 · SR²))`` where ``SR`` is the
    per-period sample Sharpe ``mean / std`` (ddof=1, no annualisation), ``SR*`` the benchmark
    per period (``sr_benchmark / √periods_per_year``), ``γ₃`` the sample skewness, ``γ₄`` the
    sample (non-excess, 3 for a normal) kurtosis (both the biased moment estimators of
    :func:`scipy.stats.skew` / :func:`scipy.stats.kurtosis`, which keep the root's argument
    ≥ 0), ``n`` the number of returns and ``Φ`` the standard normal cdf. NaN when fewer than two
    returns, zero dispersion, or a zero denominator (a two-point distribution).

    Parameters
    ----------
    returns:
        Per-period (excess) returns, 1-D and finite.
    sr_benchmark:
        Benchmark Sharpe ratio, annualised.
    periods_per_year:
        Periods per year, used to turn ``sr_benchmark`` into a per-period value.
    """
    data = _finite_returns(returns, "returns", ndims=(1,))
    if periods_per_year < 1:
        raise EvaluationError(f"periods_per_year must be a positive integer, got {periods_per_year!r}")
    n = data.size
    if n < 2 or np.ptp(data) == 0.0:
        return math.nan
    sharpe = data.mean() / data.std(ddof=1)
    skewness = scipy.stats.skew(data)
    kurtosis = scipy.stats.kurtosis(data, fisher=False)
    variance = 1.0 - skewness * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if not variance > 0.0:
        return math.nan
    z = (sharpe - sr_benchmark / math.sqrt(periods_per_year)) * math.sqrt(n - 1) / math.sqrt(variance)
    return float(scipy.stats.norm.cdf(z))


def welch_t_test(
    sample: Sequence[float], reference: Sequence[float], alternative: str = "greater"
) -> tuple[float, float]:
    """Return ``(t, p)`` of Welch's t-test (unequal variances) of ``mean(sample)`` against ``mean(reference)``.

    With the default ``alternative="greater"`` a small p says ``sample`` (e.g. the learning
    agent's returns over seeds) has a larger mean than ``reference`` (e.g. the random agent's).
    ``(nan, nan)`` when either sample has fewer than two values or both have zero variance.

    Parameters
    ----------
    sample:
        Values of the strategy under test (one per seed/run).
    reference:
        Values of the reference strategy.
    alternative:
        ``"greater"``, ``"less"`` or ``"two-sided"`` (as in :func:`scipy.stats.ttest_ind`).
    """
    if alternative not in _ALTERNATIVES:
        raise EvaluationError(f"alternative must be one of {_ALTERNATIVES}, got {alternative!r}")
    a = _finite_returns(np.asarray(sample, dtype=np.float64), "sample", ndims=(1,))
    b = _finite_returns(np.asarray(reference, dtype=np.float64), "reference", ndims=(1,))
    if a.size < 2 or b.size < 2 or (np.ptp(a) == 0.0 and np.ptp(b) == 0.0):
        return math.nan, math.nan
    with warnings.catch_warnings():
        if np.ptp(a) == 0.0 or np.ptp(b) == 0.0:
            # scipy flags an exactly constant sample (e.g. a never-trading agent) as "catastrophic
            # cancellation"; its variance is exactly 0 and the test is well defined.
            warnings.filterwarnings("ignore", "Precision loss occurred", RuntimeWarning)
        result = scipy.stats.ttest_ind(a, b, equal_var=False, alternative=alternative)
    return float(result.statistic), float(result.pvalue)


@dataclass(frozen=True)
class SeedSummary:
    """Summary of one strategy over several seeds.

    Parameters
    ----------
    name:
        Strategy name.
    n_seeds:
        Number of seeds (runs).
    mean:
        Mean over seeds of every metric (keys :data:`~rltrade.backtest.metrics.METRIC_NAMES`);
        NaN when the metric is undefined for some seed.
    std:
        Sample standard deviation (ddof=1) over seeds of every metric; NaN for one seed.
    sharpe_ci:
        Bootstrap interval of the mean-over-seeds Sharpe (:func:`sharpe_bootstrap_ci`).
    psr:
        Mean over seeds of each seed's probabilistic Sharpe ratio against 0 (on excess returns).
    """

    name: str
    n_seeds: int
    mean: dict[str, float]
    std: dict[str, float]
    sharpe_ci: tuple[float, float]
    psr: float

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (NaN stays a float: the caller writes it as null)."""
        return {
            "name": self.name,
            "n_seeds": self.n_seeds,
            "mean": dict(self.mean),
            "std": dict(self.std),
            "sharpe_ci": [self.sharpe_ci[0], self.sharpe_ci[1]],
            "psr": self.psr,
        }


def summarize_seeds(
    name: str,
    values_by_seed: Sequence[pd.Series],
    turnover_by_seed: Sequence[pd.Series | None] | None = None,
    *,
    risk_free: float = 0.0,
    periods_per_year: int = 252,
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> SeedSummary:
    """Return the :class:`SeedSummary` of one strategy run with several seeds on the same dates.

    Parameters
    ----------
    name:
        Strategy name (used in error messages too).
    values_by_seed:
        Portfolio value per bar, one series per seed; all must share the same index.
    turnover_by_seed:
        Per-step one-way turnover per seed (same length as ``values_by_seed``; None entries
        allowed), or None.
    risk_free:
        Annual risk-free rate.
    periods_per_year:
        Bars per year.
    confidence:
        Coverage of the Sharpe bootstrap interval.
    n_boot:
        Bootstrap replicates.
    seed:
        Seed of the bootstrap.
    """
    n_seeds = len(values_by_seed)
    if n_seeds == 0:
        raise EvaluationError(f"strategy {name!r}: no seeds to summarise")
    index = values_by_seed[0].index
    for i, values in enumerate(values_by_seed[1:], start=1):
        if not values.index.equals(index):
            raise EvaluationError(
                f"strategy {name!r}: seed {i} has a different index from seed 0; run every seed on the same dates"
            )
    turnovers: Sequence[pd.Series | None] = [None] * n_seeds if turnover_by_seed is None else turnover_by_seed
    if len(turnovers) != n_seeds:
        raise EvaluationError(f"strategy {name!r}: {len(turnovers)} turnover series for {n_seeds} seeds")

    named = [values.rename(f"{name} (seed {i})") for i, values in enumerate(values_by_seed)]
    per_seed = [
        performance_metrics(values, turnover, risk_free=risk_free, periods_per_year=periods_per_year)
        for values, turnover in zip(named, turnovers, strict=True)
    ]
    table = np.array([[metrics[metric] for metric in METRIC_NAMES] for metrics in per_seed], dtype=np.float64)
    mean = table.mean(axis=0)
    std = table.std(axis=0, ddof=1) if n_seeds > 1 else np.full(len(METRIC_NAMES), np.nan)

    returns = np.column_stack([daily_returns(values).to_numpy(dtype=np.float64) for values in named])
    sharpe_ci = sharpe_bootstrap_ci(
        returns,
        confidence=confidence,
        n_boot=n_boot,
        seed=seed,
        risk_free=risk_free,
        periods_per_year=periods_per_year,
    )
    excess = returns - per_period_rate(risk_free, periods_per_year)
    psr = float(np.mean([probabilistic_sharpe_ratio(column, periods_per_year=periods_per_year) for column in excess.T]))
    return SeedSummary(
        name=name,
        n_seeds=n_seeds,
        mean={metric: float(value) for metric, value in zip(METRIC_NAMES, mean, strict=True)},
        std={metric: float(value) for metric, value in zip(METRIC_NAMES, std, strict=True)},
        sharpe_ci=sharpe_ci,
        psr=psr,
    )


def mean_std_text(mean: float, std: float, metric: str) -> str:
    """Return ``"mean ± std"`` formatted with :func:`~rltrade.backtest.metrics.format_metric` (``"12.3% ± 1.4%"``).

    Only the mean when ``std`` is NaN (one seed), ``"n/a"`` when the mean is NaN.

    Parameters
    ----------
    mean:
        Mean over seeds.
    std:
        Standard deviation over seeds.
    metric:
        Metric name (one of :data:`~rltrade.backtest.metrics.METRIC_NAMES`), selects the format.
    """
    text = format_metric(metric, mean)
    if math.isnan(mean) or math.isnan(std):
        return text
    return f"{text} ± {format_metric(metric, std)}"


def _finite_returns(values: Any, what: str, ndims: tuple[int, ...]) -> NDArray[np.float64]:
    data = np.asarray(values.to_numpy() if isinstance(values, pd.Series | pd.DataFrame) else values, dtype=np.float64)
    if data.ndim not in ndims:
        raise EvaluationError(f"{what} must have {' or '.join(f'{n}-D' for n in ndims)} shape, got {data.shape}")
    if not np.isfinite(data).all():
        row = int(np.argmax(~np.isfinite(data).reshape(data.shape[0], -1).any(axis=1)))
        raise EvaluationError(f"{what}: NaN/inf at row {row}; returns must be finite")
    return data
