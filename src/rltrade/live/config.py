"""The live loop's config: which trained run to trade, on which account, within which limits.

A live config is small and separate from the run config: the run directory already holds what
was trained (its config, models, cost model and fill timing); the live config says where that
run's decisions go. ``configs/live_paper.yaml`` is the example; ``docs/live.md`` the guide.

Paths in the file (``run``, ``runs_dir``, ``store``) are relative to the file's folder, as in a
run config. ``run`` names a run directory, or a run config (``quickstart.yaml``): then the newest
finished run of that config's ``name`` in ``runs_dir`` is traded.

No secret goes in this file: broker keys come from the environment only (``ALPACA_API_KEY``,
``ALPACA_SECRET_KEY``; the database URL from ``RLTRADE_DB``). A field that looks like one
(``api_key``, ``secret``, ``password``, ``token``) is refused with a message saying so.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator

from rltrade.config.base import ConfigError, _format_errors, _Model
from rltrade.config.loading import _read_text, _resolve_path

#: Field names a config must not hold: secrets come from the environment.
SECRET_WORDS: tuple[str, ...] = ("key", "secret", "password", "passwd", "token")
BROKER_NAMES: tuple[str, ...] = ("paper", "alpaca", "ib")


class LimitsConfig(_Model):
    """Checks every order passes before it is sent; an order that fails one is refused and journalled."""

    max_position_weight: float = Field(
        0.5,
        gt=0,
        description="Largest |position value| / capital an order may leave a symbol at (at the close of T).",
    )
    max_order_notional: float | None = Field(
        None, gt=0, description="Largest |shares × close| of one order, in the account's currency; None: no limit."
    )


class PaperConfig(_Model):
    """The embedded paper broker (:class:`rltrade.brokers.paper.PaperBroker`)."""

    initial_cash: float | None = Field(
        None, gt=0, description="Cash of a new account; default the run's env.initial_value."
    )


class AlpacaConfig(_Model):
    """Alpaca (alpaca-py); the keys come from ALPACA_API_KEY / ALPACA_SECRET_KEY."""

    paper: bool = Field(True, description="Trade the paper account (False: the live one, real money).")
    url: str | None = Field(None, description="Base URL instead of Alpaca's (a proxy, or a local stand-in).")
    timeout: float = Field(30.0, gt=0, description="Seconds to wait for one HTTP answer.")
    retry_wait: float | None = Field(None, ge=0, description="Seconds alpaca-py waits before retrying a 429/504.")
    retry_attempts: int | None = Field(None, ge=0, description="Retries alpaca-py makes after a 429/504.")


class IBConfig(_Model):
    """Interactive Brokers (ib_async) through TWS / IB Gateway; the login lives in the gateway."""

    host: str = "127.0.0.1"
    port: int = Field(
        4002, ge=1, le=65535, description="IB Gateway paper 4002 (live 4001); TWS paper 7497 (live 7496)."
    )
    client_id: int = Field(
        17, ge=0, description="The API client id; only the client id that placed an order can cancel it."
    )
    account: str | None = Field(None, description="The account code (DU... for paper); default the gateway's first.")
    timeout: float = Field(10.0, gt=0)


class LiveConfig(_Model):
    """A live config (see the module docstring and docs/live.md)."""

    run: str | None = Field(
        None, description="Run directory, or a run config whose newest run in runs_dir is traded (--run overrides)."
    )
    runs_dir: str = Field("runs", description="Where the runs of a run config are looked for.")
    store: str | None = Field(None, description="Bar store; default the run config's data.store.")
    account: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="Account name in the journal (and the paper account); default the run id.",
    )
    capital: float | None = Field(
        None, gt=0, description="Money the run trades (a sleeve of the account); default the account's equity."
    )
    fractional: bool = Field(
        False, description="Fractional shares (paper, Alpaca); False rounds toward zero to whole shares."
    )
    min_order_notional: float = Field(1.0, ge=0, description="Orders worth less at the close of T are not sent.")
    time_in_force: Literal["day", "opg", "cls"] = "day"
    update_data: bool = Field(False, description="Ingest the run's new bars before each session.")
    calendar: str | None = Field(
        "XNYS", description="Exchange calendar of the sessions; None: the days the store has bars."
    )
    timezone: str = Field("America/New_York", description="The exchange's time zone (for today's session).")
    close_time: dt.time = Field(dt.time(16, 0), description="The session's close, in timezone.")
    data_delay_minutes: int = Field(30, ge=0, description="Minutes after the close before today's bar is expected.")
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    paper: PaperConfig = Field(default_factory=PaperConfig)
    alpaca: AlpacaConfig = Field(default_factory=AlpacaConfig)
    ib: IBConfig = Field(default_factory=IBConfig)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone; use an IANA name such as America/New_York") from None
        return value

    def broker_settings(self, name: str) -> dict[str, Any]:
        """The keyword arguments of broker ``name``'s section (no secret: they are read from the environment)."""
        if name == "alpaca":
            a = self.alpaca
            return {
                "paper": a.paper,
                "url_override": a.url,
                "timeout": a.timeout,
                "retry_wait": a.retry_wait,
                "retry_attempts": a.retry_attempts,
            }
        if name == "ib":
            return self.ib.model_dump()
        return {}


def _secret_fields(node: Any, where: str = "") -> list[str]:
    """Dotted names of the fields of ``node`` that look like secrets."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            name = f"{where}.{key}" if where else str(key)
            if any(word in str(key).lower() for word in SECRET_WORDS):
                found.append(name)
            found += _secret_fields(value, name)
    return found


def parse_live_config(data: Any, source: str = "live config") -> LiveConfig:
    """Validate a mapping as a :class:`LiveConfig`; :class:`ConfigError` naming each bad field."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of fields at the top level, got {type(data).__name__}")
    secrets = _secret_fields(data)
    if secrets:
        raise ConfigError(
            f"{source}: {', '.join(secrets)}: secrets are read from the environment only, never from a file "
            "(ALPACA_API_KEY, ALPACA_SECRET_KEY, RLTRADE_DB); remove the field"
        )
    try:
        return LiveConfig.model_validate(data)
    except ValidationError as exc:
        n = exc.error_count()
        raise ConfigError(f"{source}: {n} invalid field{'s' if n > 1 else ''}:\n{_format_errors(exc)}") from None


def load_live_config(path: str | Path, overrides: dict[str, Any] | None = None) -> LiveConfig:
    """Read a live config YAML; its paths are resolved against its folder, ``overrides``' against the cwd."""
    path = Path(path)
    text = _read_text(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"live config {path}{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        data = {}
    if isinstance(data, dict):
        for field in ("run", "runs_dir", "store"):
            if isinstance(data.get(field), str):
                data[field] = _resolve_path(data[field], path.parent)
        for key, value in (overrides or {}).items():
            data[key] = _resolve_path(value, Path.cwd()) if key in ("run", "runs_dir", "store") and value else value
    return parse_live_config(data, f"live config {path}")
