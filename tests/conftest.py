"""Loads every fixture module in tests/fixtures: each one starts one real service.

`services.py` there holds the plain helpers those modules share; it has no fixtures.
"""

from pathlib import Path

pytest_plugins = sorted(
    f"tests.fixtures.{path.stem}"
    for path in (Path(__file__).parent / "fixtures").glob("*.py")
    if path.stem not in ("__init__", "services")
)
