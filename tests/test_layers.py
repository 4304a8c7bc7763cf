"""The layering contract of docs/architecture.md: no module imports a layer above its own,
siblings in a layer stay independent, and no import cycle exists between cx360's modules.

Every import counts, at module level or inside a function (a lazy import is still a
dependency), except those under `if TYPE_CHECKING:`, which only annotate and never run.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# Top to bottom. A module may import its own package and any layer below its own; modules of
# the same layer but of different entries must not import each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("cx360.__main__",),
    ("cx360.cli",),
    ("cx360.erasure",),  # erasure and subject access reach every store, so they sit above them all
    ("cx360.api.app",),  # assembles the API and the dashboard
    ("cx360.web",),
    ("cx360.api",),
    ("cx360.online",),  # the stream processor, identity online, triggers: the profile in real time
    ("cx360.demo",),
    ("cx360.pipeline",),  # the declared stages
    ("cx360.stream",),  # the collector's event log, its transports, the drain into the warehouse
    ("cx360.workspace",),  # the handle a user opens; stages receive it and import it only for annotations
    ("cx360.decisions",),  # the next best action: offers, contact policy, response models, arbitration
    ("cx360.segments", "cx360.calls", "cx360.funnels", "cx360.visits", "cx360.listening"),  # audiences and analyses
    ("cx360.scoring",),
    ("cx360.profiles",),
    ("cx360.identity",),
    ("cx360.sources",),
    ("cx360.online.store",),  # the online profile store: the batch adopts what the stream placed
    ("cx360.online.engines",),  # its SQLite file or shared PostgreSQL: what differs between them
    ("cx360.privacy",),  # consents and the one policy check, suppression, personal data in text, retention
    ("cx360.status",),  # what a workspace holds, read from its tables by name
    ("cx360.provenance",),
    ("cx360.models", "cx360.text"),  # estimators and text analysis, usable on any table
    ("cx360.engine",),
    ("cx360.config",),
    ("cx360.decisions.settings",),  # the offer catalogue and contact policy of cx360.toml
    ("cx360.conditions", "cx360.node_keys", "cx360.files", "cx360.filemodes"),
    ("cx360.schema",),
    ("cx360.trait_catalog", "cx360.identifiers"),
    ("cx360.documents",),  # python-stdnum's checks, shared by ingest and `identity dedupe`
    ("cx360.errors",),
)


def modules(src: Path = SRC) -> dict[str, Path]:
    out = {}
    for path in sorted((src / "cx360").rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _type_checking_only(tree: ast.Module) -> set[int]:
    """Ids of the import nodes under `if TYPE_CHECKING:`."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else test.attr if isinstance(test, ast.Attribute) else None
            if name == "TYPE_CHECKING":
                skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skip


def imports(src: Path = SRC) -> dict[str, set[str]]:
    """module -> the cx360 modules it imports (the deepest module that exists for each import)."""
    mods = modules(src)

    def known(name: str) -> str:
        while name not in mods and "." in name:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_only(tree)
        targets = set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                targets.update(known(a.name) for a in node.names if a.name.split(".")[0] == "cx360")
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                    base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
                if base.split(".")[0] == "cx360":
                    targets.update(known(f"{base}.{a.name}") for a in node.names)
        targets.discard(name)
        targets.discard("cx360")  # the package root holds only __version__
        graph[name] = targets
    return graph


def _place(module: str) -> tuple[int, str] | None:
    """(layer index, layer entry) of the longest entry that contains the module."""
    best = None
    for i, layer in enumerate(LAYERS):
        for entry in layer:
            if (module == entry or module.startswith(entry + ".")) and (best is None or len(entry) > len(best[1])):
                best = (i, entry)
    return best


def crossings(graph: dict[str, set[str]]) -> list[str]:
    """Imports of a layer above, or of an independent sibling of the same layer."""
    out = []
    for module, targets in sorted(graph.items()):
        here = _place(module)
        for target in sorted(targets):
            there = _place(target)
            if here is None or there is None or here[1] == there[1]:
                continue
            if there[0] < here[0]:
                out.append(f"{module} -> {target} (upward: {here[1]} imports {there[1]})")
            elif there[0] == here[0]:
                out.append(f"{module} -> {target} (siblings {here[1]} and {there[1]} must stay independent)")
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


@cache
def cx360_imports() -> dict[str, set[str]]:
    return imports()


def test_every_module_has_a_layer():
    unplaced = [m for m in modules() if m != "cx360" and _place(m) is None]
    assert not unplaced, f"add these modules to a layer in tests/test_layers.py and docs/architecture.md: {unplaced}"


def test_no_import_crosses_a_layer():
    found = crossings(cx360_imports())
    assert not found, "imports against the layers of docs/architecture.md:\n" + "\n".join(found)


def test_no_import_cycles():
    found = cycles(cx360_imports())
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_contract_sees_lazy_imports_and_skips_annotations(tmp_path):
    pkg = tmp_path / "cx360"
    (pkg / "segments").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "segments" / "__init__.py").write_text("")
    (pkg / "segments" / "rules.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from cx360.workspace import Workspace\n"
    )
    (pkg / "workspace.py").write_text("def f():\n    from cx360.segments import rules\n")
    (pkg / "config.py").write_text("def g():\n    from .segments.rules import x\n")
    (pkg / "errors.py").write_text("from cx360 import config\n")
    graph = imports(tmp_path)
    assert graph["cx360.workspace"] == {"cx360.segments.rules"}
    assert graph["cx360.segments.rules"] == set()
    assert graph["cx360.config"] == {"cx360.segments.rules"}
    assert crossings(graph) == [
        "cx360.config -> cx360.segments.rules (upward: cx360.config imports cx360.segments)",
        "cx360.errors -> cx360.config (upward: cx360.errors imports cx360.config)",
    ]
    (pkg / "segments" / "rules.py").write_text("from cx360 import errors\n")
    assert cycles(imports(tmp_path)) == [["cx360.config", "cx360.errors", "cx360.segments.rules"]]
