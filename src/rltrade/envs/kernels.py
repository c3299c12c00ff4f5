"""Numba pieces shared by the step kernels of the bar environments.

Numba's on-disk cache notices edits to a kernel's own file only: after editing this module,
delete the ``__pycache__`` folders of ``rltrade/envs`` (the property tests catch a stale kernel).
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray


def serial_and_parallel(body: Callable[..., Any]) -> tuple[Any, Any]:
    """Compile one kernel body twice: serial, and with its ``numba.prange`` loop spread over numba's threads.

    ``body`` is a plain Python function whose loop over the copies is a ``numba.prange``: compiled
    without ``parallel=True`` that loop is an ordinary ``range``. The parallel twin is a copy of
    ``body`` named ``<name>_parallel``, so that numba's on-disk cache keeps the two compilations
    apart (it keys its files by the function's qualified name).

    Parameters
    ----------
    body:
        The kernel, undecorated.

    Returns
    -------
    tuple
        ``(serial, parallel)`` numba dispatchers (both ``cache=True, nogil=True``).
    """
    twin = types.FunctionType(body.__code__, body.__globals__, f"{body.__name__}_parallel", body.__defaults__)
    twin.__qualname__ = f"{body.__qualname__}_parallel"
    twin.__doc__ = body.__doc__
    serial = numba.njit(cache=True, nogil=True)(body)
    parallel = numba.njit(cache=True, nogil=True, parallel=True)(twin)
    return serial, parallel


@numba.njit(cache=True, nogil=True)
def check_actions(
    actions: NDArray[np.float64], t: NDArray[np.int64], t_end: NDArray[np.int64]
) -> int:  # pragma: no cover
    """0, or the error code of the first problem (a finished episode: 1, a non-finite action: 2)."""
    for k in range(actions.shape[0]):
        if t[k] >= t_end[k]:
            return 1
        for j in range(actions.shape[1]):
            if not np.isfinite(actions[k, j]):
                return 2
    return 0


@numba.njit(cache=True, nogil=True)
def mark_and_advance(
    k: int,
    nxt: int,
    cash_k: float,
    close: NDArray[np.float64],
    shares: NDArray[np.float64],
    paid: float,
    traded: float,
    value_at_fill: float,
    last: int,
    acct: NDArray[np.float64],
    t: NDArray[np.int64],
    t_end: NDArray[np.int64],
    flags: NDArray[np.int8],
) -> None:  # pragma: no cover - compiled
    """Mark copy k to close[nxt], book the step's costs and turnover, advance it and set its flag.

    ``acct`` rows: 0 value, 2 step cost, 3 total cost, 4 turnover (traded notional / value at the
    fill). Flags: 0 running, 1 terminated (bankrupt or end of data), 2 truncated (episode length).
    """
    v = cash_k
    for j in range(shares.shape[1]):
        v += shares[k, j] * close[nxt, j]
    acct[0, k] = v
    acct[2, k] = paid
    acct[3, k] += paid
    acct[4, k] = traded / value_at_fill if value_at_fill > 0.0 else 0.0
    t[k] = nxt
    if v <= 0.0:
        flags[k] = 1
    elif nxt >= t_end[k]:
        flags[k] = 1 if t_end[k] >= last else 2
    else:
        flags[k] = 0
