"""Typed errors. Each message says what is wrong, where, and (when possible) what to do."""

from __future__ import annotations


class RLTradeError(Exception):
    """Base class of every error rltrade raises on purpose."""


class DataValidationError(RLTradeError, ValueError):
    """Input bars are malformed: the message names the file, symbol and row/timestamp."""


class UnknownSymbolError(RLTradeError, KeyError):
    """A requested symbol is not provided by a source or not present in the store."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class SourceError(RLTradeError):
    """A source specification or a source itself cannot be used."""


class NetworkUnavailableError(SourceError):
    """A network source could not be reached (offline, DNS failure, refused connection)."""


class StoreError(RLTradeError):
    """The bar store cannot be read or written."""
