"""The deployer's modules import each other one way only: no import cycles.

A cycle (app imported plan, which imported app back) forces late imports inside functions
and hides which module does what; this reads every import statement, late ones included.
"""

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.AST, modules: set[str]) -> set[str]:
    """The modules of `modules` a file imports; `from package import module` is the module."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            submodules = {f"{node.module}.{alias.name}" for alias in node.names} & modules
            found.update(submodules or {node.module})
    return found & modules


def _import_graph() -> dict[str, set[str]]:
    files = {_module_name(path): path for path in (ROOT / "deployer").rglob("*.py")}
    modules = set(files)
    return {
        name: _imports(ast.parse(path.read_text()), modules) - {name}
        for name, path in files.items()
    }


def test_the_deployer_has_no_import_cycles():
    try:
        TopologicalSorter(_import_graph()).prepare()
    except CycleError as error:
        raise AssertionError(f"import cycle: {' -> '.join(error.args[1])}") from None


def test_the_plan_and_the_app_deployer_share_deploy_one_instead_of_each_other():
    graph = _import_graph()
    assert "deployer.orchestration.app" not in graph["deployer.orchestration.plan"]
    assert "deployer.orchestration.deploy" in graph["deployer.orchestration.plan"]
    assert "deployer.orchestration.deploy" in graph["deployer.orchestration.app"]
