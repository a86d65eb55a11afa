"""Count the private names one module of the package reads or writes on another's objects.

    python scripts/private_reach.py        # a table, then the totals

A name counts when it starts with one underscore, is reached on anything but
``self``/``cls``, and is not defined in the module that reaches for it (as a
function, class, method, attribute or slot there). ``testing.py`` and the
``_aiohttp`` package are the two places allowed to reach past a boundary
(the test seam, and aiohttp's internals), and are left out. Also prints
the import cycles, ``TYPE_CHECKING`` imports included; a subpackage is one
module there, importing what its files import.

Two totals: across class hierarchies (a subclass reading the state that its
base class, in another module, declares counts as its own: the session's
classes Mailbox, HandlerHost, Performer, Actor and Session live in five modules), and
strictly (it counts too).
"""

from __future__ import annotations

import ast
import pathlib
import sys

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "aiohttp_sockjs"
ALLOWED = {"testing", "_aiohttp"}


def module_of(path: pathlib.Path) -> str:
    """The package's module that the file at ``path`` is, or is part of (a subpackage)."""
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def defined(tree: ast.Module) -> set[str]:
    """Every name a module defines: functions, classes, attributes, slots."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.add(node.value)  # __slots__ entries
    return names


def bases(tree: ast.Module) -> set[str]:
    """The package's modules whose classes a class of this module derives from."""
    imported = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            for alias in node.names:
                imported[alias.asname or alias.name] = node.module
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for base in node.bases:
                if isinstance(base, ast.Name) and base.id in imported:
                    found.add(imported[base.id])
    return found


def reaches(path: pathlib.Path, strict: bool = False) -> set[str]:
    """The private names the module at ``path`` reaches for on other modules' objects.

    A class's own names include those of the package's classes it derives
    from (an actor function reading the state its base class declares is
    not reaching across a boundary).
    """
    tree = ast.parse(path.read_text())
    own = defined(tree)
    todo = [] if strict else list(bases(tree))
    seen: set[str] = set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        base_tree = ast.parse((PACKAGE / f"{module}.py").read_text())
        own |= defined(base_tree)
        todo.extend(bases(base_tree))
    found = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        name = node.attr
        if not name.startswith("_") or name.startswith("__"):
            continue
        if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            continue
        if name in own:
            continue
        found.add(name)
    return found


def imports(path: pathlib.Path) -> set[str]:
    """The package's modules that the file at ``path`` imports (TYPE_CHECKING too).

    In a subpackage, ``..`` is the package (``.`` is the subpackage itself).
    """
    tree = ast.parse(path.read_text())
    depth = len(path.relative_to(PACKAGE).parts)
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == depth:
            if node.module:
                out.add(node.module.split(".")[0])
            else:
                out.update(alias.name for alias in node.names)
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The elementary cycles of the import graph, each once."""
    found: list[list[str]] = []
    seen: set[frozenset[str]] = set()

    def walk(start: str, node: str, trail: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt == start:
                key = frozenset(trail)
                if key not in seen:
                    seen.add(key)
                    found.append([*trail, start])
            elif nxt not in trail and nxt > start:
                walk(start, nxt, [*trail, nxt])

    for start in sorted(graph):
        walk(start, start, [start])
    return found


def main() -> int:
    """Print the table and the totals."""
    files = sorted(PACKAGE.rglob("*.py"))
    total = 0
    for path in files:
        if module_of(path) in ALLOWED:
            continue
        names = reaches(path)
        if names:
            print(f"{path.name}: {len(names)}: {', '.join(sorted(names))}")
        total += len(names)
    strict = sum(
        len(reaches(path, strict=True)) for path in files if module_of(path) not in ALLOWED
    )
    graph: dict[str, set[str]] = {}
    for path in files:
        graph.setdefault(module_of(path), set()).update(imports(path))
    found = cycles(graph)
    print(f"cross-module private names: {total}")
    print(f"  counted strictly (a base class's state in another module too): {strict}")
    print(f"import cycles: {len(found)}")
    for cycle in found:
        print("  " + " -> ".join(cycle))
    return 0


if __name__ == "__main__":
    sys.exit(main())
