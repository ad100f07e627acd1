"""bake_image end to end: real PyPI wheels, the real registry, the real Docker Engine."""

import json
import subprocess

import pytest

from bakery.bake import BakedImage, bake_image
from bakery.errors import ImageBakingException
from bakery.inspect import read_lock, read_manifest
from tests.fixtures.registry import TestRegistry


def registry_repo(registry: TestRegistry) -> tuple[str, str]:
    repo = registry.fresh_repo("baked")
    return f"{registry.host}/{repo}", repo


def uploaded_digests(registry: TestRegistry, repo: str) -> list[str]:
    return [
        request.query["digest"][0]
        for request in registry.requests(repo)
        if request.method == "PUT" and "/blobs/uploads/" in request.path and request.status == 201
    ]


def layer_digests(reference: str) -> list[str]:
    return [layer["digest"] for layer in read_manifest(reference)["layers"]]


def docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300)


def test_baked_image_runs_in_docker_with_entry_points(bake_env, registry, docker_engine):
    target, _ = registry_repo(registry)
    baked = bake_image(pypi={"flask": ">=2.0", "requests": ""}, registry=target)

    assert isinstance(baked, BakedImage)
    assert baked.image.startswith(f"{target}@sha256:")
    assert baked.python_path == "/opt/bakery/env/bin/python"
    script = "import flask, requests; print(flask.__name__, requests.__name__)"
    imported = docker("run", "--rm", baked.image, baked.python_path, "-c", script)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.split() == ["flask", "requests"]
    version = docker("run", "--rm", baked.image, "flask", "--version")
    assert version.returncode == 0, version.stderr
    assert "Flask" in version.stdout

    locked = {package.name: package for package in read_lock(baked.image).packages}
    assert {"flask", "requests", "werkzeug", "urllib3"} <= locked.keys()
    assert all(len(package.sha256) == 64 for package in locked.values())


def test_shared_packages_share_layers_and_one_more_package_uploads_one_layer(bake_env, registry):
    target, repo = registry_repo(registry)
    first = bake_image(pypi={"requests": ""}, registry=target)
    before = set(uploaded_digests(registry, repo))

    second = bake_image(pypi={"requests": "", "six": ""}, registry=target)
    new_uploads = set(uploaded_digests(registry, repo)) - before

    assert registry.mounts(repo) == 1  # the base layer, mounted from base/debian once
    first_layers, second_layers = set(layer_digests(first.image)), set(layer_digests(second.image))
    assert len(second_layers - first_layers) == 1  # six's layer; the env layer is shared
    assert new_uploads & second_layers == second_layers - first_layers
    assert len(new_uploads - second_layers) == 1  # the new image config


def test_identical_bake_neither_resolves_nor_uploads(bake_env, registry):
    target, repo = registry_repo(registry)
    first = bake_image(pypi={"six": ""}, registry=target)
    uploads = len(uploaded_digests(registry, repo))

    messages: list[str] = []
    again = bake_image(pypi={"six": ""}, registry=target, logger=messages.append)

    assert again == first
    assert not any(message.startswith("Resolving") for message in messages)
    assert any(message.startswith("Found baked image") for message in messages)
    assert len(uploaded_digests(registry, repo)) == uploads


def test_force_rebakes_to_the_same_digest(bake_env, registry):
    target, _ = registry_repo(registry)
    first = bake_image(pypi={"six": ""}, registry=target)
    messages: list[str] = []
    forced = bake_image(pypi={"six": ""}, registry=target, force=True, logger=messages.append)
    assert forced == first
    assert any(message.startswith("Resolving") for message in messages)


def test_python_matching_the_base_uses_the_base_interpreter(bake_env):
    default = bake_image(pypi={"six": ""})
    messages: list[str] = []
    explicit = bake_image(pypi={"six": ""}, python="3.11", logger=messages.append)
    assert explicit == default
    assert not any("managed CPython" in message for message in messages)


def test_requirements_file_with_markers_extras_and_includes(bake_env):
    (bake_env / "base.txt").write_text("idna>=3  # pinned by the platform team\n")
    requirements = bake_env / "requirements.txt"
    requirements.write_text("-r base.txt\nrequests[socks]==2.32.3\nsix ; python_version < '3.0'\n")
    baked = bake_image(requirements_file=str(requirements))
    names = {package.name for package in read_lock(baked.image).packages}
    assert {"idna", "requests", "pysocks"} <= names
    assert "six" not in names


def test_pyproject_dependencies(bake_env):
    pyproject = bake_env / "pyproject.toml"
    pyproject.write_text('[project]\nname = "app"\nversion = "1"\ndependencies = ["click>=8"]\n')
    baked = bake_image(pyproject_toml=str(pyproject))
    assert baked.image.startswith("oci-layout://")
    assert "click" in {package.name for package in read_lock(baked.image).packages}


def test_same_spec_in_two_empty_caches_gives_the_same_digest(
    tmp_path, monkeypatch, pushed_debian_base
):
    monkeypatch.setenv("BAKERY_BASE_IMAGE", pushed_debian_base)
    digests = []
    for run in ("one", "two"):
        monkeypatch.setenv("BAKERY_CACHE_DIR", str(tmp_path / run / "cache"))
        monkeypatch.setenv("BAKERY_IMAGE_LAYOUT", str(tmp_path / run / "layout"))
        digests.append(bake_image(pypi={"click": "==8.1.7", "six": ""}).image.rpartition("@")[2])
    assert digests[0] == digests[1]


def test_registry_stopped_mid_push_leaves_no_tag_and_a_retry_succeeds(bake_env, registry):
    target, repo = registry_repo(registry)

    def stop_when_publishing(message: str) -> None:
        if message.startswith("Publishing"):
            registry.stop()

    with pytest.raises(ImageBakingException) as raised:
        bake_image(pypi={"six": ""}, registry=target, logger=stop_when_publishing)
    assert registry.host in str(raised.value)
    registry.start()
    assert not [tag for tag in registry.tags(repo) if tag.startswith("spec-")]

    baked = bake_image(pypi={"six": ""}, registry=target)
    assert [tag for tag in registry.tags(repo) if tag.startswith("spec-")]
    assert "six" in {package.name for package in read_lock(baked.image).packages}


def test_daemon_target_runs_with_docker(bake_env, docker_engine):
    baked = bake_image(pypi={"six": ""}, target="daemon")
    ran = docker("run", "--rm", baked.image, baked.python_path, "-c", "import six")
    assert ran.returncode == 0, ran.stderr


@pytest.mark.parametrize(
    ("inputs", "match"),
    [
        ({}, "exactly one of pypi, requirements_file or pyproject_toml"),
        ({"pypi": {"six": ""}, "requirements_file": "r.txt"}, "got pypi and requirements_file"),
        ({"pypi": {"flask": ">>2"}}, "flask"),
        ({"requirements_file": "/no/such/requirements.txt"}, "/no/such/requirements.txt"),
        ({"conda": {"numpy": ">>1"}}, "not a conda match spec"),
        ({"conda": {"numpy": ""}, "environment": "env.yml"}, "got conda and environment"),
        ({"pypi": {"six": ""}, "channels": ["conda-forge"]}, "no conda source"),
        ({"pypi": {"six": ""}, "platform": "windows/amd64"}, "platform"),
        ({"pypi": {"six": ""}, "cache_name": "Bad Name!"}, "cache_name"),
        ({"pypi": {"six": ""}, "flavour": "x"}, "unknown option"),
        ({"pypi": {"six": ""}, "target": "registry"}, "needs a registry"),
    ],
)
def test_bad_inputs_raise_typed_errors(bake_env, inputs, match):
    with pytest.raises(ImageBakingException, match=match):
        bake_image(**inputs)


def test_resolution_failure_explains(bake_env):
    with pytest.raises(ImageBakingException, match="no-such-package-bakery-test"):
        bake_image(pypi={"no-such-package-bakery-test": ""})


def test_managed_python_unreachable_names_the_source(bake_env, monkeypatch):
    mirror = "http://127.0.0.1:9/python-mirror"
    monkeypatch.delenv("BAKERY_PYTHON_DOWNLOADS", raising=False)
    monkeypatch.setenv("BAKERY_PYTHON_MIRROR", mirror)
    with pytest.raises(ImageBakingException, match=f"CPython 3.12 .*from {mirror}: .*") as raised:
        bake_image(pypi={"six": ""}, python="3.12")
    assert "Set BAKERY_PYTHON_MIRROR to a reachable" in raised.value.message


def test_managed_python_unreachable_downloads_json_names_it(bake_env, monkeypatch):
    downloads = "http://127.0.0.1:9/python-downloads.json"
    monkeypatch.setenv("BAKERY_PYTHON_MIRROR", "http://127.0.0.1:9/python-mirror")
    monkeypatch.setenv("BAKERY_PYTHON_DOWNLOADS", downloads)
    with pytest.raises(ImageBakingException) as raised:
        bake_image(pypi={"six": ""}, python="3.12")
    message = raised.value.message
    assert f"cannot download CPython 3.12 for linux/amd64 from {downloads}: " in message
    assert "BAKERY_PYTHON_DOWNLOADS names a reachable uv downloads JSON" in message
    assert "python-mirror" not in message


def test_cli_bake_and_inspect(bake_env):
    from typer.testing import CliRunner

    from frontends.cli import app

    runner = CliRunner()
    baked = runner.invoke(app, ["bake", "--pypi", "six>=1.16", "--json"])
    assert baked.exit_code == 0, baked.output
    image = json.loads(baked.stdout)["image"]
    inspected = runner.invoke(app, ["inspect", image, "--json"])
    assert inspected.exit_code == 0, inspected.output
    assert "six" in {package["name"] for package in json.loads(inspected.stdout)["packages"]}

    bad = runner.invoke(app, ["bake", "--pypi", "six", "--pyproject", "x.toml"])
    assert bad.exit_code == 1
    assert "exactly one of" in bad.output and "Traceback" not in bad.output


def test_base_layers_are_mounted_not_downloaded_then_fetched_when_needed(bake_env, registry):
    target, repo = registry_repo(registry)
    base_blobs = bake_env / "cache" / "bake" / "blobs" / "blobs" / "sha256"
    baked = bake_image(pypi={"six": ""}, registry=target)
    base_layer = layer_digests(baked.image)[0]
    assert not (base_blobs / base_layer.removeprefix("sha256:")).exists()
    assert registry.mounts(repo) == 1

    local = bake_image(pypi={"six": ""}, target="layout")  # the layout needs the bytes
    assert (base_blobs / base_layer.removeprefix("sha256:")).exists()
    assert layer_digests(local.image)[0] == base_layer


def test_base_layers_travel_while_resolving_and_a_failed_resolution_writes_no_tag(
    bake_env, registry
):
    target, repo = registry_repo(registry)
    with pytest.raises(ImageBakingException, match="no-such-package-bakery-test"):
        bake_image(pypi={"no-such-package-bakery-test": ""}, registry=target)
    assert registry.mounts(repo) == 1  # the base layer was settled before resolution failed
    assert registry.tags(repo) == []

    bake_image(pypi={"six": ""}, registry=target)
    assert registry.mounts(repo) == 1  # found in place, not mounted again
    assert [tag for tag in registry.tags(repo) if tag.startswith("spec-")]
