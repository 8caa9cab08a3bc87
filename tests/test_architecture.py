"""The shape of the package: imports run one way (no cycle among tui modules, counting imports
inside functions), no module is over 450 lines, the engine and the store know nothing of
Textual, the command line is the only module that imports the app, and every key binding comes
from the table of actions."""

from __future__ import annotations

import ast
from pathlib import Path

TUI = Path(__file__).resolve().parent.parent / "tui"
MAX_LINES = 450


def module_name(path: Path) -> str:
    parts = path.relative_to(TUI.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in TUI.rglob("*.py")}


def imports_of(name: str) -> set[str]:
    """Every tui module `name` imports, anywhere in it (functions and TYPE_CHECKING blocks too)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in MODULES else base)
    return {module for module in found if module in MODULES and module != name}


def cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    graph = {name: imports_of(name) for name in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for follow in graph[node]:
            if follow not in index:
                visit(follow)
                low[node] = min(low[node], low[follow])
            elif follow in on_stack:
                low[node] = min(low[node], index[follow])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for name in graph:
        if name not in index:
            visit(name)
    return found


def test_there_is_no_import_cycle():
    assert cycles() == []


def test_no_module_is_over_450_lines():
    long = {name: n for name, path in MODULES.items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_the_engine_and_the_store_know_nothing_of_textual():
    for name, path in MODULES.items():
        if name.startswith(("tui.engine", "tui.store", "tui.tools")) or name in ("tui.chat_session", "tui.options",
                                                                     "tui.headless", "tui.library_cli"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
            imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
            assert not any(m == "textual" or m.startswith(("textual.", "rich")) for m in imported), name


def test_only_the_command_line_imports_the_app():
    importers = sorted(name for name in MODULES if "tui.app" in imports_of(name))
    assert importers == ["tui.cli"]


def test_torch_is_imported_at_the_top_only_by_the_torch_thread_module():
    """Importing any other engine module must not import torch: the first frame never waits for it."""
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = {alias.name.split(".")[0] for node in tree.body if isinstance(node, ast.Import) for alias in node.names}
        top |= {(node.module or "").split(".")[0] for node in tree.body if isinstance(node, ast.ImportFrom)}
        if name != "tui.engine.torch_parts":
            assert not top & {"torch", "transformers"}, name


def test_every_key_binding_comes_from_the_table_of_actions():
    """Only tui.actions makes Textual bindings (so config.toml [keys] can rebind every one); no
    widget overrides Textual's private key handler."""
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if name != "tui.actions":
            imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                        and node.module == "textual.binding" for alias in node.names}
            assert "Binding" not in imported, name
        private = {node.name for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                   and node.name == "_on_key"}
        assert not private, name
