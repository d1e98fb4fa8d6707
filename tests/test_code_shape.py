"""The code's shape as the brief and issue 14 set it: short functions, a small Extractor module,
and an inference package that never imports the training one."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "model").glob("*.py")) + sorted((ROOT / "training").glob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_function_is_longer_than_80_lines(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    long = [(node.name, node.end_lineno - node.lineno + 1) for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 80]
    assert not long, f"{path.name}: functions over 80 lines (split them): {long}"


def test_extractor_module_stays_under_250_lines():
    assert len((ROOT / "model" / "extractor.py").read_text(encoding="utf-8").splitlines()) < 250


@pytest.mark.parametrize("path", sorted((ROOT / "model").glob("*.py")), ids=lambda p: p.name)
def test_model_never_imports_training(path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            names = [("." * node.level) + (node.module or "")]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        assert not any(n.startswith(("marsad.training", "..training", "training")) for n in names), f"{path.name} imports {names}"
