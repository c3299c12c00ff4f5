"""The README's Python blocks run as written (in a scratch folder with the repository's configs)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)


def test_the_readme_has_a_five_line_quickstart() -> None:
    first = [line for line in BLOCKS[0].splitlines() if line.strip()]
    assert len(first) <= 5 and first[0] == "import rltrade as rt"


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index: int, tmp_path: Path) -> None:
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    env = {**os.environ, "RLTRADE_STORE": str(tmp_path / "store"), "COLUMNS": "120"}
    if "load_bars" in BLOCKS[index]:  # the store holds what the block says was ingested
        ingest = [sys.executable, "-m", "rltrade.cli", "data", "ingest", "sample:sp500"]
        subprocess.run(ingest, cwd=tmp_path, env=env, check=True, capture_output=True)
    done = subprocess.run(
        [sys.executable, "-c", BLOCKS[index]], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
