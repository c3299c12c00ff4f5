"""Settings of :class:`~rltrade.envs.single_asset.SingleAssetEnv`: observation columns, constants, contracts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from rltrade.envs.costs import CostParams
from rltrade.envs.timing import EnvConfigError
from rltrade.features import NEELY_SIGNALS

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

StateName = Literal["0", "1", "2", "3", "cheat"]

#: Columns of each observation row (row k of the window is bar ``t − look_back + 1 + k``).
#: ``log_diff`` = ``ln close_t − ln close_{t−1}`` (the ``deng_log_diffs`` feature: state ``0`` is
#: Deng et al.'s last-n log differences); ``neely_*`` = the 14 Neely et al. signals (1.0 / 0.0);
#: ``position`` = δ, the position held after that bar's step as a fraction of ``units``
#: (−1, 0, 1 for discrete actions); ``open_return`` = δ·(close/entry − 1), the return of the open
#: position if it were closed at that bar's close (before costs; entry = average fill price; 0 when
#: flat); ``next_log_diff`` = ``ln close_{t+1+k} − ln close_{t+k}`` (state ``cheat`` only:
#: LOOKAHEAD). Rows before the episode start have position 0 and open_return 0.
STATE_COLUMNS: dict[str, tuple[str, ...]] = {
    "0": ("log_diff",),
    "1": NEELY_SIGNALS,
    "2": (*NEELY_SIGNALS, "position", "open_return"),
    "3": ("log_diff", *NEELY_SIGNALS, "position", "open_return"),
    "cheat": ("next_log_diff",),
}

#: Discrete action → target position.
ACTION_POSITIONS: tuple[int, int, int] = (-1, 0, 1)

#: Log differences and open-position returns are clipped to ±RETURN_BOUND in observations (a finite
#: Box; real prices never come near it).
RETURN_BOUND = 1000.0

DEFAULT_INITIAL_VALUE = 1_000_000.0
#: Without a contract and ``units=None``, |position| = 1 is this fraction of the initial capital
#: at the episode's first close (room for costs, price rises and short losses without clipping).
DEFAULT_EXPOSURE = 0.5


@dataclass(frozen=True)
class FuturesContract:
    """A futures contract: P&L and cost notional scale with ``multiplier``; positions need margin.

    Parameters
    ----------
    multiplier:
        Currency units per index point (CSI 300 futures: 300; E-mini S&P 500: 50).
    margin_rate:
        Initial margin as a fraction of the contract notional ``price·multiplier`` (CSI 300: 0.12).
        Opening or increasing a position needs ``|contracts|·price·multiplier·margin_rate`` of
        account value after costs; the env clips the order to the affordable number of contracts.
    maintenance_rate:
        Maintenance margin rate; ``info["margin_call"]`` is True while the account value is below
        ``|contracts|·close·multiplier·maintenance_rate``. Defaults to ``margin_rate``.
    name:
        Label for reprs (e.g. ``"IF"``).
    """

    multiplier: float = 1.0
    margin_rate: float = 0.1
    maintenance_rate: float | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if not np.isfinite(self.multiplier) or self.multiplier <= 0:
            raise EnvConfigError(f"FuturesContract: multiplier must be > 0, got {self.multiplier}")
        if not 0 < self.margin_rate <= 1:
            raise EnvConfigError(f"FuturesContract: margin_rate must be in (0, 1], got {self.margin_rate}")
        if self.maintenance_rate is not None and not 0 < self.maintenance_rate <= 1:
            raise EnvConfigError(f"FuturesContract: maintenance_rate must be in (0, 1], got {self.maintenance_rate}")

    @property
    def maintenance(self) -> float:
        """The maintenance margin rate in use."""
        return self.margin_rate if self.maintenance_rate is None else self.maintenance_rate


@dataclass(frozen=True)
class CoreConfig:
    state: str
    look_back: int
    forward_reward: bool
    by_day: bool
    continuous: bool
    multiplier: float
    margin_rate: float  # account value needed per unit of notional held (1 without a contract)
    maintenance_rate: float
    integer_units: bool
    units: float | None
    initial_value: float
    random_start: bool
    merge_final_fill: bool  # a session's final fill is its close, where the position is flattened anyway
    has_contract: bool
    cheat: bool
    cost: CostParams
