"""Bad input through the real command line: one ``error:`` line, exit code 1, no traceback, nothing written.

Every case runs ``python -m rltrade.cli`` in a fresh process in an empty folder, with
``RLTRADE_STORE`` pointing into it, and checks that the folder is byte-for-byte unchanged
afterwards (no store, no run directory).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from tests.conftest import tree_digest
from typer.testing import CliRunner

from rltrade.cli import app
from rltrade.config import ConfigError, parse_config
from rltrade.data.store import BarStore

CSV = (
    "symbol,timestamp,open,high,low,close,volume\nAAA,2020-01-02,10,11,9,10.5,100\nAAA,2020-01-03,10.5,11,10,10.8,120\n"
)
CONFIG = {
    "name": "errors",
    "data": {"source": "sample:sp500", "symbols": ["KO", "PEP"]},
    "train": {"start": "2013-01-01", "end": "2014-12-31"},
    "test": {"start": "2015-01-01", "end": "2015-06-30"},
    "agent": {"timesteps": 64, "n_envs": 1},
}


def _config_text(**replace: str) -> str:
    """CONFIG as YAML with unquoted dates (as people write them), some values replaced verbatim."""
    text = yaml.safe_dump(CONFIG, sort_keys=False).replace("'", "")
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    return text


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    """An empty working folder with the input files of the cases (and no store)."""
    (tmp_path / "x.csv").write_text(CSV)
    (tmp_path / "afile").write_text("not a store\n")
    (tmp_path / "bad_date.yaml").write_text(_config_text(**{"start: 2013-01-01": "start: 2017-02-30"}))
    (tmp_path / "some.bin").write_bytes(bytes(range(256)) * 8)
    (tmp_path / "latin1.yaml").write_bytes("name: café\n".encode("latin-1"))
    return tmp_path


def rltrade(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "RLTRADE_STORE": str(cwd / "store"), "COLUMNS": "100", **env}
    environ.pop("RAY_ADDRESS", None)
    return subprocess.run(
        [sys.executable, "-m", "rltrade.cli", *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=120
    )


def assert_clean_failure(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output and "terminate called" not in output, output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    assert result.stdout == "", output
    for text in expected:
        assert text in errors[0], output


CASES = {
    "unparseable --start": (
        ["data", "ingest", "sample:stocks", "--start", "yesterday"],
        ["--start 'yesterday' is not a date", "YYYY-MM-DD"],
    ),
    "unparseable --end": (
        ["data", "ingest", "sample:stocks", "--end", "yesterday"],
        ["--end 'yesterday' is not a date"],
    ),
    "--start that does not exist": (
        ["data", "ingest", "sample:stocks", "--start", "2017-02-30"],
        ["--start '2017-02-30' is not a date (day is out of range for month)"],
    ),
    "--start after --end": (
        ["data", "ingest", "sample:stocks", "--start", "2010-01-01", "--end", "2009-01-01"],
        ["--start 2010-01-01 is after --end 2009-01-01"],
    ),
    "unknown time zone": (["data", "ingest", "csv:x.csv", "--tz", "Mars/Base"], ["--tz 'Mars/Base'", "time zone"]),
    "ingest into a file": (["data", "ingest", "csv:x.csv", "--store", "afile"], ["store afile is a file"]),
    "ingest under a file": (["data", "ingest", "csv:x.csv", "--store", "afile/bars"], ["lies under the file"]),
    "show a file": (["data", "show", "--store", "afile"], ["store afile is a file"]),
    "ingest unknown protocol": (
        ["data", "ingest", "csv:x.csv", "--store", "s4://bucket/x"],
        ["store s4://bucket/x", "unknown protocol 's4://'"],
    ),
    "show unknown protocol": (["data", "show", "--store", "s4://bucket/x"], ["unknown protocol 's4://'"]),
    "show unknown freq": (["data", "show", "--freq", "5m"], ["unknown frequency '5m'", "1d, 1h, 1min"]),
    "config with a date that does not exist": (
        ["run", "bad_date.yaml"],
        ["bad_date.yaml", "train.start", "2017-02-30 is not a date", "day is out of range for month"],
    ),
    "binary config": (["run", "some.bin"], ["some.bin is not a text file"]),
    "non-UTF-8 config": (["run", "latin1.yaml"], ["latin1.yaml is not UTF-8 text", "byte 0xe9 on line 1"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_refused_with_one_error_line_and_nothing_written(folder: Path, case: str) -> None:
    args, expected = CASES[case]
    before = tree_digest(folder)
    assert_clean_failure(rltrade(folder, *args), *expected)
    assert tree_digest(folder) == before
    assert not (folder / "store").exists() and not (folder / "runs").exists()


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "CUDA:1"])
def test_cuda_without_a_gpu_is_refused_at_config_validation(
    folder: Path, device: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    (folder / "cuda.yaml").write_text(_config_text(**{"n_envs: 1": f"n_envs: 1\n  device: {device}"}))
    before = tree_digest(folder)
    monkeypatch.chdir(folder)
    monkeypatch.setenv("RLTRADE_STORE", str(folder / "store"))
    result = CliRunner().invoke(app, ["run", "cuda.yaml"])  # in-process: torch is imported once
    assert result.exit_code == 1
    assert result.output.startswith("error: config cuda.yaml: 1 invalid field:")
    assert f"agent.device: {device.lower()!r} needs a CUDA GPU" in result.output  # normalised by the config
    assert "torch.cuda.is_available() is False on this machine" in result.output
    assert tree_digest(folder) == before


@pytest.mark.parametrize(("device", "kept"), [("cpu", "cpu"), ("auto", "auto"), ("CPU", "cpu"), (" Auto ", "auto")])
def test_devices_accepted(device: str, kept: str) -> None:
    config = parse_config({**CONFIG, "agent": {**CONFIG["agent"], "device": device}})  # type: ignore[dict-item]
    assert config.agent.device == kept


@pytest.mark.parametrize("device", ["gpu", "tpu", "cuda0", "cuda:x", "mps", ""])
def test_unknown_devices_refused(device: str) -> None:
    with pytest.raises(ConfigError, match=r"agent\.device: unknown device"):
        parse_config({**CONFIG, "agent": {**CONFIG["agent"], "device": device}})  # type: ignore[dict-item]


def test_auto_resolves_to_a_device_torch_has() -> None:
    import torch

    from rltrade.agents.factory import resolve_device

    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == "cpu"


# ------------------------------------------------------------------ exit 134 after a refused ingest
@pytest.fixture()
def conflicting(folder: Path) -> Path:
    """The folder with a store holding sample:stocks and a CSV restating one AAPL close differently."""
    seeded = rltrade(folder, "data", "ingest", "sample:stocks")
    assert seeded.returncode == 0, seeded.stderr
    stored = pq.read_table(folder / "store" / "freq=1d" / "symbol=AAPL" / "bars.parquet").to_pandas().iloc[[10]]
    stored = stored.assign(close=stored["close"] * 1.01, timestamp=stored["timestamp"].dt.strftime("%Y-%m-%d"))
    stored.to_csv(folder / "conflict.csv", index=False)
    return folder


def test_conflicting_bars_are_refused_and_the_store_is_unchanged(conflicting: Path) -> None:
    before = tree_digest(conflicting)
    result = rltrade(conflicting, "data", "ingest", "csv:conflict.csv")
    assert_clean_failure(result, "conflict.csv: AAPL (1d): 1 rows restate stored bars with a different 'close'")
    assert tree_digest(conflicting) == before


def test_arrow_never_reads_the_store_through_a_python_file(conflicting: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cause of the exit-134 abort: an Arrow pool thread released a Python-backed reader during shutdown."""
    seen: list[object] = []
    read_table, read_schema = pq.read_table, pq.read_schema

    def checked(real, python_file_ok: bool):  # type: ignore[no-untyped-def]
        def wrapper(source, *args, **kwargs):  # type: ignore[no-untyped-def]
            seen.append(source)
            native = isinstance(source, str | pa.NativeFile)
            # read_schema decodes on the calling thread: a Python file is fine there, for other filesystems
            assert native or (python_file_ok and "memory" in type(source).__module__), type(source)
            return real(source, *args, **kwargs)

        return wrapper

    monkeypatch.setattr(pq, "read_table", checked(read_table, python_file_ok=False))
    monkeypatch.setattr(pq, "read_schema", checked(read_schema, python_file_ok=True))
    from rltrade.data.sources import fetch

    batches = fetch(f"csv:{conflicting / 'x.csv'}")
    for root in (conflicting / "store", "memory://cli-errors-store"):
        store = BarStore(root)
        for _ in range(2):  # new, then unchanged (the second reads the stored partition back)
            store.ingest(batches, source="csv:x.csv")
        assert [info.symbol for info in store.info() if info.symbol == "AAA"] == ["AAA"]
        assert len(store.load(["AAA"])) == 2
    assert len(seen) >= 4


@pytest.mark.slow
def test_refused_ingest_never_aborts_at_exit_under_load(conflicting: Path) -> None:
    """60 refused ingests, three at a time, with both cores kept busy: every one exits 1 cleanly.

    Before the store stopped handing Arrow Python file objects, about 1 run in 40 ended with
    "terminate called without an active exception" (SIGABRT, exit 134) under this load.
    """
    loads = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    environ = {**os.environ, "RLTRADE_STORE": str(conflicting / "store")}
    command = [sys.executable, "-m", "rltrade.cli", "data", "ingest", "csv:conflict.csv"]
    outcomes = []
    try:
        for _ in range(20):
            batch = [
                subprocess.Popen(
                    command, cwd=conflicting, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
                )
                for _ in range(3)
            ]
            for proc in batch:
                _, err = proc.communicate(timeout=120)
                outcomes.append((proc.returncode, err.decode(errors="replace")[-200:]))
    finally:
        for load in loads:
            load.kill()
            load.wait()
    assert all(code == 1 and "terminate called" not in err for code, err in outcomes), outcomes
