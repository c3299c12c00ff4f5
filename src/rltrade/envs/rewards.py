"""Reward objects shared by every rltrade environment.

A reward object turns the change of a portfolio value into a scalar training signal::

    reward = make_reward("differential_sharpe")
    reward.reset()                       # scalar env; reset((K,)) for K batched copies
    r = reward(value_prev, value_now)    # elementwise over any batch shape

Every reward is elementwise over the batch shape given to :meth:`Reward.reset` (``()`` for a
scalar env, ``(K,)`` for K batched copies); inputs may be Python floats or 0-d arrays for a
scalar env. Stateful rewards (differential Sharpe, downside deviation, Sortino change) keep
one running estimate per batch member; ``reset(where=mask)`` restarts only the members where
``mask`` is true (used by batched auto-reset).

Rewards are computed on the portfolio *value*, so costs (which reduce the value) always reach
the reward.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from rltrade.envs.timing import EnvConfigError

FloatArray = npt.NDArray[np.float64]
ArrayLike = npt.ArrayLike

#: Smallest ratio value_now/value_prev fed to the logarithm (a wiped-out account gives log(1e-12) ≈ −27.6
#: instead of −inf/NaN, so a bad step cannot poison a training batch).
_MIN_RATIO = 1e-12
#: A variance (or squared downside deviation) counts as zero below this fraction of the second moment.
_REL_EPS = 1e-9
#: ... and below this absolute value (second moments of returns are ≥ 0; this only guards 0/0).
_ABS_EPS = 1e-300


class RewardError(EnvConfigError):
    """A reward specification cannot be used (unknown name, bad parameter, mismatched shapes)."""


def _as_float(x: ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def simple_return(value_prev: ArrayLike, value_now: ArrayLike) -> FloatArray:
    """Return ``value_now / value_prev − 1`` elementwise, 0 where ``value_prev ≤ 0`` (no defined return)."""
    prev = _as_float(value_prev)
    now = _as_float(value_now)
    out = np.zeros(np.broadcast_shapes(prev.shape, now.shape), dtype=np.float64)
    np.divide(now, prev, out=out, where=prev > 0)
    return np.where(prev > 0, out - 1.0, 0.0)


class Reward(ABC):
    """Base class: a (possibly stateful) map from (value_prev, value_now) to a reward.

    Subclasses implement :meth:`__call__`; stateful ones also keep running estimates created by
    :meth:`reset`. Calling without a prior :meth:`reset` starts from a fresh state shaped like
    the inputs.
    """

    #: Registry name (accepted by :func:`make_reward`).
    name: ClassVar[str] = ""

    def reset(self, batch_shape: tuple[int, ...] = (), where: ArrayLike | None = None) -> None:
        """Restart the running estimates.

        Parameters
        ----------
        batch_shape:
            Shape of the batch of independent copies (``()`` for a scalar env).
        where:
            Optional boolean mask of shape ``batch_shape``: only these members are restarted
            (the others keep their estimates). ``None`` restarts all.
        """
        return None  # stateless rewards have nothing to restart

    @abstractmethod
    def __call__(self, value_prev: ArrayLike, value_now: ArrayLike) -> FloatArray:
        """Return the reward for a step that moved the portfolio value from ``value_prev`` to ``value_now``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ProfitReward(Reward):
    """Total-profit change: ``value_now − value_prev`` ("TP"; in currency units)."""

    name = "profit"

    def __call__(self, value_prev: ArrayLike, value_now: ArrayLike) -> FloatArray:
        return _as_float(value_now) - _as_float(value_prev)


class LogReturnReward(Reward):
    """Log return of the portfolio value: ``log(value_now / value_prev)`` (additive over steps).

    A non-positive ratio (account wiped out) is floored at 1e-12, i.e. a reward of about −27.6.
    """

    name = "log_return"

    def __call__(self, value_prev: ArrayLike, value_now: ArrayLike) -> FloatArray:
        prev = _as_float(value_prev)
        now = _as_float(value_now)
        ratio = np.full(np.broadcast_shapes(prev.shape, now.shape), _MIN_RATIO, dtype=np.float64)
        np.divide(now, prev, out=ratio, where=prev > 0)
        return np.log(np.maximum(ratio, _MIN_RATIO))


class _RunningReward(Reward):
    """Shared state handling of the rewards that keep per-member running estimates."""

    _state_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        self._state: dict[str, FloatArray] = {}
        self._shape: tuple[int, ...] | None = None

    def reset(self, batch_shape: tuple[int, ...] = (), where: ArrayLike | None = None) -> None:
        shape = tuple(int(s) for s in batch_shape)
        if where is None or self._shape != shape:
            self._shape = shape
            self._state = {k: np.zeros(shape, dtype=np.float64) for k in self._state_names}
            return
        mask = np.asarray(where, dtype=bool)
        if mask.shape != shape:
            raise RewardError(f"reset mask has shape {mask.shape}, expected the batch shape {shape}")
        for arr in self._state.values():
            arr[mask] = 0.0

    def _ensure(self, shape: tuple[int, ...]) -> None:
        if self._shape is None:
            self.reset(shape)
        elif self._shape != shape:
            raise RewardError(
                f"{type(self).__name__} was reset for batch shape {self._shape} but called with shape {shape}; "
                f"call reset({shape}) first"
            )

    def _returns(self, value_prev: ArrayLike, value_now: ArrayLike) -> FloatArray:
        r = simple_return(value_prev, value_now)
        self._ensure(r.shape)
        return r


def _check_eta(eta: float) -> float:
    eta = float(eta)
    if not 0.0 < eta <= 1.0:
        raise RewardError(f"eta must be in (0, 1] (the adaptation rate of the moving averages), got {eta}")
    return eta


class DifferentialSharpeReward(_RunningReward):
    """Moody & Saffell's differential Sharpe ratio on the simple return ``r = value_now/value_prev − 1``.

    With exponential moving estimates of the first and second moments
    ``A_t = A_{t−1} + η ΔA_t``, ``B_t = B_{t−1} + η ΔB_t``, ``ΔA_t = r_t − A_{t−1}``,
    ``ΔB_t = r_t² − B_{t−1}``, the reward is

    ``D_t = (B_{t−1} ΔA_t − ½ A_{t−1} ΔB_t) / (B_{t−1} − A_{t−1}²)^{3/2}``

    and 0 while the variance estimate ``B_{t−1} − A_{t−1}²`` is ~0 (e.g. the first step).

    Parameters
    ----------
    eta:
        Adaptation rate η ∈ (0, 1] of the moving averages (default 0.01, i.e. a ~100-step memory;
        the public FinancialEnv code hard-coded 0.9).
    """

    name = "differential_sharpe"
    _state_names = ("A", "B")

    def __init__(self, eta: float = 0.01) -> None:
        super().__init__()
        self.eta = _check_eta(eta)

    def __call__(self, value_prev: ArrayLike, value_now: ArrayLike) -> FloatArray:
        r = self._returns(value_prev, value_now)
        a, b = self._state["A"], self._state["B"]
        d_a = r - a
        d_b = r * r - b
        var = b - a * a
        ok = var > _REL_EPS * b + _ABS_EPS
        denom = np.where(ok, var, 1.0) ** 1.5
        out = np.where(ok, (b * d_a - 0.5 * a * d_b) / denom, 0.0)
        a += self.eta * d_a
        b += self.eta * d_b
        return out

    def __repr__(self) -> str:
        return f"DifferentialSharpeReward(eta={self.eta})"


class DownsideDeviationReward(_RunningReward):
    """Moody & Saffell's differential downside-deviation ratio (DDR) on the simple return ``r``.

    ``DDR = A / DD`` with ``A_t = A_{t−1} + η(r_t − A_{t−1})`` and the squared downside deviation
    ``DD²_t = DD²_{t−1} + η(min(r_t, 0)² − DD²_{t−1})``. The reward is the first-order term of
    the DDR's change:

    - ``r_t > 0``:  ``D_t = (r_t − ½ A_{t−1}) / DD_{t−1}``
    - ``r_t ≤ 0``:  ``D_t = (DD²_{t−1} (r_t − ½ A_{t−1}) − ½ A_{t−1} r_t²) / DD³_{t−1}``

    and 0 while ``DD_{t−1}`` is ~0 (no loss seen yet).

    Parameters
    ----------
    eta:
        Adaptation rate η ∈ (0, 1] of the moving averages (default 0.01).
    """

    name = "downside_deviation"
    _state_names = ("A", "DD2")

    def __init__(self, eta: float = 0.01) -> None:
        super().__init__()
        self.eta = _check_eta(eta)

    def __call__(self, value_prev: ArrayLike, value_now: ArrayLike) -> FloatArray:
        r = self._returns(value_prev, value_now)
        a, dd2 = self._state["A"], self._state["DD2"]
        ok = dd2 > _ABS_EPS
        safe_dd2 = np.where(ok, dd2, 1.0)
        dd = np.sqrt(safe_dd2)
        up = (r - 0.5 * a) / dd
        down = (safe_dd2 * (r - 0.5 * a) - 0.5 * a * r * r) / (safe_dd2 * dd)
        out = np.where(ok, np.where(r > 0, up, down), 0.0)
        neg = np.minimum(r, 0.0)
        a += self.eta * (r - a)
        dd2 += self.eta * (neg * neg - dd2)
        return out

    def __repr__(self) -> str:
        return f"DownsideDeviationReward(eta={self.eta})"


class SortinoChangeReward(_RunningReward):
    """Change of the running Sortino ratio of the simple returns since the last reset.

    ``S_t = mean(r_1..r_t) / sqrt(mean(min(r_k, 0)²))`` (target return 0, all returns since the
    reset weighted equally); ``S_t = 0`` while no negative return has been seen. The reward is
    ``S_t − S_{t−1}``, so the rewards of an episode sum to its final Sortino ratio.
    """

    name = "sortino_change"
    _state_names = ("n", "sum", "sum_neg2", "sortino")

    def __call__(self, value_prev: ArrayLike, value_now: ArrayLike) -> FloatArray:
        r = self._returns(value_prev, value_now)
        st = self._state
        st["n"] += 1.0
        st["sum"] += r
        neg = np.minimum(r, 0.0)
        st["sum_neg2"] += neg * neg
        ok = st["sum_neg2"] > _ABS_EPS
        # mean / sqrt(mean_neg2) = (sum/n) / sqrt(sum_neg2/n) = sum / sqrt(n * sum_neg2)
        s_now = np.where(ok, st["sum"] / np.sqrt(np.where(ok, st["n"] * st["sum_neg2"], 1.0)), 0.0)
        out = s_now - st["sortino"]
        st["sortino"][...] = s_now
        return out


#: Reward classes by registry name.
REWARDS: dict[str, type[Reward]] = {
    cls.name: cls
    for cls in (
        ProfitReward,
        LogReturnReward,
        DifferentialSharpeReward,
        DownsideDeviationReward,
        SortinoChangeReward,
    )
}


def make_reward(spec: str | Reward | None, default: str = "log_return", **params: Any) -> Reward:
    """Build a reward object from a name, pass an object through, or use ``default`` for ``None``.

    Parameters
    ----------
    spec:
        A :class:`Reward` instance (returned as is), one of the names in :data:`REWARDS`
        (``"profit"``, ``"log_return"``, ``"differential_sharpe"``, ``"downside_deviation"``,
        ``"sortino_change"``), or ``None`` for ``default``.
    default:
        Name used when ``spec`` is ``None``.
    **params:
        Constructor parameters for a named reward (e.g. ``eta=0.05`` for the differential Sharpe).

    Raises
    ------
    RewardError
        For an unknown name (the message lists the valid ones) or parameters the reward does not take.
    """
    if isinstance(spec, Reward):
        if params:
            raise RewardError(f"parameters {sorted(params)} given with a reward object; set them on the object")
        return spec
    name = default if spec is None else spec
    if not isinstance(name, str):
        raise RewardError(f"reward must be a name or a Reward object, got {type(name).__name__}")
    key = name.strip().lower()
    cls = REWARDS.get(key)
    if cls is None:
        raise RewardError(f"unknown reward {name!r}; valid names: {', '.join(sorted(REWARDS))}")
    try:
        return cls(**params)
    except TypeError as exc:
        raise RewardError(f"reward {key!r} does not accept parameters {sorted(params)}: {exc}") from exc


__all__ = [
    "REWARDS",
    "DifferentialSharpeReward",
    "DownsideDeviationReward",
    "LogReturnReward",
    "ProfitReward",
    "Reward",
    "RewardError",
    "SortinoChangeReward",
    "make_reward",
    "simple_return",
]
