"""Execution timing: at which price an action chosen after observing bar t is filled.

Accounting convention shared by every rltrade env (see docs/envs.md):

- the state after bar t is valued at ``close[t]``;
- a step whose action was chosen after bar t (1) carries the old holdings from ``close[t]``
  to the fill price, (2) trades at the fill price, paying the cost, and (3) marks the new
  holdings to ``close[t+1]``;
- reward, observation and info emitted by that step use data up to bar t+1 only.

Timings:

- :data:`NEXT_OPEN` fills at ``open[t+1]``: the default when the bars have opens.
- :data:`NEXT_CLOSE` fills at ``close[t+1]``: the default for close-only data.
- :data:`SAME_CLOSE` fills at ``close[t]``, the close the agent has just seen (FinRL's
  assumption). Optimistic: in reality that price is gone by the time the decision is made.
  Explicit opt-in only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rltrade.errors import RLTradeError


class EnvConfigError(RLTradeError, ValueError):
    """An environment (or one of its cost, reward or timing objects) was configured wrongly."""


@dataclass(frozen=True)
class ExecutionTiming:
    """When and at which price an action chosen after observing bar t is filled.

    Parameters
    ----------
    name:
        Short name (``"next_open"``, ``"next_close"``, ``"same_close"``).
    fill_field:
        Price column of the fill: ``"open"`` or ``"close"``.
    fill_offset:
        Bar of the fill relative to the observed bar t: 1 (bar t+1) or 0 (bar t itself).
    description:
        One line for documentation and reprs.
    """

    name: str
    fill_field: Literal["open", "close"]
    fill_offset: Literal[0, 1]
    description: str = ""

    def __post_init__(self) -> None:
        if self.fill_field not in ("open", "close"):
            raise EnvConfigError(f"timing {self.name!r}: fill_field must be 'open' or 'close', got {self.fill_field!r}")
        if self.fill_offset not in (0, 1):
            raise EnvConfigError(f"timing {self.name!r}: fill_offset must be 0 or 1, got {self.fill_offset!r}")
        if self.fill_field == "open" and self.fill_offset == 0:
            raise EnvConfigError(
                f"timing {self.name!r}: filling at open[t] after observing close[t] would trade in the past"
            )

    @property
    def optimistic(self) -> bool:
        """True when the fill price was already known when the action was chosen (SAME_CLOSE)."""
        return self.fill_offset == 0

    @property
    def uses_open(self) -> bool:
        """True when fills need the bars' ``open`` column."""
        return self.fill_field == "open"


NEXT_OPEN = ExecutionTiming("next_open", "open", 1, "action chosen after bar t fills at open[t+1]")
NEXT_CLOSE = ExecutionTiming("next_close", "close", 1, "action chosen after bar t fills at close[t+1]")
SAME_CLOSE = ExecutionTiming(
    "same_close", "close", 0, "action chosen after bar t fills at close[t] (optimistic: FinRL's assumption)"
)

TIMINGS: dict[str, ExecutionTiming] = {t.name: t for t in (NEXT_OPEN, NEXT_CLOSE, SAME_CLOSE)}
"""The built-in timings by name."""


def resolve_timing(timing: str | ExecutionTiming | None, has_open: bool) -> ExecutionTiming:
    """Return the execution timing to use.

    Parameters
    ----------
    timing:
        An :class:`ExecutionTiming`, one of the names in :data:`TIMINGS`, or None for the
        default: :data:`NEXT_OPEN` when the bars have opens, else :data:`NEXT_CLOSE`.
    has_open:
        Whether the bars have a usable ``open`` column (False for close-only sources).

    Raises
    ------
    EnvConfigError
        Unknown name, or a timing filling at the open requested on close-only data.
    """
    if timing is None:
        return NEXT_OPEN if has_open else NEXT_CLOSE
    if isinstance(timing, str):
        key = timing.strip().lower().replace("-", "_")
        if key not in TIMINGS:
            raise EnvConfigError(f"unknown execution timing {timing!r}; use one of {', '.join(TIMINGS)}")
        resolved = TIMINGS[key]
    elif isinstance(timing, ExecutionTiming):
        resolved = timing
    else:
        raise EnvConfigError(f"timing must be a name, an ExecutionTiming or None, got {type(timing).__name__}")
    if resolved.uses_open and not has_open:
        raise EnvConfigError(
            f"timing {resolved.name!r} fills at the open, but these bars have no opens (a close-only source?); "
            "use timing='next_close' or bars with an open column"
        )
    return resolved
