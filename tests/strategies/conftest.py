"""Fixtures of the strategy tests: one small ensemble run per session (tests/strategies/ensemble_runs.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.strategies.ensemble_runs import ensemble_run


@pytest.fixture(scope="session")
def sequential_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two-quarter ensemble run, trained once for test_ensemble.py and test_ensemble_signals.py (read only)."""
    return ensemble_run(tmp_path_factory)
