"""Conda bakes end to end: the test channel's real packages, solved and installed by rattler,
images run by the real Docker Engine."""

import json
import subprocess
from pathlib import Path

import pytest

from bakery.bake import bake_image
from bakery.errors import ImageBakingException
from bakery.inspect import read_lock, read_manifest
from bakery.locking import lock_request
from bakery.oci.cache import BlobCache
from bakery.oci.layout import LayoutPublisher
from bakery.oci.model import OCI_CONFIG, Image, canonical_json
from bakery.request import BakeRequest
from stagekit.errors import ErrorKind

PREFIX = "/opt/bakery/env"


def docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300)


def run(image: str, *command: str) -> str:
    done = docker("run", "--rm", image, *command)
    assert done.returncode == 0, done.stderr
    return done.stdout


def bake_layers(reference: str) -> list[str]:
    manifest = read_manifest(reference)
    base = int(manifest["annotations"]["org.bakery.base.layers"])
    return [layer["digest"] for layer in manifest["layers"][base:]]


def test_conda_image_runs_in_docker(bake_env, conda_channel, docker_engine):
    baked = bake_image(
        conda={"python": "", "libdemo": "1.0", "demo-cli": ""},
        channels=[conda_channel.url],
        target="daemon",
    )
    assert baked.python_path == f"{PREFIX}/bin/python"
    # The ELF finds libdemo through its rewritten RUNPATH; both placeholders hold the prefix.
    assert run(baked.image, f"{PREFIX}/bin/demo") == f"libdemo is installed at {PREFIX}\n"
    minor = conda_channel.python_version.rpartition(".")[0]
    assert run(baked.image, "demo-cli") == f"demo-cli runs on {PREFIX}/bin/python{minor}\n"
    records = f"glob.glob('{PREFIX}/conda-meta/*.json')"
    script = (
        "import demo_cli, sysconfig, os, json, glob;"
        "print(sysconfig.get_config_var('prefix'), os.environ['CONDA_PREFIX']);"
        f"print(sorted(json.load(open(p))['name'] for p in {records}))"
    )
    prefix_line, records = run(baked.image, baked.python_path, "-c", script).splitlines()
    assert prefix_line == f"{PREFIX} {PREFIX}"
    assert records == str(["demo-cli", "libdemo", "python"])
    # The noarch package's module ships its bytecode, compiled for the env's python.
    cached = "import demo_cli, os; print(os.path.isfile(demo_cli.__cached__), demo_cli.__cached__)"
    exists, pyc = run(baked.image, baked.python_path, "-B", "-c", cached).split()
    assert exists == "True" and pyc.startswith(f"{PREFIX}/lib/python{minor}/site-packages/")

    lock = read_lock(baked.image)
    assert lock.kind == "conda"
    assert [p.name for p in lock.conda] == ["demo-cli", "libdemo", "python"]
    assert lock.python == minor
    assert lock.channels == (conda_channel.url,)
    # One layer per conda package, then the env's top layer.
    assert len(bake_layers(baked.image)) == 4


def test_envs_that_share_packages_share_their_layers(bake_env, conda_channel):
    small = bake_image(conda={"python": "", "libdemo": ""}, channels=[conda_channel.url])
    large = bake_image(conda={"python": "", "libdemo": "", "six": ""}, channels=[conda_channel.url])
    shared = set(bake_layers(small.image)) & set(bake_layers(large.image))
    assert len(bake_layers(large.image)) == len(bake_layers(small.image)) + 1
    assert len(shared) == len(bake_layers(small.image))  # python, libdemo and the env layer
    again = bake_image(conda={"python": "", "libdemo": ""}, channels=[conda_channel.url])
    assert again.image == small.image


def test_a_file_channel_bakes_too(bake_env, conda_channel):
    baked = bake_image(conda={"libdemo": ""}, channels=[conda_channel.file_url])
    (package,) = read_lock(baked.image).conda
    assert package.url.startswith(conda_channel.file_url)
    assert package.filename == "libdemo-1.0-bakery_0.tar.bz2"


def test_unsatisfiable_specs_explain_why(bake_env, conda_channel):
    with pytest.raises(ImageBakingException) as caught:
        bake_image(conda={"libdemo": ">=2"}, channels=[conda_channel.url])
    assert caught.value.kind is ErrorKind.INVALID_INPUT
    assert "cannot be satisfied for linux-64" in caught.value.message
    assert "libdemo" in caught.value.message
    # The base image's glibc (Debian bookworm: 2.36) is what the solver assumes.
    with pytest.raises(ImageBakingException, match=r"__glibc 2\.36") as caught:
        bake_image(conda={"needs-new-glibc": ""}, channels=[conda_channel.url])
    assert "__glibc >=99" in caught.value.message


def test_a_package_with_a_post_link_script_is_refused_by_name(bake_env, conda_channel):
    with pytest.raises(ImageBakingException, match=r"needs-postlink \(bin/\.needs-postlink-post"):
        bake_image(conda={"needs-postlink": ""}, channels=[conda_channel.url])


def test_the_conda_lock_file_bakes_the_same_image(bake_env, conda_channel, tmp_path):
    specs = {"python": "", "libdemo": "", "demo-cli": ""}
    baked = bake_image(conda=specs, channels=[conda_channel.url])
    locked = lock_request(BakeRequest(conda=specs, channels=[conda_channel.url]))
    assert locked.lock.to_json() == read_lock(baked.image).to_json()
    lockfile = tmp_path / "conda-lock.yml"
    lockfile.write_text(locked.text)
    assert "manager: conda" in locked.text and "platform: linux-64" in locked.text

    from_lock = bake_image(conda_lock=lockfile)
    assert from_lock.image == baked.image


def arm64_base(debian_base: Image, directory: Path) -> str:
    """The test base relabelled as an arm64 image whose glibc is 2.36 (nothing of it runs: a
    solve only reads its platform and glibc)."""
    config = json.loads(debian_base.config.path.read_bytes())
    config["architecture"] = "arm64"
    config.setdefault("config", {}).setdefault("Labels", {})["org.bakery.glibc"] = "2.36"
    blobs = BlobCache(directory / "blobs")
    blob = blobs.blob(blobs.put_bytes(canonical_json(config)), OCI_CONFIG)
    image = Image(config=blob, layers=debian_base.layers)
    return LayoutPublisher(directory / "layout").publish(image, "arm64")


def test_an_arm64_solve_picks_linux_aarch64_packages(
    bake_env, conda_channel, debian_base, tmp_path
):
    request = BakeRequest(
        conda={"libdemo": ""},
        channels=[conda_channel.url],
        platform="linux/arm64",
        base_image=arm64_base(debian_base, tmp_path / "arm64"),
    )
    (package,) = lock_request(request).lock.conda
    assert (package.subdir, package.name) == ("linux-aarch64", "libdemo")
    assert "/linux-aarch64/" in package.url


def test_conda_and_pypi_in_one_bake(bake_env, conda_channel, docker_engine):
    baked = bake_image(
        conda={"python": "", "six": ""},
        pypi={"python-dateutil": "==2.9.0.post0"},
        channels=[conda_channel.url],
        target="daemon",
    )
    lock = read_lock(baked.image)
    # uv resolved python-dateutil and six; six is conda's, so no wheel of it was layered.
    assert [p.name for p in lock.packages] == ["python-dateutil"]
    assert [p.name for p in lock.conda] == ["python", "six"]
    script = "import dateutil.tz, six; print(six.__version__, six.__file__)"
    version, where = run(baked.image, baked.python_path, "-c", script).split()
    assert version == conda_channel.six_version
    minor = conda_channel.python_version.rpartition(".")[0]
    assert where == f"{PREFIX}/lib/python{minor}/site-packages/six.py"
    assert json.loads(run(baked.image, "sh", "-c", 'echo \\"$CONDA_PREFIX\\"')) == PREFIX


def test_two_empty_caches_bake_the_same_digest(bake_env, conda_channel, monkeypatch):
    specs = {"python": "", "libdemo": "", "six": ""}
    first = bake_image(conda=specs, channels=[conda_channel.url])
    monkeypatch.setenv("BAKERY_CACHE_DIR", str(bake_env / "other-cache"))
    monkeypatch.setenv("BAKERY_IMAGE_LAYOUT", str(bake_env / "other-layout"))
    second = bake_image(conda=specs, channels=[conda_channel.url])
    assert first.image.split("@")[1] == second.image.split("@")[1]
    # What rattler staged is removed once the bake has returned.
    from bakery.conda.layers import staging_removed
    from bakery.config import bake_cache_dir

    staging_removed()
    assert list((bake_cache_dir() / "conda" / "staging").iterdir()) == []


def test_the_layer_budget_merges_the_smallest_conda_layers(bake_env, conda_channel):
    from bakery.config import bake_cache_dir
    from bakery.ecosystems.conda import Conda
    from stagekit.cancel import CancelToken
    from stagekit.progress import Reporter

    locked = lock_request(
        BakeRequest(
            conda={"python": "", "libdemo": "", "demo-cli": ""}, channels=[conda_channel.url]
        )
    )
    layers = Conda().layers(
        locked.spec,
        locked.lock,
        None,  # the base plays no part in a conda env's layers
        cache=bake_cache_dir(),
        reporter=Reporter("test"),
        on_built=None,
        room=3,
        cancel=CancelToken(),
    )
    assert len(layers) == 3  # python, one merged layer for the two small ones, the env layer
    assert layers[1].source.startswith("merged: ")
    assert "libdemo" in layers[1].source and "demo-cli" in layers[1].source


def test_the_process_runtime_refuses_a_conda_image(bake_env, conda_channel):
    from deployer.exceptions import AppConfigError
    from deployer.runtimes.process.image import read_bake_layers

    baked = bake_image(conda={"libdemo": ""}, channels=[conda_channel.url])
    with pytest.raises(AppConfigError, match="conda image: its packages hold the image's prefix"):
        read_bake_layers(baked.image)


def test_a_layout_base_bakes_the_image_of_the_same_base_in_a_registry(
    bake_env, conda_channel, debian_base, tmp_path, monkeypatch
):
    # The layout base's layers are copied into the cache while the spec is solved and its
    # glibc is read from the layout's own file meanwhile: the image is the same.
    from_registry = bake_image(conda={"libdemo": ""}, channels=[conda_channel.url])
    layout = LayoutPublisher(tmp_path / "base").publish(debian_base, "bookworm")
    monkeypatch.setenv("BAKERY_CACHE_DIR", str(tmp_path / "other-cache"))
    monkeypatch.setenv("BAKERY_IMAGE_LAYOUT", str(tmp_path / "other-layout"))
    from_layout = bake_image(conda={"libdemo": ""}, channels=[conda_channel.url], base_image=layout)
    # Only the manifest's base-name annotation differs (a layout has no registry name).
    for key in ("config", "layers"):
        assert read_manifest(from_layout.image)[key] == read_manifest(from_registry.image)[key]


def test_a_corrupt_layout_base_fails_the_bake(bake_env, conda_channel, debian_base, tmp_path):
    layout = LayoutPublisher(tmp_path / "base").publish(debian_base, "bookworm")
    (layer,) = debian_base.layers
    blob = tmp_path / "base" / "blobs" / "sha256" / layer.digest.removeprefix("sha256:")
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF  # the gzip trailer: the glibc is still found, the digest no longer matches
    blob.unlink()  # the layout's blob may be a hard link of the cached one
    blob.write_bytes(bytes(data))
    with pytest.raises(ImageBakingException, match="content does not match its digest") as caught:
        bake_image(conda={"libdemo": ""}, channels=[conda_channel.url], base_image=layout)
    assert str(blob) in caught.value.message  # which file of the layout is corrupt
