"""What a service needs from a bake: typed requests, typed events, cancellation with a
deadline, results with outcomes, and errors with a kind. Real PyPI, the real registry."""

import json
import threading

import pytest

from bakery.bake import BakeResult, bake, bake_image
from bakery.errors import ImageBakingException
from bakery.inspect import read_manifest
from bakery.lock import Lock
from bakery.request import BakeRequest
from bakery.spec import SPEC_FORMAT, make_spec
from stagekit.cancel import CancelToken
from stagekit.errors import ErrorKind
from stagekit.progress import LogLine, Progress, Reporter
from tests.fixtures.registry import TestRegistry

DIGEST = "sha256:" + "a" * 64


def bakery_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("bakery-")]


def test_a_request_and_bake_image_are_one_bake_with_outcomes(bake_env, registry: TestRegistry):
    target = f"{registry.host}/{registry.fresh_repo('contracts')}"
    request = BakeRequest(pypi={"six": "==1.17.0"}, registry=target)
    request.check()
    built = bake(request)
    assert isinstance(built, BakeResult)
    assert built.outcome == "built" and built.bytes_uploaded > 0
    assert {"resolve", "layers", "publish"} <= set(built.stage_seconds)

    hit = bake(request)
    assert (hit.outcome, hit.image, hit.spec_id, hit.lock_digest) == (
        "hit",
        built.image,
        built.spec_id,
        built.lock_digest,
    )
    assert bake_image(pypi={"six": "==1.17.0"}, registry=target).image == built.image


def test_a_bake_reports_typed_events(bake_env):
    events: list = []
    bake_image(pypi={"six": "==1.17.0", "attrs": ""}, events=events.append)
    logs = [event.message for event in events if isinstance(event, LogLine)]
    assert any(message.startswith("Resolving 2 requirement(s)") for message in logs)
    progress = [event for event in events if isinstance(event, Progress)]
    by_stage = {event.stage: event for event in progress}  # the last event of each stage
    assert by_stage["download"].unit == "bytes"
    assert by_stage["layers"].unit == "items"
    assert (by_stage["layers"].done, by_stage["layers"].total) == (2, 2)
    assert all(0 <= event.done <= event.total for event in progress)


def test_a_cancelled_bake_stops_its_threads_and_tags_nothing(bake_env, registry: TestRegistry):
    repo = registry.fresh_repo("cancelled")
    target = f"{registry.host}/{repo}"
    request = BakeRequest(pypi={"numpy": "==2.2.6", "six": "==1.17.0"}, registry=target)
    token = CancelToken()

    def cancel_on_first_download(event) -> None:
        if isinstance(event, Progress) and event.stage == "download":
            token.cancel("the client went away")

    reporter = Reporter("test", events=cancel_on_first_download)
    with pytest.raises(ImageBakingException, match="the client went away") as caught:
        bake(request, reporter=reporter, cancel=token)
    assert caught.value.kind is ErrorKind.CANCELLED
    assert registry.tags(repo) == []
    assert bakery_threads() == []
    cache = bake_env / "cache"
    partial = [p for p in cache.rglob(".partial-*")] + [p for p in cache.rglob("tmp/*")]
    assert partial == []

    again = bake(request)  # nothing the cancelled bake left gets in the way
    assert again.outcome == "built"
    assert registry.tags(repo) == [f"spec-{again.spec_id}"]


def test_a_deadline_that_passed_bakes_nothing(bake_env):
    request = BakeRequest(pypi={"six": "==1.17.0"})
    with pytest.raises(ImageBakingException) as caught:
        bake(request, cancel=CancelToken.after(0))
    assert caught.value.kind is ErrorKind.DEADLINE_EXCEEDED
    assert (
        not (bake_env / "layout" / "index.json").exists()
        or "spec-" not in (bake_env / "layout" / "index.json").read_text()
    )


@pytest.mark.parametrize(
    ("arguments", "kind"),
    [
        ({"pypi": {"six": "not a version"}}, ErrorKind.INVALID_INPUT),
        ({"pypi": {"six": ""}, "registry": "127.0.0.1:9/nothing"}, ErrorKind.UNAVAILABLE),
    ],
)
def test_errors_carry_a_kind(bake_env, arguments, kind):
    with pytest.raises(ImageBakingException) as caught:
        bake_image(**arguments)
    assert caught.value.kind is kind


def test_spec_and_lock_carry_their_kind_and_format(bake_env):
    spec = make_spec(pypi={"six": ""}, base_image_digest=DIGEST)
    assert (spec.kind, spec.format) == ("pypi", SPEC_FORMAT)
    baked = bake_image(pypi={"six": "==1.17.0"})
    annotation = json.loads(read_manifest(baked.image)["annotations"]["org.bakery.lock"])
    assert (annotation["kind"], annotation["format"]) == ("pypi", 2)
    older = {key: value for key, value in annotation.items() if key not in ("kind", "format")}
    assert (Lock.from_json(json.dumps(older)).kind, Lock.from_json(json.dumps(older)).format) == (
        "pypi",
        1,
    )


def test_bake_image_takes_a_timeout_or_a_token(bake_env):
    with pytest.raises(ImageBakingException) as caught:
        bake_image(pypi={"six": "==1.17.0"}, timeout=0)
    assert caught.value.kind is ErrorKind.DEADLINE_EXCEEDED
    with pytest.raises(ImageBakingException, match="cancel= or timeout=, not both"):
        bake_image(pypi={"six": ""}, timeout=5, cancel=CancelToken())
    with pytest.raises(ImageBakingException, match="cancel must be a"):
        bake_image(pypi={"six": ""}, cancel="stop")
