"""system_packages (`--apt`): apt in the real engine's BuildKit on the Debian base, the added
files one cached layer under the package layers."""

import json
import subprocess

import pytest

from bakery.bake import bake_image
from bakery.buildkit import client as buildkit_client
from bakery.errors import ImageBakingException
from bakery.inspect import fetch_blobs, read_baked
from stagekit.errors import ErrorKind


def docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300)


def test_libgomp1_is_found_by_ldconfig_and_its_layer_is_reused(bake_env, docker_engine):
    # force: the engine (a shared target) may hold this spec's image from an earlier run
    baked = bake_image(pypi={"six": ""}, system_packages=["libgomp1"], target="daemon", force=True)
    found = docker("run", "--rm", baked.image, "ldconfig", "-p")
    assert found.returncode == 0, found.stderr
    assert "libgomp.so.1" in found.stdout
    listed = docker("run", "--rm", baked.image, "dpkg-query", "-W", "-f=${Status}", "libgomp1")
    assert listed.stdout == "install ok installed", listed.stdout + listed.stderr

    solves = buildkit_client.solves()
    again = bake_image(pypi={"six": "", "docopt": "==0.6.2"}, system_packages=["libgomp1"])
    assert buildkit_client.solves() == solves + 1  # docopt's sdist only: apt's layer is cached
    info = read_baked(again.image)
    (config,) = fetch_blobs(again.image, [info.config_digest])
    history = json.loads(config.read_bytes())["history"]
    ours = [h["created_by"] for h in history if h.get("created_by", "").startswith("bakery: ")]
    assert ours[0] == "bakery: apt: libgomp1", ours  # right on the base, under the packages


def test_the_package_list_is_part_of_the_spec_id(bake_env):
    from bakery.request import BakeRequest

    plain = BakeRequest(pypi={"six": ""}).spec("sha256:" + "1" * 64, "3.11")
    with_apt = BakeRequest(pypi={"six": ""}, system_packages=("libgomp1",)).spec(
        "sha256:" + "1" * 64, "3.11"
    )
    assert plain.spec_id != with_apt.spec_id
    same = BakeRequest(pypi={"six": ""}, system_packages=("libgomp1", "libgomp1")).spec(
        "sha256:" + "1" * 64, "3.11"
    )
    assert same.spec_id == with_apt.spec_id


def test_a_misspelled_apt_package_is_a_typed_error_naming_it(bake_env):
    with pytest.raises(ImageBakingException) as caught:
        bake_image(pypi={"six": ""}, system_packages=["libgompp1"])
    assert caught.value.kind is ErrorKind.INVALID_INPUT
    assert "apt knows no package libgompp1" in caught.value.message
    assert "Unable to locate package libgompp1" in caught.value.message  # the log tail


@pytest.mark.parametrize("bad", ["LibGomp1", "lib gomp", "x", "-rf"])
def test_a_malformed_package_name_is_refused_before_any_build(bake_env, bad):
    with pytest.raises(ImageBakingException, match="system package"):
        bake_image(pypi={"six": ""}, system_packages=[bad])


def test_the_cli_takes_apt_and_no_build(bake_env):
    from typer.testing import CliRunner

    from frontends.cli import app

    runner = CliRunner()
    baked = runner.invoke(app, ["bake", "--pypi", "six", "--apt", "libgomp1", "--json"])
    assert baked.exit_code == 0, baked.output
    image = json.loads(baked.stdout)["image"]
    info = read_baked(image)
    (config,) = fetch_blobs(image, [info.config_digest])
    history = json.loads(config.read_bytes())["history"]
    assert any(h.get("created_by") == "bakery: apt: libgomp1" for h in history)

    refused = runner.invoke(app, ["bake", "--pypi", "docopt==0.6.2", "--no-build"])
    assert refused.exit_code == 1
    assert "docopt" in refused.output and "--no-build" in refused.output
    assert "Traceback" not in refused.output


def test_a_base_without_apt_is_a_typed_error_saying_so(bake_env, registry, debian_base, tmp_path):
    """The Debian base with apt-get and /etc/debian_version whited out: a shell, no apt."""
    import gzip
    import io
    import tarfile

    from bakery.buildkit.apt import build_apt_layer
    from bakery.oci.cache import BlobCache
    from bakery.oci.model import OCI_CONFIG, OCI_LAYER_GZIP, Image, canonical_json, sha256_digest
    from bakery.oci.remote import RegistryPublisher
    from bakery.spec import Spec
    from stagekit.cancel import CancelToken
    from stagekit.progress import Reporter

    cache = BlobCache(tmp_path / "blobs")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for whiteout in ("usr/bin/.wh.apt-get", "etc/.wh.debian_version"):
            tar.addfile(tarfile.TarInfo(whiteout))
    diff_id = sha256_digest(raw.getvalue())
    staged = cache.temp_path()
    staged.write_bytes(gzip.compress(raw.getvalue(), mtime=0))
    layer = cache.layer(cache.put_file(staged), OCI_LAYER_GZIP, diff_id)
    config = json.loads(debian_base.config.path.read_bytes())
    config["rootfs"]["diff_ids"].append(diff_id)
    config_blob = cache.blob(cache.put_bytes(canonical_json(config)), OCI_CONFIG)
    no_apt = Image(config=config_blob, layers=(*debian_base.layers, layer))
    with RegistryPublisher(f"{registry.host}/{registry.fresh_repo('no-apt')}") as publisher:
        reference = publisher.publish(no_apt, "latest")

    spec = Spec(
        requirements=("six",),
        base_image_digest=reference.split("@")[1],
        system_packages=("libgomp1",),
    )
    with pytest.raises(ImageBakingException) as caught:
        build_apt_layer(spec, reference, tmp_path / "cache", Reporter("test"), CancelToken())
    assert caught.value.kind is ErrorKind.INVALID_INPUT
    assert "need a Debian-based base image with apt-get" in caught.value.message
