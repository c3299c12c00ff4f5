"""Reading a config: YAML (with a check for dates that do not exist), file paths, ``--set`` overrides."""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import Discriminator, Tag, TypeAdapter, ValidationError

from rltrade.config.bars import RunConfig
from rltrade.config.base import ConfigError, _format_errors
from rltrade.config.orderbook import OrderBookConfig

AnyConfig = RunConfig | OrderBookConfig
"""A config of any strategy: :class:`RunConfig` (bars: ``single``, ``ensemble``) or :class:`OrderBookConfig`."""


def _strategy_tag(value: Any) -> str:
    strategy = value.get("strategy", "single") if isinstance(value, Mapping) else getattr(value, "strategy", None)
    return f"strategy={strategy}"


# One member per ``strategy``: the model its config is validated with.
_ANY_CONFIG: TypeAdapter[AnyConfig] = TypeAdapter(
    Annotated[
        Annotated[RunConfig, Tag("strategy=single")]
        | Annotated[RunConfig, Tag("strategy=ensemble")]
        | Annotated[RunConfig, Tag("strategy=direct_rl")]
        | Annotated[RunConfig, Tag("strategy=combined")]
        | Annotated[OrderBookConfig, Tag("strategy=orderbook")],
        Discriminator(_strategy_tag),
    ]
)

_NOT_PATHS = frozenset({"sample", "yahoo", "alpaca", "synthetic"})


def _resolve_path(value: str, base: Path) -> str:
    value = os.path.expandvars(value)  # $VAR / ${VAR}: a data folder each user sets (LOBSTER_DIR)
    if "://" in value or re.search(r"\$\{?[A-Za-z_]", value):  # a URI, or a variable that is not set: kept
        return value
    expanded = Path(value).expanduser()
    return str(expanded if expanded.is_absolute() else (base / expanded).resolve())


def _resolve_source(spec: Any, base: Path) -> Any:
    if not isinstance(spec, str):
        return spec
    kind, sep, arg = spec.partition(":")
    if not sep or kind in _NOT_PATHS or not arg:
        return spec
    return f"{kind}:{_resolve_path(arg, base)}"


def resolve_paths(data: Any, base: Path) -> Any:
    """The config mapping with its file paths made absolute, relative to ``base`` (the config's folder).

    Paths are ``data.source`` and ``data.index.source`` of file sources (``csv:PATH``,
    ``finrl:PATH``, ...) and a local ``data.store``; URIs (``s3://...``), absolute paths and
    non-file sources (``sample:``, ``yahoo``, ``alpaca``) are kept. Environment variables
    (``$LOBSTER_DIR``) are expanded first; a path naming one that is not set is kept as written,
    so the error that follows names the variable. The saved config of a run
    therefore names absolute paths and reads back from anywhere.
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("data"), Mapping):
        return data
    section = dict(data["data"])
    if "source" in section:
        section["source"] = _resolve_source(section["source"], base)
    if isinstance(section.get("store"), str) and section["store"]:
        section["store"] = _resolve_path(section["store"], base)
    if isinstance(section.get("orderbook"), str) and section["orderbook"]:  # an order-book config's LOBSTER file
        section["orderbook"] = _resolve_path(section["orderbook"], base)
    if isinstance(section.get("index"), Mapping) and "source" in section["index"]:
        section["index"] = {**section["index"], "source": _resolve_source(section["index"]["source"], base)}
    return {**data, "data": section}


def parse_config(data: Mapping[str, Any], source: str = "config") -> AnyConfig:
    """Validate a config mapping with the model of its ``strategy``; :class:`ConfigError` lists each bad field."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping of fields at the top level, got {type(data).__name__}")
    try:
        return _ANY_CONFIG.validate_python(dict(data))
    except ValidationError as exc:
        n = exc.error_count()
        raise ConfigError(f"{source}: {n} invalid field{'s' if n > 1 else ''}:\n{_format_errors(exc)}") from None


class _BadDate(str):
    """An unquoted YAML date that does not exist (``2017-02-30``), kept as text until it is reported."""

    reason: str
    line: int


class _ConfigLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that keeps an impossible date instead of raising a bare ``ValueError``."""


def _construct_timestamp(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    try:
        return loader.construct_yaml_timestamp(node)
    except ValueError as exc:  # the date matches YAML's pattern but does not exist: day 30 of February
        bad = _BadDate(str(node.value))
        bad.reason, bad.line = str(exc), node.start_mark.line + 1
        return bad


_ConfigLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


def _bad_dates(node: Any, where: str = "") -> list[tuple[str, _BadDate]]:
    """The impossible dates in a loaded config, with their dotted field names."""
    if isinstance(node, _BadDate):
        return [(where or "(top level)", node)]
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    found = []
    for key, value in items:
        sub = f"{where}[{key}]" if isinstance(key, int) else (f"{where}.{key}" if where else str(key))
        found += _bad_dates(value, sub)
    return found


def _read_text(path: Path) -> str:
    """The config file as text; :class:`ConfigError` when it cannot be read or is not UTF-8 text."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    if b"\0" in raw:
        raise ConfigError(f"config {path} is not a text file (it holds NUL bytes); a config is YAML text, UTF-8")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"config {path} is not UTF-8 text: byte 0x{raw[exc.start]:02x} on line {line} cannot be decoded; "
            "save the file as UTF-8"
        ) from None


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> AnyConfig:
    """Read and validate a YAML run config.

    Parameters
    ----------
    path:
        The YAML file.
    overrides:
        Dotted keys replacing values of the file, e.g. ``{"agent.timesteps": 2048}``.

    Raises
    ------
    ConfigError
        The file is missing, not UTF-8 text or not YAML (with the line), holds a date that does not
        exist (``2017-02-30``, named with its field), or a field is invalid (named).
    """
    path = Path(path)
    text = _read_text(path)
    try:
        data = yaml.load(text, Loader=_ConfigLoader)  # safe: a SafeLoader with one more date check
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"config {path}{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        raise ConfigError(f"config {path} is empty")
    # the file's paths are relative to its folder; paths given as overrides (--set) to the working directory
    data = resolve_paths(data, path.parent)
    if isinstance(data, dict) and overrides:
        data = copy.deepcopy(data)
        for key, value in overrides.items():
            node = data
            parts = key.split(".")
            for part in parts[:-1]:
                node = node.setdefault(part, {})
                if not isinstance(node, dict):
                    raise ConfigError(f"config {path}: cannot override {key}: {part} is not a mapping")
            node[parts[-1]] = value
    bad = _bad_dates(data)
    if bad:
        raise ConfigError(
            f"config {path}: "
            + "; ".join(f"{field}: {value} is not a date ({value.reason}; line {value.line})" for field, value in bad)
        )
    return parse_config(resolve_paths(data, Path.cwd()), f"config {path}")


def bar_config(config: AnyConfig, source: str = "config") -> RunConfig:
    """``config`` when it is a bar strategy's (:class:`RunConfig`), else a :class:`ConfigError` naming it."""
    if not isinstance(config, RunConfig):
        raise ConfigError(f"{source}: strategy {config.strategy!r} does not trade bars; this needs single or ensemble")
    return config
