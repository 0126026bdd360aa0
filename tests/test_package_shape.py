"""The package's shape, read from its source: a top level one can name in a breath, imports that run one
way (no circle), and an engine whose functions each fit on a screen."""

import ast
from pathlib import Path

import minimrcnn

PACKAGE = Path(minimrcnn.__file__).parent
MAX_TOP_LEVEL_MODULES = 13
MAX_ENGINE_FUNCTION_LINES = 80


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The package modules a file imports, anywhere in it (a lazy import inside a function counts too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        found |= {n for n in names if n in modules}
    return found


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(files)
    graph = {}
    for name, path in files.items():
        # importing a.b.c runs a/__init__ and a/b/__init__ first: edges too, except to the packages the
        # importer itself lives in (they are already being imported when it runs)
        targets = imports_of(path, modules)
        parents = {t.rsplit(".", i)[0] for t in targets for i in range(1, t.count(".") + 1)}
        own = {name.rsplit(".", i)[0] for i in range(1, name.count(".") + 1)}
        graph[name] = (targets | (parents & modules)) - own - {name, "minimrcnn"}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_circle_in_the_package():
    graph = import_graph()
    assert "minimrcnn.model.mask_rcnn" in graph["minimrcnn.engine.trainer"]  # the graph is read
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_top_level_is_small():
    modules = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
    assert len(modules) <= MAX_TOP_LEVEL_MODULES, modules
    assert (PACKAGE / "ablations" / "__init__.py").is_file()


def test_engine_functions_fit_on_a_screen():
    long = []
    for path in (PACKAGE / "engine").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_ENGINE_FUNCTION_LINES:
                    long.append(f"{path.name}:{node.name} ({n} lines)")
    assert not long, long
