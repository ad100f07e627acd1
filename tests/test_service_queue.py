"""The server's build queue: bounded, fair between callers' tokens, positions kept right.

The slots are tested on their own with real threads, then through a real server on loopback
(real registry, real PyPI): every build slot is held as a long build would hold it
(`slots_taken`), so bakes queue deterministically, with nothing slowed down in the product.
"""

import threading

import grpc
import pytest

from bakery.errors import ImageBakingException
from bakery.remote import bake_remote
from bakery.request import BakeRequest
from frontends.service.server import ServerSettings, start
from frontends.service.slots import BuildSlots, QueueFull
from frontends.service.state import SqliteIndex
from stagekit.api.bakery.v1 import bakery_pb2, bakery_pb2_grpc
from stagekit.cancel import Cancelled, CancelToken
from stagekit.errors import ErrorKind
from tests.fixtures.services import wait_until
from tests.test_service_bake import kinds, slots_taken, spec_tags, stub, watchers


class Waiting:
    """A build as the slots see it: a cancel token and the positions it was told."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.cancel = CancelToken()
        self.positions: list[int] = []

    def queued(self, position: int) -> None:
        self.positions.append(position)


def names(builds) -> list[str]:
    return [build.name for build in builds]


def test_a_freed_slot_goes_to_the_callers_in_turn():
    slots = BuildSlots(limit=1, max_queue=8)
    holder = Waiting("holder")
    slots.acquire(holder)
    a1, a2, a3, b1 = (Waiting(name) for name in ("a1", "a2", "a3", "b1"))
    for build in (a1, a2, a3):
        slots.enter(build, "A")
    slots.enter(b1, "B")

    assert names(slots.waiting) == ["a1", "b1", "a2", "a3"]
    assert [a1.positions, a2.positions, a3.positions, b1.positions] == [[1], [2, 3], [3, 4], [2]]

    started: list[str] = []

    def run(build: Waiting) -> None:
        slots.acquire(build)
        started.append(build.name)  # one slot: the next is granted only after release
        slots.release()

    threads = [threading.Thread(target=run, args=(b,)) for b in (a1, a2, a3, b1)]
    for thread in threads:
        thread.start()
    slots.release()  # the holder's build ends
    for thread in threads:
        thread.join()
    assert started == ["a1", "b1", "a2", "a3"]
    assert a3.positions == [3, 4, 3, 2, 1]  # each grant moved it up by one
    assert (slots.running, slots.waiting) == (0, [])


def test_a_caller_that_just_got_a_slot_waits_behind_the_others():
    slots = BuildSlots(limit=1, max_queue=8)
    a1, b1, c1, a2 = (Waiting(name) for name in ("a1", "b1", "c1", "a2"))
    slots.acquire(a1, "A")  # a free slot: A's first build runs at once, never queued
    slots.enter(b1, "B")
    slots.enter(c1, "C")
    slots.enter(a2, "A")
    assert a1.positions == [] and names(slots.waiting) == ["b1", "c1", "a2"]


def test_a_full_queue_refuses_and_a_cancelled_build_leaves_it():
    slots = BuildSlots(limit=1, max_queue=2)
    slots.acquire(Waiting("running"))
    first, second = Waiting("first"), Waiting("second")
    slots.enter(first, "A")
    slots.enter(second, "B")
    with pytest.raises(QueueFull, match=r"queue is full: 2 bake\(s\) wait .* retry later"):
        slots.enter(Waiting("refused"), "C")
    assert names(slots.waiting) == ["first", "second"]

    first.cancel.cancel("its caller went away")
    with pytest.raises(Cancelled, match="its caller went away"):
        slots.acquire(first)
    assert names(slots.waiting) == ["second"] and second.positions == [2, 1]
    slots.enter(Waiting("now-room"), "C")  # the cancelled build's place is free again


# -- through a real server ------------------------------------------------------------------


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def test_a_full_queue_is_resource_exhausted_and_builds_nothing(server_repo, registry, tmp_path):
    running = start(ServerSettings(port=0, state_dir=tmp_path / "state", max_builds=1, max_queue=1))
    service, url = running.service, f"grpc://127.0.0.1:{running.port}"
    service.orphan_grace = 0  # a queued build nobody waits for stops at once
    try:
        with slots_taken(service):
            waiting = stub(url).Bake(bakery_pb2.BakeRequest(pypi={"six": ""}), timeout=600)
            accepted, queued = next(waiting), next(waiting)
            assert queued.queued.position == 1

            with pytest.raises(grpc.RpcError) as refused:
                list(stub(url).Bake(bakery_pb2.BakeRequest(pypi={"attrs": ""}), timeout=60))
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "queue is full" in refused.value.details()
            assert "retry later" in refused.value.details()
            with pytest.raises(ImageBakingException, match="queue is full") as typed:
                bake_remote(BakeRequest(pypi={"idna": ""}), url, timeout=60)
            assert typed.value.kind == ErrorKind.UNAVAILABLE

            joining = stub(url).Bake(bakery_pb2.BakeRequest(pypi={"six": ""}), timeout=600)
            assert next(joining).accepted.build_id == accepted.accepted.build_id  # never refused
            assert service.builds_started == 1 and len(service.builds) == 1

            waiting.cancel()
            joining.cancel()
            build = service.builds[accepted.accepted.build_id]
            wait_until(lambda: build.done, "the queued bake to stop")
            assert build.started is None  # it never got a slot
            assert "stopped while queued" in build.events[-1].error.message
    finally:
        running.stop(grace=1)
    assert spec_tags(registry, server_repo[1]) == []
    assert running.index.outcomes() == {}


def test_the_queue_takes_turns_between_tokens(server_repo, registry, tmp_path):
    index = SqliteIndex(tmp_path / "state" / "index.sqlite")
    team_a, team_b = index.create_token("team-a", "bake"), index.create_token("team-b", "bake")
    running = start(ServerSettings(port=0, state_dir=tmp_path / "state", max_builds=1))
    service, url = running.service, f"grpc://127.0.0.1:{running.port}"
    specs = [("team-a", team_a, {"six": ""}), ("team-a", team_a, {"attrs": ""})]
    specs += [("team-a", team_a, {"idna": ""}), ("team-b", team_b, {"six": "", "attrs": ""})]
    calls, builds, events = [], [], {}
    try:
        with slots_taken(service):
            for _, token, pypi in specs:  # in this order: A's three, then B's one
                call = stub(url).Bake(
                    bakery_pb2.BakeRequest(pypi=pypi), timeout=600, metadata=bearer(token)
                )
                calls.append(call)
                builds.append(service.builds[next(call).accepted.build_id])
            assert [build.caller for build in builds] == [name for name, _, _ in specs]
            assert [w.caller for w in service.slots.waiting] == ["team-a", "team-b"] + [
                "team-a"
            ] * 2
            last_position = [
                [e.queued.position for e in build.events if e.HasField("queued")][-1]
                for build in builds
            ]
            assert last_position == [1, 3, 4, 2]  # A1, B1, A2, A3

            def follow(index: int) -> None:
                events[index] = list(calls[index])

            readers = [threading.Thread(target=follow, args=(i,)) for i in range(len(calls))]
            for reader in readers:
                reader.start()
        for reader in readers:
            reader.join()
    finally:
        running.stop(grace=1)

    for index_, got in events.items():
        assert kinds(got)[-1] == "result", (index_, got[-1])
        assert got[-1].result.outcome == bakery_pb2.OUTCOME_BUILT
    started = sorted(range(len(builds)), key=lambda i: builds[i].started)
    assert started == [0, 3, 1, 2]  # B's bake started before A's second and third
    b_positions = [e.queued.position for e in builds[3].events if e.HasField("queued")]
    assert b_positions == [2, 1]
    assert len(spec_tags(registry, server_repo[1])) == 4


def test_a_cache_hit_never_waits_for_a_slot(server_repo, registry, tmp_path):
    """A spec whose image is baked is answered from the registry by the RPC itself: with every
    slot held and the queue full, hits still come back, and a new spec is still refused."""
    running = start(ServerSettings(port=0, state_dir=tmp_path / "state", max_builds=1, max_queue=1))
    service, url = running.service, f"grpc://127.0.0.1:{running.port}"
    service.orphan_grace = 0
    try:
        baked = bake_remote(BakeRequest(pypi={"six": ""}), url, timeout=600)
        assert baked.outcome == "built"
        with slots_taken(service):
            waiting = stub(url).Bake(bakery_pb2.BakeRequest(pypi={"attrs": ""}), timeout=600)
            assert next(waiting).HasField("accepted") and next(waiting).queued.position == 1

            hits = [bake_remote(BakeRequest(pypi={"six": ""}), url, timeout=60) for _ in range(3)]
            assert {(hit.outcome, hit.image) for hit in hits} == {("hit", baked.image)}
            events = list(stub(url).Bake(bakery_pb2.BakeRequest(pypi={"six": ""}), timeout=60))
            assert kinds(events) == ["accepted", "log", "result"]
            with pytest.raises(ImageBakingException, match="queue is full"):
                bake_remote(BakeRequest(pypi={"idna": ""}), url, timeout=60)
            assert service.builds_started == 2  # six once, attrs queued; hits start none
            waiting.cancel()
    finally:
        running.stop(grace=1)
    assert running.index.outcomes()["hit"] == 4


def test_warm_bakes_take_the_same_slots_and_join_running_builds(server_repo, registry, tmp_path):
    """Warm submits to the bake RPCs' builds: with the slot held, a warm item of the spec a
    queued Bake waits for joins that build, and Stats counts what waits."""
    running = start(ServerSettings(port=0, state_dir=tmp_path / "state", max_builds=1))
    service, url = running.service, f"grpc://127.0.0.1:{running.port}"
    admin = bakery_pb2_grpc.AdminStub(grpc.insecure_channel(f"127.0.0.1:{running.port}"))
    try:
        with slots_taken(service):
            baking = stub(url).Bake(bakery_pb2.BakeRequest(pypi={"six": ""}), timeout=600)
            assert next(baking).HasField("accepted") and next(baking).queued.position == 1
            item = bakery_pb2.WarmItem(request=bakery_pb2.BakeRequest(pypi={"six": ""}))
            warming = admin.Warm(iter([item]), timeout=600)
            wait_until(lambda: watchers(service) == [2], "the warm item to join the build")
            stats = admin.Stats(bakery_pb2.StatsRequest(), timeout=5)
            assert (stats.queued, stats.running) == (1, 1)  # the bake waits; the holder runs
        (warmed,) = list(warming)
        events = list(baking)
    finally:
        running.stop(grace=1)
    assert events[-1].result.outcome == bakery_pb2.OUTCOME_BUILT
    assert warmed.result.outcome == bakery_pb2.OUTCOME_JOINED
    assert warmed.result.image == events[-1].result.image
    assert service.builds_started == 1
