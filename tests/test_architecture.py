"""The shape of the package: imports run one way (no cycle among tui modules, counting imports
inside functions and for type checking), no module is over 450 lines, no class over 40 methods
or 450 lines (with its tui base classes), the engine and the store know nothing of Textual, the
command line is the only module that imports the app, and every key binding comes from the table
of actions."""

from __future__ import annotations

import ast
from pathlib import Path

TUI = Path(__file__).resolve().parent.parent / "tui"
MAX_LINES = 450
MAX_METHODS = 40
# The one back-reference allowed, for type checking only: the chat screen's parts name the screen
# they are given (tui/screens/chat.py builds them and routes to them, with screens/routing.py).
TYPING_BACK_REFERENCES = {("tui.ui.screens.routing", "tui.ui.screens.chat")} | {
    (f"tui.ui.screens.chat_{part}", "tui.ui.screens.chat")
    for part in (
        "adapters",
        "attach",
        "files",
        "messages",
        "model",
        "models",
        "reply",
        "settings",
        "tokens",
        "tools",
        "transcript",
    )
}


def module_name(path: Path) -> str:
    parts = path.relative_to(TUI.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in TUI.rglob("*.py")}


def _type_checking_imports(tree: ast.Module) -> set[int]:
    """ids of the import nodes inside `if TYPE_CHECKING:` blocks."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            inside |= {id(child) for statement in node.body for child in ast.walk(statement)}
    return inside


def imports_of(name: str) -> set[str]:
    """Every tui module `name` imports, anywhere in it (functions and TYPE_CHECKING blocks too,
    but for the TYPING_BACK_REFERENCES)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = _type_checking_imports(tree)
    for node in ast.walk(tree):
        if (
            id(node) in typing_only
            and isinstance(node, ast.ImportFrom)
            and (name, node.module) in TYPING_BACK_REFERENCES
        ):
            continue
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
    long = {
        name: n
        for name, path in MODULES.items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def _classes() -> dict[str, tuple[ast.ClassDef, str]]:
    """Every class in tui by name (module.Class), with its module."""
    found = {}
    for name, path in MODULES.items():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef):
                found[f"{name}.{node.name}"] = (node, name)
    return found


def _size(qualified: str, classes: dict[str, tuple[ast.ClassDef, str]]) -> tuple[int, int]:
    """Methods and lines of a class, with those of its base classes defined in tui."""
    node, module = classes[qualified]
    methods = sum(isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) for item in node.body)
    lines = (node.end_lineno or node.lineno) - node.lineno + 1
    for base in node.bases:
        base_name = base.id if isinstance(base, ast.Name) else None
        match = next(
            (
                q
                for q in classes
                if base_name
                and q.endswith(f".{base_name}")
                and (q.startswith(module) or base_name in MODULES[module].read_text(encoding="utf-8"))
            ),
            None,
        )
        if match is not None and match != qualified:
            more_methods, more_lines = _size(match, classes)
            methods, lines = methods + more_methods, lines + more_lines
    return methods, lines


def test_no_class_is_over_40_methods_or_450_lines_with_its_bases():
    classes = _classes()
    big = {}
    for qualified in classes:
        methods, lines = _size(qualified, classes)
        if methods > MAX_METHODS or lines > MAX_LINES:
            big[qualified] = (methods, lines)
    assert big == {}


def test_the_engine_and_the_store_know_nothing_of_textual():
    for name, path in MODULES.items():
        if name.startswith(("tui.engine", "tui.store", "tui.tools", "tui.core")) or name in (
            "tui.cli.headless",
            "tui.cli.library",
            "tui.cli.tools",
        ):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
            imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
            assert not any(m == "textual" or m.startswith(("textual.", "rich")) for m in imported), name


def test_only_the_command_line_imports_the_app():
    importers = sorted(name for name in MODULES if "tui.ui.app" in imports_of(name))
    assert importers == ["tui.cli.main"]


def test_torch_is_imported_at_the_top_only_by_the_torch_thread_module():
    """Importing any other engine module must not import torch: the first frame never waits for it."""
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = {alias.name.split(".")[0] for node in tree.body if isinstance(node, ast.Import) for alias in node.names}
        top |= {(node.module or "").split(".")[0] for node in tree.body if isinstance(node, ast.ImportFrom)}
        if name != "tui.engine.torch_parts":
            assert not top & {"torch", "transformers"}, name


def test_every_key_binding_comes_from_the_table_of_actions():
    """Only tui.ui.actions makes Textual bindings (so config.toml [keys] can rebind every one); no
    widget overrides Textual's private key handler."""
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if name != "tui.ui.actions":
            imported = {
                alias.name
                for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module == "textual.binding"
                for alias in node.names
            }
            assert "Binding" not in imported, name
        private = {
            node.name
            for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "_on_key"
        }
        assert not private, name
