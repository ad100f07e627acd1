"""Cancelling package_code / fetch_code, or letting their deadline pass: the call stops with
a typed error, its worker threads are gone, and nothing is left in the store or as a
temporary file in the cache; the same call uncancelled then succeeds with the right key.

The cancel comes from another thread at a chosen progress event, and the events sink waits
until it has landed, so the work's next check stops it whatever the machine's speed.
"""

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from packager import CodePackagingException, fetch_code, package_code
from packager.members import CHUNK
from packager.workers import THREAD_PREFIX
from stagekit.cancel import CancelToken
from stagekit.errors import ErrorKind
from stagekit.progress import Event, LogLine, Progress

pytestmark = pytest.mark.usefixtures("isolated_cache")


@pytest.fixture
def tree(tmp_path) -> Path:
    """Many small files (hashed in batches by the hash workers) and two files over a chunk
    (compressed chunk by chunk by the tar workers)."""
    root = tmp_path / "src"
    for index in range(400):
        path = root / f"pkg{index % 9}" / f"mod{index}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"value = {index}  # {os.urandom(8).hex()}\n" * 400)
    for name in ("big1.txt", "big2.txt"):
        (root / name).write_bytes(os.urandom(CHUNK + 1))
    return root


def packager_threads() -> list[str]:
    return [
        thread.name for thread in threading.enumerate() if thread.name.startswith(THREAD_PREFIX)
    ]


def temporaries(cache: Path) -> list[str]:
    """Hidden files below the cache other than the build locks: spools, temp tarballs,
    half-written stat caches."""
    return [
        str(path.relative_to(cache))
        for path in cache.rglob(".*")
        if path.is_file() and path.name != ".lock"
    ]


class CancelAt:
    """An events sink: at the first event `when` accepts, another thread cancels `token`,
    and the sink returns once it has."""

    def __init__(self, token: CancelToken, when: Callable[[Event], bool]):
        self.token = token
        self.when = when
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        if not self.token.cancelled and self.when(event):
            canceller = threading.Thread(target=self.token.cancel, args=("the client went away",))
            canceller.start()
            canceller.join()

    def stages(self) -> set[str]:
        return {event.stage for event in self.events if isinstance(event, Progress)}

    def uploaded(self) -> bool:
        return any(
            isinstance(e, LogLine) and e.message.startswith("Uploading") for e in self.events
        )


def first_of(stage: str) -> Callable[[Event], bool]:
    return lambda event: isinstance(event, Progress) and event.stage == stage


def tarball_written(event: Event) -> bool:
    return isinstance(event, Progress) and event.stage == "tar" and event.done == event.total


MOMENTS = {"hashing": first_of("hash"), "writing the tarball": first_of("tar")}
MOMENTS["before the upload"] = tarball_written


def reference_key(tree: Path, tmp_path: Path) -> str:
    return package_code(
        [str(tree)], store=str(tmp_path / "reference"), cache_dir=tmp_path / "reference-cache"
    ).key


@pytest.mark.parametrize("moment", MOMENTS)
def test_cancelled_into_a_local_store(tree, tmp_path, isolated_cache, moment):
    store = tmp_path / "store"
    token = CancelToken()
    sink = CancelAt(token, MOMENTS[moment])

    with pytest.raises(CodePackagingException, match="stopped: the client went away") as raised:
        package_code([str(tree)], store=str(store), events=sink, cancel=token)

    assert raised.value.kind is ErrorKind.CANCELLED
    assert packager_threads() == []
    assert not store.exists() or [path for path in store.rglob("*") if path.is_file()] == []
    assert temporaries(isolated_cache) == []
    assert ("tar" in sink.stages()) is (moment != "hashing")
    assert not sink.uploaded() or moment == "before the upload"

    again = package_code([str(tree)], store=str(store))
    assert again.key == reference_key(tree, tmp_path)
    assert Path(again.url.removeprefix("file://")).is_file()
    assert temporaries(isolated_cache) == []


@pytest.mark.parametrize("moment", MOMENTS)
def test_cancelled_into_s3(tree, tmp_path, s3_bucket, s3_endpoint, moment):
    client = s3_endpoint.client()
    token = CancelToken()

    with pytest.raises(CodePackagingException) as raised:
        package_code(
            [str(tree)],
            store=f"s3://{s3_bucket}/code",
            events=CancelAt(token, MOMENTS[moment]),
            cancel=token,
        )

    assert raised.value.kind is ErrorKind.CANCELLED
    assert packager_threads() == []
    assert client.list_objects_v2(Bucket=s3_bucket).get("Contents", []) == []
    assert client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []

    again = package_code([str(tree)], store=f"s3://{s3_bucket}/code")
    assert again.key == reference_key(tree, tmp_path)
    (stored,) = client.list_objects_v2(Bucket=s3_bucket)["Contents"]
    assert stored["Key"] == f"code/{again.key[:2]}/{again.key}.tar.gz"


def test_a_deadline_passing_mid_work_is_deadline_exceeded(tree, tmp_path, isolated_cache):
    """The deadline is moved to now at the first hash progress: no clock race."""
    token = CancelToken(deadline=time.monotonic() + 3600)

    def deadline_passes(event: Event) -> None:
        if isinstance(event, Progress):
            token.deadline = time.monotonic()

    with pytest.raises(CodePackagingException, match="deadline passed") as raised:
        package_code(
            [str(tree)], store=str(tmp_path / "store"), events=deadline_passes, cancel=token
        )
    assert raised.value.kind is ErrorKind.DEADLINE_EXCEEDED
    assert packager_threads() == []
    assert not (tmp_path / "store").exists()
    assert temporaries(isolated_cache) == []


def test_a_timeout_already_spent_stops_before_any_work(tree, tmp_path):
    events: list[Event] = []
    with pytest.raises(CodePackagingException, match="deadline passed") as raised:
        package_code([str(tree)], store=str(tmp_path / "store"), timeout=0, events=events.append)
    assert raised.value.kind is ErrorKind.DEADLINE_EXCEEDED
    assert events == []
    assert not (tmp_path / "store").exists()


def test_a_generous_timeout_changes_nothing(tree, tmp_path):
    timed = package_code([str(tree)], store=str(tmp_path / "store"), timeout=3600)
    assert timed.key == reference_key(tree, tmp_path)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"cancel": CancelToken(), "timeout": 5}, "give cancel= or timeout=, not both"),
        ({"cancel": True}, "cancel must be a stagekit.cancel.CancelToken, got bool"),
        ({"timeout": "5s"}, "timeout must be a number of seconds"),
        ({"timeout": -1}, "timeout must be a number of seconds"),
        ({"timeout": float("nan")}, "timeout must be a number of seconds"),
    ],
)
def test_bad_cancel_options_are_invalid_input(tree, tmp_path, options, match):
    with pytest.raises(CodePackagingException, match=match) as raised:
        package_code([str(tree)], store=str(tmp_path / "store"), **options)
    assert raised.value.kind is ErrorKind.INVALID_INPUT
    with pytest.raises(CodePackagingException, match=match):
        fetch_code("file:///store/ab/ab.tar.gz", "ab", tmp_path / "out", **options)


class CancelsAtCheck(CancelToken):
    """A real token that cancels itself at its `n`th check: fetch_code has no events, so
    this is how a test stops it at a chosen member."""

    def __init__(self, n: int):
        super().__init__()
        self.n = n
        self.checks = 0

    def check(self) -> None:
        self.checks += 1
        if self.checks == self.n:
            self.cancel("the client went away")
        super().check()


def test_fetch_cancelled_between_members_leaves_nothing(tree, tmp_path):
    package = package_code([str(tree)], store=str(tmp_path / "store"))
    token = CancelsAtCheck(3)  # the start, the first member, then the second member

    with pytest.raises(
        CodePackagingException, match=r"fetching file://.* stopped: the client went away"
    ) as raised:
        fetch_code(package.url, package.key, tmp_path / "out", cancel=token)

    assert raised.value.kind is ErrorKind.CANCELLED
    assert token.checks == 3
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cache", "src", "store"]
    fetched = fetch_code(package.url, package.key, tmp_path / "out", timeout=3600)
    assert (fetched / "big1.txt").read_bytes() == (tree / "big1.txt").read_bytes()


def test_fetch_past_its_deadline_is_deadline_exceeded(tree, tmp_path):
    package = package_code([str(tree)], store=str(tmp_path / "store"))
    with pytest.raises(CodePackagingException) as raised:
        fetch_code(package.url, package.key, tmp_path / "out", timeout=0)
    assert raised.value.kind is ErrorKind.DEADLINE_EXCEEDED
    assert not (tmp_path / "out").exists()
