"""The package's house: a folder per concept, imports that only point down the layers, no import circle, short modules.

The layers, bottom to top (docs/package.md, "Layout"): ``settings`` and ``runtime``; ``kernels`` (fast paths only);
``optimizer`` (preprocessing, the coordinatewise LSTM, the baselines); ``optimizees`` (the paper's problems and their
data); ``evaluation`` (loops, tuning, comparisons, intervals); ``meta`` (meta-training, checkpoints, shipped
optimizers); ``notebook`` (plots, panels, results, the runner, the site); ``cli``. A module may import from its own
layer and the layers below it, never above; the imports inside functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "l2l_helpers"
LAYERS = ("settings", "runtime", "kernels", "optimizer", "optimizees", "evaluation", "meta", "notebook", "cli")
CONCEPT_FOLDERS = ("kernels", "optimizer", "optimizees", "evaluation", "meta", "notebook")
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(path: Path, name: str) -> set[str]:
    """Every l2l_helpers module ``path`` imports, at module level or inside a function, as absolute names."""
    is_package = path.name == "__init__.py"
    package = name.split(".") if is_package else name.split(".")[:-1]
    found: set[str] = set()
    known = modules()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("l2l_helpers")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("l2l_helpers"):
                continue
            for alias in node.names:  # `from l2l_helpers.meta import config` imports a module
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known else target)
    return found - {name}


def layer(name: str) -> int | None:
    """The layer of a module; None for the package's door (``l2l_helpers``, ``__main__``), which may import all."""
    parts = name.split(".")
    if len(parts) == 1 or parts[1] == "__main__":
        return None
    return LAYERS.index(parts[1])


def graph() -> dict[str, set[str]]:
    return {name: imported(path, name) for name, path in modules().items()}


def test_every_module_is_in_a_layer():
    for name in modules():
        parts = name.split(".")
        assert len(parts) == 1 or parts[1] in (*LAYERS, "__main__"), f"{name} is in no layer of {LAYERS}"


def test_imports_point_down_the_layers():
    upward = []
    for name, targets in graph().items():
        mine = layer(name)
        if mine is None:
            continue
        for target in targets:
            theirs = layer(target)
            if theirs is None or theirs > mine:
                upward.append(f"{name} -> {target}")
    assert not upward, "imports that point up the layers:\n" + "\n".join(sorted(upward))


def test_no_import_circle():
    edges = graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in edges:
                continue
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)


def test_the_layer_test_sees_an_upward_import_and_a_circle(tmp_path, monkeypatch):
    """The checks above can fail: on a made-up package whose optimizer imports the notebook layer and back."""
    fake = tmp_path / "l2l_helpers"
    for folder in ("optimizer", "notebook"):
        (fake / folder).mkdir(parents=True)
        (fake / folder / "__init__.py").write_text("")
    (fake / "__init__.py").write_text("")
    (fake / "optimizer" / "lstm.py").write_text("def f():\n    from l2l_helpers.notebook import plots\n")
    (fake / "notebook" / "plots.py").write_text("from ..optimizer import lstm\n")
    monkeypatch.setitem(globals(), "PACKAGE", fake)
    with pytest.raises(AssertionError, match=r"optimizer\.lstm -> l2l_helpers\.notebook\.plots"):
        test_imports_point_down_the_layers()
    with pytest.raises(pytest.fail.Exception, match="import circle"):
        test_no_import_circle()


def test_concept_folders_and_short_modules():
    for folder in CONCEPT_FOLDERS:
        door = PACKAGE / folder / "__init__.py"
        assert door.exists(), f"l2l_helpers/{folder}/ needs an __init__.py with its interface"
        assert ast.get_docstring(ast.parse(door.read_text())), f"{door} needs a docstring saying what the folder holds"
    assert not (PACKAGE / "studies.py").exists()
    long = {name: n for name, p in modules().items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_every_folder_ships_in_the_wheel():
    """pyproject.toml lists the packages explicitly: a folder missing there would be missing from an install."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    listed = set(tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {module_name(p.parent / "__init__.py") for p in PACKAGE.rglob("__init__.py")}
    assert folders <= listed, f"add to pyproject.toml's packages: {sorted(folders - listed)}"
