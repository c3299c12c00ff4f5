"""Reward objects against plain-Python reference loops written from the formulas."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from rltrade.envs.rewards import (
    REWARDS,
    DifferentialSharpeReward,
    DownsideDeviationReward,
    LogReturnReward,
    ProfitReward,
    Reward,
    RewardError,
    SortinoChangeReward,
    make_reward,
)
from rltrade.envs.timing import EnvConfigError


def _values(seed: int, n: int = 300) -> list[float]:
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0005, 0.01, n)
    returns[10:14] = 0.0  # a flat stretch (position flat): zero returns
    return [float(v) for v in 1000.0 * np.cumprod(np.concatenate([[1.0], 1.0 + returns]))]


def ref_dsr(values: list[float], eta: float) -> list[float]:
    a = b = 0.0
    out = []
    for prev, now in itertools.pairwise(values):
        r = now / prev - 1.0
        d_a, d_b = r - a, r * r - b
        var = b - a * a
        out.append((b * d_a - 0.5 * a * d_b) / var**1.5 if var > 1e-9 * b and var > 0 else 0.0)
        a += eta * d_a
        b += eta * d_b
    return out


def ref_ddr(values: list[float], eta: float) -> list[float]:
    a = dd2 = 0.0
    out = []
    for prev, now in itertools.pairwise(values):
        r = now / prev - 1.0
        if dd2 <= 0:
            out.append(0.0)
        elif r > 0:
            out.append((r - 0.5 * a) / math.sqrt(dd2))
        else:
            out.append((dd2 * (r - 0.5 * a) - 0.5 * a * r * r) / dd2**1.5)
        a += eta * (r - a)
        dd2 += eta * (min(r, 0.0) ** 2 - dd2)
    return out


def ref_sortino(values: list[float]) -> list[float]:
    returns: list[float] = []
    prev_s = 0.0
    out = []
    for prev, now in itertools.pairwise(values):
        returns.append(now / prev - 1.0)
        mean = sum(returns) / len(returns)
        dd = math.sqrt(sum(min(x, 0.0) ** 2 for x in returns) / len(returns))
        s = mean / dd if dd > 0 else 0.0
        out.append(s - prev_s)
        prev_s = s
    return out


REFERENCES = {
    "profit": lambda v: [now - prev for prev, now in itertools.pairwise(v)],
    "log_return": lambda v: [math.log(now / prev) for prev, now in itertools.pairwise(v)],
    "differential_sharpe": lambda v: ref_dsr(v, 0.01),
    "downside_deviation": lambda v: ref_ddr(v, 0.01),
    "sortino_change": ref_sortino,
}


def _run_scalar(reward: Reward, values: list[float]) -> np.ndarray:
    reward.reset()
    out = []
    for prev, now in itertools.pairwise(values):
        r = reward(prev, now)
        assert np.shape(r) == ()
        out.append(float(r))
    return np.array(out)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_reward_matches_reference_loop(name: str) -> None:
    values = _values(1)
    got = _run_scalar(make_reward(name), values)
    np.testing.assert_allclose(got, REFERENCES[name](values), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("eta", [0.001, 0.05, 0.9])
def test_differential_sharpe_eta_is_configurable(eta: float) -> None:
    values = _values(2)
    got = _run_scalar(DifferentialSharpeReward(eta=eta), values)
    np.testing.assert_allclose(got, ref_dsr(values, eta), rtol=1e-9, atol=1e-12)
    got_dd = _run_scalar(DownsideDeviationReward(eta=eta), values)
    np.testing.assert_allclose(got_dd, ref_ddr(values, eta), rtol=1e-9, atol=1e-12)


def test_default_eta_is_001() -> None:
    assert DifferentialSharpeReward().eta == 0.01
    assert DownsideDeviationReward().eta == 0.01
    assert make_reward("differential_sharpe", eta=0.2).eta == 0.2  # type: ignore[attr-defined]


def test_dsr_zero_until_variance_and_sign() -> None:
    reward = DifferentialSharpeReward()
    reward.reset()
    assert float(reward(100.0, 101.0)) == 0.0  # no variance estimate yet
    # After a history of gains, another gain above the mean raises the Sharpe, a loss lowers it.
    history = np.random.default_rng(0).normal(0.001, 0.01, 200)
    outcomes = []
    for last in (0.05, -0.05):
        reward.reset()
        for r in history:
            reward(1.0, 1.0 + r)
        outcomes.append(float(reward(1.0, 1.0 + last)))
    assert outcomes[0] > 0 > outcomes[1]


@pytest.mark.parametrize("name", sorted(REWARDS))
def test_batched_equals_scalar_loops(name: str) -> None:
    series = [_values(s, 120) for s in range(3)]
    batched = make_reward(name)
    batched.reset((3,))
    matrix = np.array(series)
    got = np.stack([batched(matrix[:, t], matrix[:, t + 1]) for t in range(matrix.shape[1] - 1)], axis=1)
    for k in range(3):
        np.testing.assert_array_equal(got[k], _run_scalar(make_reward(name), series[k]))


@pytest.mark.parametrize("name", sorted(REWARDS))
def test_partial_reset_restarts_only_masked_members(name: str) -> None:
    series = np.array([_values(s, 60) for s in range(2)])
    reward = make_reward(name)
    reward.reset((2,))
    for t in range(30):
        reward(series[:, t], series[:, t + 1])
    reward.reset((2,), where=np.array([True, False]))
    got = np.stack([reward(series[:, t], series[:, t + 1]) for t in range(30, 60)], axis=1)
    fresh = _run_scalar(make_reward(name), [float(v) for v in series[0, 30:]])
    np.testing.assert_array_equal(got[0], fresh)
    whole = _run_scalar(make_reward(name), [float(v) for v in series[1]])
    np.testing.assert_array_equal(got[1], whole[30:])


def test_profit_and_log_return_edge_cases() -> None:
    assert float(ProfitReward()(100.0, 90.0)) == -10.0
    wiped = float(LogReturnReward()(100.0, -5.0))
    assert np.isfinite(wiped) and wiped < -20
    assert float(DifferentialSharpeReward()(0.0, 5.0)) == 0.0  # no defined return: no NaN


def test_shape_mismatch_is_a_clear_error() -> None:
    reward = DifferentialSharpeReward()
    reward.reset((2,))
    with pytest.raises(RewardError, match=r"call reset\(\(3,\)\)"):
        reward(np.ones(3), np.ones(3))


def test_make_reward_resolution_and_errors() -> None:
    assert isinstance(make_reward(None), LogReturnReward)
    assert isinstance(make_reward(None, default="profit"), ProfitReward)
    assert isinstance(make_reward("Sortino_Change"), SortinoChangeReward)
    obj = DownsideDeviationReward(eta=0.3)
    assert make_reward(obj) is obj
    with pytest.raises(RewardError, match="valid names: differential_sharpe, downside_deviation, log_return"):
        make_reward("running_SR")
    with pytest.raises(EnvConfigError):
        make_reward("profit", eta=0.1)
    with pytest.raises(RewardError, match="eta must be in"):
        DifferentialSharpeReward(eta=0.0)
    assert set(REWARDS) == {"profit", "log_return", "differential_sharpe", "downside_deviation", "sortino_change"}
