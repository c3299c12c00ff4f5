"""What every config model shares: the error type, the strict base model, error formatting."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from rltrade.errors import RLTradeError


class ConfigError(RLTradeError, ValueError):
    """A run config is invalid; the message names the file and the field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _loc(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _format_errors(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors(include_url=False):
        # union tags ("strategy=orderbook", "kind=qlearning") and validator names are not fields
        loc = [p for p in err["loc"] if not (isinstance(p, str) and (p.startswith("function-after") or "=" in p))]
        msg = str(err["msg"]).removeprefix("Value error, ")
        where = _loc(loc)
        # a validator on a parent model names the child field at the start of its message ("params.x: ...")
        match = re.match(r"^(\[\d+\]|[A-Za-z_][\w.]*(?:\[\d+\])?):? (.*)$", msg, re.S)
        if match and (match.group(1).startswith("[") or msg.startswith(f"{match.group(1)}: ")):
            sub = match.group(1)
            where = f"{where}{sub}" if sub.startswith("[") else (f"{where}.{sub}" if where else sub)
            msg = match.group(2)
        if err["type"] == "union_tag_invalid":  # a tagged union's tag names no member: the discriminating field
            field, _, value = str(err.get("ctx", {}).get("tag", "")).partition("=")
            choices = ", ".join(str(t).partition("=")[2] for t in _tags(err))
            where = f"{where}.{field}" if where else field
            msg = f"unknown {field} {value!r}; choose {choices}"
        elif err["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling; docs/training.md lists the fields)"
        elif err["type"] == "missing":
            msg = "required field is missing"
        elif str(err["type"]).startswith("date_") and isinstance(err.get("input"), str):
            msg = f"{err['input']} is not a date ({msg}); write it as YYYY-MM-DD"
        lines.append(f"  {where or '(top level)'}: {msg}")
    return "\n".join(lines)


# Source kinds whose argument is not a file path.


def raise_problems(problems: Sequence[tuple[str, str]], source: str = "config") -> None:
    """Raise one :class:`ConfigError` listing ``(field, message)`` problems, as for a pydantic error."""
    if problems:
        n = len(problems)
        lines = "\n".join(f"  {where}: {message}" for where, message in problems)
        raise ConfigError(f"{source}: {n} invalid field{'s' if n > 1 else ''}:\n{lines}")


def _tags(err: Any) -> list[str]:
    """The expected tags of a ``union_tag_invalid`` error (pydantic lists them quoted, comma-separated)."""
    expected = str(err.get("ctx", {}).get("expected_tags", ""))
    return [t.strip().strip("'") for t in expected.split(",") if t.strip()]
