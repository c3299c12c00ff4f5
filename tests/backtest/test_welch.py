"""The one-sided Welch t-test (rltrade.backtest.stats.welch_t_test) against the formula worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from rltrade.backtest.metrics import EvaluationError
from rltrade.backtest.stats import welch_t_test


def _student_t_upper_tail(t: float, dof: float, n: int = 20_000) -> float:
    """P(T_ν ≥ t) from the Student-t density integrated by Simpson's rule on [0, |t|] (no scipy)."""
    log_c = math.lgamma((dof + 1) / 2) - math.lgamma(dof / 2) - 0.5 * math.log(dof * math.pi)
    xs = np.linspace(0.0, abs(t), n + 1)
    density = np.exp(log_c - (dof + 1) / 2 * np.log1p(xs**2 / dof))
    h = abs(t) / n
    integral = h / 3 * (density[0] + density[-1] + 4 * density[1:-1:2].sum() + 2 * density[2:-1:2].sum())
    return 0.5 - integral if t >= 0 else 0.5 + integral


def _by_hand(x: list[float], y: list[float]) -> tuple[float, float, float]:
    n, m = len(x), len(y)
    mx, my = sum(x) / n, sum(y) / m
    vx = sum((v - mx) ** 2 for v in x) / (n - 1) / n  # s²/n
    vy = sum((v - my) ** 2 for v in y) / (m - 1) / m
    t = (mx - my) / math.sqrt(vx + vy)
    dof = (vx + vy) ** 2 / (vx**2 / (n - 1) + vy**2 / (m - 1))
    return t, dof, _student_t_upper_tail(t, dof)


def test_a_hand_worked_case() -> None:
    # x = 1..5: x̄ = 3, s²ₓ = 2.5, s²ₓ/n = 0.5;  y = 0, 1, 2, 1: ȳ = 1, s²ᵧ = 2/3, s²ᵧ/m = 1/6.
    # t = 2 / √(2/3) ≈ 2.449;  ν = (2/3)² / (0.5²/4 + (1/6)²/3) = (4/9) / (1/16 + 1/108) ≈ 6.19.
    t, p = welch_t_test([1.0, 2.0, 3.0, 4.0, 5.0], [0.0, 1.0, 2.0, 1.0])
    assert t == pytest.approx(2 / math.sqrt(2 / 3), rel=1e-12)
    assert p == pytest.approx(_student_t_upper_tail(t, (4 / 9) / (1 / 16 + 1 / 108)), abs=1e-10)
    assert 0.01 < p < 0.05


@pytest.mark.parametrize("shift", [0.8, 0.0, -0.5])
def test_random_samples_agree_with_the_formula(shift: float) -> None:
    rng = np.random.default_rng(3)
    x, y = list(rng.normal(shift, 1.0, 9)), list(rng.normal(0.0, 2.5, 14))
    t, p = welch_t_test(x, y)
    t_hand, _, p_hand = _by_hand(x, y)
    assert t == pytest.approx(t_hand, rel=1e-12)
    assert p == pytest.approx(p_hand, abs=1e-10)
    # the seed's recipe: halve scipy's two-sided p when t > 0 (1 − p/2 when t < 0)
    two_sided = scipy.stats.ttest_ind(x, y, equal_var=False).pvalue
    assert p == pytest.approx(two_sided / 2 if t > 0 else 1 - two_sided / 2, rel=1e-10)


def test_direction_learner_better_is_a_small_p() -> None:
    rng = np.random.default_rng(4)
    learner, random_agent = rng.normal(5.0, 1.0, 20), rng.normal(0.0, 1.0, 20)
    better = welch_t_test(learner, random_agent)
    worse = welch_t_test(random_agent, learner)
    assert better[0] > 0 and better[1] < 1e-6
    assert worse[0] == pytest.approx(-better[0])
    assert worse[1] == pytest.approx(1 - better[1])


def test_undefined_cases_and_bad_input() -> None:
    assert all(math.isnan(v) for v in welch_t_test([1.0], [0.0, 1.0]))
    assert all(math.isnan(v) for v in welch_t_test([2.0, 2.0], [1.0, 1.0]))
    t, p = welch_t_test([1.0, 1.0, 1.0], [0.0, 0.5, 0.2])  # a never-trading learner is fine
    # all the variance is the reference's: ν = m − 1 = 2
    assert p == pytest.approx(_student_t_upper_tail(t, 2.0), abs=1e-10) and p < 0.5
    with pytest.raises(EvaluationError, match="reference"):
        welch_t_test([1.0, 2.0], [0.0, math.nan])
    with pytest.raises(EvaluationError, match="sample"):
        welch_t_test(np.zeros((2, 2)).tolist(), [0.0, 1.0])
