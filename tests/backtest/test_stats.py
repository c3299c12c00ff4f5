"""Statistics over seeds: Sharpe, bootstrap CI, PSR and Welch test against empyrical, scipy and direct formulas."""

from __future__ import annotations

import json
import math

import empyrical
import numpy as np
import pandas as pd
import pytest
import scipy.stats

from rltrade.backtest.metrics import METRIC_NAMES, EvaluationError, per_period_rate, performance_metrics
from rltrade.backtest.stats import (
    SeedSummary,
    mean_std_text,
    probabilistic_sharpe_ratio,
    sharpe_bootstrap_ci,
    sharpe_ratio,
    summarize_seeds,
    welch_t_test,
)

PPY = 252


def _returns(n: int, seed: int = 0, drift: float = 0.0006, vol: float = 0.01, columns: int | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (n,) if columns is None else (n, columns)
    return rng.standard_t(5, shape) * vol / math.sqrt(5 / 3) + drift  # fat tails, skew-free


@pytest.fixture(scope="module")
def sp500_seeds() -> list[pd.Series]:
    """Four real stocks over two years, rescaled to the same initial capital: stand-ins for four seeds."""
    from skfolio.datasets import load_sp500_dataset

    prices = load_sp500_dataset()[["AAPL", "JNJ", "HD", "CVX"]].iloc[-504:]
    return [(10_000.0 * prices[s] / prices[s].iloc[0]).rename(s) for s in prices.columns]


def test_sharpe_ratio_agrees_with_empyrical() -> None:
    one = _returns(400)
    many = _returns(400, seed=1, columns=3)
    assert isinstance(sharpe_ratio(one), float)
    assert sharpe_ratio(one) == pytest.approx(empyrical.sharpe_ratio(one, annualization=PPY), rel=1e-12)
    assert sharpe_ratio(one) == pytest.approx(one.mean() / one.std(ddof=1) * math.sqrt(PPY), rel=1e-10)
    rf = per_period_rate(0.03, PPY)
    assert sharpe_ratio(one, risk_free=0.03) == pytest.approx(
        empyrical.sharpe_ratio(one, risk_free=rf, annualization=PPY), rel=1e-12
    )
    per_column = sharpe_ratio(many, periods_per_year=52)
    assert isinstance(per_column, np.ndarray)
    assert per_column.shape == (3,)
    np.testing.assert_allclose(per_column, [sharpe_ratio(many[:, j], periods_per_year=52) for j in range(3)])
    np.testing.assert_allclose(per_column, empyrical.sharpe_ratio(many, annualization=52), rtol=1e-12)
    assert math.isnan(sharpe_ratio(np.full(50, 0.001)))  # zero dispersion: NaN, not inf


def test_sharpe_ratio_matches_performance_metrics(sp500_seeds: list[pd.Series]) -> None:
    values = sp500_seeds[0]
    returns = values.pct_change().to_numpy()[1:]
    assert sharpe_ratio(returns, risk_free=0.02) == pytest.approx(
        performance_metrics(values, risk_free=0.02)["sharpe"], rel=1e-12
    )


def test_bootstrap_ci_contains_the_estimate_and_narrows_with_more_data() -> None:
    short = _returns(250, seed=2)
    long = _returns(2500, seed=2)
    low_s, high_s = sharpe_bootstrap_ci(short, n_boot=400)
    low_l, high_l = sharpe_bootstrap_ci(long, n_boot=400)
    assert low_s < sharpe_ratio(short) < high_s
    assert low_l < sharpe_ratio(long) < high_l
    assert high_l - low_l < 0.6 * (high_s - low_s)  # width ~ 1/sqrt(n): ratio ~0.32
    # a 95% interval is wider than a 50% one
    low_50, high_50 = sharpe_bootstrap_ci(short, n_boot=400, confidence=0.5)
    assert low_s < low_50 < high_50 < high_s


def test_bootstrap_ci_is_deterministic_by_seed_and_accepts_pandas() -> None:
    data = _returns(300, seed=3)
    first = sharpe_bootstrap_ci(data, n_boot=200, seed=7)
    assert sharpe_bootstrap_ci(data, n_boot=200, seed=7) == first
    assert sharpe_bootstrap_ci(data, n_boot=200, seed=8) != first
    assert sharpe_bootstrap_ci(pd.Series(data), n_boot=200, seed=7) == first
    assert sharpe_bootstrap_ci(data, n_boot=200, seed=7, block_size=20.0) != first


def test_bootstrap_ci_2d_resamples_dates_jointly() -> None:
    data = _returns(300, seed=4)
    one = sharpe_bootstrap_ci(data, n_boot=200, seed=1, risk_free=0.02)
    same = sharpe_bootstrap_ci(np.column_stack([data, data, data]), n_boot=200, seed=1, risk_free=0.02)
    assert same == pytest.approx(one, rel=1e-12)
    # the statistic is the mean over seeds of each seed's Sharpe
    frame = pd.DataFrame(_returns(300, seed=5, columns=3))
    low, high = sharpe_bootstrap_ci(frame, n_boot=300)
    assert low < float(np.mean(sharpe_ratio(frame.to_numpy()))) < high


def test_bootstrap_ci_undefined_and_bad_input() -> None:
    assert all(math.isnan(x) for x in sharpe_bootstrap_ci(np.zeros(100), n_boot=50))
    with pytest.raises(EvaluationError, match="confidence"):
        sharpe_bootstrap_ci(_returns(50), confidence=1.5)
    bad = _returns(50)
    bad[10] = np.nan
    with pytest.raises(EvaluationError, match="row 10"):
        sharpe_bootstrap_ci(bad)


def _psr_direct(r: np.ndarray, sr_star_annual: float) -> float:
    """PSR from the paper, with moments written out in numpy and Φ via math.erf."""
    n = r.size
    sr = r.mean() / r.std(ddof=1)
    centred = r - r.mean()
    m2, m3, m4 = (np.mean(centred**k) for k in (2, 3, 4))
    skew, kurt = m3 / m2**1.5, m4 / m2**2
    z = (sr - sr_star_annual / math.sqrt(PPY)) * math.sqrt(n - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def test_psr_matches_the_direct_formula() -> None:
    rng = np.random.default_rng(6)
    skewed = rng.lognormal(0.0, 0.5, 300) * 0.01 - 0.0105  # positive skew
    for r, benchmark in ((_returns(500, seed=6), 0.0), (_returns(500, seed=6), 1.0), (skewed, 0.5)):
        assert probabilistic_sharpe_ratio(r, benchmark) == pytest.approx(_psr_direct(r, benchmark), rel=1e-10)


def test_psr_is_one_half_at_the_sample_sharpe_and_grows_with_n() -> None:
    r = _returns(250, seed=8)
    assert sharpe_ratio(r) > 0
    assert probabilistic_sharpe_ratio(r, sharpe_ratio(r)) == pytest.approx(0.5, abs=1e-12)
    # tiling keeps SR, skewness and kurtosis and multiplies n: more evidence, higher PSR
    psr = [probabilistic_sharpe_ratio(np.tile(r, k)) for k in (1, 2, 4)]
    assert 0.5 < psr[0] < psr[1] < psr[2] <= 1.0
    assert probabilistic_sharpe_ratio(-r) < 0.5
    assert probabilistic_sharpe_ratio(pd.Series(r)) == psr[0]
    assert math.isnan(probabilistic_sharpe_ratio(np.full(20, 0.001)))


def test_welch_agrees_with_scipy_and_a_hand_formula() -> None:
    rng = np.random.default_rng(9)
    a, b = rng.normal(1.0, 1.0, 8), rng.normal(0.5, 2.0, 12)
    t, p = welch_t_test(list(a), list(b), alternative="two-sided")
    expected = scipy.stats.ttest_ind(a, b, equal_var=False)
    assert (t, p) == pytest.approx((expected.statistic, expected.pvalue), rel=1e-12)
    assert t == pytest.approx((a.mean() - b.mean()) / math.sqrt(a.var(ddof=1) / 8 + b.var(ddof=1) / 12), rel=1e-12)


def test_welch_is_one_sided() -> None:
    rng = np.random.default_rng(10)
    strategy, random_agent = rng.normal(0.10, 0.02, 10), rng.normal(0.0, 0.02, 10)
    t, p = welch_t_test(strategy, random_agent)
    assert t > 0 and p < 1e-6
    t_worse, p_worse = welch_t_test(random_agent, strategy)
    assert t_worse == pytest.approx(-t)
    assert p_worse > 1 - 1e-6
    assert welch_t_test(random_agent, strategy, alternative="less")[1] == pytest.approx(p)


def test_welch_undefined_and_bad_alternative() -> None:
    assert all(math.isnan(x) for x in welch_t_test([1.0], [0.0, 1.0]))
    assert all(math.isnan(x) for x in welch_t_test([1.0, 1.0], [0.0, 0.0]))
    assert welch_t_test([1.0, 1.0], [0.0, 0.5])[1] < 0.5  # one constant sample is fine
    with pytest.raises(EvaluationError, match="alternative"):
        welch_t_test([1.0, 2.0], [0.0, 1.0], alternative="bigger")


def test_summarize_seeds_on_real_prices(sp500_seeds: list[pd.Series]) -> None:
    turnovers = [pd.Series(0.01 * (i + 1), index=sp500_seeds[0].index[1:]) for i in range(4)]
    summary = summarize_seeds("stocks", sp500_seeds, turnovers, risk_free=0.02, n_boot=300, seed=3)
    per_seed = [performance_metrics(v, t, risk_free=0.02) for v, t in zip(sp500_seeds, turnovers, strict=True)]

    assert isinstance(summary, SeedSummary)
    assert summary.name == "stocks" and summary.n_seeds == 4
    assert list(summary.mean) == list(METRIC_NAMES) == list(summary.std)
    for metric in METRIC_NAMES:
        column = np.array([m[metric] for m in per_seed])
        assert summary.mean[metric] == pytest.approx(column.mean(), rel=1e-12), metric
        assert summary.std[metric] == pytest.approx(column.std(ddof=1), rel=1e-12), metric
    assert summary.mean["turnover"] == pytest.approx(0.025 * PPY)

    returns = np.column_stack([v.pct_change().to_numpy()[1:] for v in sp500_seeds])
    assert summary.sharpe_ci == sharpe_bootstrap_ci(returns, risk_free=0.02, n_boot=300, seed=3)
    low, high = summary.sharpe_ci
    assert low < summary.mean["sharpe"] < high
    excess = returns - per_period_rate(0.02, PPY)
    assert summary.psr == pytest.approx(np.mean([probabilistic_sharpe_ratio(excess[:, j]) for j in range(4)]))
    assert 0.0 < summary.psr < 1.0

    as_dict = summary.to_dict()
    assert as_dict["sharpe_ci"] == [low, high]
    json.dumps(as_dict, allow_nan=False)


def test_summarize_one_seed_has_nan_std(sp500_seeds: list[pd.Series]) -> None:
    summary = summarize_seeds("aapl", sp500_seeds[:1], n_boot=50)
    assert summary.n_seeds == 1
    assert all(math.isnan(v) for v in summary.std.values())
    assert summary.mean["sharpe"] == performance_metrics(sp500_seeds[0])["sharpe"]


def test_summarize_seeds_rejects_mismatched_input(sp500_seeds: list[pd.Series]) -> None:
    with pytest.raises(ValueError, match=r"'ppo'.*seed 1.*index"):
        summarize_seeds("ppo", [sp500_seeds[0], sp500_seeds[1].iloc[1:]], n_boot=10)
    with pytest.raises(ValueError, match=r"'ppo'.*no seeds"):
        summarize_seeds("ppo", [], n_boot=10)
    with pytest.raises(ValueError, match=r"'ppo'.*1 turnover series for 2 seeds"):
        summarize_seeds("ppo", sp500_seeds[:2], [None], n_boot=10)
    broken = sp500_seeds[1].copy()
    broken.iloc[5] = np.nan
    with pytest.raises(ValueError, match="'ppo \\(seed 1\\)'"):
        summarize_seeds("ppo", [sp500_seeds[0], broken], n_boot=10)


@pytest.mark.parametrize(
    ("mean", "std", "metric", "text"),
    [
        (0.123, 0.014, "annual_return", "12.3% ± 1.4%"),
        (0.123, math.nan, "annual_return", "12.3%"),
        (1.234, 0.456, "sharpe", "1.23 ± 0.46"),
        (12_345.6, 789.01, "final_value", "12,345.60 ± 789.01"),
        (math.nan, 0.1, "sharpe", "n/a"),
    ],
)
def test_mean_std_text(mean: float, std: float, metric: str, text: str) -> None:
    assert mean_std_text(mean, std, metric) == text
