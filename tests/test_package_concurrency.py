"""Many package_code calls on one tree at once, in threads and in processes: all succeed
with one key. Each call builds (a file changed since the last package, so none is stored
yet), which is when builds share the tree's work directory in the cache."""

import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pytest

from packager import PackagedCode, package_code

CALLS = 16


@pytest.fixture
def tree(tmp_path, monkeypatch) -> Path:
    """A tree packaged once (so the cache holds a previous tarball), then changed."""
    monkeypatch.setenv("BAKERY_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "src"
    for index in range(200):
        path = src / f"pkg{index % 10}" / f"mod{index}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"value = {index}\n" * 200)
    package_code([str(src)], store=str(tmp_path / "first"))
    (src / "pkg0" / "mod0.py").write_text("value = 'changed'\n")
    return src


def package_into(src: str, store: str) -> PackagedCode:
    return package_code([src], store=store)


def test_threads_packaging_one_tree_into_their_own_stores(tree, tmp_path):
    start = threading.Barrier(CALLS)

    def package(index: int) -> PackagedCode:
        start.wait()
        return package_into(str(tree), str(tmp_path / f"store{index}"))

    with ThreadPoolExecutor(CALLS) as pool:
        packages = list(pool.map(package, range(CALLS)))

    assert len({package.key for package in packages}) == 1
    assert all(Path(package.url.removeprefix("file://")).is_file() for package in packages)


def test_processes_packaging_one_tree(tree, tmp_path):
    """Half the calls share a store, half have their own: all build at once."""
    stores = [str(tmp_path / ("shared" if index % 2 else f"own{index}")) for index in range(CALLS)]
    context = multiprocessing.get_context("spawn")  # no fork of a threaded test process
    with ProcessPoolExecutor(8, mp_context=context) as pool:
        packages = list(pool.map(package_into, [str(tree)] * CALLS, stores))

    assert len({package.key for package in packages}) == 1
    key = packages[0].key
    assert [path.name for path in (tmp_path / "shared").rglob("*.tar.gz")] == [f"{key}.tar.gz"]
    (workdir,) = (tmp_path / "cache" / "packages").iterdir()
    left = {name for name in os.listdir(workdir) if not name.endswith(".lock")}
    assert left == {f"{key}.tar.gz", f"{key}.tar.index"}  # no temporaries, no older tarball
