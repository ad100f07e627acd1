"""The bake RPCs: Bake and Watch, one build per distinct request however many callers wait.

Both front doors submit here: the gRPC Bake and the Fast Bakery HTTP endpoint (fastbakery.py)
call `submit` with their caller (a gRPC context, or an HTTP request as a `Caller`). A request's
files are written into a private directory, the request is checked (bad input is refused
before any event: INVALID_ARGUMENT on gRPC) and joins the running build of an identical
request (same `wire.fingerprint`, or the same `request_id`) or starts one. Each
build runs in its own thread once one of `max_builds` slots is free (`slots.BuildSlots`:
callers take turns; a new build beyond `max_queue` waiting ones is refused with `QueueFull`,
RESOURCE_EXHAUSTED on gRPC, a join never is); its events are kept, so every caller, and a
`Watch` after a dropped connection, gets all of them in order. The stream
ends with one `result` or `error` event; after an error the call ends with the status of its
kind (UNAVAILABLE, CANCELLED, ...).

A build nobody waits for any more is cancelled: once its last caller's deadline passed, or
`orphan_grace` seconds after the last caller went away otherwise (a dropped connection that
may re-attach with Watch), whichever comes first; at once when a caller that cancelled says
so with Cancel and no other caller waits (each caller's calls are counted by its request_id).
"""

import logging
import shutil
import tempfile
import threading
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import grpc

from bakery import config, wire
from bakery.bake import BakeResult, bake, find_fresh
from bakery.errors import ImageBakingException
from bakery.oci.publish import Publisher
from bakery.request import BakeRequest
from bakery.targets import open_target
from frontends.service.auth import caller_of
from frontends.service.lookups import Lookups
from frontends.service.metrics import ServiceMetrics
from frontends.service.slots import ANONYMOUS, DEFAULT_MAX_QUEUE, BuildSlots, QueueFull
from frontends.service.state import ServiceIndex, image_size
from stagekit.api.bakery.v1 import bakery_pb2
from stagekit.api.calls import status_of
from stagekit.cancel import Cancelled, CancelToken
from stagekit.errors import ErrorKind
from stagekit.progress import Event, Progress, Reporter

log = logging.getLogger("bakery.service")

PROGRESS_INTERVAL = 0.25
"""Seconds between two progress events of one stage that a build passes on to its callers."""
SHUTTING_DOWN = "the server is shutting down"
"""Why builds stop when the server does."""
KEEP_FINISHED = 200
"""Finished builds whose events Watch can still replay."""


class Caller(Protocol):
    """Someone waiting for a build: a gRPC call's context is one; http.py makes one of an
    HTTP request. The build is cancelled once no caller waits (see `_left`)."""

    def add_callback(self, callback: Callable[[], None]) -> bool:
        """Run `callback` when the caller goes away; False if it has gone already."""
        ...

    def time_remaining(self) -> float | None:
        """Seconds left before the caller's deadline; None: it has none."""
        ...

    def is_active(self) -> bool:
        """Whether the caller still listens."""
        ...


class LocalCaller:
    """A caller inside this process (a Fast Bakery HTTP request, a Warm item) waiting for a
    build, as the build machinery sees a caller: no deadline; it goes away with `leave()`
    (its answer is ready, or its own client left), and then the build may be cancelled if
    nobody else waits."""

    def __init__(self, name: str = ANONYMOUS) -> None:
        self.bakery_caller = name
        """The token's name (what `auth.caller_of` reads): the queue takes turns by it."""
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []
        self._gone = False

    def add_callback(self, callback: Callable[[], None]) -> bool:
        with self._lock:
            if not self._gone:
                self._callbacks.append(callback)
            return not self._gone

    def time_remaining(self) -> float | None:
        return None

    def is_active(self) -> bool:
        return not self._gone

    def leave(self) -> None:
        with self._lock:
            callbacks, self._callbacks = self._callbacks, []
            self._gone = True
        for callback in callbacks:
            callback()


class Build:
    """One build and the events it produced so far; callers follow it from any position."""

    def __init__(
        self, key: str, request_id: str, summary: str = "", caller: str = ANONYMOUS
    ) -> None:
        self.id = uuid.uuid4().hex
        self.key = key
        self.request_id = request_id
        self.caller = caller
        """Who started it (a token's name): the queue takes turns between callers."""
        self.summary = summary
        """What is baked, in a line (for the status page)."""
        self.created = time.time()
        self.started: float | None = None
        """When it got a build slot (Unix seconds); None while queued."""
        self.finished: float | None = None
        self.cancel = CancelToken()
        self.watchers = 0
        self.callers: Counter[str] = Counter()
        """Open calls per caller (request_id) among `watchers`."""
        self.events: list[bakery_pb2.BakeEvent] = []
        self.done = False
        self.thread: threading.Thread | None = None
        self._changed = threading.Condition()
        self._position = 0

    def publish(self, event: bakery_pb2.BakeEvent, *, last: bool = False) -> None:
        """Add an event; after the last (the result or error) nothing more is added."""
        with self._changed:
            if self.done:
                return
            self.events.append(event)
            self.done = last
            if last:
                self.finished = time.time()
            self._changed.notify_all()

    def queued(self, position: int) -> None:
        if position != self._position:
            self._position = position
            self.publish(bakery_pb2.BakeEvent(queued=bakery_pb2.Queued(position=position)))

    def after(self, start: int, wait: float) -> tuple[list[bakery_pb2.BakeEvent], bool]:
        """The events from `start` on (waiting up to `wait` seconds for one), and whether the
        build has finished."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.events) > start or self.done, wait)
            return self.events[start:], self.done


class BakeRpcs:
    """Bake and Watch; `max_builds` bounds the bakes that run at once, `max_queue` those
    that wait for a slot."""

    def __init__(
        self,
        max_builds: int,
        index: ServiceIndex | None = None,
        orphan_grace: float = 10.0,
        metrics: ServiceMetrics | None = None,
        max_queue: int = DEFAULT_MAX_QUEUE,
    ) -> None:
        self.max_builds = max_builds
        self.index = index
        """Where finished bakes are recorded (what ListCache, Prune and Stats read)."""
        self.metrics = metrics or ServiceMetrics()
        self.orphan_grace = orphan_grace
        self.builds_started = 0
        """Builds this server started (joined requests do not count): what tests and
        metrics read."""
        self.slots = BuildSlots(max_builds, max_queue)
        self.builds: OrderedDict[str, Build] = OrderedDict()
        """Running and recent builds by id: what Watch finds."""
        self._lock = threading.Lock()
        self._running: dict[str, Build] = {}
        self._by_request: dict[str, Build] = {}
        self._publisher: Publisher | None = None
        self._stopping = False
        self._submitting: dict[str, threading.Event] = {}
        """Requests being submitted, by fingerprint: identical ones wait for the first."""
        self.lookups = Lookups()
        """Cache-hit lookups shared by identical requests (Prune makes it forget)."""
        self.metrics.track_load(lambda: len(self.slots.waiting), lambda: self.slots.running)

    def submit(self, message: bakery_pb2.BakeRequest, caller: Caller) -> tuple[Build, bool]:
        """The build `caller` now waits for: the running one of an identical request, or a new
        one (True). Bad input raises ImageBakingException before anything is started;
        `QueueFull` when a new build would wait behind `max_queue` others.

        Identical requests arriving together wait for the first one's submission, then join
        its build or take its hit: only the first writes, checks and looks its request up."""
        key = wire.fingerprint(message)
        with self._lock:
            ahead = self._submitting.get(key)
            if ahead is None:
                self._submitting[key] = threading.Event()
        if ahead is not None:
            ahead.wait()
            settled = self._settled(key, message, caller)
            if settled is not None:
                return settled
            return self._submit(key, message, caller)  # the first one failed: see for itself
        try:
            return self._settled(key, message, caller) or self._submit(key, message, caller)
        finally:
            with self._lock:
                self._submitting.pop(key).set()

    def _settled(
        self, key: str, message: bakery_pb2.BakeRequest, caller: Caller
    ) -> tuple[Build, bool] | None:
        """What an identical request already settled: a hit found moments ago (answered
        now, as a finished build) or a running build (joined); None otherwise."""
        remembered = self.lookups.remembered(key)
        if remembered is not None:
            build = Build(key, message.request_id, describe(message))
            self._answered(build, message, remembered, time.monotonic(), looked=False)
            with self._lock:
                self._remember(build)
            return build, True
        with self._lock:
            running = self._joinable(message, key)
            if running is not None:
                self._watch(running, caller, message.request_id)
                return running, False
        return None

    def _submit(
        self, key: str, message: bakery_pb2.BakeRequest, caller: Caller
    ) -> tuple[Build, bool]:
        """Write and check the request, then answer it from the cache or build it."""
        workdir = Path(tempfile.mkdtemp(prefix="bakery-request-")).resolve()
        try:
            baked = wire.write_sources(message, workdir)
            baked.check()
        except ImageBakingException as exc:
            shutil.rmtree(workdir)
            raise ImageBakingException(_scrub(exc.message, workdir), kind=exc.kind) from None
        try:
            build, started = self._attach(key, message, baked, workdir, caller)
        except QueueFull:
            shutil.rmtree(workdir)
            raise
        if build.thread is None or not started:  # no build of its own reads the files
            shutil.rmtree(workdir)
        return build, started

    def Bake(
        self, request: bakery_pb2.BakeRequest, context: grpc.ServicerContext
    ) -> Iterator[bakery_pb2.BakeEvent]:
        try:
            build, started = self.submit(request, context)
        except ImageBakingException as exc:
            context.abort(status_of(exc.kind), exc.message)
        except QueueFull as exc:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        yield bakery_pb2.BakeEvent(accepted=bakery_pb2.Accepted(build_id=build.id))
        yield from self._follow(build, context, joined=not started)

    def Watch(
        self, request: bakery_pb2.WatchRequest, context: grpc.ServicerContext
    ) -> Iterator[bakery_pb2.BakeEvent]:
        with self._lock:
            build = self.builds.get(request.build_id)
            if build is not None:
                self._watch(build, context, request.request_id)
        if build is None:
            context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"no build {request.build_id!r} on this server (it keeps the last "
                f"{KEEP_FINISHED} builds); bake again",
            )
            return
        yield from self._follow(build, context, joined=False)

    def known_builds(self) -> list[Build]:
        """The running, queued and recent builds, oldest first (what the status page shows)."""
        with self._lock:
            return list(self.builds.values())

    def finish_builds(self, wait: float) -> None:
        """Give the unfinished builds up to `wait` seconds to end on their own (a graceful
        shutdown's grace: HTTP callers have no gRPC call the server would wait for). From
        now on a build whose last caller goes is cancelled at once, as the server stopping
        (no orphan grace: nobody re-attaches to a stopping server)."""
        self._stopping = True
        deadline = time.monotonic() + wait
        with self._lock:
            builds = list(self._running.values())
        for build in builds:
            if build.thread is not None:
                build.thread.join(max(0.0, deadline - time.monotonic()))

    def Cancel(
        self, request: bakery_pb2.CancelRequest, context: grpc.ServicerContext
    ) -> bakery_pb2.CancelReply:
        """The caller `request_id` stops waiting: its build is cancelled now unless a call of
        another caller waits for it (a caller without request_id cannot tell its own calls
        apart, so any open call keeps the build)."""
        with self._lock:
            build = self.builds.get(request.build_id) or self._by_request.get(request.request_id)
            if build is not None:
                own = build.callers[request.request_id] if request.request_id else 0
                stop = not build.done and build.watchers - own <= 0
        if build is None:
            context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"no build {request.build_id or request.request_id!r} on this server",
            )
            raise AssertionError("abort raises")
        if stop:
            build.cancel.cancel("its caller cancelled it and no other caller waits for it")
        return bakery_pb2.CancelReply(cancelled=stop)

    def stop_builds(self, wait: float = 10.0) -> None:
        """Cancel every unfinished build (the server is stopping) and wait for them to stop."""
        with self._lock:
            builds = list(self._running.values())
        for build in builds:
            build.cancel.cancel(SHUTTING_DOWN)
        for build in builds:
            if build.thread is not None:
                build.thread.join(wait)
        with self._lock:
            publisher, self._publisher = self._publisher, None
        if publisher is not None:
            publisher.close()

    def _attach(
        self,
        key: str,
        message: bakery_pb2.BakeRequest,
        request: BakeRequest,
        workdir: Path,
        caller: Caller,
    ) -> tuple[Build, bool]:
        """The running build this request joins, or a new one; True if it started one. A
        spec whose image is baked and fresh is answered at once, as a finished build that
        took no slot and no thread: cache hits never queue behind builds. (`submit` looked
        for a running build already; identical requests whose first one failed come here
        together, so one is looked for again once the lookup is done.)"""
        answered = self._answer_from_cache(key, message, request, workdir)
        with self._lock:
            build = self._joinable(message, key)
            started = build is None
            if build is None and answered is not None:
                self._remember(answered)
                return answered, True
            if build is None:
                build = Build(key, message.request_id, describe(message), caller_of(caller))
                self.slots.enter(build, build.caller)
                self._running[key] = build
                if message.request_id:
                    self._by_request[message.request_id] = build
                self._remember(build)
                self.builds_started += 1
                build.thread = threading.Thread(
                    target=self._run, args=(build, request, workdir), name=f"bake-{build.id[:8]}"
                )
                build.thread.start()
            self._watch(build, caller, message.request_id)
        return build, started

    def _joinable(self, message: bakery_pb2.BakeRequest, key: str) -> Build | None:
        """The running build of the same request_id or fingerprint (under self._lock)."""
        build = self._by_request.get(message.request_id) if message.request_id else None
        return build or self._running.get(key)

    def _answer_from_cache(
        self, key: str, message: bakery_pb2.BakeRequest, request: BakeRequest, workdir: Path
    ) -> Build | None:
        """A finished build holding the result (or the lookup's error) when the spec's image
        is baked and fresh; None when it must be built."""
        started = time.monotonic()
        build = Build(key, message.request_id, describe(message))
        reporter = self._reporter(build)
        try:
            result, looked = self.lookups.find(
                key, lambda: find_fresh(request, self._target(), reporter)
            )
        except ImageBakingException as exc:
            build.started = build.finished = time.time()
            build.publish(self._failed(key, exc, started, workdir), last=True)
            return build
        if result is None:
            return None
        self._answered(build, message, result, started, looked=looked)
        return build

    def _answered(
        self,
        build: Build,
        message: bakery_pb2.BakeRequest,
        result: BakeResult,
        started: float,
        *,
        looked: bool,
    ) -> None:
        """Finish `build` with a cache hit; `looked`: this call's lookup found it (and said
        so), else an identical request's did."""
        if not looked:
            self._reporter(build).info(
                f"Found baked image {result.image} for spec {result.spec_id[:12]} "
                "(an identical request just looked it up)"
            )
        platform = message.platform or config.platform()
        build.started = build.finished = time.time()
        build.publish(self._finished(build.key, platform, result, started), last=True)

    def _target(self) -> Publisher:
        """The server's publish target, opened once: cache hits reuse its connections.
        (Remote requests cannot pick a target or registry: the server's own is used.)"""
        with self._lock:
            if self._publisher is None:
                self._publisher = open_target(None, None)
            return self._publisher

    @staticmethod
    def _reporter(build: Build) -> Reporter:
        """A reporter whose events become `build`'s events (what its callers receive). A
        stage's progress is passed on at most every PROGRESS_INTERVAL seconds (its first and
        last always): every event goes to every caller, and fifty callers of one build would
        otherwise spend more on progress messages than the build itself takes."""
        last: dict[str, float] = {}

        def publish(event: Event) -> None:
            if isinstance(event, Progress) and 0 < event.done < event.total:
                now = time.monotonic()
                if now - last.get(event.stage, -PROGRESS_INTERVAL) < PROGRESS_INTERVAL:
                    return
                last[event.stage] = now
            build.publish(wire.event_message(event))

        return Reporter("bakery.service", events=publish)

    def _remember(self, build: Build) -> None:
        self.builds[build.id] = build
        while len(self.builds) > KEEP_FINISHED:
            oldest = next((b for b in self.builds.values() if b.done), None)
            if oldest is None:
                break
            del self.builds[oldest.id]

    def _watch(self, build: Build, caller: Caller, caller_id: str) -> None:
        """Count a caller waiting for `build` until its call ends (under self._lock);
        `caller_id` is its request_id, which `Cancel` names."""
        build.watchers += 1
        build.callers[caller_id] += 1
        if not caller.add_callback(lambda: self._left(build, caller, caller_id)):
            build.watchers -= 1
            build.callers[caller_id] -= 1

    def _left(self, build: Build, caller: Caller, caller_id: str) -> None:
        with self._lock:
            build.watchers -= 1
            build.callers[caller_id] -= 1
            if build.watchers > 0 or build.done:
                return
            if self._stopping:  # nobody waits, and no caller re-attaches to a stopping server
                build.cancel.cancel(SHUTTING_DOWN)
                return
        # A caller re-attaches within its own deadline or not at all, so a caller whose
        # deadline passes within the grace (or has passed: a client's own deadline may reach
        # the server as a cancellation just before the server's) is not waited for.
        remaining = caller.time_remaining()
        if remaining is not None and remaining < self.orphan_grace:
            reason = "the caller's deadline passed and no other caller waits for it"
            wait = max(0.0, remaining)
        else:
            reason = f"its callers went away and none re-attached within {self.orphan_grace:g}s"
            wait = self.orphan_grace
        timer = threading.Timer(wait, self._cancel_orphan, (build, reason))
        timer.daemon = True
        timer.start()

    def _cancel_orphan(self, build: Build, reason: str) -> None:
        with self._lock:
            orphaned = build.watchers == 0 and not build.done
        if orphaned:
            build.cancel.cancel(reason)

    def _run(self, build: Build, request: BakeRequest, workdir: Path) -> None:
        try:
            final = self._bake(build, request, self._reporter(build), workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
            with self._lock:
                self._running.pop(build.key, None)
                self._by_request.pop(build.request_id, None)
        build.publish(final, last=True)

    def _bake(
        self, build: Build, request: BakeRequest, reporter: Reporter, workdir: Path
    ) -> bakery_pb2.BakeEvent:
        """The build's last event: its result or its error."""
        try:
            self.slots.acquire(build, build.caller)
        except Cancelled as exc:
            self.metrics.bake_failed()
            return wire.error_message(exc.kind, f"The bake stopped while queued: {exc.message}.")
        build.started = time.time()
        started = time.monotonic()
        try:
            result = bake(request, reporter=reporter, cancel=build.cancel)
        except ImageBakingException as exc:
            return self._failed(build.key, exc, started, workdir)
        except Exception as exc:  # a bug: the caller gets a typed error, the log the trace
            self.metrics.bake_failed()
            log.exception("build %s failed", build.id)
            return wire.error_message(
                ErrorKind.INTERNAL, f"the server failed: {type(exc).__name__}: {exc}"
            )
        finally:
            self.slots.release()
        return self._finished(build.key, request.target_platform, result, started)

    def _finished(
        self, key: str, platform: str, result: BakeResult, started: float
    ) -> bakery_pb2.BakeEvent:
        """Count and record a bake's result (for `platform`); its last event."""
        self.metrics.bake_finished(result)
        if self.index is not None:
            size = image_size(result.image) if result.outcome == "built" else None
            seconds = time.monotonic() - started
            self.index.record_bake(result, platform, size=size, fingerprint=key, seconds=seconds)
        return wire.result_message(result)

    def _failed(
        self, key: str, exc: ImageBakingException, started: float, workdir: Path
    ) -> bakery_pb2.BakeEvent:
        """Count and record a failed bake; its last event (the message without `workdir`)."""
        self.metrics.bake_failed()
        if self.index is not None:
            self.index.record_failure(key, time.monotonic() - started)
        return wire.error_message(exc.kind, _scrub(exc.message, workdir))

    def last_event(self, build: Build, *, joined: bool) -> bakery_pb2.BakeEvent:
        """A finished `build`'s last event as one caller gets it: a caller that joined the
        build gets its result as `joined` (counted as such, and as a use of the image)."""
        event = build.events[-1]
        if joined and event.HasField("result"):
            event = _joined(event)
            self.metrics.bake_joined()
            if self.index is not None:
                self.index.record_hit(event.result.spec_id)
        return event

    def _follow(
        self, build: Build, context: grpc.ServicerContext, *, joined: bool
    ) -> Iterator[bakery_pb2.BakeEvent]:
        """`build`'s events from the first, until its last; a joined caller's result says
        `joined`. An error event ends the call with its kind's status."""
        sent = 0
        while context.is_active():
            events, done = build.after(sent, wait=1.0)
            for number, event in enumerate(events, start=sent + 1):
                if done and number == len(build.events):
                    event = self.last_event(build, joined=joined)
                yield event
                if event.HasField("error"):
                    kind = wire.error_kind(event.error.kind)
                    context.abort(status_of(kind), event.error.message)
            sent += len(events)
            if done and sent == len(build.events):
                return


def describe(message: bakery_pb2.BakeRequest) -> str:
    """What a request bakes, in a line: its requirements or file, Python and platform."""
    if message.pypi:
        what = ", ".join(f"{name}{spec}" for name, spec in sorted(message.pypi.items()))
    elif message.HasField("requirements"):
        lines = message.requirements.content.splitlines()
        wanted = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
        what = f"{message.requirements.path or 'requirements.txt'}: {', '.join(wanted)}"
    elif message.HasField("pyproject"):
        what = message.pyproject.path or "pyproject.toml"
    else:
        what = "(nothing)"
    extras = [
        f"{label} {value}"
        for label, value in (
            ("python", message.python),
            ("on", message.platform),
            ("base", message.base_image),
        )
        if value
    ]
    return "; ".join([what[:300], *extras])


def _joined(event: bakery_pb2.BakeEvent) -> bakery_pb2.BakeEvent:
    copy = bakery_pb2.BakeEvent()
    copy.CopyFrom(event)
    copy.result.outcome = bakery_pb2.OUTCOME_JOINED
    return copy


def _scrub(message: str, workdir: Path) -> str:
    """The library's message without the server's private directory in file paths."""
    return message.replace(f"{workdir}/", "").replace(str(workdir), ".")
