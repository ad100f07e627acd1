"""package_code / fetch_code against real filesystem failures: full, read-only, odd paths.

A full or read-only filesystem is a real tmpfs mounted for the test (root only), so every
failure below is the kernel's own ENOSPC / EROFS, not a simulation. Each must surface as a
CodePackagingException that names the cause and leaves nothing partial behind.
"""

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from packager import CodePackagingException, fetch_code, package_code
from packager.stores import object_name
from stagekit.errors import ErrorKind

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


@contextmanager
def tmpfs(directory: Path, size: str = "1m", read_only: bool = False) -> Iterator[Path]:
    directory.mkdir()
    options = f"size={size}" + (",ro" if read_only else "")
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(directory)], check=True)
    try:
        yield directory
    finally:
        subprocess.run(["umount", str(directory)], check=True)


def contents(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


pytestmark = pytest.mark.usefixtures("isolated_cache")


def package_of(tmp_path: Path, data: bytes, store: Path | None = None):
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "data.txt").write_bytes(data)
    (src / "app.py").write_text("print('hi')\n")
    return package_code([str(src)], store=str(store or tmp_path / "store"))


@needs_root
def test_fetch_onto_a_full_filesystem_while_downloading(tmp_path):
    package = package_of(tmp_path, os.urandom(2 * 1024 * 1024))  # 2 MB even compressed
    with tmpfs(tmp_path / "small") as small:
        with pytest.raises(CodePackagingException, match=r"No space left.*filesystem is full"):
            fetch_code(package.url, package.key, small / "code")
        assert contents(small) == []


@needs_root
def test_fetch_onto_a_full_filesystem_while_extracting(tmp_path):
    """A small download that unpacks to 4 MB: the full disk is named, not called corrupt."""
    package = package_of(tmp_path, b"all work and no play\n" * 200_000)
    assert Path(package.url.removeprefix("file://")).stat().st_size < 512 * 1024
    with tmpfs(tmp_path / "small") as small:
        with pytest.raises(CodePackagingException, match=r"cannot extract.*filesystem is full"):
            fetch_code(package.url, package.key, small / "code")
        assert contents(small) == []


@needs_root
def test_fetch_onto_a_read_only_filesystem(tmp_path):
    package = package_of(tmp_path, b"data\n")
    with (
        tmpfs(tmp_path / "ro", read_only=True) as read_only,
        pytest.raises(CodePackagingException, match=r"Read-only file system.*writable"),
    ):
        fetch_code(package.url, package.key, read_only / "code")


@needs_root
def test_a_full_store_leaves_no_partial_upload(tmp_path):
    with tmpfs(tmp_path / "store") as store:
        with pytest.raises(
            CodePackagingException, match="cannot write to the code store"
        ) as raised:
            package_of(tmp_path, os.urandom(2 * 1024 * 1024), store=store)
        assert not [path for path in store.rglob("*") if path.is_file()]
    assert "filesystem is full" in str(raised.value)
    assert raised.value.kind is ErrorKind.INTERNAL
    assert isinstance(raised.value.__cause__, OSError)


@needs_root
def test_a_read_only_store_is_explained(tmp_path):
    with (
        tmpfs(tmp_path / "store", read_only=True) as store,
        pytest.raises(CodePackagingException, match=r"code store.*read-only"),
    ):
        package_of(tmp_path, b"data\n", store=store)


@pytest.mark.parametrize("dangling", [False, True], ids=["to-empty-dir", "dangling"])
def test_fetch_into_a_symlink_is_explained(tmp_path, dangling):
    package = package_of(tmp_path, b"data\n")
    target = tmp_path / "real"
    if not dangling:
        target.mkdir()
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(CodePackagingException, match=r"is a symbolic link.*give the link's target"):
        fetch_code(package.url, package.key, tmp_path / "link")
    assert (tmp_path / "link").is_symlink()


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_an_object_url_naming_a_directory_or_fifo_is_explained(tmp_path, kind):
    key = "cd" * 32
    path = tmp_path / "store" / object_name(key)
    path.parent.mkdir(parents=True)
    if kind == "directory":
        path.mkdir()
    else:
        os.mkfifo(path)  # opening it for reading would wait for a writer forever
    with pytest.raises(CodePackagingException, match="is not a code package file"):
        fetch_code(path.as_uri(), key, tmp_path / "dest")
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["store"]


@needs_root
def test_fetch_from_s3_onto_a_full_filesystem(tmp_path, s3_bucket):
    src = tmp_path / "src"
    src.mkdir()
    (src / "data.txt").write_bytes(os.urandom(2 * 1024 * 1024))
    package = package_code([str(src)], store=f"s3://{s3_bucket}/code")
    with tmpfs(tmp_path / "small") as small:
        with pytest.raises(CodePackagingException, match=r"No space left.*filesystem is full"):
            fetch_code(package.url, package.key, small / "code")
        assert contents(small) == []


@needs_root
def test_package_with_a_full_cache_is_explained(tmp_path, monkeypatch):
    with tmpfs(tmp_path / "cache") as cache:
        monkeypatch.setenv("BAKERY_CACHE_DIR", str(cache))
        with pytest.raises(
            CodePackagingException, match=r"cannot package.*filesystem is full"
        ) as raised:
            package_of(tmp_path, os.urandom(2 * 1024 * 1024))
        assert raised.value.kind is ErrorKind.INTERNAL
        assert not [path for path in cache.rglob("*") if path.is_file() and path.stat().st_size]
