"""Staleness (`max_age`): an unpinned spec is resolved again once its resolution is old.

Real uv, real PyPI (six, attrs), the real registry. The registry's own access log says what
was uploaded; the resolution records are read back where the bakery keeps them. A local
PEP 503 index that lists real PyPI wheels lets a test publish a new version between bakes.
"""

import datetime
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from bakery import config
from bakery.bake import bake, bake_image
from bakery.errors import ImageBakingException
from bakery.freshness import Resolutions, pinned
from bakery.inspect import read_lock
from bakery.request import BakeRequest
from bakery.spec import make_spec
from bakery.targets import target_name
from tests.fixtures.registry import TestRegistry
from tests.test_bake import registry_repo

DIGEST = "sha256:" + "ab" * 32


def resolutions(target: str) -> Resolutions:
    return Resolutions(config.bake_cache_dir(), target_name(None, target))


def manifest_puts(registry: TestRegistry, repo: str) -> int:
    return sum(1 for r in registry.requests(repo) if r.method == "PUT" and "/manifests/" in r.path)


@pytest.mark.parametrize(
    ("pypi", "expected"),
    [
        ({"six": "==1.17.0"}, True),
        ({"six": "1.17.0", "attrs": "===25.3.0"}, True),
        ({"six": "==1.17.0 ; python_version >= '3'"}, True),
        ({"six": ">=1.15,==1.17.0"}, True),
        ({"six": "@ https://files.example/six-1.17.0-py2.py3-none-any.whl"}, True),
        ({"six": ""}, False),
        ({"six": ">=1.15"}, False),
        ({"six": "~=1.17"}, False),
        ({"six": "==1.*"}, False),
        ({"six": "==1.17.0", "attrs": ""}, False),
    ],
)
def test_only_exact_pins_of_one_version_are_pinned(pypi, expected):
    assert pinned(make_spec(pypi=pypi, base_image_digest=DIGEST)) is expected


def test_requirements_files_count_their_pins_too(tmp_path):
    (tmp_path / "pinned.txt").write_text("six==1.17.0\nattrs==25.3.0\n")
    (tmp_path / "loose.txt").write_text("-r pinned.txt\nidna>=3\n")
    for name, expected in (("pinned.txt", True), ("loose.txt", False)):
        spec = make_spec(requirements_file=tmp_path / name, base_image_digest=DIGEST)
        assert pinned(spec) is expected


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"max_age": -1}, "max_age is negative"),
        ({"max_age": "7d"}, "max_age must be seconds"),
        ({"max_age": True}, "max_age must be seconds"),
        ({"max_age": float("nan")}, "max_age must be seconds"),
    ],
)
def test_bad_max_ages_are_refused_before_any_work(bake_env, options, match):
    with pytest.raises(ImageBakingException, match=match):
        bake_image(pypi={"six": ""}, registry="127.0.0.1:1/never", **options)


def test_a_malformed_bakery_spec_max_age_is_refused(bake_env, monkeypatch):
    monkeypatch.setenv("BAKERY_SPEC_MAX_AGE", "soon")
    with pytest.raises(ImageBakingException, match="BAKERY_SPEC_MAX_AGE: 'soon' is not"):
        bake_image(pypi={"six": ""}, registry="127.0.0.1:1/never")


def test_a_stale_spec_whose_lock_is_unchanged_keeps_its_image(bake_env, registry, monkeypatch):
    target, repo = registry_repo(registry)
    first = bake(BakeRequest(pypi={"six": ">=1.15"}, registry=target))
    recorded = resolutions(target).get(first.spec_id)
    assert first.outcome == "built" and not first.refreshed
    assert recorded is not None and recorded.lock_digest == first.lock_digest
    uploads, manifests = registry.uploads(repo), manifest_puts(registry, repo)

    fresh: list[str] = []
    bake_image(
        pypi={"six": ">=1.15"},
        registry=target,
        max_age=datetime.timedelta(hours=1),
        logger=fresh.append,
    )
    assert not any(line.startswith("Resolving") for line in fresh)
    assert resolutions(target).get(first.spec_id) == recorded

    monkeypatch.setenv("BAKERY_SPEC_MAX_AGE", "0")  # the default max age: every bake is stale
    lines: list[str] = []
    again = bake_image(pypi={"six": ">=1.15"}, registry=target, logger=lines.append)
    stale = bake(BakeRequest(pypi={"six": ">=1.15"}, registry=target))

    assert again.image == first.image and stale.image == first.image
    assert (stale.outcome, stale.refreshed, stale.lock_digest) == ("hit", True, first.lock_digest)
    assert set(stale.stage_seconds) == {"find", "resolve"}
    assert any(line.startswith(f"Resolving spec {first.spec_id[:12]} again") for line in lines)
    assert f"The lock is unchanged: keeping {first.image}" in lines
    moved = resolutions(target).get(first.spec_id)
    assert moved is not None and moved.at > recorded.at
    assert (registry.uploads(repo), manifest_puts(registry, repo)) == (uploads, manifests)
    assert [t for t in registry.tags(repo) if t.startswith("spec-")] == [f"spec-{first.spec_id}"]

    never = bake(BakeRequest(pypi={"six": ">=1.15"}, registry=target, max_age=86400))
    assert (never.outcome, never.refreshed) == ("hit", False)  # the option beats the variable


def test_a_pinned_spec_is_never_resolved_again(bake_env, registry):
    target, repo = registry_repo(registry)
    first = bake(BakeRequest(pypi={"six": "==1.17.0"}, registry=target))
    uploads = registry.uploads(repo)
    lines: list[str] = []
    again = bake_image(pypi={"six": "==1.17.0"}, registry=target, max_age=0, logger=lines.append)

    assert again.image == first.image
    assert not any(line.startswith("Resolving") for line in lines)
    assert resolutions(target).get(first.spec_id) is None  # nothing to remember for a pin
    hit = bake(BakeRequest(pypi={"six": "==1.17.0"}, registry=target, max_age=0))
    assert (hit.outcome, hit.refreshed, set(hit.stage_seconds)) == ("hit", False, {"find"})
    assert registry.uploads(repo) == uploads


def test_a_spec_without_a_record_here_is_resolved_once(bake_env, registry, tmp_path, monkeypatch):
    """An image another machine baked has no resolution record here: its age is unknown,
    so a bake with a max age resolves it once and keeps the image if the lock agrees."""
    target, _ = registry_repo(registry)
    first = bake(BakeRequest(pypi={"attrs": ""}, registry=target))
    monkeypatch.setenv("BAKERY_CACHE_DIR", str(tmp_path / "another-machine"))
    lines: list[str] = []
    again = bake(
        BakeRequest(pypi={"attrs": ""}, registry=target, max_age=86400),
        reporter=_reporter(lines),
    )
    assert (again.image, again.outcome, again.refreshed) == (first.image, "hit", True)
    assert any("no record of when it was resolved" in line for line in lines)
    after = bake(BakeRequest(pypi={"attrs": ""}, registry=target, max_age=86400))
    assert (after.outcome, after.refreshed) == ("hit", False)


def _reporter(lines: list[str]):
    from stagekit.progress import Reporter

    return Reporter("test", lines.append)


# -- a new release on the index ------------------------------------------------------------


def _six_wheel(version: str) -> tuple[str, str, str]:
    """(filename, url, sha256) of six's wheel for `version`, as PyPI's simple API lists it."""
    answer = httpx.get(
        "https://pypi.org/simple/six/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
        timeout=30,
    )
    answer.raise_for_status()
    (wheel,) = [
        f for f in answer.json()["files"] if f["filename"].startswith(f"six-{version}-py2.py3")
    ]
    return wheel["filename"], wheel["url"], wheel["hashes"]["sha256"]


@contextmanager
def six_index(versions: list[str]) -> Iterator[str]:
    """A PEP 503 index on loopback whose only project is six, listing PyPI's wheels of the
    versions in `versions` (the test appends to it); no caching, so uv asks every time."""
    wheels = {version: _six_wheel(version) for version in ("1.16.0", "1.17.0")}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.rstrip("/") != "/simple/six":
                self.send_error(404)
                return
            links = "".join(
                f'<a href="{url}#sha256={sha256}">{name}</a>\n'
                for name, url, sha256 in (wheels[version] for version in versions)
            )
            body = f"<!DOCTYPE html><html><body>\n{links}</body></html>\n".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/simple"
    finally:
        server.shutdown()
        server.server_close()


def test_a_stale_spec_whose_lock_changed_is_baked_and_its_tag_moves(bake_env, registry):
    target, repo = registry_repo(registry)
    versions = ["1.16.0"]
    with six_index(versions) as index:
        requirements = bake_env / "requirements.txt"
        requirements.write_text(f"--index-url {index}\nsix>=1.15\n")
        request = BakeRequest(requirements_file=requirements, registry=target, max_age=3600)
        first = bake(request)
        versions.append("1.17.0")  # six 1.17.0 is released
        fresh = bake(request)
        stale = bake(BakeRequest(requirements_file=requirements, registry=target, max_age=0))

    assert [p.version for p in read_lock(first.image).packages] == ["1.16.0"]
    assert (fresh.image, fresh.outcome, fresh.refreshed) == (first.image, "hit", False)
    assert (stale.outcome, stale.refreshed, stale.spec_id) == ("built", True, first.spec_id)
    assert stale.image != first.image and stale.lock_digest != first.lock_digest
    assert [p.version for p in read_lock(stale.image).packages] == ["1.17.0"]
    assert "resolve" in stale.stage_seconds
    tag = f"{target}:spec-{first.spec_id}"
    assert read_lock(tag).packages == read_lock(stale.image).packages  # the tag moved
    recorded = resolutions(target).get(first.spec_id)
    assert recorded is not None and recorded.lock_digest == stale.lock_digest
    assert registry.tags(repo) == [f"spec-{first.spec_id}"]
