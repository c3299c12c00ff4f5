"""Direct reinforcement (Moody & Saffell's recurrent reinforcement learning): trade to maximise the Sharpe ratio.

The agent holds a position ``F_{i,t} ∈ (−1, 1)`` in each asset ``i`` and learns the parameters θ of

``F_{i,t} = tanh(θ_i · x_{i,t})``,  ``x_{i,t} = [1, u_{i,t}, u_{i,t−1}, …, u_{i,t−M+1}, F_{i,t−1}]``

by gradient ascent on the Sharpe ratio of its own trading returns. No value function, no
Gymnasium env: the objective is differentiated through the recurrence (SPEC §4, seed 002).

Timing
    Row ``t`` of a ``[T, N]`` returns array is the *percentage* return of bar ``t``,
    ``r_{i,t} = p_{i,t} / p_{i,t−1} − 1``, known at the close of bar ``t``. The position ``F_t``
    is decided at that close from the ``M = lookback`` returns ``r_{t−M+1} … r_t`` and the previous
    position ``F_{t−1}``; it is held over bar ``t+1`` and earns ``F_t·r_{t+1}``. The first decision
    is at row ``t0 = M − 1`` (the first row with ``M`` known returns); before it the agent holds its
    initial position (0, flat, unless given). Nothing at row ``t`` uses a return after row ``t``.
Weights and trading return
    The portfolio splits its equity equally over the N assets: the weight of asset ``i`` is
    ``w_{i,t} = F_{i,t} / N``, so the gross exposure ``Σ|w|`` never exceeds 1 (N = 1: ``w = F``).
    The trading return of bar ``t`` (``t ≥ t0``, with ``F_{t0−1}`` the initial position) is

    ``R_t = Σ_i w_{i,t−1}·r_{i,t} − δ·Σ_i |w_{i,t} − w_{i,t−1}|``

    (Moody & Saffell's ``R_t = F_{t−1}·r_t − δ|F_t − F_{t−1}|`` averaged over assets): the bar's
    return on the position held over it, minus the cost of the trade at its close. ``δ`` is
    ``cost_rate``, the proportional cost per unit of traded notional that
    :class:`rltrade.envs.costs.BpsCost` charges (10 bp → 0.001). Returns are never z-scored: ``R``
    is in the units of ``r``, so ``δ`` keeps its meaning. The lagged returns fed to θ may be divided
    by a per-asset constant fitted on the training returns (``scale_inputs``), which only
    re-parameterises θ.
Objective
    ``S = A / √(B − A²)`` with ``A`` the mean and ``B`` the mean square of ``R_t`` over the window
    (the per-bar Sharpe ratio, not annualised: multiply by √252 for daily bars). It is 0 when ``R``
    has no variance (θ = 0 gives ``R ≡ 0``).
Gradient
    The analytic recursion (:func:`sharpe_gradient`, numpy, vectorised over assets, one loop over
    time): ``dS/dθ = Σ_t dS/dR_t·(dR_t/dF_t·dF_t/dθ + dR_t/dF_{t−1}·dF_{t−1}/dθ)`` with
    ``dF_t/dθ = (1 − F_t²)(x_t + θ_F·dF_{t−1}/dθ)`` and ``dS/dR_t = (B − A·R_t) / (n·(B − A²)^{3/2})``.
    The public code of seed 002 left out ``dS/dR_t`` and so climbed the summed return instead.
    :func:`autograd_sharpe_gradient` gives the same numbers with PyTorch autograd.
Training
    :meth:`DirectRLAgent.fit`: full-batch epochs of gradient *ascent* (Adam by default, or plain
    ascent ``θ += lr·∇S``) from a seeded initial θ, with early stopping on the validation Sharpe:
    the θ with the best validation Sharpe is kept, and training stops after ``patience`` epochs
    without improvement. With ``online=True`` an epoch is instead one pass over the training bars
    with an update after every bar on the differential Sharpe ratio (:func:`differential_sharpe`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from rltrade.agents.factory import AgentError
from rltrade.config import RunConfig

FloatArray = NDArray[np.float64]

OPTIMIZERS: tuple[str, ...] = ("adam", "sgd")
"""Values of ``DirectRLAgent(optimizer=...)``: Adam, or plain gradient ascent."""
GRADIENTS: tuple[str, ...] = ("analytic", "autograd")
"""Values of ``DirectRLAgent(gradient=...)``: the numpy recursion, or PyTorch autograd (slower, same numbers)."""

_FORMAT = "rltrade.direct/1"  # written into every saved file, checked on load
_ADAM_BETAS = (0.9, 0.999)
_ADAM_EPS = 1e-8
_SCALE_FLOOR = 1e-12  # an asset whose training returns are all 0 keeps its inputs unscaled


# --------------------------------------------------------------------------------------------
# The objective: Sharpe ratio and differential Sharpe ratio of trading returns
# --------------------------------------------------------------------------------------------


def _moments(trading_returns: FloatArray) -> tuple[float, float, float]:
    """``A`` (mean), ``B`` (mean square) and the variance ``B − A²`` of ``R`` (computed centred, for accuracy)."""
    mean = float(trading_returns.mean())
    var = float(np.mean((trading_returns - mean) ** 2))
    # A variance at rounding level (a constant R) is no variance: its Sharpe ratio would be noise.
    if var <= 1e-14 * (mean * mean):
        var = 0.0
    return mean, var + mean * mean, var


def sharpe(trading_returns: np.ndarray) -> float:
    """``A / √(B − A²)``: the per-bar Sharpe ratio of ``R`` (population std); 0 when ``R`` has no variance."""
    mean, _, var = _moments(np.asarray(trading_returns, dtype=np.float64))
    return mean / math.sqrt(var) if var > 0 else 0.0


def sharpe_and_derivative(trading_returns: FloatArray) -> tuple[float, FloatArray]:
    """The Sharpe ratio of ``R`` and ``dS/dR_t = (B − A·R_t) / (n·(B − A²)^{3/2})`` (zeros without variance)."""
    n = trading_returns.shape[0]
    mean, square, var = _moments(trading_returns)
    if var <= 0:
        return 0.0, np.zeros(n)
    return mean / math.sqrt(var), (square - mean * trading_returns) / (n * var**1.5)


def differential_sharpe(trading_returns: np.ndarray, eta: float, a0: float = 0.0, b0: float = 0.0) -> FloatArray:
    """Moody & Saffell's differential Sharpe ratio ``D_t`` of each trading return (for online learning).

    With exponential moving moments ``A_t = A_{t−1} + η·ΔA_t``, ``B_t = B_{t−1} + η·ΔB_t``,
    ``ΔA_t = R_t − A_{t−1}`` and ``ΔB_t = R_t² − B_{t−1}``,

    ``D_t = (B_{t−1}·ΔA_t − ½·A_{t−1}·ΔB_t) / (B_{t−1} − A_{t−1}²)^{3/2}``,

    the first-order term in η of the moving Sharpe ratio ``A_t / √(B_t − A_t²)``: the marginal
    effect of ``R_t`` on it. ``D_t`` is 0 while ``B_{t−1} − A_{t−1}² ≤ 0`` (e.g. at the start from
    ``a0 = b0 = 0``).

    Parameters
    ----------
    trading_returns:
        ``R_t``, shape ``[n]``.
    eta:
        Adaptation rate in (0, 1) (about 1 / the memory in bars).
    a0, b0:
        ``A`` and ``B`` before the first return.
    """
    _check_eta(eta)
    out = np.zeros(len(trading_returns))
    a, b = float(a0), float(b0)
    for t, r in enumerate(np.asarray(trading_returns, dtype=np.float64)):
        out[t] = _dsr(a, b, r)
        a, b = a + eta * (r - a), b + eta * (r * r - b)
    return out


def _dsr(a: float, b: float, r: float) -> float:
    """``D_t`` from ``A_{t−1} = a``, ``B_{t−1} = b`` and ``R_t = r``."""
    var = b - a * a
    return (b * (r - a) - 0.5 * a * (r * r - b)) / var**1.5 if var > 0 else 0.0


def _dsr_derivative(a: float, b: float, r: float) -> float:
    """``dD_t/dR_t = (B_{t−1} − A_{t−1}·R_t) / (B_{t−1} − A_{t−1}²)^{3/2}`` (0 without variance)."""
    var = b - a * a
    return (b - a * r) / var**1.5 if var > 0 else 0.0


def _check_eta(eta: float) -> None:
    if not 0.0 < eta < 1.0:
        raise AgentError(f"direct agent: eta (the differential Sharpe adaptation rate) must be in (0, 1), got {eta}")


# --------------------------------------------------------------------------------------------
# The model: inputs, positions, trading returns
# --------------------------------------------------------------------------------------------


def returns_from_close(close: np.ndarray) -> FloatArray:
    """Percentage returns ``close[t] / close[t−1] − 1`` of a ``[T]`` or ``[T, N]`` close array (``T − 1`` rows).

    Raises
    ------
    AgentError
        When a close is not finite and positive (the agent needs a return on every bar).
    """
    prices = np.asarray(close, dtype=np.float64)
    if not (np.isfinite(prices).all() and (prices > 0).all()):
        row, *column = (int(i) for i in np.argwhere(~(np.isfinite(prices) & (prices > 0)))[0])
        where = f"row {row}" + (f", asset {column[0]}" if column else "")
        raise AgentError(f"direct agent: close prices must be finite and > 0; the first bad one is at {where}")
    result: FloatArray = prices[1:] / prices[:-1] - 1.0
    return result


def lagged_inputs(scaled: FloatArray, lookback: int) -> FloatArray:
    """The lagged-return block of ``x_t`` for every decision row: ``out[k, i, j] = scaled[t0 + k − j, i]``.

    Shape ``[T − t0, N, lookback]`` with ``t0 = lookback − 1``; newest return first (``j = 0`` is row ``t``).
    """
    windows = np.lib.stride_tricks.sliding_window_view(scaled, lookback, axis=0)  # [T−t0, N, M], oldest first
    return np.ascontiguousarray(windows[..., ::-1])


def forward_positions(theta: FloatArray, lags: FloatArray, initial: FloatArray) -> FloatArray:
    """``F_t = tanh(θ·[1, lags_t, F_{t−1}])`` for every decision row; ``F_{t0−1} = initial``.

    Parameters
    ----------
    theta:
        ``[N, K]`` (or ``[1, K]``, shared) with ``K = lookback + 2``: bias, lag weights, ``θ_F``.
    lags:
        :func:`lagged_inputs`, ``[n, N, lookback]``.
    initial:
        ``[N]`` position held before the first decision.
    """
    n, n_assets, lookback = lags.shape
    full = np.broadcast_to(theta, (n_assets, lookback + 2))
    # The part of θ·x that does not depend on the recurrence, for all rows at once.
    drive = full[:, 0] + np.einsum("tnm,nm->tn", lags, full[:, 1 : lookback + 1])
    theta_f = full[:, -1]
    out = np.empty((n, n_assets))
    prev = initial
    for t in range(n):
        prev = np.tanh(drive[t] + theta_f * prev)
        out[t] = prev
    return out


def portfolio_returns(positions: FloatArray, previous: FloatArray, returns: FloatArray, cost_rate: float) -> FloatArray:
    """``R_t = Σ_i (F_{i,t−1}·r_{i,t} − δ·|F_{i,t} − F_{i,t−1}|) / N`` (weights ``F/N``) for each row.

    ``positions`` is ``F_t``, ``previous`` is ``F_{t−1}`` and ``returns`` is ``r_t``, all ``[n, N]``.
    """
    result: FloatArray = (previous * returns - cost_rate * np.abs(positions - previous)).mean(axis=1)
    return result


def _previous(positions: FloatArray, initial: FloatArray) -> FloatArray:
    """``F_{t−1}`` for each decision row: the initial position, then the positions shifted by one row."""
    return np.concatenate([initial[None, :], positions[:-1]], axis=0)


# --------------------------------------------------------------------------------------------
# The gradient: analytic recursion (numpy) and autograd (PyTorch)
# --------------------------------------------------------------------------------------------


def sharpe_gradient(
    theta: FloatArray, lags: FloatArray, returns: FloatArray, cost_rate: float, initial: FloatArray
) -> tuple[float, FloatArray]:
    """The Sharpe ratio of the positions θ takes and its gradient ``dS/dθ`` (Moody & Saffell's recursion).

    Parameters
    ----------
    theta:
        ``[N, K]`` per-asset parameters, or ``[1, K]`` shared by every asset (its gradient is
        then summed over the assets).
    lags:
        :func:`lagged_inputs` of the (scaled) returns, ``[n, N, lookback]``.
    returns:
        The raw percentage returns of the same decision rows, ``[n, N]``.
    cost_rate:
        ``δ``.
    initial:
        ``[N]`` position before the first decision row (a constant: no gradient flows into it).

    Returns
    -------
    (S, dS/dθ), the gradient shaped like ``theta``.
    """
    n, n_assets, lookback = lags.shape
    full = np.broadcast_to(theta, (n_assets, lookback + 2))
    positions = forward_positions(theta, lags, initial)
    previous = _previous(positions, initial)
    trading = portfolio_returns(positions, previous, returns, cost_rate)
    value, ds_dr = sharpe_and_derivative(trading)

    # R_t depends on F_t through the cost and on F_{t−1} through the return and the cost:
    #   dR_t/dF_t = −δ·sign(ΔF_t)/N,   dR_t/dF_{t−1} = (r_t + δ·sign(ΔF_t))/N.
    # F_t enters R_t and R_{t+1}; gathering both gives its total weight c_t in dS/dθ = Σ_t c_t·dF_t/dθ.
    sign = np.sign(positions - previous)
    weight = ds_dr[:, None] * (-cost_rate * sign) / n_assets
    weight[:-1] += ds_dr[1:, None] * (returns[1:] + cost_rate * sign[1:]) / n_assets

    # dF_t/dθ = (1 − F_t²)·(x_t + θ_F·dF_{t−1}/dθ), from dF_{t0−1}/dθ = 0 (the initial position is given).
    inputs = np.concatenate([np.ones((n, n_assets, 1)), lags, previous[:, :, None]], axis=2)  # x_t, [n, N, K]
    slope = 1.0 - positions * positions
    theta_f = full[:, -1:]
    d_position = np.zeros((n_assets, lookback + 2))
    gradient = np.zeros((n_assets, lookback + 2))
    for t in range(n):
        d_position = slope[t, :, None] * (inputs[t] + theta_f * d_position)
        gradient += weight[t, :, None] * d_position
    if theta.shape[0] == 1:
        gradient = gradient.sum(axis=0, keepdims=True)
    return value, gradient


def autograd_sharpe_gradient(
    theta: FloatArray, lags: FloatArray, returns: FloatArray, cost_rate: float, initial: FloatArray
) -> tuple[float, FloatArray]:
    """:func:`sharpe_gradient` by PyTorch autograd through the recurrence (float64, CPU): the reference."""
    import torch

    n, n_assets, lookback = lags.shape
    param = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
    full = param.expand(n_assets, lookback + 2)
    lag = torch.from_numpy(np.ascontiguousarray(lags))
    ret = torch.from_numpy(np.ascontiguousarray(returns))
    drive = full[:, 0] + (lag * full[:, 1 : lookback + 1]).sum(dim=-1)
    prev = torch.from_numpy(np.array(initial, dtype=np.float64))
    steps = []
    for t in range(n):
        prev = torch.tanh(drive[t] + full[:, -1] * prev)
        steps.append(prev)
    positions = torch.stack(steps)
    previous = torch.cat([torch.from_numpy(np.array(initial, dtype=np.float64))[None, :], positions[:-1]])
    trading = (previous * ret - cost_rate * (positions - previous).abs()).mean(dim=1)
    mean, square = trading.mean(), (trading * trading).mean()
    if float((square - mean * mean).detach()) <= 0:
        return 0.0, np.zeros_like(theta)
    value = mean / torch.sqrt(square - mean * mean)
    value.backward()
    assert param.grad is not None
    return float(value.detach()), param.grad.numpy().copy()


def online_pass(
    theta: FloatArray,
    lags: FloatArray,
    returns: FloatArray,
    cost_rate: float,
    initial: FloatArray,
    *,
    lr: float,
    eta: float,
    record: bool = False,
) -> tuple[FloatArray, FloatArray, FloatArray | None]:
    """One pass over the bars, updating θ after every bar by ascent on the differential Sharpe ratio.

    At bar ``t`` the position ``F_t`` is taken with the current θ, ``R_t`` and ``D_t`` follow, and
    ``θ += lr·dD_t/dθ`` with ``dD_t/dθ = dD_t/dR_t·(dR_t/dF_t·dF_t/dθ + dR_t/dF_{t−1}·dF_{t−1}/dθ)``,
    the moving moments ``A_{t−1}, B_{t−1}`` held constant (as Moody & Saffell do) and ``dF/dθ``
    carried forward by the recursion of :func:`sharpe_gradient` under the changing θ (real-time
    recurrent learning). The moments start at 0 and the first ``ceil(1/η)`` bars only feed them: before
    they span about one memory length, ``B − A²`` is tiny and ``dD_t/dR_t`` would be huge.

    Returns
    -------
    (θ after the pass, the trading returns ``R`` earned during it, and with ``record=True`` each
    bar's ``dD_t/dθ`` as ``[n, *theta.shape]``, else None).
    """
    _check_eta(eta)
    n, n_assets, lookback = lags.shape
    shared = theta.shape[0] == 1
    theta = theta.copy()
    moment_a = moment_b = 0.0
    prev = np.array(initial, dtype=np.float64)
    d_prev = np.zeros((n_assets, lookback + 2))
    trading = np.empty(n)
    grads = np.empty((n, *theta.shape)) if record else None
    x = np.ones((n_assets, lookback + 2))
    burn_in = math.ceil(1.0 / eta)
    for t in range(n):
        full = np.broadcast_to(theta, (n_assets, lookback + 2))
        x[:, 1 : lookback + 1] = lags[t]
        x[:, -1] = prev
        position = np.tanh((full * x).sum(axis=1))
        d_position = (1.0 - position * position)[:, None] * (x + full[:, -1:] * d_prev)
        sign = np.sign(position - prev)
        r_t = float(np.mean(prev * returns[t] - cost_rate * np.abs(position - prev)))
        d_r = (-cost_rate * sign[:, None] * d_position + (returns[t] + cost_rate * sign)[:, None] * d_prev) / n_assets
        grad = (_dsr_derivative(moment_a, moment_b, r_t) if t >= burn_in else 0.0) * d_r
        if shared:
            grad = grad.sum(axis=0, keepdims=True)
        if grads is not None:
            grads[t] = grad
        theta += lr * grad
        trading[t] = r_t
        moment_a, moment_b = moment_a + eta * (r_t - moment_a), moment_b + eta * (r_t * r_t - moment_b)
        prev, d_prev = position, d_position
    return theta, trading, grads


# --------------------------------------------------------------------------------------------
# The agent
# --------------------------------------------------------------------------------------------


@dataclass
class TrainingHistory:
    """What :meth:`DirectRLAgent.fit` saw, epoch by epoch (entry ``e`` is θ after ``e`` updates).

    Sharpe ratios are per bar (not annualised); ``val_sharpe`` is NaN without validation returns.
    ``best_epoch`` is the epoch whose θ the agent kept; ``epochs_run`` the number of updates made.
    """

    train_sharpe: list[float] = field(default_factory=list)
    val_sharpe: list[float] = field(default_factory=list)
    best_epoch: int = 0
    epochs_run: int = 0
    stopped_early: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (NaN becomes None)."""
        out = asdict(self)
        out["val_sharpe"] = [None if math.isnan(v) else v for v in self.val_sharpe]
        return out


class ReturnWindows(NamedTuple):
    """The data a :class:`DirectRLKind` agent learns from: ``[T, N]`` percentage returns of the two windows."""

    train: np.ndarray
    val: np.ndarray | None = None


@dataclass(frozen=True)
class _Settings:
    """Hyperparameters of a :class:`DirectRLAgent` (saved with θ)."""

    n_assets: int
    lookback: int
    shared: bool
    cost_rate: float
    lr: float
    epochs: int
    patience: int | None
    seed: int
    optimizer: str
    gradient: str
    init_scale: float
    scale_inputs: bool
    online: bool
    eta: float


#: The keyword arguments of :class:`DirectRLAgent` that ``agent.params`` may set.
PARAMS: tuple[str, ...] = tuple(name for name in _Settings.__dataclass_fields__ if name not in ("n_assets", "seed"))


class DirectRLAgent:
    """Recurrent reinforcement learning (Moody & Saffell) over N assets; see the module docstring.

    Parameters
    ----------
    n_assets:
        N, the number of columns of every returns array.
    lookback:
        M, the number of lagged returns in each input (``>= 1``).
    shared:
        One θ for every asset (True) or one per asset (False).
    cost_rate:
        δ, cost per unit of traded notional (0.001 = 10 bp, as ``BpsCost(10)``).
    lr:
        Learning rate of the ascent (Adam's step size, or the multiplier of ∇S with ``sgd``;
        the per-bar step of the online mode).
    epochs:
        Maximum number of full-batch updates (of passes with ``online=True``) in :meth:`fit`.
    patience:
        Epochs without a better validation Sharpe before :meth:`fit` stops; None never stops early.
    seed:
        Seeds the initial θ, ``N(0, init_scale²)`` per entry.
    optimizer:
        ``adam`` or ``sgd`` (plain ascent ``θ += lr·∇S``); the online mode always uses plain steps.
    gradient:
        ``analytic`` (:func:`sharpe_gradient`) or ``autograd`` (:func:`autograd_sharpe_gradient`).
    init_scale:
        Std of the initial θ (> 0: at θ = 0 the positions are flat and the Sharpe ratio has no gradient).
    scale_inputs:
        Divide each asset's lagged returns by the std of its training returns (fitted in :meth:`fit`);
        ``R`` always uses the raw returns.
    online:
        Train by per-bar updates on the differential Sharpe ratio (:func:`online_pass`).
    eta:
        Adaptation rate of the differential Sharpe ratio (online mode).

    Attributes
    ----------
    theta:
        ``[N, lookback + 2]`` (``[1, lookback + 2]`` when shared): bias, lag weights (newest first), ``θ_F``.
    scale:
        ``[N]`` divisors of the lagged returns (ones until fitted).
    """

    device_name: str = "-"

    def __init__(
        self,
        n_assets: int,
        *,
        lookback: int = 8,
        shared: bool = False,
        cost_rate: float = 0.001,
        lr: float = 0.02,
        epochs: int = 300,
        patience: int | None = 30,
        seed: int = 0,
        optimizer: str = "adam",
        gradient: str = "analytic",
        init_scale: float = 0.1,
        scale_inputs: bool = True,
        online: bool = False,
        eta: float = 0.01,
    ) -> None:
        self.settings = _check_settings(
            _Settings(
                int(n_assets),
                int(lookback),
                bool(shared),
                float(cost_rate),
                float(lr),
                int(epochs),
                None if patience is None else int(patience),
                int(seed),
                str(optimizer).lower(),
                str(gradient).lower(),
                float(init_scale),
                bool(scale_inputs),
                bool(online),
                float(eta),
            )
        )
        self.theta = self.initial_theta()
        self.scale = np.ones(self.settings.n_assets)
        self.num_timesteps = 0
        self.data: ReturnWindows | None = None
        self.history: TrainingHistory | None = None

    # --- the array API ------------------------------------------------------------------------

    @property
    def lookback(self) -> int:
        """M: the number of lagged returns in each input."""
        return self.settings.lookback

    @property
    def n_assets(self) -> int:
        """N."""
        return self.settings.n_assets

    def initial_theta(self) -> FloatArray:
        """The seeded θ that :meth:`fit` starts from."""
        s = self.settings
        rows = 1 if s.shared else s.n_assets
        result: FloatArray = np.random.default_rng(s.seed).normal(0.0, s.init_scale, (rows, s.lookback + 2))
        return result

    def fit(
        self,
        train_returns: np.ndarray,
        val_returns: np.ndarray | None = None,
        *,
        epochs: int | None = None,
        progress: bool = False,
        label: str | None = None,
    ) -> TrainingHistory:
        """Train θ from its seeded start on ``train_returns``; keep the θ with the best Sharpe on ``val_returns``.

        Each window is scored on its own rows: positions start flat and the first decision is at its
        row ``lookback − 1``. (To score a validation window from its first bar, prepend the last
        ``lookback`` training rows.) The input scale is fitted on ``train_returns`` only.

        Parameters
        ----------
        train_returns, val_returns:
            ``[T, N]`` percentage returns (``[T]`` for N = 1), each longer than ``lookback``.
            Without ``val_returns`` the last θ is kept and training never stops early.
        epochs:
            Overrides the agent's ``epochs``.
        progress:
            A tqdm bar over the epochs.
        label:
            The bar's label.

        Returns
        -------
        The :class:`TrainingHistory`; ``self.theta`` is the kept θ afterwards.
        """
        s = self.settings
        train = self._returns(train_returns, "train_returns")
        val = None if val_returns is None else self._returns(val_returns, "val_returns")
        n_epochs = s.epochs if epochs is None else int(epochs)
        if n_epochs < 0:
            raise AgentError(f"direct agent: epochs must be >= 0, got {n_epochs}")
        self.scale = _input_scale(train) if s.scale_inputs else np.ones(s.n_assets)
        train_lags, train_r = self._inputs(train)
        val_inputs = None if val is None else self._inputs(val)
        flat = np.zeros(s.n_assets)

        theta = self.initial_theta()
        adam = _Adam(theta.shape)
        history = TrainingHistory()
        best_theta, best_val = theta.copy(), -math.inf
        bar = _progress(n_epochs, label or "train direct RL", progress)
        try:
            for epoch in range(n_epochs + 1):
                if s.online:
                    train_sharpe = self._sharpe_of(theta, train_lags, train_r)
                else:
                    train_sharpe, grad = self._gradient(theta, train_lags, train_r, flat)
                val_sharpe = math.nan if val_inputs is None else self._sharpe_of(theta, *val_inputs)
                history.train_sharpe.append(train_sharpe)
                history.val_sharpe.append(val_sharpe)
                # Without validation the latest θ is the best; with it, only a strictly better Sharpe counts.
                if val is None or val_sharpe > best_val:
                    best_theta, best_val, history.best_epoch = theta.copy(), val_sharpe, epoch
                if epoch == n_epochs:
                    break
                if s.patience is not None and val is not None and epoch - history.best_epoch >= s.patience:
                    history.stopped_early = True
                    break
                if s.online:
                    theta, _, _ = online_pass(theta, train_lags, train_r, s.cost_rate, flat, lr=s.lr, eta=s.eta)
                else:
                    theta = theta + adam.step(grad, s.lr) if s.optimizer == "adam" else theta + s.lr * grad
                history.epochs_run = epoch + 1
                self.num_timesteps += train.shape[0]
                bar.update(1)
                bar.set_postfix(train=f"{train_sharpe:.3f}", val=f"{val_sharpe:.3f}", refresh=False)
        finally:
            bar.close()
        self.theta = best_theta
        return history

    def positions(self, returns: np.ndarray, *, initial: np.ndarray | None = None) -> FloatArray:
        """The whole path of positions ``F`` (``[T, N]``) the agent takes on ``returns``.

        Row ``t`` is the position decided at the close of bar ``t`` (from rows ``t − lookback + 1 .. t``)
        and held over bar ``t + 1``. Rows before ``lookback − 1`` hold ``initial`` (default 0: flat).
        To trade a range from its first bar, pass at least ``lookback`` earlier rows before it and
        slice the result.
        """
        data = self._returns(returns, "returns")
        start = self._initial(initial)
        lags, _ = self._inputs(data)
        out = np.empty(data.shape)
        out[: self.lookback - 1] = start
        out[self.lookback - 1 :] = forward_positions(self.theta, lags, start)
        return out

    def weights(self, returns: np.ndarray, *, initial: np.ndarray | None = None) -> FloatArray:
        """The portfolio weights ``w = F / N`` of :meth:`positions` (``[T, N]``, ``Σ|w| ≤ 1``)."""
        result: FloatArray = self.positions(returns, initial=initial) / self.n_assets
        return result

    def trading_returns(self, returns: np.ndarray, *, initial: np.ndarray | None = None) -> FloatArray:
        """``R_t`` for the decision rows ``lookback − 1 .. T − 1`` of ``returns`` (``T − lookback + 1`` values)."""
        data = self._returns(returns, "returns")
        start = self._initial(initial)
        lags, raw = self._inputs(data)
        positions = forward_positions(self.theta, lags, start)
        return portfolio_returns(positions, _previous(positions, start), raw, self.settings.cost_rate)

    def sharpe_ratio(self, returns: np.ndarray, *, initial: np.ndarray | None = None) -> float:
        """The per-bar Sharpe ratio of :meth:`trading_returns` (the training objective)."""
        return sharpe(self.trading_returns(returns, initial=initial))

    def next_position(self, recent_returns: np.ndarray, previous_position: np.ndarray) -> FloatArray:
        """``F_t`` from the latest returns (``[≥ lookback, N]``, the last row is bar ``t``) and ``F_{t−1}`` (``[N]``).

        ``previous_position`` is the agent's own previous decision (``N × w`` of its previous
        weights), not the drifted holdings.
        """
        data = self._returns(recent_returns, "recent_returns")
        start = self._initial(previous_position)
        lags = lagged_inputs(data[-self.lookback :] / self.scale, self.lookback)
        return forward_positions(self.theta, lags, start)[0]

    def target_weights(self, recent_returns: np.ndarray, previous_position: np.ndarray) -> FloatArray:
        """The next weights ``F_t / N`` (see :meth:`next_position`)."""
        result: FloatArray = self.next_position(recent_returns, previous_position) / self.n_assets
        return result

    def gradient(self, returns: np.ndarray, *, method: str | None = None) -> tuple[float, FloatArray]:
        """The Sharpe ratio on ``returns`` (from flat) and its gradient in θ, as :meth:`fit` uses them."""
        data = self._returns(returns, "returns")
        lags, raw = self._inputs(data)
        return self._gradient(self.theta, lags, raw, np.zeros(self.n_assets), method)

    # --- files --------------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write θ, the input scale and the settings to an ``.npz`` file (no pickle)."""
        settings = json.dumps({"format": _FORMAT, **asdict(self.settings)})
        with open(path, "wb") as handle:  # a file object: np.savez would append .npz to a path without it
            np.savez(handle, theta=self.theta, scale=self.scale, settings=np.array(settings))

    @classmethod
    def load(cls, path: str | Path) -> DirectRLAgent:
        """The agent :meth:`save` wrote to ``path``."""
        try:
            with np.load(path, allow_pickle=False) as data:
                theta, scale, text = data["theta"], data["scale"], str(data["settings"])
        except (OSError, KeyError, ValueError) as exc:
            raise AgentError(f"{path}: not a saved direct-RL agent ({exc})") from exc
        settings = json.loads(text)
        if not isinstance(settings, dict) or settings.pop("format", None) != _FORMAT:
            raise AgentError(f"{path}: not a saved direct-RL agent (format {_FORMAT} expected)")
        try:
            agent = cls(**settings)
        except TypeError as exc:
            raise AgentError(f"{path}: settings of another version of the direct agent ({exc})") from exc
        if theta.shape != agent.theta.shape or scale.shape != agent.scale.shape:
            raise AgentError(f"{path}: θ {theta.shape} or scale {scale.shape} does not fit its settings")
        agent.theta, agent.scale = theta.astype(np.float64), scale.astype(np.float64)
        return agent

    # --- the Agent protocol -------------------------------------------------------------------

    def attach(self, train_returns: np.ndarray, val_returns: np.ndarray | None = None) -> DirectRLAgent:
        """Set the windows :meth:`learn` trains on."""
        self.data = ReturnWindows(train_returns, val_returns)
        return self

    def learn(self, timesteps: int, *, progress: bool = True, label: str | None = None) -> DirectRLAgent:
        """:meth:`fit` on the attached windows for ``ceil(timesteps / training bars)`` epochs (at most ``epochs``).

        An epoch is one pass over the training bars, counted as that many timesteps (as SB3
        counts env steps).
        """
        if self.data is None:
            raise AgentError("direct agent: no training returns; build it from ReturnWindows or call attach()")
        n_train = np.asarray(self.data.train).shape[0]
        epochs = min(self.settings.epochs, max(1, math.ceil(timesteps / n_train)))
        self.history = self.fit(self.data.train, self.data.val, epochs=epochs, progress=progress, label=label)
        return self

    def predict(self, observation: Any, deterministic: bool = True) -> FloatArray:
        """:meth:`target_weights` of ``observation = (recent_returns, previous_position)`` (or a mapping
        with those keys); the policy is deterministic."""
        if isinstance(observation, Mapping):
            return self.target_weights(observation["recent_returns"], observation["previous_position"])
        recent, previous = observation
        return self.target_weights(recent, previous)

    # --- internals ----------------------------------------------------------------------------

    def _returns(self, returns: np.ndarray, name: str) -> FloatArray:
        data = np.asarray(returns, dtype=np.float64)
        if data.ndim == 1 and self.n_assets == 1:
            data = data[:, None]
        if data.ndim != 2 or data.shape[1] != self.n_assets:
            raise AgentError(f"direct agent: {name} must be [T, {self.n_assets}], got shape {data.shape}")
        if data.shape[0] < self.lookback:
            raise AgentError(f"direct agent: {name} has {data.shape[0]} rows; lookback {self.lookback} needs more")
        if not np.isfinite(data).all():
            row, col = np.argwhere(~np.isfinite(data))[0]
            raise AgentError(f"direct agent: {name} is not finite at row {row}, asset {col}")
        return data

    def _initial(self, initial: np.ndarray | None) -> FloatArray:
        if initial is None:
            return np.zeros(self.n_assets)
        start = np.asarray(initial, dtype=np.float64).reshape(-1)
        if start.shape != (self.n_assets,) or not (np.abs(start) <= 1).all():
            raise AgentError(f"direct agent: a previous position must be {self.n_assets} numbers in [-1, 1]")
        return start

    def _inputs(self, data: FloatArray) -> tuple[FloatArray, FloatArray]:
        """The lagged (scaled) inputs and the raw returns of the decision rows."""
        return lagged_inputs(data / self.scale, self.lookback), data[self.lookback - 1 :]

    def _sharpe_of(self, theta: FloatArray, lags: FloatArray, raw: FloatArray) -> float:
        start = np.zeros(self.n_assets)
        positions = forward_positions(theta, lags, start)
        return sharpe(portfolio_returns(positions, _previous(positions, start), raw, self.settings.cost_rate))

    def _gradient(
        self, theta: FloatArray, lags: FloatArray, raw: FloatArray, start: FloatArray, method: str | None = None
    ) -> tuple[float, FloatArray]:
        how = self.settings.gradient if method is None else method
        compute = sharpe_gradient if how == "analytic" else autograd_sharpe_gradient
        return compute(theta, lags, raw, self.settings.cost_rate, start)


class _Adam:
    """Adam (Kingma & Ba) for *ascent*: the step to add to θ given the gradient of the objective."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.m = np.zeros(shape)
        self.v = np.zeros(shape)
        self.t = 0

    def step(self, grad: FloatArray, lr: float) -> FloatArray:
        beta1, beta2 = _ADAM_BETAS
        self.t += 1
        self.m = beta1 * self.m + (1 - beta1) * grad
        self.v = beta2 * self.v + (1 - beta2) * grad * grad
        m_hat = self.m / (1 - beta1**self.t)
        v_hat = self.v / (1 - beta2**self.t)
        result: FloatArray = lr * m_hat / (np.sqrt(v_hat) + _ADAM_EPS)
        return result


def _input_scale(train: FloatArray) -> FloatArray:
    """Per-asset std of the training returns (1 where it is 0): the divisor of the lagged inputs."""
    std = train.std(axis=0)
    result: FloatArray = np.where(std > _SCALE_FLOOR, std, 1.0)
    return result


def _progress(total: int, label: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=label, unit="epoch", disable=None if enabled else True, leave=False)


def _check_settings(s: _Settings) -> _Settings:
    problems = []
    if s.n_assets < 1:
        problems.append(f"n_assets must be >= 1, got {s.n_assets}")
    if s.lookback < 1:
        problems.append(f"lookback must be >= 1, got {s.lookback}")
    if not (math.isfinite(s.cost_rate) and s.cost_rate >= 0):
        problems.append(f"cost_rate must be finite and >= 0, got {s.cost_rate}")
    if not (math.isfinite(s.lr) and s.lr > 0):
        problems.append(f"lr must be > 0, got {s.lr}")
    if s.epochs < 0:
        problems.append(f"epochs must be >= 0, got {s.epochs}")
    if s.patience is not None and s.patience < 1:
        problems.append(f"patience must be >= 1 or None, got {s.patience}")
    if s.optimizer not in OPTIMIZERS:
        problems.append(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {s.optimizer!r}")
    if s.gradient not in GRADIENTS:
        problems.append(f"gradient must be one of {', '.join(GRADIENTS)}, got {s.gradient!r}")
    if not (math.isfinite(s.init_scale) and s.init_scale > 0):
        problems.append(f"init_scale must be > 0, got {s.init_scale}")
    if not 0.0 < s.eta < 1.0:
        problems.append(f"eta must be in (0, 1), got {s.eta}")
    if problems:
        raise AgentError(f"direct agent: {'; '.join(problems)}")
    return s


# --------------------------------------------------------------------------------------------
# The agent kind (agent.kind: direct)
# --------------------------------------------------------------------------------------------


class DirectRLKind:
    """``agent.kind: direct``: :class:`DirectRLAgent` with ``agent.params`` as its keyword arguments.

    ``cost_rate`` defaults to the config's proportional cost (``env.cost.bps / 10⁴``; 0 for
    ``model: none``); with a per-share or spread cost it must be given in ``agent.params``.
    """

    def build(
        self, config: RunConfig, env: Any, *, seed: int, tensorboard_log: str | Path | None = None
    ) -> DirectRLAgent:
        """A new agent for ``env``: :class:`ReturnWindows` (train and validation returns), or an env whose
        ``market`` holds the training bars (its closes from ``market.first`` to ``market.last``; no validation)."""
        if isinstance(env, ReturnWindows):
            data = env
        elif hasattr(env, "market"):
            market = env.market
            data = ReturnWindows(returns_from_close(market.close[market.first : market.last + 1]))
        else:
            kind = type(env).__name__
            raise AgentError(f"direct agent: build needs ReturnWindows or an env with a market, got {kind}")
        train = np.asarray(data.train)
        n_assets = 1 if train.ndim == 1 else train.shape[1]
        return DirectRLAgent(n_assets, seed=seed, **self.params(config)).attach(data.train, data.val)

    def load(self, config: RunConfig, path: str | Path) -> DirectRLAgent:
        """The agent a run saved at ``path`` (its settings come from the file)."""
        return DirectRLAgent.load(path)

    def model_file(self, seed: int) -> str:
        """``seed_<s>.npz``."""
        return f"seed_{seed}.npz"

    @staticmethod
    def params(config: RunConfig) -> dict[str, Any]:
        """The keyword arguments of :class:`DirectRLAgent` that ``config.agent`` (a ``DirectAgentConfig``) sets."""
        from rltrade.config import DirectAgentConfig

        if not isinstance(config.agent, DirectAgentConfig):
            raise AgentError(f"direct agent: agent.kind is {config.agent.kind!r}, not 'direct'")
        params = {k: v for k, v in config.agent.model_dump().items() if k in PARAMS and v is not None}
        if "cost_rate" not in params:
            cost = config.env.cost
            if cost.model == "bps":
                params["cost_rate"] = cost.bps / 10_000.0
            elif cost.model == "none":
                params["cost_rate"] = 0.0
            else:
                raise AgentError(
                    f"agent.params.cost_rate: env.cost.model is {cost.model!r}, not proportional; "
                    "give the direct agent a cost rate per unit of traded notional"
                )
        return params
