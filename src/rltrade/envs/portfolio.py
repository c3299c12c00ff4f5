"""``PortfolioEnv``: rebalance a portfolio of N assets + cash to target weights every bar.

Observation: ``look_back`` bars of features of every asset, then the current weights (assets
and cash), flattened into one float32 vector (:attr:`PortfolioEnv.state_layout` gives the
slices and the feature block's ``[look_back, features, assets]`` shape).

Action: ``N + 1`` numbers in [-1, 1], one per asset and one for cash. Long-only (default):
target weights ``softmax(logit_scale · action)``; all-zero logits give equal weights, with no
division that can fail. Long/short (``long_short=True``): N numbers (no cash entry), target
asset weights ``leverage · a / max(1, Σ|a|)``, so the gross exposure never exceeds
``leverage``; the cash weight is ``1 − Σ w`` (negative cash is a margin loan). Target weights
(``action_mode="weights"``, long-only): N + 1 numbers in [0, 1] that *are* the weights, up to
normalisation ``a / Σa``; an all-zero action holds (no trade, no cost; the holdings drift). It
runs baselines through the same accounting, costs and timing as an agent.

Timing (:mod:`rltrade.envs.timing`): the action chosen after bar t is filled at the timing's
price; the portfolio is then valued at ``close[t+1]``. Costs (:mod:`rltrade.envs.costs`) are
paid out of the portfolio: the post-trade value ``μ·V`` solves ``μ·V + cost(μ) = V`` (a fixed
point found by iteration, as in Jiang et al.'s transaction remainder factor).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numba
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from rltrade.envs.batched import BatchedCore, CoreEnv
from rltrade.envs.costs import CostModel, kernel_params, make_cost, spread_volatility, trade_cost
from rltrade.envs.kernels import check_actions, mark_and_advance, serial_and_parallel
from rltrade.envs.market import Market, market_for
from rltrade.envs.rewards import Reward, make_reward
from rltrade.envs.timing import EnvConfigError, ExecutionTiming, resolve_timing

_MU_TOLERANCE = 1e-14  # fixed-point tolerance of the post-cost value fraction
_MU_ITERATIONS = 100
_MU_MARGIN = 1e-12  # μ is shrunk by this fraction so that rounding can never make long-only cash negative
ACTION_MODES: tuple[str, ...] = ("logits", "weights")
"""Values of ``PortfolioEnv(action_mode=...)``."""


@numba.njit(cache=True, nogil=True)
def _write_obs(
    k: int,
    i: int,
    feats: NDArray[np.float32],
    look_back: int,
    close: NDArray[np.float64],
    shares: NDArray[np.float64],
    cash: NDArray[np.float64],
    value: NDArray[np.float64],
    obs: NDArray[np.float32],
) -> None:  # pragma: no cover - compiled
    n_feat = feats.shape[1]
    n = feats.shape[2]
    pos = 0
    for lag in range(i - look_back + 1, i + 1):
        for f in range(n_feat):
            for j in range(n):
                obs[k, pos] = feats[lag, f, j]
                pos += 1
    v = value[k]
    if v > 0.0:
        for j in range(n):
            obs[k, pos + j] = shares[k, j] * close[i, j] / v
        obs[k, pos + n] = cash[k] / v
    else:
        for j in range(n + 1):
            obs[k, pos + j] = 0.0


@numba.njit(cache=True, nogil=True)
def _reset_obs(
    copies: NDArray[np.intp],
    t: NDArray[np.int64],
    feats: NDArray[np.float32],
    look_back: int,
    close: NDArray[np.float64],
    shares: NDArray[np.float64],
    cash: NDArray[np.float64],
    value: NDArray[np.float64],
    obs: NDArray[np.float32],
) -> None:  # pragma: no cover - compiled
    for k in copies:
        _write_obs(k, t[k], feats, look_back, close, shares, cash, value, obs)


@numba.njit(cache=True, nogil=True)
def _target_weights(
    action: NDArray[np.float64], n: int, long_short: bool, leverage: float, logit_scale: float
) -> NDArray[np.float64]:  # pragma: no cover - compiled
    """Asset weights (first n) and cash weight (last) from one action."""
    w = np.empty(n + 1)
    if long_short:
        gross = 0.0
        for j in range(n):
            a = min(max(action[j], -1.0), 1.0)
            w[j] = a
            gross += abs(a)
        scale = leverage / max(gross, 1.0)
        invested = 0.0
        for j in range(n):
            w[j] *= scale
            invested += w[j]
        w[n] = 1.0 - invested
    else:
        top = -np.inf
        for j in range(n + 1):
            z = logit_scale * min(max(action[j], -1.0), 1.0)
            w[j] = z
            top = max(top, z)
        total = 0.0
        for j in range(n + 1):
            e = np.exp(w[j] - top)  # the largest term is exp(0) = 1: total >= 1, never 0
            w[j] = e
            total += e
        for j in range(n + 1):
            w[j] /= total
    return w


@numba.njit(cache=True, nogil=True)
def _given_weights(action: NDArray[np.float64], n: int) -> tuple[NDArray[np.float64], float]:  # pragma: no cover
    """Weights mode: ``clip(a, 0, 1) / Σ`` (assets, then cash) and Σ; Σ == 0 means "hold"."""
    w = np.empty(n + 1)
    total = 0.0
    for j in range(n + 1):
        a = min(max(action[j], 0.0), 1.0)
        w[j] = a
        total += a
    if total > 0.0:
        for j in range(n + 1):
            w[j] /= total
    return w, total


@numba.njit(cache=True, nogil=True)
def _step_copy(
    k: int,
    actions: NDArray[np.float64],
    settings: NDArray[np.float64],
    close: NDArray[np.float64],
    fill: NDArray[np.float64],
    vol: NDArray[np.float64],
    feats: NDArray[np.float32],
    t: NDArray[np.int64],
    t_end: NDArray[np.int64],
    cash: NDArray[np.float64],
    shares: NDArray[np.float64],
    acct: NDArray[np.float64],
    flags: NDArray[np.int8],
    obs: NDArray[np.float32],
) -> None:  # pragma: no cover - compiled
    """Step copy k. ``settings`` = [long_short, leverage, logit_scale, rate, per_share, minimum,
    half_spread, look_back, last, fill_offset, weights_mode]; ``fill`` is the open or close matrix (the
    fill of bar i is row ``i + fill_offset``); ``acct`` rows = value, value_prev, step_cost, total_cost,
    turnover."""
    long_short = settings[0] != 0.0
    rate, per_share, minimum, half_spread = settings[3], settings[4], settings[5], settings[6]
    look_back = int(settings[7])
    last = int(settings[8])
    n = shares.shape[1]
    i = t[k]
    f = i + int(settings[9])
    spread = half_spread > 0.0
    hold = False  # weights mode, all-zero action: no trade, the holdings drift
    if settings[10] != 0.0:
        w, total = _given_weights(actions[k], n)
        hold = total == 0.0
    else:
        w = _target_weights(actions[k], n, long_short, settings[1], settings[2])
    # (1) carry the holdings to the fill prices
    c = cash[k]
    vf = c
    for j in range(n):
        vf += shares[k, j] * fill[f, j]
    acct[1, k] = acct[0, k]
    # (2) trade to the targets, paying the cost out of the portfolio: post-trade value mu * vf
    paid = 0.0
    traded = 0.0
    rebalanced = False
    if vf > 0.0 and not hold:
        mu = 1.0
        ok = False
        for _ in range(_MU_ITERATIONS):
            cost = 0.0
            for j in range(n):
                p = fill[f, j]
                d = w[j] * mu * vf / p - shares[k, j]
                cost += trade_cost(rate, per_share, minimum, half_spread, d * p, d, vol[i, j] if spread else 0.0)
            new_mu = 1.0 - cost / vf
            if abs(new_mu - mu) <= _MU_TOLERANCE:
                mu = new_mu
                ok = True
                break
            mu = new_mu
        if ok and mu > 0.0:
            mu *= 1.0 - _MU_MARGIN
            invested = 0.0
            for j in range(n):
                p = fill[f, j]
                target = w[j] * mu * vf / p
                d = target - shares[k, j]
                paid += trade_cost(rate, per_share, minimum, half_spread, d * p, d, vol[i, j] if spread else 0.0)
                traded += abs(d * p)
                invested += target * p
                shares[k, j] = target
            c = vf - invested - paid
            if not long_short and c < 0.0:
                c = 0.0  # rounding only (mu was shrunk by _MU_MARGIN): never a loan in long-only mode
            rebalanced = True
    if not rebalanced and long_short:
        # The targets cannot be paid for (the costs would eat the whole equity, or the equity is gone):
        # close every position. If cash ends <= 0 the account is bankrupt and the episode ends.
        for j in range(n):
            p = fill[f, j]
            d = -shares[k, j]
            fee = trade_cost(rate, per_share, minimum, half_spread, d * p, d, vol[i, j] if spread else 0.0)
            paid += fee
            traded += abs(d * p)
            c += shares[k, j] * p - fee
            shares[k, j] = 0.0
    # long-only and not rebalanced: a hold, or the rebalance would cost the whole portfolio; keep the holdings
    cash[k] = c
    # (3) mark to the next close
    nxt = i + 1
    mark_and_advance(k, nxt, c, close, shares, paid, traded, vf, last, acct, t, t_end, flags)
    _write_obs(k, nxt, feats, look_back, close, shares, cash, acct[0], obs)


def _portfolio_step_body(
    lo: int,
    hi: int,
    actions: NDArray[np.float64],
    settings: NDArray[np.float64],
    close: NDArray[np.float64],
    fill: NDArray[np.float64],
    vol: NDArray[np.float64],
    feats: NDArray[np.float32],
    t: NDArray[np.int64],
    t_end: NDArray[np.int64],
    cash: NDArray[np.float64],
    shares: NDArray[np.float64],
    acct: NDArray[np.float64],
    flags: NDArray[np.int8],
    obs: NDArray[np.float32],
) -> int:  # pragma: no cover - compiled
    """Step copies ``lo .. hi - 1`` (nothing changes when an error code is returned).

    Compiled twice (:func:`~rltrade.envs.kernels.serial_and_parallel`): :func:`_portfolio_step`
    steps the copies one after the other, :func:`_portfolio_step_parallel` spreads them over
    numba's threads (the same bits: copies are independent).
    """
    code = check_actions(actions[lo:hi], t[lo:hi], t_end[lo:hi])
    if code != 0:
        return code
    for k in numba.prange(lo, hi):
        _step_copy(k, actions, settings, close, fill, vol, feats, t, t_end, cash, shares, acct, flags, obs)
    return 0


_portfolio_step, _portfolio_step_parallel = serial_and_parallel(_portfolio_step_body)


class _PortfolioCore(BatchedCore):
    """K copies of :class:`PortfolioEnv` (see there for the parameters)."""

    def __init__(
        self,
        market: Market,
        n_copies: int,
        *,
        reward: Reward,
        cost: CostModel,
        timing: ExecutionTiming,
        look_back: int,
        long_short: bool,
        leverage: float,
        logit_scale: float,
        action_mode: str,
        random_start: bool,
        episode_length: int | None,
        initial_value: float,
        arrays: dict[str, NDArray[Any]],
    ) -> None:
        n, n_feat = market.n_symbols, market.n_features
        n_obs = look_back * n_feat * n + n + 1
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(n_obs,), dtype=np.float32)
        weights_mode = action_mode == "weights"
        if weights_mode:
            self.action_space = gym.spaces.Box(0.0, 1.0, shape=(n + 1,), dtype=np.float32)
        else:
            n_act = n if long_short else n + 1
            self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(n_act,), dtype=np.float32)
        super().__init__(market, n_copies, reward, 1.0, random_start, episode_length, initial_value)
        self.cost_model = cost
        self.timing = timing
        self.look_back = look_back
        self.long_short = long_short
        params = kernel_params(cost)
        self.settings = np.array(
            [
                float(long_short),
                leverage,
                logit_scale,
                params.rate,
                params.per_share,
                params.minimum,
                params.half_spread,
                look_back,
                market.last,
                timing.fill_offset,
                float(weights_mode),
            ],
            dtype=np.float64,
        )
        self._arrays = arrays
        self.cash = np.zeros(n_copies)
        self.shares = np.zeros((n_copies, n))
        # rows: value, value_prev, step_cost, total_cost, turnover (the base class's arrays are views of it)
        self.acct = np.stack([self.value, self.value_prev, self.step_cost, self.total_cost, self.turnover])
        self.value, self.value_prev, self.step_cost, self.total_cost, self.turnover = self.acct

    def _reset_state(self, copies: NDArray[np.intp]) -> None:
        self.cash[copies] = self.initial_value
        self.shares[copies] = 0.0
        a = self._arrays
        _reset_obs(copies, self.t, a["feats"], self.look_back, a["close"], self.shares, self.cash, self.value, self.obs)

    def _step_state(self, actions: NDArray[np.float64]) -> int:
        a = self._arrays
        kernel = _portfolio_step_parallel if self.parallel else _portfolio_step
        return int(
            kernel(
                0,
                self.n_copies,
                actions,
                self.settings,
                a["close"],
                a["fill"],
                a["vol"],
                a["feats"],
                self.t,
                self.t_end,
                self.cash,
                self.shares,
                self.acct,
                self.flags,
                self.obs,
            )
        )

    def info(self, k: int) -> dict[str, Any]:
        info = self.common_info(k)
        n = self.market.n_symbols
        info["cash"] = float(self.cash[k])  # weights below: float64 versions of the observation's
        info["shares"] = self.shares[k].copy()
        value = self.value[k]
        close = self.market.close[self.t[k]]
        weights = np.zeros(n + 1)
        if value > 0:
            weights[:n] = self.shares[k] * close / value
            weights[n] = self.cash[k] / value
        info["weights"] = weights
        return info


class PortfolioEnv(CoreEnv):
    """Rebalance N assets + cash to target weights every bar.

    Observation (float32 vector, layout in :attr:`state_layout`): ``features`` of the last
    ``look_back`` bars for every asset, ordered ``[look_back, features, assets]`` (oldest bar
    first), then the current weights of the N assets and of cash (they sum to 1).

    Action: long-only, N + 1 logits in [-1, 1] (assets, then cash) -> weights
    ``softmax(logit_scale · a)``; long/short, N numbers in [-1, 1] -> asset weights
    ``leverage · a / max(1, Σ|a|)`` and cash ``1 − Σ w``; ``action_mode="weights"`` (long-only),
    N + 1 numbers in [0, 1] -> weights ``a / Σa``, and an all-zero action holds (no trade, no
    cost). Out-of-range actions are clipped; NaN/inf raise :class:`~rltrade.envs.timing.EnvConfigError`.

    Reward: ``reward(value after bar t, value after bar t+1)``; default log return.

    Parameters
    ----------
    bars:
        Canonical bars of the assets (see :class:`~rltrade.envs.market.Market` for gaps).
    features:
        Feature names for the observation (default ``["log_return"]``).
    look_back:
        Bars of features per observation.
    cost:
        Cost model, a number of bps per side, or None (free); default 10 bps.
    reward:
        A reward object or name (``"log_return"``, ``"profit"``, ``"differential_sharpe"``, ...).
    timing:
        ``"next_open"`` (default when the bars have opens), ``"next_close"`` (default for
        close-only data) or ``"same_close"`` (optimistic; see :mod:`rltrade.envs.timing`).
    start, end:
        Bars the episodes may use (features are computed on the whole history first).
    initial_value:
        Portfolio value at the start of an episode (all in cash).
    long_short:
        Allow short positions; ``leverage`` caps the gross exposure.
    leverage:
        Gross exposure cap ``Σ|w|`` in long/short mode.
    logit_scale:
        Multiplies the logits before the softmax (5: one asset can take ~99 % of 31).
    action_mode:
        ``"logits"`` (default): the actions above. ``"weights"``: the action is the target
        weights of the N assets and cash, ``clip(a, 0, 1) / Σ``; an all-zero action holds (no
        trade, no cost, turnover 0; the holdings drift with the prices). Long-only: refused with
        ``long_short=True``. Used to run baselines through the agent's accounting.
    random_start:
        Start each episode at a random bar (seeded by ``reset(seed=...)``).
    episode_length:
        Steps per episode (truncated after it); None = until the last bar (terminated).
    feature_params:
        Parameters of the features (e.g. ``{"n_diffs": 20}``).
    market:
        A prebuilt :class:`~rltrade.envs.market.Market` of these bars with these features (e.g.
        another env's ``env.market``): the env trades ``market.window(start, end, ...)`` instead of
        building its own, so the features are computed once for all the envs over the same bars.
        ``bars`` may then be None.
    """

    def __init__(
        self,
        bars: pd.DataFrame | None,
        features: Sequence[str] = ("log_return",),
        look_back: int = 10,
        cost: CostModel | float | None = 10.0,
        reward: Reward | str | None = None,
        timing: str | ExecutionTiming | None = None,
        start: str | pd.Timestamp | None = None,
        end: str | pd.Timestamp | None = None,
        initial_value: float = 1.0,
        long_short: bool = False,
        leverage: float = 1.0,
        logit_scale: float = 5.0,
        random_start: bool = False,
        episode_length: int | None = None,
        feature_params: dict[str, Any] | None = None,
        action_mode: str = "logits",
        market: Market | None = None,
    ) -> None:
        if look_back < 1:
            raise EnvConfigError(f"look_back must be >= 1, got {look_back}")
        if not np.isfinite(initial_value) or initial_value <= 0:
            raise EnvConfigError(f"initial_value must be > 0, got {initial_value}")
        if not np.isfinite(leverage) or leverage <= 0:
            raise EnvConfigError(f"leverage must be > 0, got {leverage}")
        if not np.isfinite(logit_scale) or logit_scale <= 0:
            raise EnvConfigError(f"logit_scale must be > 0, got {logit_scale}")
        if action_mode not in ACTION_MODES:
            raise EnvConfigError(f"unknown action_mode {action_mode!r}; use one of {', '.join(ACTION_MODES)}")
        if action_mode == "weights" and long_short:
            raise EnvConfigError(
                "action_mode='weights' is long-only: it cannot be combined with long_short=True "
                "(use action_mode='logits' for long/short)"
            )
        self.action_mode = action_mode
        self.cost_model = make_cost(cost)
        params = kernel_params(self.cost_model)
        self._market = market = market_for(
            bars, market, features, feature_params, start=start, end=end, history=look_back, min_first=params.window
        )
        self.timing = resolve_timing(timing, market.has_open)
        self.reward_fn = make_reward(reward, default="log_return")
        vol = spread_volatility(market.close, params.window) if params.window else np.zeros_like(market.close)
        self._arrays: dict[str, NDArray[Any]] = {
            "close": market.close,
            "fill": market.open if self.timing.fill_field == "open" else market.close,
            "vol": np.ascontiguousarray(vol),
            "feats": np.ascontiguousarray(market.features, dtype=np.float32),
        }
        self._settings: dict[str, Any] = {
            "look_back": look_back,
            "long_short": bool(long_short),
            "leverage": float(leverage) if long_short else 1.0,
            "logit_scale": float(logit_scale),
            "action_mode": action_mode,
            "random_start": random_start,
            "episode_length": episode_length,
            "initial_value": float(initial_value),
        }
        n, n_feat = market.n_symbols, market.n_features
        block = look_back * n_feat * n
        self.state_layout: dict[str, slice] = {"features": slice(0, block), "weights": slice(block, block + n + 1)}
        """Where each part of the observation lies; ``obs[layout["features"]].reshape(feature_shape)``."""
        self.feature_shape: tuple[int, int, int] = (look_back, n_feat, n)
        self._install(self.make_core(1))

    def target_weights(self, action: Any, held: NDArray[np.float64]) -> NDArray[np.float64]:
        """The N assets' target weights that ``action`` asks for, by the rule :meth:`step` applies.

        ``held`` are the weights held now: an all-zero action of ``action_mode: weights`` is a
        "hold" (no trade) and targets them. Signals use this so that a signal is the weight the
        backtest trades to, bit for bit.
        """
        settings = self._settings
        n = self.market.n_symbols
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if settings["action_mode"] == "weights":
            weights, total = _given_weights(a, n)
            if total == 0.0:
                return np.asarray(held, dtype=np.float64)[:n].copy()
        else:
            weights = _target_weights(a, n, settings["long_short"], settings["leverage"], settings["logit_scale"])
        return np.asarray(weights[:n], dtype=np.float64)

    def make_core(self, n_copies: int) -> BatchedCore:
        """A core with ``n_copies`` copies of this env."""
        return _PortfolioCore(
            self._market,
            n_copies,
            reward=self.reward_fn,
            cost=self.cost_model,
            timing=self.timing,
            arrays=self._arrays,
            **self._settings,
        )
