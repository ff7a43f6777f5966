"""Which package may import which, read from the source with ``ast``.

Every import counts, the ones inside function bodies too: a deferred import is still a
dependency, it only hides from a reader. The rules:

- the trainer (``trainer/``) never imports the UI (Textual, ``realm.tui``);
- only ``realm/tui/`` imports Textual;
- ``realm/`` imports ``trainer/`` only from the command that starts the trainer;
- the foundation (``realm/protocol.py``, ``realm/state.py``, ``realm/config.py``, ``realm/game/``)
  imports nothing above it;
- the imports that run when a module is loaded (module level) form no cycle.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("realm", "trainer")
UI = ("textual", "realm.tui")

# The CLI's command that starts the trainer (`realm trainer`, and `realm play` through it) is the
# one place realm/ reaches into trainer/.
TRAINER_ENTRY = ("realm/cli/trainer.py",)
FOUNDATION = ("realm/protocol.py", "realm/state.py", "realm/config.py", "realm/game/")
# What the foundation may import from this project: itself and two leaf helpers.
FOUNDATION_MAY_IMPORT = (
    "realm.protocol",
    "realm.state",
    "realm.config",
    "realm.game",
    "realm.errors",
    "realm.resources",
)


@dataclass(frozen=True)
class Import:
    file: str  # the importing file, relative to the repository root
    line: int
    target: str  # the imported module, as specific as the source tree resolves it
    module_level: bool  # runs when the importing module is loaded

    def __str__(self) -> str:
        return f"{self.file}:{self.line} imports {self.target}"


def module_name(file: Path) -> str:
    parts = list(file.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


MODULES = {module_name(path): path for path in source_files()}


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def imports_of(file: Path) -> list[Import]:
    """Every import statement in ``file``, one entry per imported module."""
    source = file.read_text(encoding="utf-8")
    return parse_imports(source, str(file.relative_to(ROOT)), module_name(file), file.name == "__init__.py")


def parse_imports(source: str, file: str, module: str, is_package: bool) -> list[Import]:
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: list[Import] = []

    def visit(node: ast.AST, module_level: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for alias in child.names:
                    found.append(Import(file, child.lineno, alias.name, module_level))
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package[: len(package) - (child.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                for alias in child.names:
                    # ``from realm.skills import curriculum`` imports the module realm.skills.curriculum
                    submodule = f"{base}.{alias.name}"
                    target = submodule if submodule in MODULES else base
                    found.append(Import(file, child.lineno, target, module_level))
            inside_function = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            visit(child, module_level and not inside_function)

    visit(ast.parse(source, filename=file), True)
    return list(dict.fromkeys(found))  # ``from x import a, b`` is one import of x


@cache
def all_imports() -> tuple[Import, ...]:
    return tuple(found for path in source_files() for found in imports_of(path))


def in_folder(file: str, folders: tuple[str, ...]) -> bool:
    return any(file == folder or (folder.endswith("/") and file.startswith(folder)) for folder in folders)


def report(rule: str, offenders: list[Import]) -> str:
    return rule + ":\n" + "\n".join(f"  {found}" for found in offenders)


def test_the_trainer_never_imports_the_ui():
    offenders = [
        found
        for found in all_imports()
        if found.file.startswith("trainer/") and any(within(found.target, ui) for ui in UI)
    ]
    assert not offenders, report("the trainer runs headless; these imports pull in the UI", offenders)


def test_only_the_tui_imports_textual():
    offenders = [
        found for found in all_imports() if within(found.target, "textual") and not found.file.startswith("realm/tui/")
    ]
    assert not offenders, report("Textual belongs to realm/tui/ alone", offenders)


def test_realm_imports_the_trainer_only_to_start_it():
    offenders = [
        found
        for found in all_imports()
        if found.file.startswith("realm/")
        and within(found.target, "trainer")
        and not in_folder(found.file, TRAINER_ENTRY)
    ]
    assert not offenders, report(
        "realm/ imports trainer/ outside the command that starts the trainer "
        "(code both processes need belongs in realm/, e.g. realm/model/)",
        offenders,
    )


def test_the_foundation_imports_nothing_above_it():
    ours = ("realm", "trainer")
    offenders = [
        found
        for found in all_imports()
        if in_folder(found.file, FOUNDATION)
        and (any(within(found.target, package) for package in ours) or within(found.target, "textual"))
        and not any(within(found.target, allowed) for allowed in FOUNDATION_MAY_IMPORT)
    ]
    assert not offenders, report(
        f"the foundation imports nothing above it (allowed: {', '.join(FOUNDATION_MAY_IMPORT)})", offenders
    )


def import_graph() -> dict[str, list[Import]]:
    """Module -> its module-level imports of other modules of this project."""
    graph: dict[str, list[Import]] = {name: [] for name in MODULES}
    for found in all_imports():
        importer = module_name(ROOT / found.file)
        if found.module_level and found.target in MODULES and found.target != importer:
            graph[importer].append(found)
    return graph


def cycles(graph: dict[str, list[Import]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = lowlink[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for edge in graph[node]:
            if edge.target not in index:
                connect(edge.target)
                lowlink[node] = min(lowlink[node], lowlink[edge.target])
            elif edge.target in on_stack:
                lowlink[node] = min(lowlink[node], index[edge.target])
        if lowlink[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return sorted(components)


def test_module_level_imports_form_no_cycle():
    graph = import_graph()
    found = cycles(graph)
    lines = []
    for component in found:
        members = set(component)
        lines.append(f"cycle of {len(component)} modules: {', '.join(component)}")
        lines += [f"  {edge}" for name in component for edge in graph[name] if edge.target in members]
    assert not found, "module-level imports that form a cycle:\n" + "\n".join(lines)


def test_a_cycle_is_found_and_a_chain_is_not():
    def edges(**targets: str) -> dict[str, list[Import]]:
        return {name: [Import(f"{name}.py", 1, t, True) for t in to.split()] for name, to in targets.items()}

    assert cycles(edges(a="b", b="c", c="a d", d="", e="d")) == [["a", "b", "c"]]
    assert cycles(edges(a="b", b="c", c="d", d="")) == []


def test_the_reader_sees_function_level_and_relative_imports():
    # the rules are only as good as the reader: an import deep in a method must be found
    source = (
        "import os\n"
        "class A:\n"
        "    from realm import protocol\n"
        "    def run(self):\n"
        "        if True:\n"
        "            from trainer.engine import Engine, Order\n"
        "        from .skills import curriculum\n"
    )
    found = {(i.line, i.target, i.module_level) for i in parse_imports(source, "realm/probe.py", "realm.probe", False)}
    assert found == {
        (1, "os", True),
        (3, "realm.protocol", True),
        (6, "trainer.engine", False),
        (7, "realm.skills.curriculum", False),
    }
