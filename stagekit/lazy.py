"""Package exports resolved on first use, so importing a package costs only what is used.

`import deployer` must not import docker, kubernetes and boto3 before a caller asks for
`AppDeployer`: the CLI's start-up time is mostly imports (PEP 562 module `__getattr__`).
"""

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` that imports `exports[name]` (a module path) when `name` is read."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return __getattr__
