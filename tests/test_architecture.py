"""Layers import downwards only (docs/architecture.md): read every import of src/rltrade and check its direction.

errors → config → data, features → envs → agents → backtest → runs → report → strategies →
workflow → cli. An import inside a function counts the same as one at the top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "rltrade"
RANK = {
    "errors": 0,
    "_optional": 0,
    "shared": 0,
    "config": 1,
    "data": 2,
    "features": 2,
    "db": 2,
    "envs": 3,
    "agents": 4,
    "backtest": 5,
    "brokers": 5,
    "runs": 6,
    "signals": 8,
    "report": 7,
    "strategies": 8,
    "live": 8,
    "workflow": 9,
    "cli": 10,
}
# Helpers for tests and benchmarks may use anything; nothing in src may import them but tests.
OUTSIDE = {"testing"}
# Upward imports not yet removed, each with the change that removes it. The list only shrinks.
KNOWN: set[tuple[str, str]] = set()


def _imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "rltrade":
            out.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "rltrade"]
    return out


def _layer(path: Path) -> str:
    return path.relative_to(SRC).parts[0].removesuffix(".py")


def test_every_module_has_a_layer() -> None:
    layers = {_layer(p) for p in SRC.rglob("*.py")} - {"__init__"}
    assert layers <= set(RANK) | OUTSIDE, f"give these a floor in RANK and docs/architecture.md: {layers - set(RANK)}"


def test_layers_import_downwards_only() -> None:
    upward, seen = [], set()
    for path in sorted(SRC.rglob("*.py")):
        layer = _layer(path)
        if layer not in RANK:
            continue
        for line, module in _imports(path):
            parts = module.split(".")
            target = parts[1] if len(parts) > 1 else "__init__"
            if target in OUTSIDE:
                upward.append(f"{path.relative_to(SRC)}:{line} imports {module}, a helper for tests only")
            elif target in RANK and RANK[target] > RANK[layer]:
                seen.add((layer, target))
                if (layer, target) not in KNOWN:
                    upward.append(
                        f"{path.relative_to(SRC)}:{line} ({layer}) imports {module} ({target}), a layer above"
                    )
    assert not upward, "\n".join(upward)
    assert seen == KNOWN, f"remove the fixed pairs from KNOWN: {sorted(KNOWN - seen)}"


def test_the_check_catches_an_upward_import(tmp_path: Path) -> None:
    """The reader finds imports inside functions too (so the test above can fail)."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from rltrade.cli import app\n    import rltrade.workflow\n", encoding="utf-8")
    assert [m for _, m in _imports(module)] == ["rltrade.cli", "rltrade.workflow"]
