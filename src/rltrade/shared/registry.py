"""Registries of named parts (env types, agent kinds, strategies): names mapped to ``module:Name`` targets.

A target is imported only when its name is looked up, so a registry costs nothing to import and
a part's heavy dependencies load only when a config asks for it.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from rltrade.errors import RLTradeError


def load_target(target: str) -> Any:
    """The object ``module:Name`` names (``rltrade.envs.portfolio:PortfolioEnv``)."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def lookup(registry: Mapping[str, str], name: str, field: str, what: str, error: type[RLTradeError]) -> Any:
    """An instance of the class registered as ``name``; ``error`` naming ``field`` and the choices otherwise."""
    if name not in registry:
        raise error(f"{field}: unknown {what} {name!r}; choose one of {', '.join(registry)}")
    return load_target(registry[name])()
