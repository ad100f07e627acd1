"""Loading a base image from the real registry and from a layout directory; finding its Python."""

import copy
import gzip
import io
import json
import tarfile

import pytest

from bakery.base.load import load_base
from bakery.base.model import PythonInfo
from bakery.base.python import detect_python
from bakery.oci.cache import BlobCache
from bakery.oci.errors import LayoutError, OciError, RegistryError
from bakery.oci.layout import LayoutPublisher
from bakery.oci.model import (
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    Layer,
    canonical_json,
    sha256_digest,
)
from bakery.oci.reference import Reference
from bakery.oci.registry import RegistryClient
from tests.fixtures.base_image import PUSHED_REPOSITORY
from tests.fixtures.services import free_port

DEBIAN_PYTHON = PythonInfo("3.11", "/usr/bin/python3.11")


def _unlabelled(config: dict) -> dict:
    config = copy.deepcopy(config)
    del config["config"]["Labels"]
    return config


def _layer(cache: BlobCache, entries: dict[str, str | None]) -> Layer:
    """A small gzip layer: path -> symlink target, or None for an empty file."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, target in entries.items():
            info = tarfile.TarInfo(path)
            if target is not None:
                info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info, io.BytesIO(b""))
    digest = cache.put_bytes(gzip.compress(raw.getvalue(), mtime=0))
    return cache.layer(digest, OCI_LAYER_GZIP, sha256_digest(raw.getvalue()))


def _repository(pushed: str) -> str:
    return Reference.parse(pushed).name


def test_load_by_tag(debian_base, pushed_debian_base, registry, tmp_path):
    cache = BlobCache(tmp_path)
    base = load_base(f"{_repository(pushed_debian_base)}:bookworm", cache)
    image = debian_base
    assert base.reference == pushed_debian_base
    assert base.digest == image.digest
    assert base.repository == Reference(registry.host, PUSHED_REPOSITORY)
    assert base.python == DEBIAN_PYTHON
    assert [(layer.digest, layer.diff_id) for layer in base.layers] == [
        (layer.digest, layer.diff_id) for layer in image.layers
    ]
    assert all(cache.has(layer.digest) for layer in base.layers)
    assert base.config == json.loads(image.config.path.read_bytes())


def test_load_by_digest_fetches_cached_blobs_once(pushed_debian_base, registry, tmp_path):
    cache = BlobCache(tmp_path)

    def blob_downloads() -> int:
        requests = registry.requests(PUSHED_REPOSITORY)
        return sum(1 for r in requests if r.method == "GET" and "/blobs/" in r.path)

    before = blob_downloads()
    first = load_base(pushed_debian_base, cache)
    after_first = blob_downloads()
    second = load_base(pushed_debian_base, cache)
    assert first == second
    assert (after_first - before, blob_downloads() - after_first) == (2, 0)


def test_load_docker_manifest_as_oci_types(debian_base, pushed_debian_base, registry, tmp_path):
    """Docker Hub's media types: same blobs under a Docker v2 manifest load as OCI layers."""
    image = debian_base
    repository = _repository(pushed_debian_base)
    layers = [{**layer.descriptor(), "mediaType": DOCKER_LAYER_GZIP} for layer in image.layers]
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {**image.config.descriptor(), "mediaType": DOCKER_CONFIG},
            "layers": layers,
        }
    )
    with RegistryClient(repository) as client:
        client.put_manifest("docker-types", manifest, DOCKER_MANIFEST)
    base = load_base(f"{repository}:docker-types", BlobCache(tmp_path))
    assert base.digest == sha256_digest(manifest)
    assert [layer.media_type for layer in base.layers] == [OCI_LAYER_GZIP]
    assert base.python == DEBIAN_PYTHON


def test_load_resolves_an_index_for_the_platform(
    debian_base, pushed_debian_base, registry, tmp_path
):
    image = debian_base
    repository = _repository(pushed_debian_base)
    entry = {
        "mediaType": image.manifest.media_type,
        "digest": image.digest,
        "size": len(image.manifest.data),
        "platform": {"os": "linux", "architecture": "amd64"},
    }
    index = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]})
    with RegistryClient(repository) as client:
        client.put_manifest("multi", index, OCI_INDEX)
    reference = f"{repository}:multi"
    assert load_base(reference, BlobCache(tmp_path)).digest == image.digest
    with pytest.raises(RegistryError, match=r"no linux/arm64 image \(it has: linux/amd64\)"):
        load_base(reference, BlobCache(tmp_path), platform="linux/arm64")


def test_platform_of_a_single_manifest_is_checked(pushed_debian_base, registry, tmp_path):
    with pytest.raises(OciError, match="is a linux/amd64 image, not linux/arm64"):
        load_base(pushed_debian_base, BlobCache(tmp_path), platform="linux/arm64")


def test_missing_tag_is_reported(pushed_debian_base, registry, tmp_path):
    with pytest.raises(RegistryError, match=r"HTTP 404.*exist"):
        load_base(f"{_repository(pushed_debian_base)}:no-such-tag", BlobCache(tmp_path))


def test_unreachable_registry_is_reported(tmp_path):
    with pytest.raises(RegistryError, match="unreachable"):
        load_base(f"127.0.0.1:{free_port()}/base/debian:bookworm", BlobCache(tmp_path))


def test_load_from_layout(debian_base, tmp_path):
    layout = tmp_path / "layout"
    published = LayoutPublisher(layout).publish(debian_base, "bookworm")
    for reference in (published, f"oci-layout://{layout}:bookworm", f"oci-layout://{layout}"):
        cache = BlobCache(tmp_path / "cache")
        base = load_base(reference, cache)
        assert base.reference == published
        assert base.digest == debian_base.digest
        assert base.repository is None
        assert base.python == DEBIAN_PYTHON
        assert all(cache.has(layer.digest) for layer in base.layers)


def test_layout_errors_name_the_tags(debian_base, tmp_path):
    layout = tmp_path / "layout"
    LayoutPublisher(layout).publish(debian_base, "bookworm")
    with pytest.raises(LayoutError, match="no tag 'trixie'; its tags: bookworm"):
        load_base(f"oci-layout://{layout}:trixie", BlobCache(tmp_path / "cache"))
    with pytest.raises(LayoutError, match="not an OCI image layout"):
        load_base(f"oci-layout://{tmp_path / 'nowhere'}", BlobCache(tmp_path / "cache"))


def test_detect_python_by_label_or_layer_scan(debian_base, tmp_path):
    config = json.loads(debian_base.config.path.read_bytes())
    assert detect_python(config, debian_base.layers) == DEBIAN_PYTHON
    assert detect_python(_unlabelled(config), debian_base.layers) == DEBIAN_PYTHON
    assert detect_python(_unlabelled(config), ()) is None


def test_detect_python_prefers_the_newest_and_usr_local(debian_base, tmp_path):
    cache = BlobCache(tmp_path)
    upper = _layer(cache, {"usr/local/bin/python3.12": "python3", "usr/bin/python3.12": None})
    config = _unlabelled(json.loads(debian_base.config.path.read_bytes()))
    found = detect_python(config, (*debian_base.layers, upper))
    assert found == PythonInfo("3.12", "/usr/local/bin/python3.12")


def test_detect_python_honours_whiteouts(debian_base, tmp_path):
    cache = BlobCache(tmp_path)
    config = _unlabelled(json.loads(debian_base.config.path.read_bytes()))
    removed = _layer(cache, {"usr/bin/.wh.python3.11": None})
    assert detect_python(config, (*debian_base.layers, removed)) is None
    opaque = _layer(cache, {"usr/bin/.wh..wh..opq": None, "usr/bin/python3.10": None})
    found = detect_python(config, (*debian_base.layers, opaque))
    assert found == PythonInfo("3.10", "/usr/bin/python3.10")
    readded = _layer(cache, {"./usr/bin/python3.11": None})
    found = detect_python(config, (*debian_base.layers, removed, readded))
    assert found == DEBIAN_PYTHON
