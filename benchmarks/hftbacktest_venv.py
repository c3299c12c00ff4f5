"""The private virtualenv hftbacktest runs in, and the call of ``orderbook_hftbacktest.py`` inside it.

hftbacktest 2.4.4 pins numpy < 2.3, so it never enters rltrade's install: it lives in
``benchmarks/.venv-hftbacktest`` (created on first use with ``python -m venv`` and ``pip install
hftbacktest==2.4.4``, reused afterwards). Standard library only, so any Python >= 3.11 can run it.

    python benchmarks/hftbacktest_venv.py [--venv DIR] MESSAGE.csv.gz ORDERBOOK.csv.gz [script options]
    python benchmarks/hftbacktest_venv.py SESSION.npz --repeats 5

prints the script's JSON on stdout. From Python (e.g. ``bench_orderbook.py`` in this folder)::

    from hftbacktest_venv import run_hftbacktest_benchmark
    report = run_hftbacktest_benchmark([message_csv, orderbook_csv, "--repeats", "3"])
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VENV_DIR = HERE / ".venv-hftbacktest"
SCRIPT = HERE / "orderbook_hftbacktest.py"
HFTBACKTEST_VERSION = "2.4.4"


def venv_python(venv_dir: Path = VENV_DIR) -> Path:
    """The interpreter of the virtualenv at ``venv_dir`` (which may not exist yet)."""
    if os.name == "nt":
        return venv_dir / "Scripts" / "python.exe"
    return venv_dir / "bin" / "python"


def _has_hftbacktest(python: Path) -> bool:
    """Whether ``python`` imports hftbacktest at :data:`HFTBACKTEST_VERSION`."""
    if not python.exists():
        return False
    check = f"import hftbacktest, sys; sys.exit(hftbacktest.__version__ != {HFTBACKTEST_VERSION!r})"
    return subprocess.run([str(python), "-c", check], capture_output=True).returncode == 0


def ensure_venv(venv_dir: Path = VENV_DIR, base_python: str = sys.executable) -> Path:
    """The interpreter of a virtualenv at ``venv_dir`` holding hftbacktest, created when it has none.

    An existing venv with the right hftbacktest is used as it is (nothing is downloaded); a missing
    one is created from ``base_python``, and a half-built one (an install that failed) is completed.
    pip's output goes to stderr so that a caller's stdout stays the benchmark's JSON.
    """
    python = venv_python(venv_dir)
    if _has_hftbacktest(python):
        return python
    if not python.exists():
        print(f"creating {venv_dir} for hftbacktest {HFTBACKTEST_VERSION}", file=sys.stderr)
        subprocess.run([base_python, "-m", "venv", str(venv_dir)], check=True, stdout=sys.stderr)
    install = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*install, f"hftbacktest=={HFTBACKTEST_VERSION}"], check=True, stdout=sys.stderr)
    if not _has_hftbacktest(python):
        raise RuntimeError(f"hftbacktest {HFTBACKTEST_VERSION} still not importable in {venv_dir}")
    return python


def run_hftbacktest_benchmark(args: Sequence[str | os.PathLike[str]], venv_dir: Path = VENV_DIR) -> dict[str, Any]:
    """Run ``orderbook_hftbacktest.py ARGS`` in the hftbacktest venv (made if needed) and return its JSON."""
    python = ensure_venv(venv_dir)
    done = subprocess.run([str(python), str(SCRIPT), *map(str, args)], check=True, stdout=subprocess.PIPE, text=True)
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    venv_dir = VENV_DIR
    if args[:1] == ["--venv"]:
        venv_dir, args = Path(args[1]), args[2:]
    python = ensure_venv(venv_dir)
    sys.exit(subprocess.run([str(python), str(SCRIPT), *args]).returncode)


if __name__ == "__main__":
    main()
