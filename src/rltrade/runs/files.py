"""Atomic writers, checked readers and provenance of run directories (one owner: :mod:`rltrade.runs`).

Writers build each file under a hidden temporary name and rename it into place, so a reader
never sees half a file. Readers raise :class:`~rltrade.errors.RLTradeError` naming the file
and what is wrong with it.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import platform
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from rltrade.errors import RLTradeError

MANIFEST_VERSION = 1
PACKAGES = (
    "rltrade",
    "numpy",
    "pandas",
    "numba",
    "torch",
    "stable-baselines3",
    "gymnasium",
    "skfolio",
    "empyrical-reloaded",
    "ta-lib",
    "plotly",
    "pydantic",
)


def git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def read_manifest(run_dir: Path) -> dict[str, Any]:
    """The manifest of a run directory."""
    path = Path(run_dir) / "manifest.json"
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RLTradeError(
            f"{run_dir} is not a run directory: no manifest.json (make one with `rltrade train`)"
        ) from None
    except json.JSONDecodeError as exc:
        raise RLTradeError(f"{path}: not valid JSON ({exc})") from None
    return manifest


def read_backtest(path: Path) -> dict[str, Any]:
    data = read_json_object(path)
    test = data.get("test")
    if test is not None and not (isinstance(test, dict) and {"start", "end"} <= set(test)):
        raise RLTradeError(f"{path.name} in {path.parent}: 'test' must be an object with 'start' and 'end'")
    return data


def backtest_manifest(manifest: dict[str, Any], backtest: dict[str, Any]) -> dict[str, Any]:
    """The run's manifest with the re-backtest's test range, annualisation, prices and data hash."""
    out = dict(manifest)
    for key in ("test", "annualization", "prices", "dataset_hash"):
        if backtest.get(key) is not None:
            out[key] = backtest[key]
    return out


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RLTradeError(f"{path.name} is missing from run directory {path.parent}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RLTradeError(f"{path.name} in {path.parent} cannot be read: {exc}") from exc


def read_json_object(path: Path) -> dict[str, Any]:
    text = read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RLTradeError(f"{path.name} in {path.parent} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise RLTradeError(f"{path.name} in {path.parent} must hold a JSON object, found {type(data).__name__}")
    return data


def read_csv(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise RLTradeError(f"{path.name} is missing from run directory {path.parent}")
    try:
        frame = pd.read_csv(path)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise RLTradeError(f"{path.name} in {path.parent} cannot be read as CSV: {exc}") from exc
    if frame.empty:
        raise RLTradeError(f"{path.name} in {path.parent} has no rows")
    return frame


def require_columns(frame: pd.DataFrame, path: Path, columns: Iterable[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise RLTradeError(f"{path.name} in {path.parent} lacks column(s) {', '.join(missing)}")


def parse_timestamps(values: pd.Series, path: Path, column: str = "timestamp") -> pd.DatetimeIndex:
    try:
        stamps = pd.to_datetime(values, utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise RLTradeError(
            f"{path.name} in {path.parent}: column {column!r} holds a non-ISO timestamp ({exc})"
        ) from exc
    return pd.DatetimeIndex(stamps).tz_localize(None)


def numeric_columns(frame: pd.DataFrame, path: Path, columns: Sequence[str]) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    for column in columns:
        try:
            out[column] = pd.to_numeric(frame[column], errors="raise").astype(float)
        except (ValueError, TypeError) as exc:
            raise RLTradeError(f"{path.name} in {path.parent}: column {column!r} is not numeric ({exc})") from exc
    return out


def read_equity(path: Path) -> pd.DataFrame:
    frame = read_csv(path)
    if frame.columns[0] != "timestamp":
        raise RLTradeError(
            f"{path.name} in {path.parent} must start with a 'timestamp' column, found {frame.columns[0]!r}"
        )
    strategies = [str(c) for c in frame.columns[1:]]
    if not strategies:
        raise RLTradeError(f"{path.name} in {path.parent} has no strategy columns after 'timestamp'")
    values = numeric_columns(frame, path, strategies)
    values.index = parse_timestamps(frame["timestamp"], path)
    values.index.name = "timestamp"
    return values.sort_index()


def read_weights(path: Path) -> pd.DataFrame:
    frame = read_csv(path)
    require_columns(frame, path, ("timestamp", "strategy"))
    assets = [str(c) for c in frame.columns if c not in ("timestamp", "strategy")]
    if not assets:
        raise RLTradeError(f"{path.name} in {path.parent} has no weight columns after 'timestamp, strategy'")
    out = numeric_columns(frame, path, assets)
    out.insert(0, "strategy", frame["strategy"].astype(str))
    out.insert(0, "timestamp", parse_timestamps(frame["timestamp"], path))
    return out


def read_trades(path: Path) -> pd.DataFrame:
    frame = read_csv(path)
    require_columns(frame, path, ("timestamp", "strategy", "symbol"))
    numeric = [c for c in ("quantity", "holding", "price", "notional") if c in frame.columns]
    out = numeric_columns(frame, path, numeric)
    out.insert(0, "symbol", frame["symbol"].astype(str))
    out.insert(0, "strategy", frame["strategy"].astype(str))
    out.insert(0, "timestamp", parse_timestamps(frame["timestamp"], path))
    return out


def read_quarters(path: Path) -> pd.DataFrame:
    frame = read_csv(path)
    require_columns(frame, path, ("quarter", "picked"))
    if "seed" in frame.columns and frame["seed"].nunique() > 1:
        # several seeds: the picks of the first seed, the one whose curves are drawn boldly
        frame = frame[frame["seed"] == frame["seed"].min()].reset_index(drop=True)
    frame["quarter"] = frame["quarter"].astype(str)
    frame["picked"] = frame["picked"].astype(str)
    for column in frame.columns:
        if column.endswith(("_start", "_end")):
            frame[column] = parse_timestamps(frame[column], path, column)
    numeric = [c for c in frame.columns if c.startswith("sharpe_") or c == "turbulence_threshold"]
    frame[numeric] = numeric_columns(frame, path, numeric)
    return frame


def read_metrics(path: Path) -> dict[str, dict[str, float | None]]:
    data = read_json_object(path)
    out: dict[str, dict[str, float | None]] = {}
    for strategy, values in data.items():
        if not isinstance(values, dict):
            raise RLTradeError(f"{path.name} in {path.parent}: {strategy!r} must map metric names to numbers")
        row: dict[str, float | None] = {}
        for key, value in values.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise RLTradeError(
                    f"{path.name} in {path.parent}: {strategy}.{key} = {value!r} is not a number or null"
                )
            row[key] = None if value is None or not math.isfinite(value) else float(value)
        out[str(strategy)] = row
    return out


def read_summary(path: Path) -> dict[str, Any]:
    data = read_json_object(path)
    strategies = data.get("strategies")
    if not isinstance(strategies, list) or not all(isinstance(s, dict) and "name" in s for s in strategies):
        raise RLTradeError(f"{path.name} in {path.parent}: 'strategies' must be a list of objects with a 'name'")
    return data
