"""sdist-only packages baked through the execution builder: built into wheels in the real
Docker Engine's BuildKit, with no network, cached, then layered like any wheel."""

import subprocess
from pathlib import Path

import pytest

from bakery.bake import bake_image
from bakery.buildkit import client as buildkit_client
from bakery.errors import ImageBakingException
from bakery.inspect import read_lock


def docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300)


def test_a_pure_python_sdist_bakes_imports_and_rebakes_without_building(bake_env, docker_engine):
    solves = buildkit_client.solves()
    # force: the engine (a shared target) may hold this spec's image from an earlier run
    baked = bake_image(pypi={"docopt": "==0.6.2"}, target="daemon", force=True)
    assert buildkit_client.solves() > solves, "no BuildKit solve built the sdist"
    locked = {p.name: p for p in read_lock(baked.image).packages}
    assert locked["docopt"].filename == "docopt-0.6.2.tar.gz"
    ran = docker(
        "run",
        "--rm",
        baked.image,
        baked.python_path,
        "-c",
        "import docopt; print(docopt.__version__)",
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "0.6.2"

    solves = buildkit_client.solves()
    again = bake_image(pypi={"docopt": "==0.6.2", "six": ""}, target="daemon", force=True)
    assert buildkit_client.solves() == solves, "the second bake built the sdist again"
    assert "six" in {p.name for p in read_lock(again.image).packages}


def test_no_build_keeps_the_sdist_error(bake_env):
    with pytest.raises(ImageBakingException, match="--no-build") as caught:
        bake_image(pypi={"docopt": "==0.6.2"}, build=False)
    assert "docopt" in caught.value.message


SETUPTOOLS = (
    '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
)
C_SOURCE = r"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *twice(PyObject *self, PyObject *args) {
    long value;
    if (!PyArg_ParseTuple(args, "l", &value)) return NULL;
    return PyLong_FromLong(2 * value);
}

static PyMethodDef methods[] = {{"twice", twice, METH_VARARGS, "2x"}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speed", NULL, -1, methods};
PyMODINIT_FUNC PyInit__speed(void) { return PyModule_Create(&module); }
"""


def _requirements(tmp_path: Path, index_url: str, line: str) -> Path:
    path = tmp_path / "requirements.txt"
    path.write_text(f"--extra-index-url {index_url}\n{line}\n")
    return path


def test_a_c_extension_sdist_compiles_in_buildkit_and_loads(bake_env, docker_engine, sdist_index):
    setup = (
        "from setuptools import Extension, setup\n"
        "setup(name='bakery-cext-demo', version='1.0', packages=['cext_demo'],\n"
        "      ext_modules=[Extension('cext_demo._speed', ['cext_demo/_speed.c'])])\n"
    )
    sdist_index.add_sdist(
        "bakery_cext_demo",
        "1.0",
        {
            "pyproject.toml": SETUPTOOLS,
            "setup.py": setup,
            "cext_demo/__init__.py": "from cext_demo._speed import twice\n",
            "cext_demo/_speed.c": C_SOURCE,
        },
    )
    requirements = _requirements(bake_env, sdist_index.url, "bakery-cext-demo==1.0")
    baked = bake_image(requirements_file=requirements, target="daemon", force=True)
    script = "import cext_demo, cext_demo._speed as s; print(cext_demo.twice(21), s.__file__)"
    ran = docker("run", "--rm", baked.image, baked.python_path, "-c", script)
    assert ran.returncode == 0, ran.stderr
    answer, location = ran.stdout.split()
    assert answer == "42"
    assert location.endswith(".so")


def test_a_setup_py_that_reaches_for_the_network_fails_clearly(bake_env, sdist_index):
    setup = (
        "import socket\n"
        "socket.create_connection(('deb.debian.org', 80), timeout=10)\n"
        "from setuptools import setup\n"
        "setup(name='bakery-net-demo', version='1.0')\n"
    )
    sdist_index.add_sdist("bakery_net_demo", "1.0", {"setup.py": setup})
    requirements = _requirements(bake_env, sdist_index.url, "bakery-net-demo==1.0")
    with pytest.raises(ImageBakingException) as caught:
        bake_image(requirements_file=requirements)
    message = caught.value.message
    assert "bakery_net_demo-1.0.tar.gz" in message
    assert "build the wheel (no network)" in message
    assert "create_connection" in message  # the log tail shows where it failed
    assert "without network" in message
    assert caught.value.kind.value == "invalid_input"


def test_buildkit_unreachable_is_a_typed_error_naming_it(bake_env, monkeypatch):
    from stagekit.errors import ErrorKind
    from tests.fixtures.services import free_port

    address = f"tcp://127.0.0.1:{free_port()}"
    monkeypatch.setenv("BAKERY_BUILDKIT", address)
    with pytest.raises(ImageBakingException) as caught:
        bake_image(pypi={"docopt": "==0.6.2"})
    assert caught.value.kind is ErrorKind.UNAVAILABLE
    assert address.removeprefix("tcp://") in caught.value.message
    assert "start buildkitd" in caught.value.message


def test_an_oci_layout_base_is_loaded_into_the_engine_for_the_build(
    bake_env, docker_engine, debian_base, monkeypatch
):
    from bakery.oci.layout import LayoutPublisher

    layout = LayoutPublisher(bake_env / "base-layout")
    layout.publish(debian_base, "bookworm")
    monkeypatch.setenv("BAKERY_BASE_IMAGE", f"oci-layout://{layout.directory}:bookworm")
    baked = bake_image(pypi={"docopt": "==0.6.2"}, target="daemon", force=True)
    ran = docker("run", "--rm", baked.image, baked.python_path, "-c", "import docopt")
    assert ran.returncode == 0, ran.stderr
    name = f"bakery.local/buildkit-base:{debian_base.digest.removeprefix('sha256:')}"
    assert docker("image", "inspect", name).returncode == 0
