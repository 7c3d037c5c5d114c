"""The package's architecture, as docs/DESIGN.md draws it: each subpackage a layer, a module imports
only from its own layer or lower ones (lazy imports inside functions and imports for type hints
count too), and no modules import each other in a circle."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "multisr"
# lowest first; a module may import from its own layer and the ones before it
LAYERS = [
    ("base", ["errors", "params", "threads", "progress"]),
    ("imaging", ["imaging"]),
    ("registration", ["registration"]),
    ("reconstruction", ["reconstruction"]),
    ("storage", ["storage"]),
    ("sr", ["sr"]),
    ("runs", ["runs"]),
    ("research and outputs", ["research", "outputs"]),
    ("cli", ["cli"]),
    ("front door", ["__init__"]),
]
RANK = {part: rank for rank, (_, parts) in enumerate(LAYERS) for part in parts}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """The ``multisr`` modules ``path`` imports, as dotted names (``multisr.storage.io``)."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rsplit(".", 1)[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            if not target.startswith("multisr"):
                continue
            names.add(target)
            names.update(f"{target}.{alias.name}" for alias in node.names
                         if (PACKAGE.parent / f"{target}.{alias.name}".replace(".", "/")).with_suffix(".py").exists())
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names if alias.name.startswith("multisr"))
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "import_module":  # the front door's
            if node.args and isinstance(node.args[0], ast.JoinedStr):
                continue  # f".{_HOMES[name]}": checked through _HOMES below
    return {name for name in names if name != "multisr"}


def layer_of(module: str) -> int:
    parts = module.split(".")
    return RANK["__init__"] if len(parts) == 1 else RANK[parts[1]]


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def test_every_module_has_a_layer():
    assert all(layer_of(module) is not None for module in MODULES)
    assert {part for _, parts in LAYERS for part in parts} >= {m.split(".")[1] for m in MODULES if "." in m}


def test_no_module_imports_from_a_higher_layer():
    upward = [f"{module} -> {target}" for module, path in MODULES.items() for target in imported(path)
              if target in MODULES and layer_of(target) > layer_of(module)]
    assert upward == []


def test_no_modules_import_each_other_in_a_circle():
    graph = {module: {t for t in imported(path) if t in MODULES and t != module} for module, path in MODULES.items()}
    state, circles = {}, []

    def visit(module, trail):
        state[module] = "open"
        for target in graph[module]:
            if state.get(target) == "open":
                circles.append(" -> ".join(trail[trail.index(target):] + [target]))
            elif target not in state:
                visit(target, trail + [target])
        state[module] = "done"

    for module in graph:
        if module not in state:
            visit(module, [module])
    assert circles == []


def test_the_front_door_names_modules_that_hold_its_names():
    import multisr

    for name in multisr.__all__:
        assert getattr(multisr, name).__module__.startswith("multisr."), name
    assert set(multisr.__all__) == {"open_run", "load_pipeline", "run_frames", "Result", "Registration"}
