"""The ways to ask for a conda env: environment.yml, BAKERY_CONDA_CHANNELS, the CLI's flags,
`bakery lock` and `bakery inspect --conda-lock`; and the registry sees one upload per new
conda package."""

import asyncio
import json
import socket

import pytest
from typer.testing import CliRunner

from bakery.bake import bake_image
from bakery.errors import ImageBakingException
from bakery.inspect import read_lock, read_manifest
from bakery.locking import lock_request
from bakery.request import BakeRequest
from frontends.cli import app
from stagekit.errors import ErrorKind


def test_an_environment_file_with_a_pip_section(bake_env, conda_channel, tmp_path):
    environment = tmp_path / "environment.yml"
    environment.write_text(
        "name: demo\n"
        f"channels:\n  - {conda_channel.url}\n"
        "dependencies:\n"
        "  - python=3\n"
        "  - libdemo>=1\n"
        "  - six\n"
        "  - pip:\n"
        "    - python-dateutil==2.9.0.post0\n"
    )
    baked = bake_image(environment=environment)
    lock = read_lock(baked.image)
    assert [p.name for p in lock.conda] == ["libdemo", "python", "six"]
    assert [p.name for p in lock.packages] == ["python-dateutil"]
    assert lock.channels == (conda_channel.url,)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("dependencies: [python, {pip: [-e .]}]\n", "not a requirement"),
        ("dependencies: [python, 3]\n", "neither a match spec nor a pip"),
        ("channels: conda-forge\ndependencies: [python]\n", "channels must be a list"),
        ("name: empty\n", "lists no conda dependencies"),
        ("dependencies: [python, 'numpy >>1']\n", "not a conda match spec"),
    ],
)
def test_bad_environment_files_are_refused(bake_env, tmp_path, text, match):
    environment = tmp_path / "environment.yml"
    environment.write_text(text)
    with pytest.raises(ImageBakingException, match=match):
        bake_image(environment=environment)


def test_channels_from_the_environment_variable_and_refused_credentials(
    bake_env, conda_channel, monkeypatch
):
    monkeypatch.setenv("BAKERY_CONDA_CHANNELS", f"{conda_channel.url}, {conda_channel.file_url}")
    baked = bake_image(conda={"libdemo": ""})
    lock = read_lock(baked.image)
    assert lock.channels == (conda_channel.url, conda_channel.file_url)
    # Strict priority: the package comes from the first channel that has it.
    assert lock.conda[0].url.startswith(conda_channel.url)
    with pytest.raises(ImageBakingException, match="RATTLER_AUTH_FILE"):
        bake_image(conda={"libdemo": ""}, channels=["https://me:secret@mirror.test/ch"])


def test_one_more_conda_package_uploads_one_more_layer(bake_env, conda_channel, registry):
    repo = registry.fresh_repo("conda")
    target = f"{registry.host}/{repo}"

    def uploads() -> set[str]:
        return {
            request.query["digest"][0]
            for request in registry.requests(repo)
            if request.method == "PUT" and "/blobs/uploads/" in request.path
        }

    channels = [conda_channel.url]
    first = bake_image(conda={"python": "", "libdemo": ""}, channels=channels, registry=target)
    before = uploads()
    second = bake_image(
        conda={"python": "", "libdemo": "", "demo-cli": ""},
        channels=[conda_channel.url],
        registry=target,
    )
    new = uploads() - before
    first_layers = {layer["digest"] for layer in read_manifest(first.image)["layers"]}
    second_layers = {layer["digest"] for layer in read_manifest(second.image)["layers"]}
    assert len(second_layers - first_layers) == 1  # demo-cli's layer
    config = read_manifest(second.image)["config"]["digest"]
    assert new == (second_layers - first_layers) | {config}


def test_cli_bake_lock_and_inspect(bake_env, conda_channel, tmp_path):
    runner = CliRunner()
    channel = ["--channel", conda_channel.url]
    baked = runner.invoke(
        app, ["bake", "--conda", "python", "--conda", "libdemo=1.0", *channel, "--json"]
    )
    assert baked.exit_code == 0, baked.output
    image = json.loads(baked.stdout)["image"]

    lockfile = tmp_path / "conda-lock.yml"
    locked = runner.invoke(
        app, ["lock", "--conda", "python", "--conda", "libdemo=1.0", *channel, "-o", lockfile]
    )
    assert locked.exit_code == 0, locked.output
    shown = runner.invoke(app, ["inspect", image, "--conda-lock"])
    assert shown.exit_code == 0, shown.output
    assert shown.stdout == lockfile.read_text()

    table = runner.invoke(app, ["inspect", image])
    assert "libdemo (conda)" in table.stdout and "1.0 bakery_0" in table.stdout

    again = runner.invoke(app, ["bake", "--conda-lock", str(lockfile), "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["image"] == image

    bad = runner.invoke(app, ["bake", "--conda", "=1.0"])
    assert bad.exit_code == 1 and "NAME=SPEC" in bad.output
    as_json = runner.invoke(app, ["inspect", image, "--json"])
    assert [p["name"] for p in json.loads(as_json.stdout)["conda"]] == ["libdemo", "python"]


def test_a_bake_inside_a_running_event_loop(bake_env, conda_channel):
    async def in_a_notebook() -> str:
        return bake_image(conda={"libdemo": ""}, channels=[conda_channel.url]).image

    assert read_lock(asyncio.run(in_a_notebook())).conda[0].name == "libdemo"


def test_an_unreachable_channel_is_unavailable_and_named(bake_env, conda_channel):
    with socket.socket() as unused:  # a loopback port nothing listens on
        unused.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{unused.getsockname()[1]}/channel"
    with pytest.raises(ImageBakingException) as caught:
        bake_image(conda={"libdemo": ""}, channels=[closed])
    assert caught.value.kind is ErrorKind.UNAVAILABLE
    assert closed in caught.value.message


def test_cuda_is_assumed_only_when_asked_for(bake_env, conda_channel):
    with pytest.raises(ImageBakingException, match="__cuda"):
        lock_request(BakeRequest(conda={"needs-cuda": ""}, channels=[conda_channel.url]))
    locked = lock_request(
        BakeRequest(conda={"needs-cuda": ""}, channels=[conda_channel.url], cuda="12.2")
    )
    assert [p.name for p in locked.lock.conda] == ["needs-cuda"]
    with pytest.raises(ImageBakingException, match="not a CUDA version"):
        bake_image(conda={"needs-cuda": ""}, cuda="twelve")
    with pytest.raises(ImageBakingException, match="cuda= is for conda packages"):
        bake_image(pypi={"six": ""}, cuda="12.2")


LOCKFILE = """\
version: 1
metadata:
  content_hash: {{linux-64: x}}
  channels: [{{url: conda-forge, used_env_vars: []}}]
  platforms: [{platform}]
  sources: [environment.yml]
package:
- name: libdemo
  version: '1.0'
  manager: {manager}
  platform: {platform}
  dependencies: {{}}
  url: https://conda.anaconda.org/conda-forge/{platform}/libdemo-1.0-bakery_0.tar.bz2
  hash: {{md5: 876e6940f2ced81b82a13ad4b91851ee{sha256}}}
  category: main
  optional: false
"""


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"platform": "osx-arm64"}, "has no packages for linux-64 \\(it has osx-arm64\\)"),
        ({"manager": "pip"}, "pins PyPI packages \\(libdemo\\)"),
        ({"sha256": ""}, "gives no sha256 for 'libdemo'"),
        ({"text": "version: 7\n"}, "not a conda-lock file conda-lock can read"),
        ({"sha256": ", sha256: 5"}, "package.0.hash.sha256: Input should be a valid string"),
        ({"text": "- a list\n"}, "not a conda-lock file conda-lock can read"),
    ],
)
def test_bad_conda_lock_files_are_refused(bake_env, tmp_path, fields, match):
    values = {"platform": "linux-64", "manager": "conda", "sha256": f", sha256: '{'0' * 64}'"}
    values |= fields
    lockfile = tmp_path / "conda-lock.yml"
    lockfile.write_text(values.pop("text", None) or LOCKFILE.format(**values))
    with pytest.raises(ImageBakingException, match=match):
        bake_image(conda_lock=lockfile)
