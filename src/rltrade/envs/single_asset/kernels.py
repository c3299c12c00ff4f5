"""Numba kernels of :class:`~rltrade.envs.single_asset.SingleAssetEnv`: K copies, one call.

Numba's on-disk cache notices edits to a kernel's own file only: after editing this module or
the kernels it calls, delete the ``__pycache__`` folders of ``rltrade/envs`` (and below).
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

from rltrade.envs.batched import RUNNING, TERMINATED, TRUNCATED
from rltrade.envs.costs import trade_cost
from rltrade.envs.single_asset.config import RETURN_BOUND, FloatArray, IntArray


@numba.njit(cache=True, nogil=True)
def write_obs(
    copies: NDArray[np.intp],
    t: IntArray,
    n: int,
    cheat: bool,
    with_hist: bool,
    log_diffs: FloatArray,
    signals: FloatArray,
    returns: FloatArray,
    hist: FloatArray,
    obs: NDArray[np.float32],
) -> None:  # pragma: no cover - compiled
    """Write the observation of each copy k in ``copies`` at its bar ``t[k]``.

    Columns in STATE_COLUMNS order, clipped to ±RETURN_BOUND.
    """
    bound = RETURN_BOUND
    for k in copies:
        tk = t[k]
        for row in range(n):
            if cheat:
                obs[k, row, 0] = min(max(returns[tk + 1 + row], -bound), bound)
                continue
            col = 0
            if log_diffs.shape[1] > 0:
                obs[k, row, 0] = min(max(log_diffs[tk, row], -bound), bound)
                col = 1
            if signals.shape[1] > 0:
                bar = tk - n + 1 + row
                for j in range(signals.shape[1]):
                    obs[k, row, col + j] = signals[bar, j]
                col += signals.shape[1]
            if with_hist:
                obs[k, row, col] = hist[k, row, 0]
                obs[k, row, col + 1] = min(max(hist[k, row, 1], -bound), bound)


@numba.njit(cache=True, nogil=True)
def _limit(
    target: float,
    pos: float,
    price: float,
    vol: float,
    value: float,
    per_unit: float,
    integer: bool,
    mult: float,
    rate: float,
    per_share: float,
    minimum: float,
    half_spread: float,
) -> float:  # pragma: no cover - compiled
    """Cut an order that opens or increases exposure to what ``value`` supports after costs.

    ``|q|·per_unit + cost(|q − pos|) <= value``; never below the same-side position already held;
    whole units when ``integer``. Falls back to keeping the position (same side) or going flat.
    """
    same_side = target * pos > 0.0
    keep = abs(pos) if same_side else 0.0
    if abs(target) <= keep:
        return target
    sign = 1.0 if target > 0.0 else -1.0
    size = min(abs(target), max(max(value, 0.0) / per_unit, keep))
    if integer:
        size = max(np.floor(size), keep)
    for _ in range(8):  # the cost is (nearly) linear in the order: a few corrections converge
        traded = abs(sign * size - pos)
        excess = (
            size * per_unit
            + trade_cost(rate, per_share, minimum, half_spread, traded * price * mult, traded, vol)
            - value
        )
        if excess <= 0.0:
            return sign * size
        smaller = max(size - excess / per_unit, keep)
        if integer:
            smaller = max(np.floor(smaller), keep)
        if smaller >= size:
            break
        size = smaller
    return pos if same_side else 0.0


@numba.njit(cache=True, nogil=True)
def step_kernel(
    frac: FloatArray,
    settings: FloatArray,
    close: FloatArray,
    fill: FloatArray,
    volatility: FloatArray,
    t: IntArray,
    t_end: IntArray,
    units: FloatArray,
    state: FloatArray,
    hist: FloatArray,
    out: FloatArray,
    flags: NDArray[np.int8],
) -> None:  # pragma: no cover - compiled
    """Trade every copy to ``frac·units``, flatten at session closes, mark to the next close.

    ``settings`` = [by_day, merge_final_fill, forward_reward, integer_units, multiplier, margin_rate,
    rate, per_share, minimum, half_spread]. ``state`` rows (updated): cash, position, entry,
    fill_value, total_cost, total_traded. ``out`` rows (written): reward prev value, reward now value,
    value, cost, traded, turnover, fill_price, open_return, flattened, bankrupt.
    """
    by_day, merge, forward, integer = settings[0] > 0, settings[1] > 0, settings[2] > 0, settings[3] > 0
    mult, margin_rate = settings[4], settings[5]
    rate, per_share, minimum, half_spread = settings[6], settings[7], settings[8], settings[9]
    for k in range(frac.shape[0]):
        ti = t[k]
        final = ti >= t_end[k]
        flatten = final and by_day
        f = fill[ti]
        vol = volatility[ti]
        close_next = close[ti + 1]
        cash, pos, entry = state[0, k], state[1, k], state[2, k]

        a = 0.0 if (merge and flatten) else frac[k]
        target = a * units[k]
        if integer:
            target = np.rint(target)
        value_at_fill = cash + pos * f * mult
        q = _limit(
            target, pos, f, vol, value_at_fill, f * mult * margin_rate, integer, mult,
            rate, per_share, minimum, half_spread,
        )  # fmt: skip
        traded_units = abs(q - pos)
        cost = trade_cost(rate, per_share, minimum, half_spread, traded_units * f * mult, traded_units, vol)
        cash = cash - (q - pos) * f * mult - cost
        traded = traded_units * f * mult
        if q == 0.0:
            entry = 0.0
        elif pos == 0.0 or (q > 0.0) != (pos > 0.0):
            entry = f
        elif abs(q) > abs(pos):
            entry = (abs(pos) * entry + traded_units * f) / abs(q)
        value_after_fill = cash + q * f * mult

        flat_cost = 0.0
        if flatten:  # the session close: flatten at the close of the session's last bar (t+1), paying
            flat_units = abs(q)
            flat_cost = trade_cost(
                rate, per_share, minimum, half_spread, flat_units * close_next * mult, flat_units, vol
            )
            cash = cash + q * close_next * mult - flat_cost
            traded += flat_units * close_next * mult
            q = 0.0
            entry = 0.0

        if forward:  # just before this fill -> just before the next fill (or the flat session close)
            prev = value_after_fill + cost
            now = cash if flatten else cash + q * fill[ti + 1] * mult
        else:  # just after the previous fill -> just after this fill (or the flat session close)
            prev = state[3, k]
            now = cash if flatten else value_after_fill
        value = cash + q * close_next * mult
        frac_now = q / units[k]
        open_return = frac_now * (close_next / entry - 1.0) if q != 0.0 else 0.0

        n = hist.shape[1]
        for row in range(n - 1):
            hist[k, row, 0] = hist[k, row + 1, 0]
            hist[k, row, 1] = hist[k, row + 1, 1]
        hist[k, n - 1, 0] = frac_now
        hist[k, n - 1, 1] = open_return

        state[0, k], state[1, k], state[2, k], state[3, k] = cash, q, entry, now
        state[4, k] += cost + flat_cost
        state[5, k] += traded
        out[0, k], out[1, k], out[2, k] = prev, now, value
        out[3, k], out[4, k] = cost + flat_cost, traded
        out[5, k] = traded / value_at_fill if value_at_fill > 0.0 else 0.0
        out[6, k], out[7, k] = f, open_return
        out[8, k] = 1.0 if flatten else 0.0
        out[9, k] = 1.0 if value <= 0.0 else 0.0
        t[k] = ti + 1
        if flatten or value <= 0.0:
            flags[k] = TERMINATED
        elif final:
            flags[k] = TRUNCATED
        else:
            flags[k] = RUNNING
