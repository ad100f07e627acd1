"""bake_image with a managed CPython: a real build downloaded over HTTP by uv, baked onto the
Debian base (which has another Python), pushed to the real registry, run in the real Docker
Engine. The build comes from tests/fixtures/cpython_mirror.py via BAKERY_PYTHON_DOWNLOADS."""

import io
import json
import re
import resource
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from bakery.bake import bake_image
from bakery.errors import ImageBakingException
from bakery.image import BASE_LAYERS_ANNOTATION
from bakery.inspect import read_lock, read_manifest
from tests.fixtures.cpython_mirror import BASE_PYTHON, CPythonMirror
from tests.fixtures.registry import TestRegistry

SPEC = {"markupsafe": "", "six": ""}  # markupsafe's wheel is compiled per CPython minor
PROBE = """
import json, sys, sysconfig
import markupsafe, markupsafe._speedups, six
print(json.dumps({
    "version": "%d.%d" % sys.version_info[:2],
    "executable": sys.executable,
    "prefix": sys.prefix,
    "base_prefix": sys.base_prefix,
    "config_prefix": sysconfig.get_config_var("prefix"),
    "speedups": markupsafe._speedups.__file__,
    "escaped": str(markupsafe.escape("<b>")),
    "six": six.__file__,
}))
"""


@pytest.fixture
def managed_env(tmp_path, monkeypatch, pushed_debian_base, cpython_mirror) -> CPythonMirror:
    """A fresh bakery cache, the test registry's Debian base, builds from the fixture server."""
    monkeypatch.setenv("BAKERY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("BAKERY_IMAGE_LAYOUT", str(tmp_path / "layout"))
    monkeypatch.setenv("BAKERY_BASE_IMAGE", pushed_debian_base)
    monkeypatch.setenv("BAKERY_PYTHON_DOWNLOADS", cpython_mirror.downloads_url)
    monkeypatch.delenv("BAKERY_PYTHON_MIRROR", raising=False)
    monkeypatch.delenv("BAKERY_REGISTRY", raising=False)
    return cpython_mirror


def registry_blob(registry: TestRegistry, repo: str, digest: str) -> bytes:
    response = httpx.get(f"{registry.url}/v2/{repo}/blobs/{digest}", follow_redirects=True)
    response.raise_for_status()
    return response.content


def test_managed_cpython_runs_in_docker_and_bakes_reproducibly(
    managed_env, registry, docker_engine, tmp_path, monkeypatch
):
    mirror = managed_env
    repo = registry.fresh_repo("managed")
    downloads = mirror.archive_downloads()
    messages: list[str] = []
    baked = bake_image(
        pypi=SPEC, python=mirror.version, registry=f"{registry.host}/{repo}", logger=messages.append
    )

    assert any(f"managed CPython {mirror.version}" in message for message in messages)
    assert mirror.archive_downloads() == downloads + 1
    assert baked.python_path == "/opt/bakery/env/bin/python"

    # It runs: the managed interpreter, as the venv's base, with a compiled wheel for it.
    ran = docker_engine.run("run", "--rm", baked.image, baked.python_path, "-c", PROBE)
    facts = json.loads(ran.stdout)
    minor = mirror.version.replace(".", "")
    assert facts["version"] == mirror.version != BASE_PYTHON
    assert facts["executable"] == baked.python_path
    assert facts["prefix"] == "/opt/bakery/env"
    assert facts["base_prefix"] == facts["config_prefix"] == "/opt/bakery/python"
    assert facts["speedups"].startswith("/opt/bakery/env/lib/python")
    assert facts["speedups"].endswith(f".cpython-{minor}-x86_64-linux-gnu.so")
    assert facts["escaped"] == "&lt;b&gt;"
    assert facts["six"].startswith(f"/opt/bakery/env/lib/python{mirror.version}/site-packages/")

    # Its bytecode is for the managed minor: compiled on the host by the build it downloaded
    # (no second download), loaded by the image's interpreter without writing anything.
    traced = docker_engine.run(
        "run", "--rm", "--read-only", baked.image, baked.python_path, "-v", "-c", "import six"
    )
    site = facts["six"].rpartition("/")[0]
    pyc = f"{site}/__pycache__/six.cpython-{minor}.pyc"
    assert f"# code object from '{pyc}'" in traced.stderr.decode()

    # The lock chose wheels for the managed Python, not the base's.
    lock = read_lock(baked.image)
    assert lock.python == mirror.version
    wheels = {package.name: package.filename for package in lock.packages}
    assert wheels.keys() == {"markupsafe", "six"}
    assert f"-cp{minor}-cp{minor}-manylinux" in wheels["markupsafe"]

    # The manifest: base, then the CPython layer holding the interpreter, packages, env.
    manifest = read_manifest(baked.image)
    base_layers = int(manifest["annotations"][BASE_LAYERS_ANNOTATION])
    assert len(manifest["layers"]) == base_layers + 4
    config = json.loads(registry_blob(registry, repo, manifest["config"]["digest"]))
    created_by = [entry["created_by"] for entry in config["history"]][base_layers:]
    assert created_by[0] == f"bakery: cpython {mirror.version}"
    cpython_layer = registry_blob(registry, repo, manifest["layers"][base_layers]["digest"])
    with tarfile.open(fileobj=io.BytesIO(cpython_layer), mode="r:gz") as layer:
        names = set(layer.getnames())
    assert f"opt/bakery/python/bin/python{mirror.version}" in names
    assert f"opt/bakery/python/lib/libpython{mirror.version}.so.1.0" in names

    # Reproducible: from an empty cache (the build downloaded again), the same image.
    monkeypatch.setenv("BAKERY_CACHE_DIR", str(tmp_path / "second-cache"))
    again = bake_image(pypi=SPEC, python=mirror.version, registry=f"{registry.host}/{repo}-2")
    assert mirror.archive_downloads() == downloads + 2
    assert again.image.rpartition("@")[2] == baked.image.rpartition("@")[2]


def test_downloads_json_without_the_version_names_it(managed_env):
    missing = "3.10" if managed_env.version != "3.10" else "3.9"
    with pytest.raises(ImageBakingException) as raised:
        bake_image(pypi={"six": ""}, python=missing)
    message = raised.value.message
    assert f"cannot download CPython {missing} for linux/amd64" in message
    assert f"from {managed_env.downloads_url}" in message
    assert "BAKERY_PYTHON_DOWNLOADS" in message
    assert f"base image that has Python {missing}" in message


@contextmanager
def open_files_limit(limit: int) -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(limit, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_managed_cpython_layer_is_cached_per_source(managed_env, monkeypatch):
    before = managed_env.archive_downloads()
    with tarfile.open(managed_env.archive) as archive:
        files = sum(member.isfile() for member in archive)
    with open_files_limit(files // 2):  # the build's files are never all open at once
        first = bake_image(pypi={"six": ""}, python=managed_env.version, target="layout")
    assert managed_env.archive_downloads() == before + 1
    again = bake_image(pypi={"six": ""}, python=managed_env.version, target="layout", force=True)
    assert again == first
    assert managed_env.archive_downloads() == before + 1  # the cached layer, no download

    elsewhere = managed_env.downloads_url.replace("downloads.json", "elsewhere.json")  # a 404
    monkeypatch.setenv("BAKERY_PYTHON_DOWNLOADS", elsewhere)
    with pytest.raises(ImageBakingException, match=re.escape(f"from {elsewhere}")):
        bake_image(pypi={"six": ""}, python=managed_env.version, target="layout", force=True)
