"""phasefit's import structure: no import circles and no import against the layer order (docs/architecture.md).

Every module under ``src/phasefit`` is read with :mod:`ast` (nothing is imported); its ``import`` and ``from``
statements are collected wherever they are, at module level and inside functions (a lazy import is still a
dependency, and a circle through one is still a circle), with relative imports resolved.

Nodes are phasefit's top-level modules and first-level packages (``phasefit.config``, ``phasefit.cli``,
``phasefit.experiments``, ...); a package's modules count as the package. The layers, lowest first; a node may
import only nodes of lower layers:

====  ===========================================================================================================
0     ``errors``, ``io``, ``distributed``, ``results`` (import nothing of phasefit)
1     ``config`` (errors, io only: a leaf), ``run_directory``, ``data``
2     ``recipes``, ``models``, ``losses``, ``evaluation``, ``run_data``
3     ``training``, ``fingerprint``, ``export``, ``reporting``
4     ``phases``, ``phase_cache``
5     ``pipeline``
6     ``experiments``
7     ``api``, ``cli_common``
8     ``cli_grids``
9     ``cli``, and the ``phasefit`` package itself (its names load lazily from the modules above)
====  ===========================================================================================================

Rules checked, each with the file and line of every offending import:

- **no circles**, between nodes and between single modules (which also catches one inside a package);
  imports under ``if TYPE_CHECKING:`` are left out of this check, as they never run;
- **the layer order** above, TYPE_CHECKING imports included (a lower layer does not name a higher one's types
  either); a new top-level module or package fails until it is placed in :data:`LAYERS` (and in
  docs/architecture.md);
- **the directions the design forbids by name**, so that a reshuffled table cannot quietly allow them: ``config``
  imports nothing of phasefit but ``errors`` and ``io``; ``training`` imports no ``phases``; ``reporting`` imports
  no ``experiments`` and ``experiments`` no ``reporting`` (the command line composes the two: it trains a grid,
  then reports its rows);
- **no private names across nodes**: ``from phasefit.x import _name`` only inside ``phasefit.x``'s own node;
- **the documentation agrees**: docs/architecture.md's layer diagram lists the same nodes per layer.

Not followed: ``importlib.import_module`` of a string (the ``phasefit`` package's lazy exports, the phase registry
``phasefit.phases.PHASES``), which load on demand by design. There are no exceptions to the rules.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = "phasefit"

LAYERS: list[tuple[str, ...]] = [
    ("errors", "io", "distributed", "results"),
    ("config", "run_directory", "data"),
    ("recipes", "models", "losses", "evaluation", "run_data"),
    ("training", "fingerprint", "export", "reporting"),
    ("phases", "phase_cache"),
    ("pipeline",),
    ("experiments",),
    ("api", "cli_common"),
    ("cli_grids",),
    ("cli", ""),  # "": the phasefit package itself
]
# importer -> the only nodes it may import
ONLY: dict[str, set[str]] = {"config": {"errors", "io"}}
# importer -> nodes it must never import
NEVER: dict[str, set[str]] = {"training": {"phases"}, "reporting": {"experiments"}, "experiments": {"reporting"}}


@dataclass(frozen=True)
class Import:
    source: str  # importing module, e.g. phasefit.reporting.report
    target: str  # the phasefit module it loads, e.g. phasefit.results
    names: tuple[str, ...]  # what a `from` import takes from it (empty for `import x`)
    line: int
    type_checking: bool

    @property
    def where(self) -> str:
        return f"{MODULES[self.source].relative_to(SRC).as_posix()}:{self.line}"


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


MODULES = _modules()  # phasefit.x.y -> its file


def _resolve(name: str) -> str:
    """The phasefit module that importing ``name`` loads: the longest existing module prefix of it."""
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    """ids of the statements inside ``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``) blocks."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in {"TYPE_CHECKING", "typing.TYPE_CHECKING"}:
            for statement in node.body:
                inside.update(id(child) for child in ast.walk(statement))
    return inside


def _imports(module: str) -> Iterator[Import]:
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    type_checking = _type_checking_nodes(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [(alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # from . import x / from ..y import z
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            names = tuple(alias.name for alias in node.names if f"{base}.{alias.name}" not in MODULES)
            # `from pkg import submodule` loads the submodule; `from module import name`, the module
            targets = [(f"{base}.{alias.name}", ()) for alias in node.names if f"{base}.{alias.name}" in MODULES]
            targets += [(base, names)] if names else []
        else:
            continue
        for target, names in targets:
            if target == PACKAGE or target.startswith(PACKAGE + "."):
                yield Import(module, _resolve(target), names, node.lineno, id(node) in type_checking)


IMPORTS = [imp for module in MODULES for imp in _imports(module) if imp.target != imp.source]


def node_of(module: str) -> str:
    """``phasefit.experiments.grid`` -> ``experiments``; ``phasefit.cli`` -> ``cli``; ``phasefit`` -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


LAYER_OF = {node: index for index, layer in enumerate(LAYERS) for node in layer}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle, as [a, b, ..., a], through each strongly connected part of ``graph`` that has more than one
    vertex (Tarjan's algorithm, then a depth-first walk inside the part)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    parts: list[set[str]] = []

    def connect(vertex: str) -> None:
        index[vertex] = low[vertex] = len(index)
        stack.append(vertex)
        for successor in sorted(graph.get(vertex, ())):
            if successor not in index:
                connect(successor)
                low[vertex] = min(low[vertex], low[successor])
            elif successor in stack:
                low[vertex] = min(low[vertex], index[successor])
        if low[vertex] == index[vertex]:
            part: set[str] = set()
            member = None
            while member != vertex:
                member = stack.pop()
                part.add(member)
            if len(part) > 1:
                parts.append(part)

    for vertex in sorted(graph):
        if vertex not in index:
            connect(vertex)

    def walk(path: list[str], part: set[str]) -> list[str]:
        for successor in sorted(graph[path[-1]] & part):
            if successor == path[0]:
                return [*path, successor]
            if successor not in path and (found := walk([*path, successor], part)):
                return found
        return []

    return [walk([min(part)], part) for part in parts]


def _describe(cycles: list[list[str]], edges: dict[tuple[str, str], list[Import]]) -> str:
    lines = []
    for cycle in cycles:
        lines.append(" -> ".join(cycle))
        lines += [f"  {a} -> {b}: " + ", ".join(imp.where for imp in edges[(a, b)]) for a, b in zip(cycle, cycle[1:])]
    return "\n".join(lines)


def _runtime_edges(key: Callable[[str], str]) -> dict[tuple[str, str], list[Import]]:
    """Edges (importer, imported) of the graph whose vertices ``key`` makes of modules, with the imports behind
    each; TYPE_CHECKING imports left out."""
    edges: dict[tuple[str, str], list[Import]] = {}
    for imp in IMPORTS:
        a, b = key(imp.source), key(imp.target)
        if a != b and not imp.type_checking:
            edges.setdefault((a, b), []).append(imp)
    return edges


def _graph(edges: dict[tuple[str, str], list[Import]]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    return graph


def test_the_walk_sees_the_imports_it_must() -> None:
    """Guards the walker itself: imports inside functions and under TYPE_CHECKING are found, and marked."""
    seen = {(imp.source, imp.target, imp.type_checking) for imp in IMPORTS}
    assert ("phasefit.cli", "phasefit.cli_grids", False) in seen  # inside main()
    assert ("phasefit.pipeline", "phasefit.phases", False) in seen  # inside train()
    assert ("phasefit.pipeline", "phasefit.data", True) in seen  # under TYPE_CHECKING
    assert ("phasefit.experiments.studies", "phasefit.experiments.grid", False) in seen
    assert len(MODULES) > 50 and len(IMPORTS) > 250


def test_no_import_circles_between_packages() -> None:
    edges = _runtime_edges(node_of)
    cycles = _cycles(_graph(edges))
    assert not cycles, "import circles between phasefit's packages/modules:\n" + _describe(cycles, edges)


def test_no_import_circles_between_modules() -> None:
    edges = _runtime_edges(lambda module: module)
    cycles = _cycles(_graph(edges))
    assert not cycles, "import circles between phasefit's modules:\n" + _describe(cycles, edges)


def test_every_package_and_module_has_a_layer() -> None:
    nodes = {node_of(module) for module in MODULES}
    missing = sorted(nodes - set(LAYER_OF))
    assert not missing, f"place {missing} in LAYERS of tests/test_imports.py and in docs/architecture.md"
    gone = sorted(set(LAYER_OF) - nodes)
    assert not gone, f"LAYERS names {gone}, which no longer exist under src/phasefit"


def test_imports_point_down_the_layers() -> None:
    wrong = [f"{imp.where}: {node_of(imp.source) or PACKAGE} (layer {LAYER_OF.get(node_of(imp.source), '?')}) "
             f"imports {imp.target} (layer {LAYER_OF.get(node_of(imp.target), '?')})"
             for imp in IMPORTS
             if node_of(imp.source) != node_of(imp.target)
             and LAYER_OF.get(node_of(imp.source), 0) <= LAYER_OF.get(node_of(imp.target), 0)]
    assert not wrong, "imports against the layer order (see this file's docstring):\n" + "\n".join(wrong)


def test_forbidden_directions() -> None:
    wrong = []
    for imp in IMPORTS:
        source, target = node_of(imp.source), node_of(imp.target)
        if source == target:
            continue
        if (source in ONLY and target not in ONLY[source]) or target in NEVER.get(source, set()):
            wrong.append(f"{imp.where}: {imp.source} imports {imp.target}")
    assert not wrong, ("config imports only errors and io; training no phases; reporting no experiments; "
                       "experiments no reporting:\n" + "\n".join(wrong))


def test_no_private_names_imported_across_packages() -> None:
    wrong = [f"{imp.where}: {imp.source} imports {name} from {imp.target}"
             for imp in IMPORTS for name in imp.names
             if name.startswith("_") and not name.startswith("__") and node_of(imp.source) != node_of(imp.target)]
    assert not wrong, ("private names used outside their package; move them to a module both import:\n"
                       + "\n".join(wrong))


def test_config_names_the_phases_the_registry_holds() -> None:
    """config validates phase names without importing phases (a leaf); the two lists must agree."""
    from phasefit.config import PHASE_NAMES
    from phasefit.phases import PHASES

    assert set(PHASE_NAMES) == set(PHASES)


def test_the_architecture_doc_draws_these_layers() -> None:
    """docs/architecture.md's layer diagram lists the same nodes per layer as :data:`LAYERS`."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    diagram = text.split("```")[1]
    drawn = {int(match[1]): {"" if name == "phasefit/__init__.py" else name for name in match[2].split()}
             for match in re.finditer(r"^\s*(\d+)\s+(.+)$", diagram, re.MULTILINE)}
    assert drawn == {index: set(layer) for index, layer in enumerate(LAYERS)}
