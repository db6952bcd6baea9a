"""The layering of docs/architecture.md, checked on the import graph of src/openkms: no import
circles (function-level and TYPE_CHECKING imports count: a module should be readable with only
what is below it), and the lower layers never import the layers built on them."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
# package -> packages it must never import (directly, lazily or for type checking)
FORBIDDEN = {
    "openkms.storage": ("openkms.service", "openkms.iam", "openkms.http", "openkms.audit",
                        "openkms.console"),
    "openkms.rootoftrust": ("openkms.service", "openkms.iam", "openkms.http", "openkms.console"),
    "openkms.audit": ("openkms.service", "openkms.iam", "openkms.http", "openkms.console"),
    "openkms.policy": ("openkms.service", "openkms.iam", "openkms.http", "openkms.storage",
                       "openkms.console"),
    "openkms.domain": ("openkms.service", "openkms.iam", "openkms.http", "openkms.storage",
                       "openkms.console"),
    "openkms.crypto": ("openkms.service", "openkms.iam", "openkms.http", "openkms.storage",
                       "openkms.console"),
    "openkms.protocol": ("openkms.storage", "openkms.console"),
    "openkms.envelope": ("openkms.http", "openkms.service", "openkms.storage", "openkms.console"),
    # The console is a client above the API application: nothing below it knows it exists.
    "openkms.http": ("openkms.console",),
    # Secrets Manager is built on the KMS service layer (DESIGN.md): the KMS never calls it.
    "openkms.service": ("openkms.console", "openkms.secretsmanager"),
    "openkms.iam": ("openkms.console", "openkms.secretsmanager"),
    "openkms.keystores": ("openkms.console", "openkms.secretsmanager"),
    "openkms.secretsmanager": ("openkms.console", "openkms.http"),
}
# Packages of the lower layers never import the services built on the KMS either.
for _lower in ("openkms.storage", "openkms.rootoftrust", "openkms.audit", "openkms.policy",
               "openkms.domain", "openkms.crypto", "openkms.protocol", "openkms.envelope"):
    FORBIDDEN[_lower] = (*FORBIDDEN[_lower], "openkms.secretsmanager")


def modules() -> dict[str, Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            graph[name].update(t for t in targets if t in mods and t != name)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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


def test_the_checker_sees_a_circle() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circles() -> None:
    assert circles(import_graph()) == []


def test_lower_layers_never_import_the_layers_above() -> None:
    graph = import_graph()
    wrong = sorted(
        (module, target)
        for module, targets in graph.items()
        for layer, above in FORBIDDEN.items()
        if module == layer or module.startswith(layer + ".")
        for target in targets
        if any(target == a or target.startswith(a + ".") for a in above)
    )
    assert wrong == []
