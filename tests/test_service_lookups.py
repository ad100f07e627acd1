"""Cache-hit lookups: identical requests share one registry lookup, a found image answers its
request again for a few seconds, and Prune makes the server forget it."""

import threading
from concurrent.futures import ThreadPoolExecutor

import grpc

from bakery.bake import BakeResult
from bakery.remote import bake_remote
from bakery.request import BakeRequest
from frontends.service.lookups import REMEMBER_SECONDS, Lookups
from frontends.service.server import ServerSettings, start
from frontends.service.state import SqliteIndex
from stagekit.api.bakery.v1 import bakery_pb2, bakery_pb2_grpc

FOUND = BakeResult("registry/repo@sha256:1", "/opt/bakery/env/bin/python", "spec", "lock", "hit")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_found_image_is_remembered_for_a_few_seconds_and_forgotten_on_demand():
    clock, looks = Clock(), []
    lookups = Lookups(clock)

    def look() -> BakeResult:
        looks.append(1)
        return FOUND

    assert lookups.find("a", look) == (FOUND, True)
    clock.now += REMEMBER_SECONDS / 2
    assert lookups.find("a", look) == (FOUND, False)
    clock.now += REMEMBER_SECONDS
    assert lookups.find("a", look) == (FOUND, True)
    lookups.forget()
    assert lookups.find("a", look) == (FOUND, True)
    assert len(looks) == 3


def test_a_miss_is_never_remembered():
    lookups, looks = Lookups(Clock()), []
    for _ in range(3):
        assert lookups.find("a", lambda: looks.append(1)) == (None, True)
    assert len(looks) == 3


def test_concurrent_callers_share_one_look_and_its_failure():
    lookups = Lookups(Clock())
    release, looks = threading.Event(), []

    def failing_look() -> BakeResult:
        looks.append(1)
        release.wait(10)
        raise RuntimeError("registry down")

    with ThreadPoolExecutor(8) as pool:
        calls = [pool.submit(lookups.find, "a", failing_look) for _ in range(8)]
        while not looks:
            threading.Event().wait(0.01)
        threading.Event().wait(0.2)  # the others are waiting on the first look now
        release.set()
        errors = [call.exception() for call in calls]
    assert len(looks) == 1
    assert [str(error) for error in errors] == ["registry down"] * 8


def test_identical_hits_share_the_registry_lookup_and_prune_forgets(
    server_repo, registry, tmp_path
):
    clock = Clock()  # the index's: entries age by it
    index = SqliteIndex(tmp_path / "index.sqlite", clock=clock)
    running = start(ServerSettings(port=0, state_dir=tmp_path / "state", index=index))
    url = f"grpc://127.0.0.1:{running.port}"
    try:
        baked = bake_remote(BakeRequest(pypi={"six": ""}), url, timeout=600)
        repo = server_repo[1]
        lookups_before = _tag_lookups(registry, repo)
        with ThreadPoolExecutor(20) as pool:
            hits = list(
                pool.map(lambda _: bake_remote(BakeRequest(pypi={"six": ""}), url), range(20))
            )
        assert {(hit.outcome, hit.image) for hit in hits} == {("hit", baked.image)}
        assert _tag_lookups(registry, repo) - lookups_before < 5  # 20 hits, a lookup or two

        clock.now += 3600
        admin = bakery_pb2_grpc.AdminStub(grpc.insecure_channel(url.removeprefix("grpc://")))
        prune = bakery_pb2.PruneRequest(older_than_seconds=60, dry_run=False)
        assert [e.spec_id for e in admin.Prune(prune, timeout=60).removed] == [baked.spec_id]
        again = bake_remote(BakeRequest(pypi={"six": ""}), url, timeout=600)
        assert again.outcome == "built"  # the pruned tag was looked up again, not remembered
    finally:
        running.stop(grace=1)


def _tag_lookups(registry, repo: str) -> int:
    return sum(
        1
        for request in registry.requests(repo)
        if request.method == "GET" and "/manifests/spec-" in request.path
    )
