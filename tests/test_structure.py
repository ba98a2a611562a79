"""The code's shape (issue 22): imports between the project's modules point one way, and
functions stay short enough to read."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("kerasaudio", "tuning")
MAX_FUNCTION_LINES = 60


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict:
    return {_module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}


def _imported(node, module: str, is_package: bool, known: set) -> set:
    """The project modules an import statement names (a `from package import module` names
    the module; a `from module import name` names the module)."""
    if isinstance(node, ast.Import):
        return {a.name for a in node.names if a.name in known}
    base = node.module or ""
    if node.level:
        anchor = module.split(".") if is_package else module.split(".")[:-1]
        anchor = anchor[:len(anchor) - (node.level - 1)]
        base = ".".join(anchor + ([base] if base else []))
    names = {f"{base}.{a.name}" for a in node.names}
    return {n for n in names if n in known} or ({base} & known)


def import_graph() -> dict:
    """module -> the project modules it imports anywhere in its file, in functions too."""
    sources = _sources()
    known = set(sources)
    graph = {}
    for module, path in sources.items():
        tree = ast.parse(path.read_text())
        edges = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges |= _imported(node, module, path.name == "__init__.py", known)
        graph[module] = edges - {module}
    return graph


def _cycle(graph: dict) -> list | None:
    """One import cycle of `graph` (as a list of modules), or None."""
    state = {}

    def visit(module, trail):
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                return trail[trail.index(target):] + [target]
            if target not in state:
                found = visit(target, trail + [target])
                if found:
                    return found
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state:
            found = visit(module, [module])
            if found:
                return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_graph_sees_imports_inside_functions():
    graph = import_graph()
    # evaluate_run imports inference inside the function.
    assert "kerasaudio.inference" in graph["kerasaudio.evaluate"]
    assert "kerasaudio.train" in graph["tuning.search"]


def test_no_import_cycle_among_the_project_modules():
    """Counting imports made inside functions, which would otherwise hide a cycle."""
    assert _cycle(import_graph()) is None


# The layers README's "How it works" draws, top to bottom (kerasaudio. left out; a name
# stands for its subpackage's modules too). A module imports its own layer or lower ones.
LAYERS = (
    ("tuning",),
    ("crossval", "compare"),
    ("train",),
    ("evaluate", "predict", "crosseval", "export", "datainfo"),
    ("inference", "transfer"),
    ("pipeline", "settings", "resume", "distribute"),
    ("datasets", "features", "augment", "models", "runs", "audio", "cache"),
    ("config", "errors", "userfiles", "plots", "processes", "progress", "quiet", "monitor",
     "interrupts", "kerasaudio"),
)


def _layer(module: str) -> int:
    short = module.removeprefix("kerasaudio.")
    for depth, names in enumerate(LAYERS):
        if any(short == n or short.startswith(n + ".") for n in names):
            return depth
    raise AssertionError(f"{module} is in no layer of LAYERS")


def test_imports_point_down_the_layers():
    graph = import_graph()
    upward = [f"{m} -> {t}" for m, targets in graph.items() for t in targets
              if _layer(t) < _layer(m)]
    assert not upward


def test_the_library_never_imports_the_tuning_package_or_the_cli():
    graph = import_graph()
    upward = {(m, t) for m, targets in graph.items() if m.startswith("kerasaudio")
              for t in targets if t.startswith("tuning")}
    assert not upward
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
            assert "cli" not in names, path


@pytest.mark.parametrize("package", PACKAGES)
def test_no_function_is_longer_than_sixty_lines(package):
    long = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines})")
    assert not long
