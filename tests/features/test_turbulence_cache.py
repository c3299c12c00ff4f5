"""turbulence_index keeps no state: every call computes afresh (envs share one Market's index instead)."""

from __future__ import annotations

import numpy as np

from rltrade.features import turbulence as turb


def test_every_call_computes_a_fresh_array_from_its_input() -> None:
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (400, 5)), axis=0))
    first = turb.turbulence_index(close, 60)
    first[:] = -1.0  # the caller owns its array
    second = turb.turbulence_index(close, 60)
    np.testing.assert_array_equal(second, turb._compute_turbulence(close, 60))
    other_window = turb.turbulence_index(close, 61)
    assert not np.array_equal(other_window, second, equal_nan=True)
    changed = close.copy()
    changed[-1, 0] *= 1.5
    assert turb.turbulence_index(changed, 60)[-1] != second[-1]


def test_the_module_holds_no_cache() -> None:
    names = [name for name in vars(turb) if "cache" in name.lower() and not name.startswith("__")]
    assert not names
