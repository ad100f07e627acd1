"""bake_image's inputs end to end: what may reach uv, the CLI's --pypi, markers that leave
nothing to install. Real uv, real PyPI, the real registry."""

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from bakery.bake import bake_image
from bakery.errors import ImageBakingException
from bakery.inspect import read_lock
from frontends.cli import app
from tests.test_bake import registry_repo

SIX_116 = (
    "https://files.pythonhosted.org/packages/d9/5a/e7c31adbe875f2abbb91bd84cf2dc52d792b5a01"
    "506781dbcf25c91daf11/six-1.16.0-py2.py3-none-any.whl"
)


@contextmanager
def request_log() -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP server that answers 404 and records every path asked for."""
    paths: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            paths.append(self.path)
            self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", paths
    finally:
        server.shutdown()
        server.server_close()


def test_a_line_break_in_a_dependency_cannot_smuggle_an_index_to_uv(bake_env):
    with request_log() as (index, asked):
        wheel = f"{index}/six-1.16.0-py2.py3-none-any.whl"
        dependency = f"six @ {wheel}\n--index-url={index}/simple\nsix"
        pyproject = bake_env / "pyproject.toml"
        pyproject.write_text(f"[project]\ndependencies = [{json.dumps(dependency)}]\n")
        with pytest.raises(ImageBakingException, match=r"non-printable character U\+000A"):
            bake_image(pyproject_toml=pyproject)
    assert asked == []  # uv never ran, so it never asked the injected index anything


def test_an_empty_base_image_is_refused_not_taken_for_the_default(bake_env):
    with pytest.raises(ImageBakingException, match="base_image is empty"):
        bake_image(pypi={"six": ""}, base_image="")


def test_markers_that_exclude_every_requirement_bake_nothing(bake_env, registry):
    target, repo = registry_repo(registry)
    with pytest.raises(
        ImageBakingException, match=r"No requirement applies to linux/amd64 and Python 3\.11"
    ):
        bake_image(pypi={"six": "; sys_platform == 'win32'"}, registry=target)
    assert not [tag for tag in registry.tags(repo) if tag.startswith("spec-")]


def test_cli_keeps_a_direct_wheel_link(bake_env):
    baked = CliRunner().invoke(app, ["bake", "--pypi", f"six @ {SIX_116}", "--json"])
    assert baked.exit_code == 0, baked.output
    (six,) = read_lock(json.loads(baked.stdout)["image"]).packages
    assert (six.name, six.version, six.url) == ("six", "1.16.0", SIX_116)


def test_cli_refuses_a_package_given_twice(bake_env):
    twice = CliRunner().invoke(app, ["bake", "--pypi", "six", "--pypi", "Six>=1"])
    assert twice.exit_code == 1
    assert "more than once" in twice.output and "Traceback" not in twice.output
