"""``StockTradingEnv``: FinRL's multi-stock trading env, with its semantics and without its defects.

State (one float32 vector): ``[cash, prices (N), shares (N), indicator_1 (N), ..., indicator_F (N)]``
(FinRL's layout); :attr:`StockTradingEnv.state_layout` maps each name to its slice, so nobody
counts state sizes by hand. Prices are the closes of the last observed bar.

Action: N numbers in [-1, 1], scaled by ``hmax`` and truncated toward zero to integer share
counts (FinRL's ``(action * hmax).astype(int)``). Sells come first, most negative action first,
each at most the shares held; then buys, largest action first, each limited to what the cash
pays *including* the cost. Cash never goes negative and shares are integers.

Turbulence switch (``turbulence_threshold``): when the Kritzman-Li turbulence index of the last
observed bar t is >= the threshold, the action is replaced by "sell everything" and buys are
blocked; trading resumes once the index falls back below the threshold.

Differences from FinRL, on purpose: no pandas in ``step()``; the fill follows an explicit
:class:`~rltrade.envs.timing.ExecutionTiming` (default: the next open, not the close already
seen); indicators are never back-filled (episodes start after their warm-up); no files are
written; costs are a :class:`~rltrade.envs.costs.CostModel`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import gymnasium as gym
import numba
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from rltrade.envs.batched import BatchedCore, CoreEnv
from rltrade.envs.costs import CostModel, kernel_params, make_cost, spread_volatility, trade_cost
from rltrade.envs.kernels import check_actions, mark_and_advance, serial_and_parallel
from rltrade.envs.market import Market, market_for
from rltrade.envs.rewards import ProfitReward, Reward, make_reward
from rltrade.envs.timing import EnvConfigError, ExecutionTiming, resolve_timing
from rltrade.features import FINRL_INDICATORS
from rltrade.features.turbulence import DEFAULT_WINDOW

CLOSE_ONLY_INDICATORS: tuple[str, ...] = ("macd", "boll_ub", "boll_lb", "rsi_30", "sma_30", "sma_60")
"""FinRL's indicators that need only the close (the default for close-only bars)."""


def default_indicators(bars: pd.DataFrame) -> tuple[str, ...]:
    """FinRL's indicators when the bars have high and low everywhere, else the close-only ones."""
    has_range = all(c in bars.columns and bool(bars[c].notna().all()) for c in ("high", "low"))
    return FINRL_INDICATORS if has_range else CLOSE_ONLY_INDICATORS


@numba.njit(cache=True, nogil=True)
def _write_obs(
    k: int,
    i: int,
    close: NDArray[np.float64],
    indicators: NDArray[np.float32],
    cash: NDArray[np.float64],
    shares: NDArray[np.float64],
    obs: NDArray[np.float32],
) -> None:  # pragma: no cover - compiled
    n = shares.shape[1]
    obs[k, 0] = cash[k]
    for j in range(n):
        obs[k, 1 + j] = close[i, j]
        obs[k, 1 + n + j] = shares[k, j]
    base = 1 + 2 * n
    for m in range(indicators.shape[1]):
        obs[k, base + m] = indicators[i, m]


@numba.njit(cache=True, nogil=True)
def _reset_obs(
    copies: NDArray[np.intp],
    t: NDArray[np.int64],
    close: NDArray[np.float64],
    indicators: NDArray[np.float32],
    cash: NDArray[np.float64],
    shares: NDArray[np.float64],
    value: NDArray[np.float64],
    obs: NDArray[np.float32],
) -> None:  # pragma: no cover - compiled
    n = shares.shape[1]
    for k in copies:
        i = t[k]
        v = cash[k]
        for j in range(n):
            v += shares[k, j] * close[i, j]
        value[k] = v
        _write_obs(k, i, close, indicators, cash, shares, obs)


@numba.njit(cache=True, nogil=True)
def _affordable(
    cash: float, p: float, want: float, rate: float, per_share: float, minimum: float, half_spread: float, v: float
) -> float:  # pragma: no cover - compiled
    """Largest integer n <= want with n·p + cost(n) <= cash (for an order the cash cannot pay in full)."""
    vol = 0.0 if np.isnan(v) else v
    unit = p * (1.0 + rate + half_spread * vol)
    n = min(want, np.floor(cash / (unit + per_share)))
    if n > 0.0 and per_share * n < minimum:
        n = min(n, np.floor((cash - minimum) / unit))
    while n > 0.0 and n * p + trade_cost(rate, per_share, minimum, half_spread, n * p, n, v) > cash:
        n -= 1.0
    return max(n, 0.0)


@numba.njit(cache=True, nogil=True)
def _sorted_order(a: NDArray[np.float64]) -> NDArray[np.int64]:  # pragma: no cover - compiled
    """Indices that sort ``a`` ascending, ties in index order (a stable insertion sort: N is small)."""
    n = a.shape[0]
    order = np.empty(n, dtype=np.int64)
    for j in range(n):
        m = j
        while m > 0 and a[order[m - 1]] > a[j]:
            order[m] = order[m - 1]
            m -= 1
        order[m] = j
    return order


@numba.njit(cache=True, nogil=True)
def _orders(
    action: NDArray[np.float64],
    hmax: float,
    storm: bool,
    cash: float,
    held: NDArray[np.float64],
    price: NDArray[np.float64],
    vol: NDArray[np.float64],
    rate: float,
    per_share: float,
    minimum: float,
    half_spread: float,
) -> tuple[float, float, float]:  # pragma: no cover - compiled
    """The env's rule for turning one action into trades at ``price``: ``(cash after, cost paid, notional traded)``.

    ``held`` (the shares before the trade) is updated in place to the shares after it. ``vol``
    is the spread volatility of the decision bar (read only with a spread cost).
    """
    n = held.shape[0]
    spread = half_spread > 0.0
    a = np.empty(n)
    want = np.empty(n)
    for j in range(n):
        a[j] = min(max(action[j], -1.0), 1.0)
        want[j] = np.trunc(a[j] * hmax)  # integer share counts, truncated toward zero as in FinRL
    order = _sorted_order(a)
    c = cash
    paid = 0.0
    traded = 0.0
    # sells, most negative action first (all holdings when turbulent)
    for idx in range(n):
        j = order[idx]
        q = held[j] if storm else min(-want[j], held[j])
        if q > 0.0:
            p = price[j]
            fee = trade_cost(rate, per_share, minimum, half_spread, q * p, q, vol[j] if spread else 0.0)
            proceeds = q * p - fee
            if c + proceeds >= 0.0:  # a minimum fee larger than cash + proceeds: skip the sale
                c += proceeds
                held[j] -= q
                paid += fee
                traded += q * p
    # buys, largest action first, each limited by the cash left including its cost
    if not storm:
        for idx in range(n - 1, -1, -1):
            j = order[idx]
            if want[j] > 0.0:
                p = price[j]
                vij = vol[j] if spread else 0.0
                q = want[j]
                fee = trade_cost(rate, per_share, minimum, half_spread, q * p, q, vij)
                if q * p + fee > c:  # the cash left cannot pay the whole order
                    q = _affordable(c, p, q, rate, per_share, minimum, half_spread, vij)
                    fee = trade_cost(rate, per_share, minimum, half_spread, q * p, q, vij)
                if q > 0.0:
                    c -= q * p + fee
                    held[j] += q
                    paid += fee
                    traded += q * p
    return c, paid, traded


@numba.njit(cache=True, nogil=True)
def _step_copy(
    k: int,
    actions: NDArray[np.float64],
    settings: NDArray[np.float64],
    close: NDArray[np.float64],
    fill: NDArray[np.float64],
    vol: NDArray[np.float64],
    turbulence: NDArray[np.float64],
    indicators: NDArray[np.float32],
    t: NDArray[np.int64],
    t_end: NDArray[np.int64],
    cash: NDArray[np.float64],
    shares: NDArray[np.float64],
    acct: NDArray[np.float64],
    turbulent: NDArray[np.int8],
    flags: NDArray[np.int8],
    obs: NDArray[np.float32],
) -> None:  # pragma: no cover - compiled
    """Step copy k. ``settings`` = [hmax, threshold, rate, per_share, minimum, half_spread, last, fill_offset];
    ``fill`` is the open or close matrix (the fill of bar i is row ``i + fill_offset``); ``acct`` rows =
    value, value_prev, step_cost, total_cost, turnover."""
    hmax = settings[0]
    threshold = settings[1]
    rate, per_share, minimum, half_spread = settings[2], settings[3], settings[4], settings[5]
    last = int(settings[6])
    n = shares.shape[1]
    i = t[k]
    f = i + int(settings[7])
    storm = turbulence[i] >= threshold
    turbulent[k] = 1 if storm else 0
    c = cash[k]
    vf = c
    for j in range(n):
        vf += shares[k, j] * fill[f, j]
    acct[1, k] = acct[0, k]
    c, paid, traded = _orders(
        actions[k], hmax, storm, c, shares[k], fill[f], vol[i], rate, per_share, minimum, half_spread
    )
    cash[k] = c
    nxt = i + 1
    mark_and_advance(k, nxt, c, close, shares, paid, traded, vf, last, acct, t, t_end, flags)
    _write_obs(k, nxt, close, indicators, cash, shares, obs)


def _stock_step_body(
    lo: int,
    hi: int,
    actions: NDArray[np.float64],
    settings: NDArray[np.float64],
    close: NDArray[np.float64],
    fill: NDArray[np.float64],
    vol: NDArray[np.float64],
    turbulence: NDArray[np.float64],
    indicators: NDArray[np.float32],
    t: NDArray[np.int64],
    t_end: NDArray[np.int64],
    cash: NDArray[np.float64],
    shares: NDArray[np.float64],
    acct: NDArray[np.float64],
    turbulent: NDArray[np.int8],
    flags: NDArray[np.int8],
    obs: NDArray[np.float32],
) -> int:  # pragma: no cover - compiled
    """Step copies ``lo .. hi - 1`` (nothing changes when an error code is returned).

    Compiled twice (:func:`~rltrade.envs.kernels.serial_and_parallel`): :func:`_stock_step` steps
    the copies one after the other, :func:`_stock_step_parallel` spreads them over numba's threads
    (the same bits: copies are independent).
    """
    code = check_actions(actions[lo:hi], t[lo:hi], t_end[lo:hi])
    if code != 0:
        return code
    for k in numba.prange(lo, hi):
        _step_copy(
            k,
            actions,
            settings,
            close,
            fill,
            vol,
            turbulence,
            indicators,
            t,
            t_end,
            cash,
            shares,
            acct,
            turbulent,
            flags,
            obs,
        )
    return 0


_stock_step, _stock_step_parallel = serial_and_parallel(_stock_step_body)


class _StockTradingCore(BatchedCore):
    """K copies of :class:`StockTradingEnv` (see there for the parameters)."""

    def __init__(
        self,
        market: Market,
        n_copies: int,
        *,
        reward: Reward,
        reward_scaling: float,
        cost: CostModel,
        timing: ExecutionTiming,
        hmax: int,
        threshold: float | None,
        initial_value: float,
        initial_shares: NDArray[np.float64],
        random_start: bool,
        episode_length: int | None,
        arrays: dict[str, NDArray[Any]],
    ) -> None:
        n = market.n_symbols
        n_obs = 1 + 2 * n + market.n_features * n
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(n_obs,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(n,), dtype=np.float32)
        super().__init__(market, n_copies, reward, reward_scaling, random_start, episode_length, initial_value)
        params = kernel_params(cost)
        self.cost_model = cost
        self.initial_value = float(initial_value)
        self.initial_shares = initial_shares
        self.settings = np.array(
            [
                float(hmax),
                np.inf if threshold is None else float(threshold),
                params.rate,
                params.per_share,
                params.minimum,
                params.half_spread,
                market.last,
                timing.fill_offset,
            ]
        )
        self._arrays = arrays
        self.cash = np.zeros(n_copies)
        self.shares = np.zeros((n_copies, n))
        self.turbulent = np.zeros(n_copies, dtype=np.int8)
        self.acct = np.stack([self.value, self.value_prev, self.step_cost, self.total_cost, self.turnover])
        self.value, self.value_prev, self.step_cost, self.total_cost, self.turnover = self.acct

    def _reset_state(self, copies: NDArray[np.intp]) -> None:
        self.cash[copies] = self.initial_value
        self.shares[copies] = self.initial_shares
        self.turbulent[copies] = 0
        a = self._arrays
        _reset_obs(copies, self.t, a["close"], a["indicators"], self.cash, self.shares, self.value, self.obs)
        self.value_prev[copies] = self.value[copies]

    def _step_state(self, actions: NDArray[np.float64]) -> int:
        a = self._arrays
        kernel = _stock_step_parallel if self.parallel else _stock_step
        return int(
            kernel(
                0,
                self.n_copies,
                actions,
                self.settings,
                a["close"],
                a["fill"],
                a["vol"],
                a["turbulence"],
                a["indicators"],
                self.t,
                self.t_end,
                self.cash,
                self.shares,
                self.acct,
                self.turbulent,
                self.flags,
                self.obs,
            )
        )

    def info(self, k: int) -> dict[str, Any]:
        info = self.common_info(k)
        info["cash"] = float(self.cash[k])
        info["shares"] = self.shares[k].copy()
        info["turbulent"] = bool(self.turbulent[k])
        return info


class StockTradingEnv(CoreEnv):
    """FinRL-compatible multi-stock trading.

    Observation: ``[cash, prices (N), shares (N), indicators (F × N)]`` as float32, after bar t
    (prices = ``close[t]``); :attr:`state_layout` names the slices. Action: N numbers in
    [-1, 1] (clipped) -> ``trunc(a · hmax)`` shares per stock; sells first, then buys within
    the cash. Reward: ``reward_scaling · reward(value after bar t, value after bar t+1)``,
    FinRL's ``Δ(total asset) · 1e-4`` by default. Info: ``portfolio_value``, ``cash``,
    ``shares``, ``cost`` (this step), ``total_cost``, ``turnover``, ``turbulent``, ``bar``,
    ``timestamp``.

    Parameters
    ----------
    bars:
        Canonical bars of the stocks (see :class:`~rltrade.envs.market.Market` for gaps).
    features:
        Indicators in the state; default FinRL's ``macd, boll_ub, boll_lb, rsi_30, cci_30,
        dx_30, sma_30, sma_60`` when the bars have high/low, else the six close-based ones.
    hmax:
        Maximum shares traded per stock and step.
    initial_value:
        Cash at the start of an episode.
    initial_shares:
        Shares held at the start (N integers); default none.
    turbulence_threshold:
        Turbulence level from which the env sells everything and blocks buys; None = off.
    turbulence_window:
        Days of history of the turbulence index (252; episodes start after ``window + 1`` bars).
    cost:
        Cost model, a number of bps per side, or None; default ``BpsCost(10)`` (FinRL's 0.1 %).
    timing:
        Execution timing; default next open (next close for close-only data). FinRL's
        "trade at the close just observed" is ``timing="same_close"`` (optimistic).
    reward:
        Reward object or name; default ``"profit"`` (the change of total asset value).
    reward_scaling:
        Factor on the reward; default 1e-4 for the profit reward (FinRL), 1 for the others.
    start, end:
        Bars the episodes may use (features are computed on the whole history first).
    random_start:
        Start each episode at a random bar (seeded by ``reset(seed=...)``).
    episode_length:
        Steps per episode (truncated after it); None = until the last bar (terminated).
    feature_params:
        Parameters of the features.
    market:
        A prebuilt :class:`~rltrade.envs.market.Market` of these bars with these features (e.g.
        another env's ``env.market``): the env trades ``market.window(start, end, ...)`` instead of
        building its own, so features and the turbulence index are computed once for all the envs
        over the same bars. ``bars`` may then be None (with ``features`` None the market's own
        features are used).
    """

    def __init__(
        self,
        bars: pd.DataFrame | None,
        features: Sequence[str] | None = None,
        hmax: int = 100,
        initial_value: float = 1e6,
        initial_shares: Sequence[int] | None = None,
        turbulence_threshold: float | None = None,
        turbulence_window: int = DEFAULT_WINDOW,
        cost: CostModel | float | None = 10.0,
        timing: str | ExecutionTiming | None = None,
        reward: Reward | str | None = None,
        reward_scaling: float | None = None,
        start: str | pd.Timestamp | None = None,
        end: str | pd.Timestamp | None = None,
        random_start: bool = False,
        episode_length: int | None = None,
        feature_params: dict[str, Any] | None = None,
        market: Market | None = None,
    ) -> None:
        if hmax < 1 or int(hmax) != hmax:
            raise EnvConfigError(f"hmax must be a positive integer, got {hmax}")
        if not np.isfinite(initial_value) or initial_value < 0:
            raise EnvConfigError(f"initial_value must be >= 0, got {initial_value}")
        self.cost_model = make_cost(cost)
        params = kernel_params(self.cost_model)
        if features is not None:
            names = tuple(features)
        elif bars is not None:
            names = default_indicators(bars)
        elif market is not None:
            names, feature_params = market.feature_request[0], dict(market.feature_request[1])
        else:
            raise EnvConfigError("StockTradingEnv needs bars or a market")
        min_first = params.window
        if turbulence_threshold is not None:
            min_first = max(min_first, turbulence_window + 1)
        self._market = market = market_for(
            bars, market, names, feature_params, start=start, end=end, history=1, min_first=min_first
        )
        n = market.n_symbols
        self.timing = resolve_timing(timing, market.has_open)
        self.reward_fn = make_reward(reward, default="profit")
        if reward_scaling is None:
            reward_scaling = 1e-4 if isinstance(self.reward_fn, ProfitReward) else 1.0
        shares0 = np.zeros(n) if initial_shares is None else np.asarray(initial_shares, dtype=np.float64)
        if shares0.shape != (n,) or (shares0 < 0).any() or (shares0 != np.round(shares0)).any():
            raise EnvConfigError(f"initial_shares must be {n} non-negative integers (one per symbol {market.symbols})")
        if turbulence_threshold is None:
            turbulence = np.full(market.n_times, -np.inf)
        else:
            turbulence = market.turbulence(turbulence_window)
            window = turbulence[market.first : market.last + 1]
            if not np.isfinite(window).all():
                raise EnvConfigError("the turbulence index has NaN inside the episode bars; check the bars for gaps")
        vol = spread_volatility(market.close, params.window) if params.window else np.zeros_like(market.close)
        indicators = market.features.reshape(market.n_times, market.n_features * n)  # indicator-major, as FinRL
        self._arrays: dict[str, NDArray[Any]] = {
            "close": market.close,
            "fill": market.open if self.timing.fill_field == "open" else market.close,
            "vol": np.ascontiguousarray(vol),
            "turbulence": np.ascontiguousarray(turbulence, dtype=np.float64),
            "indicators": np.ascontiguousarray(indicators, dtype=np.float32),
        }
        self.turbulence_threshold = turbulence_threshold
        self.turbulence: NDArray[np.float64] = self._arrays["turbulence"]
        """Turbulence index per bar (``-inf`` everywhere when the switch is off)."""
        self._settings: dict[str, Any] = {
            "reward_scaling": float(reward_scaling),
            "hmax": int(hmax),
            "threshold": turbulence_threshold,
            "initial_value": float(initial_value),
            "initial_shares": shares0,
            "random_start": random_start,
            "episode_length": episode_length,
        }
        layout = {"cash": slice(0, 1), "price": slice(1, 1 + n), "shares": slice(1 + n, 1 + 2 * n)}
        for m, name in enumerate(market.feature_names):
            begin = 1 + 2 * n + m * n
            layout[name] = slice(begin, begin + n)
        self.state_layout: dict[str, slice] = layout
        """Slice of the state vector for ``cash``, ``price``, ``shares`` and each indicator (N values each)."""
        self._install(self.make_core(1))

    def target_shares(self, action: Any, price: Any = None) -> NDArray[np.float64]:
        """The shares held after ``action``, chosen at the current observation, by :meth:`step`'s rule.

        The rule of a step (clipping, ``trunc(a · hmax)``, sells before buys, each sale at most
        the shares held, each buy limited by the cash left including its cost, the turbulence
        switch), applied to the current cash and shares at ``price`` (default: the closes of the
        observed bar, the last prices known when the action is chosen). With the env's fill
        prices of the next step it gives the shares that step ends with; nothing is changed.
        """
        core = cast(_StockTradingCore, self._core)
        i = int(core.t[0])
        n = self._market.n_symbols
        a = np.array(action, dtype=np.float64).reshape(-1)
        if a.shape != (n,) or not np.isfinite(a).all():
            raise EnvConfigError(f"the action must be {n} finite numbers, got {action!r}")
        arrays = self._arrays
        p = np.array(arrays["close"][i] if price is None else price, dtype=np.float64).reshape(-1)
        if p.shape != (n,):
            raise EnvConfigError(f"price must have {n} entries (one per symbol {self._market.symbols})")
        s = core.settings
        held = core.shares[0].copy()
        storm = bool(arrays["turbulence"][i] >= s[1])
        vol = np.ascontiguousarray(arrays["vol"][i])
        _orders(
            a, float(s[0]), storm, float(core.cash[0]), held, p, vol, float(s[2]), float(s[3]), float(s[4]), float(s[5])
        )
        return held

    def make_core(self, n_copies: int) -> BatchedCore:
        """A core with ``n_copies`` copies of this env."""
        return _StockTradingCore(
            self._market,
            n_copies,
            reward=self.reward_fn,
            cost=self.cost_model,
            timing=self.timing,
            arrays=self._arrays,
            **self._settings,
        )
