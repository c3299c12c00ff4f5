"""The direct-reinforcement agent (rltrade.agents.direct): maths, gradients, training, files, kind."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from rltrade.agents.direct import (
    DirectRLAgent,
    DirectRLKind,
    ReturnWindows,
    autograd_sharpe_gradient,
    differential_sharpe,
    online_pass,
    returns_from_close,
    sharpe,
    sharpe_gradient,
)
from rltrade.agents.factory import AgentError
from rltrade.config import ConfigError, RunConfig, parse_config


def ar_returns(n_bars: int, n_assets: int, phi: float, seed: int, sigma: float = 0.01) -> np.ndarray:
    """AR(1) percentage returns ``r_t = φ·r_{t−1} + ε_t``: momentum when φ > 0, reversal when φ < 0."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, sigma, (n_bars, n_assets))
    out = np.zeros((n_bars, n_assets))
    for t in range(1, n_bars):
        out[t] = phi * out[t - 1] + noise[t]
    return out


def loop_positions(theta: np.ndarray, scaled: np.ndarray, lookback: int, initial: np.ndarray) -> np.ndarray:
    """Brute force: ``F[t, i] = tanh(θ_i·[1, u_t, …, u_{t−M+1}, F_{t−1}])`` with scalar Python maths."""
    n_bars, n_assets = scaled.shape
    full = np.broadcast_to(theta, (n_assets, lookback + 2))
    out = np.zeros((n_bars, n_assets))
    for i in range(n_assets):
        prev = float(initial[i])
        for t in range(n_bars):
            if t < lookback - 1:
                out[t, i] = prev
                continue
            z = full[i, 0] + full[i, -1] * prev
            for j in range(lookback):
                z += full[i, 1 + j] * scaled[t - j, i]
            prev = math.tanh(z)
            out[t, i] = prev
    return out


def loop_trading_returns(
    positions: np.ndarray, returns: np.ndarray, lookback: int, initial: np.ndarray, delta: float
) -> np.ndarray:
    """Brute force ``R_t = Σ_i (w_{i,t−1}·r_{i,t} − δ|w_{i,t} − w_{i,t−1}|)`` with ``w = F/N``, from row ``M − 1``."""
    n_bars, n_assets = returns.shape
    out = []
    for t in range(lookback - 1, n_bars):
        total = 0.0
        for i in range(n_assets):
            before = initial[i] if t == lookback - 1 else positions[t - 1, i]
            total += before / n_assets * returns[t, i] - delta * abs(positions[t, i] - before) / n_assets
        out.append(total)
    return np.array(out)


def _problem(
    shared: bool, cost_rate: float, seed: int = 3, n_bars: int = 120, n_assets: int = 4, lookback: int = 5
) -> tuple[DirectRLAgent, np.ndarray, np.ndarray, np.ndarray]:
    agent = DirectRLAgent(n_assets, lookback=lookback, shared=shared, cost_rate=cost_rate, init_scale=0.8, seed=seed)
    returns = np.random.default_rng(seed).normal(0.0005, 0.012, (n_bars, n_assets))
    lags, raw = agent._inputs(returns)
    initial = np.linspace(-0.5, 0.5, n_assets)
    return agent, lags, raw, initial


# --- the gradient ---------------------------------------------------------------------------


def assert_matches_autograd(grad: np.ndarray, reference: np.ndarray) -> None:
    """The gradient check: within 1e-10 of autograd's, relative to its largest entry."""
    scale = np.abs(reference).max()
    assert scale > 0
    assert np.abs(grad - reference).max() <= 1e-10 * scale, np.abs(grad - reference).max() / scale


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("cost_rate", [0.0, 0.002])
def test_analytic_gradient_equals_autograd(shared: bool, cost_rate: float) -> None:
    agent, lags, raw, initial = _problem(shared, cost_rate)
    value, grad = sharpe_gradient(agent.theta, lags, raw, cost_rate, initial)
    ref_value, reference = autograd_sharpe_gradient(agent.theta, lags, raw, cost_rate, initial)
    assert grad.shape == agent.theta.shape == ((1, 7) if shared else (4, 7))
    assert value == pytest.approx(ref_value, rel=1e-12)
    assert_matches_autograd(grad, reference)


def test_analytic_gradient_equals_central_differences() -> None:
    """Independent of torch: the recursion agrees with finite differences of the Sharpe ratio."""
    agent, lags, raw, initial = _problem(False, 0.001, n_assets=2)
    _, grad = sharpe_gradient(agent.theta, lags, raw, 0.001, initial)
    step = 1e-6
    numeric = np.zeros_like(agent.theta)
    for index in np.ndindex(agent.theta.shape):
        up, down = agent.theta.copy(), agent.theta.copy()
        up[index] += step
        down[index] -= step
        numeric[index] = (
            sharpe_gradient(up, lags, raw, 0.001, initial)[0] - sharpe_gradient(down, lags, raw, 0.001, initial)[0]
        ) / (2 * step)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)


def test_the_gradient_check_fails_on_the_seeds_mistake_and_the_trainer_passes_it() -> None:
    """Seed 002's public code dropped dS/dR_t: it climbed Σ R_t. That gradient must fail the check."""
    agent = DirectRLAgent(3, lookback=4, cost_rate=0.001, init_scale=0.8, seed=5)
    returns = np.random.default_rng(5).normal(0.0005, 0.012, (150, 3))
    lags, raw = agent._inputs(returns)
    flat = np.zeros(3)
    _, reference = autograd_sharpe_gradient(agent.theta, lags, raw, 0.001, flat)

    # The seed's gradient: d(Σ_t R_t)/dθ by the same recursion with dS/dR_t replaced by 1.
    param = torch.tensor(agent.theta, requires_grad=True)
    lag, ret = torch.from_numpy(lags), torch.from_numpy(raw)
    drive = param[:, 0] + (lag * param[:, 1:5]).sum(-1)
    prev, steps = torch.zeros(3, dtype=torch.float64), []
    for t in range(lag.shape[0]):
        prev = torch.tanh(drive[t] + param[:, -1] * prev)
        steps.append(prev)
    positions = torch.stack(steps)
    previous = torch.cat([torch.zeros(1, 3, dtype=torch.float64), positions[:-1]])
    ((previous * ret - 0.001 * (positions - previous).abs()).mean(1)).sum().backward()
    assert param.grad is not None
    wrong = param.grad.numpy()

    with pytest.raises(AssertionError):
        assert_matches_autograd(wrong, reference)
    # Not merely another scale: the seed's ascent direction differs from the Sharpe ratio's.
    cosine = float((wrong * reference).sum() / (np.linalg.norm(wrong) * np.linalg.norm(reference)))
    assert cosine < 0.99
    # What fit() climbs, through the agent's own path (analytic by default), is autograd's gradient.
    value, trainer = agent.gradient(returns)
    assert_matches_autograd(trainer, reference)
    assert value == pytest.approx(sharpe(agent.trading_returns(returns)), rel=1e-13)
    assert_matches_autograd(agent.gradient(returns, method="autograd")[1], reference)


# --- positions, causality, objective, costs -------------------------------------------------


def test_positions_and_trading_returns_match_a_brute_force_loop() -> None:
    agent = DirectRLAgent(3, lookback=4, cost_rate=0.0015, init_scale=0.7, seed=2)
    returns = np.random.default_rng(2).normal(0.0, 0.01, (60, 3))
    agent.scale = np.array([0.01, 0.02, 0.005])
    initial = np.array([0.2, -0.4, 0.0])
    expected = loop_positions(agent.theta, returns / agent.scale, 4, initial)
    np.testing.assert_allclose(agent.positions(returns, initial=initial), expected, rtol=0, atol=1e-15)
    np.testing.assert_allclose(agent.weights(returns, initial=initial), expected / 3, rtol=0, atol=1e-15)
    np.testing.assert_allclose(
        agent.trading_returns(returns, initial=initial),
        loop_trading_returns(expected, returns, 4, initial, 0.0015),
        rtol=0,
        atol=1e-16,
    )


def test_a_hand_worked_single_asset_path() -> None:
    """N = 1, M = 1, no input scaling: every number below is worked out by hand from the definitions."""
    agent = DirectRLAgent(1, lookback=1, cost_rate=0.01)
    agent.theta = np.array([[0.1, 20.0, 0.5]])  # bias, weight of r_t, θ_F
    r = np.array([0.01, -0.02, 0.03])
    f0 = math.tanh(0.1 + 20 * 0.01 + 0.5 * 0.0)
    f1 = math.tanh(0.1 + 20 * -0.02 + 0.5 * f0)
    f2 = math.tanh(0.1 + 20 * 0.03 + 0.5 * f1)
    np.testing.assert_allclose(agent.positions(r)[:, 0], [f0, f1, f2], rtol=1e-15)
    expected_r = [-0.01 * abs(f0), f0 * -0.02 - 0.01 * abs(f1 - f0), f1 * 0.03 - 0.01 * abs(f2 - f1)]
    np.testing.assert_allclose(agent.trading_returns(r), expected_r, rtol=1e-14)


def test_no_position_depends_on_a_later_return() -> None:
    """Lookahead: changing r_{t+1..} never changes F_{≤t}, nor the weights target_weights gives at t."""
    agent = DirectRLAgent(3, lookback=6, init_scale=0.7, seed=4)
    agent.scale = np.array([0.01, 0.015, 0.02])
    returns = np.random.default_rng(4).normal(0.0, 0.01, (80, 3))
    base = agent.positions(returns)
    rng = np.random.default_rng(40)
    for t in (5, 6, 30, 78):
        changed = returns.copy()
        changed[t + 1 :] = rng.normal(0.0, 0.05, changed[t + 1 :].shape)
        after = agent.positions(changed)
        np.testing.assert_array_equal(after[: t + 1], base[: t + 1])
        assert not np.array_equal(after[t + 1 :], base[t + 1 :])  # the later rows do react
        np.testing.assert_array_equal(agent.positions(returns[: t + 1]), base[: t + 1])
    # The one-step API gives the same decision as the path, from the latest M returns only.
    for t in (5, 40, 79):
        step = agent.target_weights(returns[t - 5 : t + 1], base[t - 1] if t > 5 else np.zeros(3))
        np.testing.assert_allclose(step, base[t] / 3, rtol=0, atol=1e-16)
        assert np.array_equal(agent.predict((returns[: t + 1], base[t - 1] if t > 5 else np.zeros(3))), step)


def test_the_objective_is_the_sharpe_ratio_of_the_trading_returns() -> None:
    agent = DirectRLAgent(2, lookback=3, cost_rate=0.001, init_scale=0.6, seed=8)
    returns = np.random.default_rng(8).normal(0.0003, 0.01, (90, 2))
    trading = loop_trading_returns(agent.positions(returns), returns, 3, np.zeros(2), 0.001)
    mean, square = trading.mean(), (trading**2).mean()
    assert agent.sharpe_ratio(returns) == pytest.approx(mean / math.sqrt(square - mean**2), rel=1e-12)
    assert sharpe(trading) == pytest.approx(np.mean(trading) / np.std(trading), rel=1e-12)
    assert sharpe(np.zeros(10)) == 0.0 and sharpe(np.full(10, 0.003)) == 0.0  # no variance, no ratio


def test_costs_lower_a_flipping_policy_by_exactly_delta_times_turnover() -> None:
    n_assets, delta = 2, 0.0025
    returns = np.random.default_rng(6).normal(0.0, 0.01, (50, n_assets))
    costly = DirectRLAgent(n_assets, lookback=2, cost_rate=delta)
    free = DirectRLAgent(n_assets, lookback=2, cost_rate=0.0)
    for agent in (costly, free):
        agent.theta = np.array([[0.5, 1.0, -1.0, -6.0], [-0.3, 0.5, 0.5, -6.0]])  # θ_F = −6: flip every bar
    positions = costly.positions(returns)[1:]
    assert (np.sign(positions[1:]) == -np.sign(positions[:-1])).all()
    turnover = np.abs(np.diff(np.vstack([np.zeros(n_assets), positions]), axis=0)).sum(axis=1) / n_assets
    assert turnover[2:].min() > 1.5 / n_assets
    gap = free.trading_returns(returns) - costly.trading_returns(returns)
    np.testing.assert_allclose(gap, delta * turnover, rtol=1e-12, atol=0)
    assert free.sharpe_ratio(returns) > costly.sharpe_ratio(returns)


# --- the differential Sharpe ratio and online learning ---------------------------------------


def test_differential_sharpe_is_the_first_order_term_of_the_moving_sharpe_ratio() -> None:
    """D_t = d/dη of A_t/√(B_t − A_t²) at η = 0, the moments before t held: its definition."""
    trading = np.random.default_rng(9).normal(0.001, 0.01, 40)
    eta = 0.05
    out = differential_sharpe(trading, eta)
    assert out[0] == 0.0  # A_0 = B_0 = 0: no variance yet
    a = b = 0.0
    for t, r in enumerate(trading):
        if b - a * a > 0:

            def moving(h: float, a: float = a, b: float = b, r: float = r) -> float:
                a_t, b_t = a + h * (r - a), b + h * (r * r - b)
                return a_t / math.sqrt(b_t - a_t * a_t)

            h = 1e-7
            assert out[t] == pytest.approx((moving(h) - moving(-h)) / (2 * h), rel=1e-5)
        a, b = a + eta * (r - a), b + eta * (r * r - b)
    # By hand from a0, b0: B(R − A) − ½A(R² − B) over (B − A²)^{3/2}.
    first = differential_sharpe(np.array([0.02]), 0.1, a0=0.01, b0=0.0005)[0]
    assert first == pytest.approx((0.0005 * 0.01 - 0.5 * 0.01 * (0.0004 - 0.0005)) / 0.0004**1.5, rel=1e-14)
    with pytest.raises(AgentError, match="eta"):
        differential_sharpe(trading, 1.5)


def test_online_updates_climb_the_differential_sharpe_ratio() -> None:
    """With lr = 0, each per-bar step is autograd's dD_t/dθ with the moving moments held constant."""
    agent, lags, raw, initial = _problem(False, 0.002, n_bars=70, n_assets=2, lookback=3)
    eta = 0.1
    theta, trading, grads = online_pass(agent.theta, lags, raw, 0.002, initial, lr=0.0, eta=eta, record=True)
    assert grads is not None and np.array_equal(theta, agent.theta)
    param = torch.tensor(agent.theta, requires_grad=True)
    lag, ret = torch.from_numpy(lags), torch.from_numpy(raw)
    drive = param[:, 0] + (lag * param[:, 1:4]).sum(-1)
    prev, steps = torch.from_numpy(initial), []
    for t in range(lag.shape[0]):
        prev = torch.tanh(drive[t] + param[:, -1] * prev)
        steps.append(prev)
    positions = torch.stack(steps)
    previous = torch.cat([torch.from_numpy(initial)[None], positions[:-1]])
    r_t = (previous * ret - 0.002 * (positions - previous).abs()).mean(1)
    np.testing.assert_allclose(trading, r_t.detach().numpy(), rtol=0, atol=1e-17)
    a = b = 0.0
    checked = 0
    for t in range(len(trading)):
        if t >= math.ceil(1 / eta):
            d_t = (b * (r_t[t] - a) - 0.5 * a * (r_t[t] ** 2 - b)) / (b - a * a) ** 1.5
            (reference,) = torch.autograd.grad(d_t, param, retain_graph=True)
            assert_matches_autograd(grads[t], reference.numpy())
            checked += 1
        else:
            assert not grads[t].any()  # burn-in: the moments are only fed
        r = float(trading[t])
        a, b = a + eta * (r - a), b + eta * (r * r - b)
    assert checked == len(trading) - 10


# --- training --------------------------------------------------------------------------------


def test_training_beats_flat_out_of_sample_on_momentum() -> None:
    """Positively autocorrelated returns: the trained agent earns a positive Sharpe ratio after costs on
    unseen bars, where θ = 0 (flat) earns nothing."""
    returns = ar_returns(2500, 3, 0.2, seed=1)
    train, val, test = returns[:1500], returns[1500:1750], returns[1750:]
    flat = DirectRLAgent(3, lookback=5, cost_rate=0.0005)
    flat.theta = np.zeros_like(flat.theta)
    assert flat.sharpe_ratio(test) == 0.0
    for kwargs in ({}, {"shared": True}, {"online": True, "lr": 0.003, "epochs": 5}):
        agent = DirectRLAgent(3, lookback=5, cost_rate=0.0005, seed=0, **kwargs)
        start = agent.sharpe_ratio(test)
        history = agent.fit(train, val)
        assert history.train_sharpe[history.best_epoch] > history.train_sharpe[0] + 0.1
        assert agent.sharpe_ratio(test) > max(0.15, start + 0.1), kwargs
        assert (agent.theta[:, 1] > 0).all()  # it follows the latest return
        assert agent.sharpe_ratio(test) > flat.sharpe_ratio(test)


def test_early_stopping_keeps_the_best_validation_theta() -> None:
    """Train on momentum, validate on reversal: validation gets worse as training learns, so an early θ wins."""
    train, val = ar_returns(800, 2, 0.25, seed=2), ar_returns(300, 2, -0.25, seed=3)
    agent = DirectRLAgent(2, lookback=3, cost_rate=0.0, lr=0.05, epochs=200, patience=15, seed=1)
    history = agent.fit(train, val)
    assert history.stopped_early and history.epochs_run == history.best_epoch + 15 < 200
    assert len(history.val_sharpe) == history.epochs_run + 1
    best = int(np.argmax(history.val_sharpe))
    assert history.best_epoch == best and history.val_sharpe[-1] < history.val_sharpe[best]
    assert agent.sharpe_ratio(val) == pytest.approx(history.val_sharpe[best], rel=1e-12)
    # The same seed trained for exactly best_epoch updates without validation gives the same θ, bit for bit.
    replay = DirectRLAgent(2, lookback=3, cost_rate=0.0, lr=0.05, epochs=history.best_epoch, patience=15, seed=1)
    replay_history = replay.fit(train)
    assert replay_history.epochs_run == history.best_epoch and not replay_history.stopped_early
    np.testing.assert_array_equal(replay.theta, agent.theta)
    assert replay_history.train_sharpe == history.train_sharpe[: history.best_epoch + 1]
    assert math.isnan(replay_history.val_sharpe[0]) and replay_history.to_dict()["val_sharpe"][0] is None


def test_fit_is_seeded_and_scales_inputs_on_training_returns_only() -> None:
    train, val = ar_returns(400, 2, 0.2, seed=4), ar_returns(200, 2, 0.2, seed=5) * 3
    a = DirectRLAgent(2, lookback=3, epochs=20, seed=7)
    b = DirectRLAgent(2, lookback=3, epochs=20, seed=7)
    assert a.fit(train, val) == b.fit(train, val)
    np.testing.assert_array_equal(a.theta, b.theta)
    np.testing.assert_array_equal(a.scale, train.std(axis=0))
    c = DirectRLAgent(2, lookback=3, epochs=20, seed=8)
    c.fit(train, val)
    assert not np.array_equal(c.theta, a.theta)


# --- files, protocol, kind, errors -----------------------------------------------------------


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    returns = ar_returns(300, 3, 0.2, seed=6)
    agent = DirectRLAgent(3, lookback=4, shared=True, cost_rate=0.0007, epochs=10, patience=None, seed=3)
    agent.fit(returns[:200], returns[200:])
    path = tmp_path / "agent"  # no suffix: written where asked
    agent.save(path)
    loaded = DirectRLAgent.load(path)
    assert loaded.settings == agent.settings
    np.testing.assert_array_equal(loaded.theta, agent.theta)
    np.testing.assert_array_equal(loaded.scale, agent.scale)
    np.testing.assert_array_equal(loaded.positions(returns), agent.positions(returns))
    (tmp_path / "bad.npz").write_bytes(b"not a file of ours")
    with pytest.raises(AgentError, match="not a saved direct-RL agent"):
        DirectRLAgent.load(tmp_path / "bad.npz")
    np.savez(tmp_path / "other.npz", theta=agent.theta)
    with pytest.raises(AgentError, match="not a saved direct-RL agent"):
        DirectRLAgent.load(tmp_path / "other.npz")


def _config(params: dict[str, object], cost: str = "bps") -> RunConfig:
    config = parse_config(
        {
            "name": "direct",
            "train": {"start": "2020-01-01", "end": "2020-06-30"},
            "test": {"start": "2020-07-01", "end": "2020-12-31"},
            "strategy": "direct_rl",
            "agent": {"kind": "direct", **params},
            "env": {"cost": {"model": cost, "bps": 5}},
        }
    )
    assert isinstance(config, RunConfig)
    return config


def test_the_kind_builds_learns_saves_and_loads(tmp_path: Path) -> None:
    returns = ar_returns(400, 2, 0.2, seed=7)
    config = _config({"lookback": 4, "lr": 0.05, "patience": 5})
    kind = DirectRLKind()
    agent = kind.build(config, ReturnWindows(returns[:300], returns[300:]), seed=2)
    assert agent.settings.cost_rate == pytest.approx(0.0005) and agent.settings.lookback == 4
    assert agent.settings.seed == 2 and agent.device_name == "-"
    assert agent.learn(3000, progress=False) is agent
    assert agent.history is not None and agent.history.epochs_run <= 10  # ceil(3000 / 300) epochs at most
    assert agent.num_timesteps == 300 * agent.history.epochs_run
    path = tmp_path / kind.model_file(2)
    assert path.name == "seed_2.npz"
    agent.save(path)
    loaded = kind.load(config, path)
    observation = {"recent_returns": returns[-4:], "previous_position": np.array([0.1, -0.1])}
    np.testing.assert_array_equal(loaded.predict(observation), agent.predict(observation))
    assert np.abs(agent.predict(observation)).sum() <= 1.0


def test_the_kind_checks_its_parameters_and_costs() -> None:
    kind = DirectRLKind()
    windows = ReturnWindows(np.zeros((50, 2)))
    with pytest.raises(ConfigError, match=r"agent\.gamma: unknown field"):
        _config({"gamma": 0.9})
    with pytest.raises(AgentError, match="cost_rate"):
        kind.build(_config({}, cost="per_share"), windows, seed=0)
    assert kind.build(_config({"cost_rate": 0.002}, cost="per_share"), windows, seed=0).settings.cost_rate == 0.002
    assert kind.build(_config({}, cost="none"), windows, seed=0).settings.cost_rate == 0.0
    with pytest.raises(AgentError, match="ReturnWindows"):
        kind.build(_config({}), object(), seed=0)


def test_bad_inputs_are_refused_with_a_message() -> None:
    with pytest.raises(AgentError, match=r"lookback must be >= 1.*optimizer"):
        DirectRLAgent(2, lookback=0, optimizer="rmsprop")
    agent = DirectRLAgent(2, lookback=3)
    with pytest.raises(AgentError, match=r"returns must be \[T, 2\]"):
        agent.positions(np.zeros((10, 3)))
    bad = np.zeros((10, 2))
    bad[4, 1] = np.nan
    with pytest.raises(AgentError, match="row 4, asset 1"):
        agent.fit(bad)
    with pytest.raises(AgentError, match="lookback 3"):
        agent.positions(np.zeros((2, 2)))
    with pytest.raises(AgentError, match="previous position"):
        agent.target_weights(np.zeros((3, 2)), np.array([2.0, 0.0]))
    with pytest.raises(AgentError, match="no training returns"):
        agent.learn(100)


def test_returns_from_close() -> None:
    close = np.array([[100.0, 10.0], [101.0, 9.0], [99.99, 9.9]])
    np.testing.assert_allclose(returns_from_close(close), [[0.01, -0.1], [-0.01, 0.1]], rtol=1e-12)
    with pytest.raises(AgentError, match="row 1, asset 1"):
        returns_from_close(np.array([[1.0, 1.0], [1.0, np.nan]]))
