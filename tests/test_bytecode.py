"""Baked images ship their packages' bytecode: a read-only container imports from the shipped
.pyc files. Real PyPI wheels, the real registry, the real Docker Engine."""

import json
import re
import tarfile
from pathlib import Path

from bakery.bake import bake_image
from bakery.base.python import EXECUTABLE_LABEL, VERSION_LABEL
from bakery.image import BASE_LAYERS_ANNOTATION
from bakery.inspect import read_manifest
from bakery.oci.cache import BlobCache
from bakery.oci.layout import LayoutPublisher
from bakery.oci.model import OCI_CONFIG, Image, canonical_json

SITE = "/opt/bakery/env/lib/python3.11/site-packages/"
# `python -v` says where each module's code came from: its pyc, or its source it compiled.
_CODE_FROM = re.compile(r"^# code object from '?([^']+?)'?$", re.M)
IMPORT = "import sys; assert not sys.flags.dont_write_bytecode; import flask, requests"


def test_read_only_container_imports_every_package_module_from_its_shipped_pyc(
    bake_env, registry, docker_engine
):
    baked = bake_image(
        pypi={"flask": "", "requests": ""}, registry=f"{registry.host}/{registry.fresh_repo()}"
    )
    ran = docker_engine.run(
        "run", "--rm", "--read-only", baked.image, baked.python_path, "-v", "-c", IMPORT
    )
    trace = ran.stderr.decode()
    loaded = [path for path in _CODE_FROM.findall(trace) if path.startswith(SITE)]
    assert len(loaded) > 50  # flask, werkzeug, jinja2, requests, urllib3, ... modules
    compiled_at_start = [path for path in loaded if not path.endswith(".cpython-311.pyc")]
    assert compiled_at_start == []
    assert "could not create" not in trace  # nothing tried to write a pyc


def labelled_base(debian_base: Image, directory: Path, python: str) -> str:
    """The Debian base with labels saying its Python is `python`, in a layout at `directory`."""
    blobs = BlobCache(directory / "blobs-cache")
    config = json.loads(debian_base.config.path.read_bytes())
    labels = config.setdefault("config", {}).setdefault("Labels", {})
    labels |= {VERSION_LABEL: python, EXECUTABLE_LABEL: "/usr/bin/python3.11"}
    digest = blobs.put_bytes(canonical_json(config))
    image = Image(config=blobs.blob(digest, OCI_CONFIG), layers=debian_base.layers)
    layout = LayoutPublisher(directory / "layout")
    layout.publish(image, "labelled")
    return f"oci-layout://{layout.directory}:labelled"


def test_without_a_host_python_of_the_image_minor_the_bake_says_so_and_ships_no_pyc(
    bake_env, debian_base, monkeypatch
):
    monkeypatch.delenv("BAKERY_PYTHON_DOWNLOADS", raising=False)
    monkeypatch.setenv("BAKERY_PYTHON_MIRROR", "http://127.0.0.1:9/python-mirror")
    base = labelled_base(debian_base, bake_env / "base", "3.99")  # no such CPython anywhere
    messages: list[str] = []
    baked = bake_image(pypi={"six": ""}, base_image=base, logger=messages.append)

    assert any(
        message.startswith("warning: Package layers will have no bytecode (.pyc)")
        and "CPython 3.99" in message
        for message in messages
    )
    manifest = read_manifest(baked.image)
    ours = manifest["layers"][int(manifest["annotations"][BASE_LAYERS_ANNOTATION]) :]
    layout = Path(baked.image.removeprefix("oci-layout://").rpartition("@")[0])
    names = []
    for layer in ours:
        blob = layout / "blobs" / "sha256" / layer["digest"].removeprefix("sha256:")
        with tarfile.open(blob) as tar:
            names += tar.getnames()
    assert any(name.endswith("/six.py") for name in names)
    assert not any(name.endswith(".pyc") for name in names)
