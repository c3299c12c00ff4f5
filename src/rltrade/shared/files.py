"""Atomic file writes for everything rltrade writes outside the bar store (runs, reports, signals, ...).

Each file is written to a hidden temporary name beside its destination and renamed into place
(``os.replace``, atomic on POSIX), so a reader never sees half a file and an interrupted write
leaves the old file as it was. The bar store has its own, multi-file version of the same rule
(:mod:`rltrade.data.store`).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to a hidden temporary file beside ``path`` and rename it into place."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically; NaN and infinities become null (:func:`json_safe`)."""
    write_text(path, json.dumps(json_safe(data), indent=2) + "\n")


def write_csv(path: Path, frame: pd.DataFrame, index: bool = True, intraday: bool = False) -> None:
    """Write ``frame`` atomically; timestamps as dates, or as ``YYYY-mm-dd HH:MM:SS`` (UTC) when ``intraday``."""
    tmp = path.with_name(f".{path.name}.tmp")
    stamp = "%Y-%m-%d %H:%M:%S" if intraday else "%Y-%m-%d"
    frame.to_csv(tmp, index=index, float_format="%.10g", date_format=stamp)
    os.replace(tmp, path)


def is_intraday(timestamps: pd.DatetimeIndex) -> bool:
    """True when some timestamp is not a midnight (the bars are intraday: keep the time in files)."""
    stamps = pd.DatetimeIndex(timestamps)
    return bool(len(stamps)) and not bool((stamps == stamps.normalize()).all())


def json_safe(value: Any) -> Any:
    """``value`` with numpy scalars as Python numbers and non-finite floats as None (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value
