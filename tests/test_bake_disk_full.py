"""A full disk under a bake, for real: a small tmpfs mounted as the cache or the image layout.

Each failure must be an ImageBakingException naming the full directory and saying to free
space, leave nothing half-written behind (no temp file, no half blob, no tag), and a bake
after space is freed must succeed from what is left.
"""

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bakery.bake import bake_image
from bakery.errors import ImageBakingException
from bakery.oci.cache import BlobCache
from bakery.oci.layout import LayoutPublisher
from bakery.oci.model import Image
from tests.fixtures.registry import TestRegistry


@contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted at `path` for the block, unmounted after it."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], check=False).returncode != 0:
            subprocess.run(["umount", "--lazy", str(path)], check=True)


def fill(directory: Path, leave: int) -> Path:
    """Allocate all but about `leave` bytes of the filesystem holding `directory`."""
    stats = os.statvfs(directory)
    filler = directory / "filler"
    with filler.open("wb") as handle:
        os.posix_fallocate(handle.fileno(), 0, stats.f_bavail * stats.f_frsize - leave)
    return filler


def leftovers(directory: Path) -> list[Path]:
    """Temp files and half-built entries (`.building-*` layers, `.partial-*` downloads,
    `.<name>.*` atomic writes, BlobCache `tmp/`) that the writers must clean up."""
    hidden = [p for p in directory.rglob(".*") if p.name != ".index.lock"]
    return hidden + list(directory.rglob("tmp/*"))


def sha256_hex(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def wrong_blobs(directory: Path) -> list[Path]:
    """Files under any blobs/sha256/ whose content does not match their name."""
    return [path for path in directory.rglob("blobs/sha256/*") if sha256_hex(path) != path.name]


def spec_tags(registry: TestRegistry, repo: str) -> list[str]:
    return [tag for tag in registry.tags(repo) if tag.startswith("spec-")]


def test_a_full_cache_while_building_a_layer(tmp_path, monkeypatch, registry, pushed_debian_base):
    repo = registry.fresh_repo("diskfull")
    target = f"{registry.host}/{repo}"
    monkeypatch.setenv("BAKERY_BASE_IMAGE", pushed_debian_base)
    with small_disk(tmp_path / "cache", "8m") as cache:
        monkeypatch.setenv("BAKERY_CACHE_DIR", str(cache))
        bake_image(pypi={"six": ""}, registry=target)  # leaves six's wheel in the cache
        shutil.rmtree(cache / "bake" / "layers")  # but not its layer
        tags = spec_tags(registry, repo)
        filler = fill(cache, leave=4096)

        with pytest.raises(ImageBakingException) as raised:
            bake_image(pypi={"six": ""}, registry=target, cache_name="full")

        message = raised.value.message
        assert f"No space left in {cache}/bake" in message and "free space" in message
        assert "BAKERY_CACHE_DIR" in message
        assert leftovers(cache) == [] and wrong_blobs(cache) == []
        assert not any(path.is_dir() for path in (cache / "bake" / "layers").rglob("*/*"))
        assert spec_tags(registry, repo) == tags

        filler.unlink()
        bake_image(pypi={"six": ""}, registry=target, cache_name="full")
        assert len(spec_tags(registry, repo)) == len(tags) + 1


def test_a_full_layout_while_publishing(tmp_path, monkeypatch, pushed_debian_base):
    monkeypatch.setenv("BAKERY_BASE_IMAGE", pushed_debian_base)
    monkeypatch.setenv("BAKERY_CACHE_DIR", str(tmp_path / "cache"))
    with small_disk(tmp_path / "layout", "96m") as layout:
        monkeypatch.setenv("BAKERY_IMAGE_LAYOUT", str(layout))
        filler = fill(layout, leave=8 << 20)  # far less than the base layer (~74 MB)

        with pytest.raises(ImageBakingException) as raised:
            bake_image(pypi={"six": ""})

        message = raised.value.message
        assert f"No space left in {layout}" in message and "free space" in message
        assert "BAKERY_IMAGE_LAYOUT" in message
        assert leftovers(layout) == [] and wrong_blobs(layout) == []
        assert not (layout / "index.json").exists()  # no tag, not even an empty index

        filler.unlink()
        baked = bake_image(pypi={"six": ""})
        assert baked.image.startswith(f"oci-layout://{layout}@sha256:")


def test_a_full_cache_while_copying_the_base_blames_the_cache_not_the_layout(
    tmp_path, monkeypatch, debian_base: Image
):
    base_layout = LayoutPublisher(tmp_path / "base-layout")
    base_layout.publish(debian_base, "bookworm")
    monkeypatch.setenv("BAKERY_BASE_IMAGE", f"oci-layout://{base_layout.directory}:bookworm")
    monkeypatch.setenv("BAKERY_IMAGE_LAYOUT", str(tmp_path / "layout"))
    with small_disk(tmp_path / "cache", "32m") as cache:  # the base layer is ~74 MB
        monkeypatch.setenv("BAKERY_CACHE_DIR", str(cache))

        with pytest.raises(ImageBakingException) as raised:
            bake_image(pypi={"six": ""})

        message = raised.value.message
        assert f"No space left in {cache}/bake" in message and "free space" in message
        assert str(base_layout.directory) not in message and "incomplete" not in message
        assert leftovers(cache) == [] and wrong_blobs(cache) == []
    assert wrong_blobs(base_layout.directory) == []
    assert base_layout.resolve("bookworm") == debian_base.digest


def test_a_full_temp_disk_while_bootstrapping_the_base_says_so(tmp_path, monkeypatch):
    """mmdebstrap unpacks into $TMPDIR: a full one is named, not blamed on the suite."""
    from bakery.base.debian import build_debian_base

    with small_disk(tmp_path / "tmp", "16m") as small:
        monkeypatch.setenv("TMPDIR", str(small))
        tempfile.tempdir = None  # tempfile caches its directory
        try:
            with pytest.raises(ImageBakingException) as failed:
                build_debian_base(BlobCache(tmp_path / "blobs"))
        finally:
            tempfile.tempdir = None
    assert f"the disk holding {small} is full" in failed.value.message
    assert "point TMPDIR at a disk with room" in failed.value.message
    assert "Debian suite" not in failed.value.message
