"""What registries and engines show of a baked image: its base and its creation time.

Real registry, real Docker Engine, real PyPI wheels; the base is the test Debian base, either
pulled from the registry or read from an OCI layout directory on this machine.
"""

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from bakery.bake import bake_image
from bakery.base.model import BaseImage
from bakery.errors import ImageBakingException
from bakery.image import BASE_DIGEST_ANNOTATION, BASE_NAME_ANNOTATION, base_name
from bakery.inspect import read_manifest
from bakery.oci.layout import LayoutPublisher
from bakery.oci.model import Image
from bakery.oci.reference import Reference
from tests.fixtures.registry import TestRegistry

EPOCH = 1700000000
EPOCH_TIME = "2023-11-14T22:13:20Z"


def documents(registry: TestRegistry, reference: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(manifest, config) of a baked image in the test registry."""
    manifest = read_manifest(reference)
    repo = reference.removeprefix(f"{registry.host}/").partition("@")[0]
    url = f"{registry.url}/v2/{repo}/blobs/{manifest['config']['digest']}"
    return manifest, httpx.get(url, follow_redirects=True).raise_for_status().json()


def assert_no_host_path(tmp_path: Path, *found: dict[str, Any]) -> None:
    text = json.dumps(found)
    assert str(tmp_path) not in text
    assert "oci-layout:" not in text


def test_registry_base_is_named_by_its_distribution_reference(
    bake_env, registry, pushed_debian_base
):
    target = f"{registry.host}/{registry.fresh_repo('named')}"
    baked = bake_image(pypi={"six": ""}, registry=target)

    manifest, config = documents(registry, baked.image)
    annotations = manifest["annotations"]
    assert annotations[BASE_NAME_ANNOTATION] == pushed_debian_base  # host:port/base/debian@...
    assert annotations[BASE_DIGEST_ANNOTATION] == pushed_debian_base.rpartition("@")[2]
    assert_no_host_path(bake_env, manifest, config)


def test_layout_base_has_a_digest_but_no_name(bake_env, registry, debian_base: Image):
    layout = LayoutPublisher(bake_env / "bases")
    layout.publish(debian_base, "bookworm")
    target = f"{registry.host}/{registry.fresh_repo('layout-base')}"
    baked = bake_image(
        pypi={"six": ""}, base_image=f"oci-layout://{layout.directory}:bookworm", registry=target
    )

    manifest, config = documents(registry, baked.image)
    assert BASE_NAME_ANNOTATION not in manifest["annotations"]
    assert manifest["annotations"][BASE_DIGEST_ANNOTATION] == debian_base.digest
    assert_no_host_path(bake_env, manifest, config)


def test_created_is_source_date_epoch_and_each_epoch_is_its_own_image(
    bake_env, registry, monkeypatch
):
    target = f"{registry.host}/{registry.fresh_repo('created')}"
    unset = bake_image(pypi={"six": ""}, registry=target)
    manifest, config = documents(registry, unset.image)
    assert config["created"] == "1970-01-01T00:00:00Z"
    ours = [entry for entry in config["history"] if entry["created_by"].startswith("bakery: ")]
    assert ours and all(entry["created"] == "1970-01-01T00:00:00Z" for entry in ours)

    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH))
    dated = bake_image(pypi={"six": ""}, registry=target)
    dated_manifest, dated_config = documents(registry, dated.image)
    assert dated.image != unset.image  # not the tag baked at the other epoch
    assert dated_config["created"] == EPOCH_TIME
    assert {entry["created"] for entry in dated_config["history"][-len(ours) :]} == {EPOCH_TIME}
    assert dated_manifest["layers"] == manifest["layers"]  # layers do not depend on the epoch
    tags = registry.tags(target.partition("/")[2])
    assert len([tag for tag in tags if tag.startswith("spec-")]) == 2

    # Reproducible: the same epoch from an empty cache gives the same image.
    monkeypatch.setenv("BAKERY_CACHE_DIR", str(bake_env / "second-cache"))
    again = bake_image(pypi={"six": ""}, registry=f"{target}-again")
    assert again.image.rpartition("@")[2] == dated.image.rpartition("@")[2]
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    assert bake_image(pypi={"six": ""}, registry=target) == unset


def test_docker_shows_the_creation_time(bake_env, docker_engine, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH))
    baked = bake_image(pypi={"six": ""}, target="daemon")
    shown = docker_engine.run("image", "inspect", "--format", "{{.Created}}", baked.image)
    assert shown.stdout.decode().strip() == EPOCH_TIME


@pytest.mark.parametrize("value", ["yesterday", "-1", "1.5", "99999999999999"])
def test_bad_source_date_epoch_is_refused_before_anything_runs(bake_env, monkeypatch, value):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", value)
    with pytest.raises(ImageBakingException, match="SOURCE_DATE_EPOCH"):
        bake_image(pypi={"six": ""}, registry="127.0.0.1:9/unreachable")


def test_docker_hub_base_is_named_as_docker_io():
    digest = "sha256:" + "a" * 64
    base = BaseImage(
        reference=f"registry-1.docker.io/library/python@{digest}",
        digest=digest,
        repository=Reference.parse("python:3.11-slim"),
        config={},
        layers=(),
        python=None,
    )
    assert base_name(base) == f"docker.io/library/python@{digest}"
