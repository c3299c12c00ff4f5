"""State and step of K independent :class:`~rltrade.envs.single_asset.SingleAssetEnv` copies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from rltrade.envs.batched import ERROR_MESSAGES, RUNNING, BatchedCore
from rltrade.envs.costs import CostModel
from rltrade.envs.market import Market
from rltrade.envs.rewards import Reward
from rltrade.envs.single_asset.arrays import Arrays
from rltrade.envs.single_asset.config import ACTION_POSITIONS, DEFAULT_EXPOSURE, CoreConfig, FloatArray
from rltrade.envs.single_asset.kernels import step_kernel, write_obs
from rltrade.envs.timing import EnvConfigError


class SingleAssetCore(BatchedCore):
    """State and numpy step of K independent :class:`SingleAssetEnv` copies (arrays of leading size K)."""

    def __init__(
        self,
        market: Market,
        arrays: Arrays,
        cfg: CoreConfig,
        cost: CostModel,
        reward: Reward,
        n_copies: int,
        observation_space: gym.spaces.Box,
        action_space: gym.spaces.Space[Any],
    ) -> None:
        self.observation_space = observation_space
        self.action_space = action_space  # type: ignore[assignment]  # Discrete unless continuous=True
        super().__init__(market, n_copies, reward, 1.0, cfg.random_start, None, cfg.initial_value)
        self.arrays = arrays
        self.cfg = cfg
        self.cost_model = cost
        k = n_copies
        p = cfg.cost
        self.settings = np.array(
            [
                float(cfg.by_day),
                float(cfg.merge_final_fill),
                float(cfg.forward_reward),
                float(cfg.integer_units),
                cfg.multiplier,
                cfg.margin_rate,
                p.rate,
                p.per_share,
                p.minimum,
                p.half_spread,
            ]
        )
        self.episode = np.zeros(k, dtype=np.int64)  # episodes started since the last seeded reset
        self.offset = np.zeros(k, dtype=np.int64)  # index into arrays.starts of the copy's first episode
        self.units = np.ones(k)
        # rows: cash, position, entry price, value just after the last fill, total cost, total traded
        self.acct = np.zeros((6, k))
        # rows: reward's prev value, reward's now value, value, cost, traded, turnover, fill price,
        # open return, flattened, bankrupt (the base class's arrays are views of it)
        self.out = np.zeros((10, k))
        self.value_prev, self.value, self.step_cost, self.turnover = self.out[0], self.out[2], self.out[3], self.out[5]
        self.total_cost = self.acct[4]
        self.hist = np.zeros((k, cfg.look_back, 2))  # (position fraction, open return) per window row

    # -- episodes -------------------------------------------------------------------------------

    def reset(
        self,
        copies: Sequence[int] | NDArray[np.intp],
        rngs: Sequence[np.random.Generator],
        options: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        """Start new episodes for ``copies``.

        ``options[i]["start"]`` (a bar index or timestamp) picks the first episode start at or after it.
        """
        a = self.arrays
        n_starts = len(a.starts)
        index = np.asarray(copies, dtype=np.intp)
        for n, k in enumerate(index):
            opts = options[n] if options else None
            if opts and opts.get("start") is not None:
                bar = self.market.index_of(opts["start"])
                j = int(np.searchsorted(a.starts, bar))
                if j >= n_starts:
                    raise EnvConfigError(
                        f"reset option start={opts['start']!r} (bar {bar}) is after the last episode start "
                        f"{self.market.timestamp(int(a.starts[-1]))}"
                    )
                self.offset[k], self.episode[k] = j, 0
            elif self.random_start:
                j = int(rngs[n].integers(n_starts))
            else:
                j = int((self.offset[k] + self.episode[k] * a.stride) % n_starts)
            self.episode[k] += 1
            self.t[k] = a.starts[j]
            self.t_end[k] = a.ends[j]
        self.rewards[index] = 0.0
        self.flags[index] = RUNNING
        self.step_cost[index] = 0.0
        self.total_cost[index] = 0.0
        self.turnover[index] = 0.0
        self._reset_state(index)
        if len(index) == self.n_copies:
            self.reward.reset((self.n_copies,))
        else:
            mask = np.zeros(self.n_copies, dtype=bool)
            mask[index] = True
            self.reward.reset((self.n_copies,), where=mask)

    def _reset_state(self, copies: NDArray[np.intp]) -> None:
        cfg, cap = self.cfg, self.cfg.initial_value
        self.acct[:, copies] = 0.0
        self.acct[0, copies] = cap  # cash
        self.acct[3, copies] = cap  # value just after the last fill
        self.out[:, copies] = 0.0
        self.out[0:3, copies] = cap
        self.out[6, copies] = np.nan  # no fill yet
        self.hist[copies] = 0.0
        if cfg.units is not None:
            self.units[copies] = cfg.units
        else:  # a fraction of the initial capital at the episode's first close (known at the start)
            self.units[copies] = DEFAULT_EXPOSURE * cap / (self.arrays.close[self.t[copies]] * cfg.multiplier)
        self._write(copies)

    def _write(self, copies: NDArray[np.intp]) -> None:
        a, cfg = self.arrays, self.cfg
        write_obs(
            copies, self.t, cfg.look_back, cfg.cheat, cfg.state in ("2", "3"),
            a.log_diffs, a.signals, a.returns, self.hist, self.obs,
        )  # fmt: skip

    def _targets(self, actions: NDArray[np.float64]) -> FloatArray:
        if self.cfg.continuous:
            return np.clip(actions[:, 0], -1.0, 1.0)
        index = np.rint(actions[:, 0]).astype(np.int64)
        if ((index < 0) | (index > 2)).any() or (index != actions[:, 0]).any():
            raise EnvConfigError(f"discrete actions are 0 (short), 1 (flat) and 2 (long); got {actions[:, 0]}")
        return np.asarray(ACTION_POSITIONS, dtype=np.float64)[index]

    def _step_state(self, actions: NDArray[np.float64]) -> int:
        if (self.flags != RUNNING).any():
            return 1
        if not np.isfinite(actions).all():
            return 2
        a = self.arrays
        step_kernel(
            self._targets(actions), self.settings, a.close, a.fill, a.volatility, self.t, self.t_end,
            self.units, self.acct, self.hist, self.out, self.flags,
        )  # fmt: skip
        self.rewards = np.asarray(self.reward(self.out[0], self.out[1]), dtype=np.float64)
        self._write(np.arange(self.n_copies))
        return 0

    def step(self, actions: NDArray[Any]) -> None:
        """Step every copy with ``actions`` (``[K, 1]``: action indices, or positions if continuous)."""
        code = self._step_state(np.ascontiguousarray(actions, dtype=np.float64).reshape(self.n_copies, -1))
        if code:
            raise EnvConfigError(ERROR_MESSAGES.get(code, f"env error {code}"))

    def info(self, k: int) -> dict[str, Any]:
        """The info of copy ``k``.

        The shared keys (bar, timestamp, portfolio_value, cost, total_cost, turnover) and cash,
        position, position_fraction, price, fill_price, open_return, traded, total_traded,
        margin_required, margin_call, flattened, bankrupt, cheat.
        """
        info = self.common_info(k)
        cfg, acct, out = self.cfg, self.acct, self.out
        price = float(self.arrays.close[self.t[k]])
        pos = float(acct[1, k])
        margin = abs(pos) * price * cfg.multiplier * cfg.maintenance_rate if cfg.has_contract else 0.0
        info.update(
            cash=float(acct[0, k]),
            position=pos,
            position_fraction=pos / float(self.units[k]),
            price=price,
            fill_price=float(out[6, k]),
            open_return=float(out[7, k]),
            traded=float(out[4, k]),
            total_traded=float(acct[5, k]),
            margin_required=margin,
            margin_call=bool(cfg.has_contract and float(out[2, k]) < margin),
            flattened=bool(out[8, k]),
            bankrupt=bool(out[9, k]),
            cheat=cfg.cheat,
        )
        return info
