"""Starting and joining Ray, for every part of rltrade that runs tasks on it (the ensemble today, Tune later).

``pip install 'rltrade[ray]'`` brings Ray; without it :func:`ray_available` is False and callers
run their work in this process (the ensemble says so).
"""

from __future__ import annotations

import logging

from rltrade._optional import available, require

#: The logger of Ray's "Token authentication is enabled for this Ray cluster..." banner.
_TOKEN_BANNER = "ray._private.authentication.authentication_token_setup"


def ray_available() -> bool:
    """Whether Ray can be imported (the ``ray`` extra is installed)."""
    return available("ray")


def start_ray(address: str | None = None) -> bool:
    """Join the Ray at ``address`` (or ``$RAY_ADDRESS``), or start a local one; True when this call started it.

    A Ray already initialised in this process is used as it is. A new local Ray keeps its token
    authentication but not its banner on stderr (setting ``RAY_AUTH_MODE`` instead would be too
    late once ``ray`` is imported: this process would not send the token). No dashboard, and no
    worker output copied to this process's terminal.
    """
    ray = require("ray", "ray", "running on Ray")
    if ray.is_initialized():
        return False
    banner = logging.getLogger(_TOKEN_BANNER)
    level = banner.level
    banner.setLevel(logging.ERROR)
    try:
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.ERROR,
            configure_logging=False,
        )
    finally:
        banner.setLevel(level)
    return True


def stop_ray(started: bool) -> None:
    """Shut Ray down if :func:`start_ray` started it (a Ray the caller started is left running)."""
    if started:
        import ray

        ray.shutdown()
