"""Pinning base references: digests pin themselves, tags are re-resolved after the TTL."""

from bakery.base.pin import BasePins
from bakery.base.source import parse_base
from bakery.oci.remote import RegistryPublisher


def test_moving_tag_is_followed_only_after_the_ttl(registry, make_image, tmp_path):
    repo = f"{registry.host}/{registry.fresh_repo('base')}"
    publisher = RegistryPublisher(repo)
    first = make_image("first\n")
    publisher.publish(first, "moving")
    pins = BasePins(tmp_path)
    reference = f"{repo}:moving"

    assert pins.pin(reference, platform="linux/amd64", ttl=3600) == first.digest
    second = make_image("second\n")
    publisher.publish(second, "moving")

    assert pins.pin(reference, platform="linux/amd64", ttl=3600) == first.digest
    assert pins.pin(reference, platform="linux/amd64", ttl=0) == second.digest


def test_digest_references_need_no_lookup(tmp_path):
    digest = "sha256:" + "c" * 64
    pins = BasePins(tmp_path)
    assert pins.pin(f"127.0.0.1:9/nowhere@{digest}", platform="linux/amd64", ttl=0) == digest
    assert pins.pin(f"oci-layout:///nowhere@{digest}", platform="linux/amd64", ttl=0) == digest


def test_layout_references_parse(tmp_path):
    (tmp_path / "dir:with:colons").mkdir()
    assert parse_base(f"oci-layout://{tmp_path}/layout:v1").tag == "v1"
    whole = parse_base(f"oci-layout://{tmp_path}/dir:with:colons")
    assert whole.layout == tmp_path / "dir:with:colons" and whole.tag is None
    assert parse_base("python:3.12-slim").registry.repository == "library/python"
