"""Retry with backoff and one clear error when offline: for every network client of rltrade.

Used by the network data sources (``yahoo``, ``alpaca``) and, later, the brokers.

The client libraries raise many kinds of exceptions (``requests``/``urllib3`` for alpaca-py,
``curl_cffi`` for yfinance). :func:`classify_failure` sorts them into three kinds:

* ``"unreachable"``: DNS resolution failed, the connection was refused, no route to the host.
  Retrying does not help, so :func:`retry_call` raises
  :class:`~rltrade.errors.NetworkUnavailableError` at once (an offline machine fails in well
  under a second instead of hanging in backoff).
* ``"transient"``: timeouts, connection resets, HTTP 429 and 5xx. Retried with exponential
  backoff; when the attempts run out a :class:`~rltrade.errors.SourceError` is raised.
* ``"other"``: everything else (bad symbol, bad keys, bugs) is re-raised unchanged for the
  caller to translate.
"""

from __future__ import annotations

import errno
import logging
import re
import socket
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal, TypeVar

from rltrade.errors import NetworkUnavailableError, SourceError

log = logging.getLogger(__name__)

T = TypeVar("T")
Failure = Literal["unreachable", "transient", "other"]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a network call is retried.

    Parameters
    ----------
    attempts:
        Total number of tries (1 = no retry).
    base_delay:
        Seconds to wait before the second try; doubled before each further try.
    max_delay:
        Upper bound of one wait, in seconds.
    """

    attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 4.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {self.attempts}")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("delays must be >= 0")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based)."""
        return float(min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


DEFAULT_RETRY = RetryPolicy()

# Substrings of the messages that libcurl, urllib3 and the C library give for "cannot get there".
_UNREACHABLE_MARKERS: tuple[str, ...] = (
    "name or service not known",
    "temporary failure in name resolution",
    "nodename nor servname",
    "could not resolve host",
    "could not resolve proxy",
    "failed to resolve",
    "getaddrinfo failed",
    "no address associated with hostname",
    "connection refused",
    "couldn't connect to server",
    "could not connect to server",
    "failed to establish a new connection",
    "network is unreachable",
    "no route to host",
)
_UNREACHABLE_ERRNOS = {
    errno.ECONNREFUSED,
    errno.ENETUNREACH,
    errno.EHOSTUNREACH,
    errno.ENETDOWN,
    errno.EHOSTDOWN,
}
_UNREACHABLE_TYPES = {"NameResolutionError", "DNSError"}

_SEE_DOCS = re.compile(r"\s*See https?://\S+ first for more details\.?")

_TRANSIENT_TYPES = {
    "Timeout",
    "ConnectTimeout",
    "ReadTimeout",
    "TimeoutError",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "ChunkedEncodingError",
    "RemoteDisconnected",
    "ProtocolError",
    "IncompleteRead",
}
_TRANSIENT_MARKERS: tuple[str, ...] = (
    "timed out",
    "connection reset",
    "connection aborted",
    "remote end closed connection",
    "empty reply from server",
    "recv failure",
    "send failure",
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps (``__cause__``, ``__context__``, urllib3's ``reason``)."""
    seen: set[int] = set()
    queue = deque([exc])
    while queue:
        current = queue.popleft()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        linked += [a for a in current.args if isinstance(a, BaseException)]
        queue.extend(e for e in linked if isinstance(e, BaseException))


def http_status(exc: BaseException) -> int | None:
    """The HTTP status code an exception carries (``status_code`` or ``response.status_code``)."""
    for candidate in (exc, getattr(exc, "response", None)):
        if candidate is None:
            continue
        try:
            status = getattr(candidate, "status_code", None)
        except Exception:  # a property that fails to parse the body must not hide the real error
            status = None
        if isinstance(status, int) and 100 <= status <= 599:  # curl_cffi reports 0 when there was no answer
            return status
    return None


def classify_failure(exc: BaseException) -> Failure:
    """Sort a client-library exception into ``unreachable``, ``transient`` or ``other``.

    Parameters
    ----------
    exc:
        The exception raised by the network call.
    """
    return _classify(exc)[0]


def _classify(exc: BaseException) -> tuple[Failure, BaseException]:
    """The kind of failure and the wrapped exception that explains it best."""
    chain = list(_chain(exc))
    for e in chain:  # an HTTP status means the server was reached: its code decides
        status = http_status(e)
        if status is not None:
            return ("transient" if status == 429 or status >= 500 else "other"), e
    unreachable = [e for e in chain if _is_unreachable(e)]
    if unreachable:
        # urllib3's NameResolutionError/NewConnectionError name the host; a bare gaierror does not.
        named = [e for e in unreachable if type(e).__name__ in _UNREACHABLE_TYPES | {"NewConnectionError"}]
        return "unreachable", (named or [exc])[0]
    for e in chain:
        if isinstance(e, TimeoutError | ConnectionResetError | ConnectionAbortedError | BrokenPipeError):
            return "transient", e
        if type(e).__name__ in _TRANSIENT_TYPES:
            return "transient", e
        if any(marker in str(e).lower() for marker in _TRANSIENT_MARKERS):
            return "transient", e
    return "other", exc


def _is_unreachable(e: BaseException) -> bool:
    if isinstance(e, socket.gaierror | ConnectionRefusedError) or type(e).__name__ in _UNREACHABLE_TYPES:
        return True
    if isinstance(e, OSError) and e.errno in _UNREACHABLE_ERRNOS:
        return True
    message = str(e).lower()
    return any(marker in message for marker in _UNREACHABLE_MARKERS)


def retry_call(
    fn: Callable[[], T],
    *,
    what: str,
    host: str,
    policy: RetryPolicy = DEFAULT_RETRY,
    is_transient: Callable[[BaseException], bool] | None = None,
    on_retry: Callable[[int, BaseException], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fn`` and return its result, retrying transient failures with exponential backoff.

    Parameters
    ----------
    fn:
        The network call, without arguments.
    what:
        Short description for messages, e.g. ``"yahoo, SPY 1d bars"``.
    host:
        The host being contacted, named in the "unreachable" message.
    policy:
        Number of attempts and backoff delays.
    is_transient:
        Extra, library-specific test for retryable errors (e.g. yfinance's rate-limit error);
        consulted after the generic classification found nothing.
    on_retry:
        Called with (failed attempt number, error) before waiting, e.g. to drop a response cache.
    sleep:
        Waiting function (tests may pass a no-op).

    Raises
    ------
    NetworkUnavailableError
        The host cannot be reached (DNS failure, refused connection, no route): raised at once.
    SourceError
        Transient failures persisted through every attempt.
    """
    for attempt in range(1, policy.attempts + 1):
        try:
            return fn()
        except Exception as exc:
            kind, culprit = _classify(exc)
            if kind == "other" and is_transient is not None and is_transient(exc):
                kind = "transient"
            if kind == "unreachable":
                raise NetworkUnavailableError(
                    f"cannot reach {host} ({what}): the network is unreachable ({_describe(culprit)}); "
                    "check your connection or use a file/sample source"
                ) from exc
            if kind == "other":
                raise
            if attempt == policy.attempts:
                tries = f"{policy.attempts} attempts"
                raise SourceError(
                    f"{what}: {host} kept failing after {tries} ({_describe(exc)}); try again later"
                ) from exc
            wait = policy.delay(attempt)
            log.warning(
                "%s: attempt %d/%d failed (%s); retrying in %.2fs",
                what,
                attempt,
                policy.attempts,
                _describe(exc),
                wait,
            )
            if on_retry is not None:
                on_retry(attempt, exc)
            sleep(wait)
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


def _describe(exc: BaseException) -> str:
    """``Type: message`` on one line, without libcurl's "See https://... for more details"."""
    text = _SEE_DOCS.sub("", " ".join(str(exc).split())).strip()
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
