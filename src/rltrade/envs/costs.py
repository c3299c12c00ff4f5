"""Transaction cost models: objects passed to an env, not flags on it.

Every model answers one question: what does trading ``shares`` shares worth ``notional``
currency units cost, asset by asset? Built-in models:

- :class:`BpsCost`: a fixed number of basis points per side of the traded notional;
- :class:`PerShareCost`: a fee per traded share with a per-order minimum (charged only on the
  assets actually traded);
- :class:`SpreadCost`: half a volatility-dependent spread, ``½·k·σ_t·|notional|``, where
  ``σ_t`` is the rolling std of close-to-close log returns (:func:`spread_volatility`);
- :class:`NoCost`.

All of them are special cases of one formula, applied per asset,

``cost = rate·|notional| + [|shares| > 0]·max(per_share·|shares|, minimum) + half_spread·σ·|notional|``

whose parameters (:class:`CostParams`) env kernels inline (:func:`trade_cost` is the numba
version, :meth:`LinearCost.cost` the numpy one; they give the same bits).
"""

from __future__ import annotations

from typing import NamedTuple, Protocol, runtime_checkable

import numba
import numpy as np
from numpy.typing import NDArray

from rltrade.envs.timing import EnvConfigError

FloatArray = NDArray[np.float64]


@runtime_checkable
class CostModel(Protocol):
    """What an env needs from a cost model: :attr:`needs_volatility` and :meth:`cost`."""

    @property
    def needs_volatility(self) -> bool:  # pragma: no cover - protocol
        """True when :meth:`cost` needs the ``volatility`` argument."""
        ...

    def cost(
        self, notional: np.ndarray, shares: np.ndarray, volatility: np.ndarray | None = None
    ) -> np.ndarray:  # pragma: no cover - protocol
        """Per-asset cost (currency units, >= 0, the shape of ``notional``; any leading batch dims).

        Parameters
        ----------
        notional:
            Traded notional ``|Δshares·price|`` per asset (the sign is ignored).
        shares:
            Traded shares ``|Δshares|`` per asset (the sign is ignored).
        volatility:
            Per-asset volatility known when the order is placed (broadcast against
            ``notional``); required when :attr:`needs_volatility` is True.
        """
        ...


class CostParams(NamedTuple):
    """Parameters of the linear cost formula, for env kernels.

    Parameters
    ----------
    rate:
        Fraction of the traded notional (10 bps -> 0.001).
    per_share:
        Currency units per traded share.
    minimum:
        Minimum fee per traded asset (applies only where shares were traded).
    half_spread:
        ``k/2``: the cost per unit notional per unit of volatility.
    window:
        Bars of the volatility window (0 when no volatility is used).
    """

    rate: float = 0.0
    per_share: float = 0.0
    minimum: float = 0.0
    half_spread: float = 0.0
    window: int = 0


class LinearCost:
    """A cost model given by :class:`CostParams` (base class of the built-in models).

    Parameters
    ----------
    params:
        The formula's parameters.
    """

    def __init__(self, params: CostParams) -> None:
        for name in ("rate", "per_share", "minimum", "half_spread"):
            value = float(getattr(params, name))
            if not np.isfinite(value) or value < 0:
                raise EnvConfigError(f"{type(self).__name__}: {name} must be finite and >= 0, got {value}")
        if params.half_spread > 0 and params.window < 2:
            raise EnvConfigError(f"{type(self).__name__}: the volatility window must be >= 2, got {params.window}")
        self.params = CostParams(
            float(params.rate),
            float(params.per_share),
            float(params.minimum),
            float(params.half_spread),
            int(params.window),
        )

    @property
    def needs_volatility(self) -> bool:
        """True when the cost depends on volatility (a spread term)."""
        return self.params.half_spread > 0

    def cost(self, notional: np.ndarray, shares: np.ndarray, volatility: np.ndarray | None = None) -> np.ndarray:
        """Per-asset cost; see :class:`CostModel`. NaN volatility (too little history) counts as 0."""
        p = self.params
        n = np.abs(np.asarray(notional, dtype=np.float64))
        s = np.abs(np.asarray(shares, dtype=np.float64))
        out = p.rate * n
        if p.per_share > 0 or p.minimum > 0:
            out = out + np.where(s > 0, np.maximum(p.per_share * s, p.minimum), 0.0)
        if p.half_spread > 0:
            if volatility is None:
                raise EnvConfigError(f"{self!r} needs the volatility argument (a spread cost)")
            vol = np.asarray(volatility, dtype=np.float64)
            vol = np.where(np.isnan(vol), 0.0, vol)
            out = out + p.half_spread * vol * n
        result: np.ndarray = np.asarray(out, dtype=np.float64)
        return result

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LinearCost) and type(other) is type(self) and other.params == self.params

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.params))


class NoCost(LinearCost):
    """Trading is free."""

    def __init__(self) -> None:
        super().__init__(CostParams())

    def __repr__(self) -> str:
        return "NoCost()"


class BpsCost(LinearCost):
    """A fixed number of basis points per side of the traded notional.

    Parameters
    ----------
    bps:
        Basis points per side (10 = 0.1 % of each buy and of each sell).
    """

    def __init__(self, bps: float = 10.0) -> None:
        self.bps = float(bps)
        super().__init__(CostParams(rate=self.bps / 10_000.0))

    def __repr__(self) -> str:
        return f"BpsCost(bps={self.bps:g})"


class PerShareCost(LinearCost):
    """A fee per traded share with a per-order minimum (as at Interactive Brokers).

    Charged only on the assets actually traded in a step: ``max(per_share·|Δshares|, minimum)``.

    Parameters
    ----------
    per_share:
        Currency units per share.
    minimum:
        Minimum fee per asset traded.
    """

    def __init__(self, per_share: float = 0.005, minimum: float = 1.0) -> None:
        self.per_share = float(per_share)
        self.minimum = float(minimum)
        super().__init__(CostParams(per_share=self.per_share, minimum=self.minimum))

    def __repr__(self) -> str:
        return f"PerShareCost(per_share={self.per_share:g}, minimum={self.minimum:g})"


class SpreadCost(LinearCost):
    """Half a volatility-proportional bid-ask spread: ``½·spread_t·|notional|`` with ``spread_t = k·σ_t``.

    ``σ_t`` is :func:`spread_volatility` of the close over ``window`` bars ending at the last
    bar observed when the order is placed (so the cost is known causally).

    Parameters
    ----------
    k:
        Spread per unit of volatility.
    window:
        Number of log returns in the rolling std.
    """

    def __init__(self, k: float = 1.0, window: int = 20) -> None:
        self.k = float(k)
        self.window = int(window)
        if self.window < 2:
            raise EnvConfigError(f"SpreadCost: window must be >= 2, got {window}")
        super().__init__(CostParams(half_spread=0.5 * self.k, window=self.window))

    def __repr__(self) -> str:
        return f"SpreadCost(k={self.k:g}, window={self.window})"


def spread_volatility(close: np.ndarray, window: int) -> FloatArray:
    """Rolling std (ddof=1) of close-to-close log returns over ``window`` bars ending at t.

    Causal: the value at t uses closes ``t-window .. t`` only. Rows ``0 .. window-1`` are NaN
    (incomplete window), so a gap-free series has its first value at row ``window``. NaN-safe:
    NaN closes give NaN returns, which are skipped; the value is NaN when fewer than 2 valid
    returns are in the window.

    Parameters
    ----------
    close:
        Closes, time along axis 0 (shape ``[T]`` or ``[T, N]``).
    window:
        Number of returns in the window (>= 2).
    """
    if window < 2:
        raise EnvConfigError(f"spread_volatility: window must be >= 2, got {window}")
    prices = np.asarray(close, dtype=np.float64)
    squeeze = prices.ndim == 1
    if squeeze:
        prices = prices[:, None]
    n_times = prices.shape[0]
    returns = np.full(prices.shape, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        returns[1:] = np.log(prices[1:]) - np.log(prices[:-1])
    out = np.full(prices.shape, np.nan)
    if n_times > window:
        # A strided window view keeps every value a function of its own window only (no running sums
        # whose rounding would depend on earlier data).
        windows = np.lib.stride_tricks.sliding_window_view(returns[1:], window, axis=0)  # [T-window, N, window]
        valid = ~np.isnan(windows)
        count = valid.sum(axis=-1)
        filled = np.where(valid, windows, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = filled.sum(axis=-1) / count
            dev = np.where(valid, windows - mean[..., None], 0.0)
            var = (dev * dev).sum(axis=-1) / (count - 1)
        out[window:] = np.where(count >= 2, np.sqrt(var), np.nan)
    result: FloatArray = out[:, 0] if squeeze else out
    return result


def make_cost(spec: CostModel | float | None) -> CostModel:
    """Turn a cost specification into a cost model.

    Parameters
    ----------
    spec:
        A cost model (returned as is), a number (basis points per side: ``BpsCost(spec)``) or
        None (:class:`NoCost`).

    Raises
    ------
    EnvConfigError
        For anything else.
    """
    if spec is None:
        return NoCost()
    if isinstance(spec, bool):
        raise EnvConfigError("cost must be a CostModel, a number of basis points or None, got a bool")
    if isinstance(spec, (int, float, np.integer, np.floating)):
        return BpsCost(float(spec))
    if isinstance(spec, CostModel):
        return spec
    raise EnvConfigError(
        f"cost must be a CostModel (BpsCost, PerShareCost, SpreadCost, ...), a number of basis points or None, "
        f"got {type(spec).__name__}"
    )


def kernel_params(model: CostModel) -> CostParams:
    """The :class:`CostParams` an env kernel inlines for ``model``.

    Raises
    ------
    EnvConfigError
        When ``model`` is not a :class:`LinearCost` (the numba kernels cannot call arbitrary
        Python objects); subclass :class:`LinearCost` to plug a new model into the envs.
    """
    if isinstance(model, LinearCost):
        return model.params
    raise EnvConfigError(
        f"cost model {model!r} cannot run inside the env kernels; use BpsCost, PerShareCost, SpreadCost, NoCost "
        "or a LinearCost(CostParams(...)) that combines their terms"
    )


# The env kernels inline this function and numba caches them on disk (cache=True). Numba checks
# only the source file of a cached function itself, so after editing this function remove the
# __pycache__ folders of rltrade/envs (the property tests, which compare it with LinearCost.cost
# through the envs, catch a stale kernel).
@numba.njit(cache=True, nogil=True)
def trade_cost(
    rate: float, per_share: float, minimum: float, half_spread: float, notional: float, shares: float, vol: float
) -> float:  # pragma: no cover - compiled
    """Cost of one asset's trade (numba; same bits as :meth:`LinearCost.cost`)."""
    n = abs(notional)
    s = abs(shares)
    out = rate * n
    if per_share > 0.0 or minimum > 0.0:
        out = out + (max(per_share * s, minimum) if s > 0.0 else 0.0)
    if half_spread > 0.0:
        v = 0.0 if np.isnan(vol) else vol
        out = out + half_spread * v * n
    return out
