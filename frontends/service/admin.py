"""The Admin service: warm the cache, list and prune it, count bakes, create tokens.

Every call needs an `admin` token (auth.py checks it before a call gets here). Warm bakes in
this process on a bounded pool, like the bake RPCs; the index (state.py) is what ListCache,
Prune and Stats read.
"""

import logging
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple, NoReturn

import grpc

from bakery import wire
from frontends.service.state import CacheRow, Scope, ServiceIndex, StateError, image_size
from stagekit.api.bakery.v1 import bakery_pb2, bakery_pb2_grpc
from stagekit.api.calls import status_of
from stagekit.cancel import CancelToken
from stagekit.errors import ErrorKind
from stagekit.progress import Reporter

log = logging.getLogger("bakery.service")

_SCOPES: dict[int, Scope] = {bakery_pb2.SCOPE_BAKE: "bake", bakery_pb2.SCOPE_ADMIN: "admin"}


class Load(NamedTuple):
    """Bakes waiting for a slot and bakes running."""

    queued: int
    running: int


def _kind(error: Exception) -> ErrorKind:
    """A typed failure's kind; anything else is internal."""
    kind = getattr(error, "kind", None)
    return kind if isinstance(kind, ErrorKind) else ErrorKind.INTERNAL


def _abort(
    context: grpc.ServicerContext, error: Exception, status: grpc.StatusCode | None = None
) -> NoReturn:
    context.abort(status or status_of(_kind(error)), str(error))
    raise AssertionError("abort raises")


def _entry(row: CacheRow) -> bakery_pb2.CacheEntry:
    return bakery_pb2.CacheEntry(
        spec_id=row.spec_id,
        image=row.image,
        platform=row.platform,
        size=row.size,
        created=row.created,
        last_used=row.last_used,
        hits=row.hits,
    )


class AdminService(bakery_pb2_grpc.AdminServicer):
    """`bakery.v1.Admin`. `bake_load` is the hook the bake RPCs set so Stats reports their
    queue; Warm's own bakes are added to it. `prune_contents(unused_for, dry_run)` is the
    package RPCs' hook that Prune calls for uploaded file contents."""

    def __init__(self, index: ServiceIndex, max_builds: int) -> None:
        self.index = index
        self.bake_load: Callable[[], Load] = lambda: Load(0, 0)
        self.prune_contents: Callable[[int, bool], tuple[int, int]] = lambda _for, _dry: (0, 0)
        self._pool = ThreadPoolExecutor(max_builds, thread_name_prefix="bakery-warm")
        self._lock = threading.Lock()
        self._warm = Load(0, 0)

    def close(self) -> None:
        """Stop warm bakes not yet started; wait for the running ones."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    # -- Warm ----------------------------------------------------------------------------

    def Warm(
        self, request_iterator: Iterator[bakery_pb2.WarmItem], context: grpc.ServicerContext
    ) -> Iterator[bakery_pb2.WarmResult]:
        """Bake every item on each of its platforms, at most `max_builds` at once; results
        stream back as bakes finish. `refresh` re-resolves every unpinned spec now (max age
        0): an unchanged lock keeps its image (a hit, `refreshed`), a changed one is baked
        and its tag moves."""
        cancel = CancelToken()
        context.add_callback(lambda: cancel.cancel("the Warm call ended"))
        with tempfile.TemporaryDirectory(prefix="bakery-warm-") as scratch:
            jobs: list[Future[bakery_pb2.WarmResult]] = []
            for item in request_iterator:
                for platform in list(item.platforms) or [None]:
                    workdir = Path(scratch) / str(len(jobs))
                    workdir.mkdir()
                    self._count(queued=1)
                    jobs.append(self._pool.submit(self._warm_one, item, platform, workdir, cancel))
            for job in as_completed(jobs):
                yield job.result()

    def _warm_one(
        self, item: bakery_pb2.WarmItem, platform: str | None, workdir: Path, cancel: CancelToken
    ) -> bakery_pb2.WarmResult:
        self._count(queued=-1, running=1)
        started = time.monotonic()
        keyed = bakery_pb2.BakeRequest()
        keyed.CopyFrom(item.request)
        keyed.platform = platform or keyed.platform
        fingerprint = wire.fingerprint(keyed)  # the key the Bake RPCs give the same request
        answer = bakery_pb2.WarmResult(request=item.request, platform=platform or "")
        try:
            from bakery.bake import bake

            request = wire.write_sources(item.request, workdir)
            request = replace(
                request,
                platform=platform or request.platform,
                max_age=0.0 if item.refresh else request.max_age,
            )
            answer.platform = request.target_platform
            request.check()
            result = bake(request, reporter=Reporter("bakery.warm"), cancel=cancel)
        except Exception as exc:  # one failed spec is reported; the others go on
            if _kind(exc) is ErrorKind.INTERNAL:
                log.exception("warming %s failed", fingerprint[:12])
            self.index.record_failure(fingerprint, time.monotonic() - started)
            answer.error.CopyFrom(wire.error_message(_kind(exc), str(exc)).error)
            return answer
        finally:
            self._count(running=-1)
        self.index.record_bake(
            result,
            answer.platform,
            size=image_size(result.image),
            fingerprint=fingerprint,
            seconds=time.monotonic() - started,
        )
        answer.result.CopyFrom(wire.result_message(result).result)
        return answer

    def _count(self, queued: int = 0, running: int = 0) -> None:
        with self._lock:
            self._warm = Load(self._warm.queued + queued, self._warm.running + running)

    # -- the index -----------------------------------------------------------------------

    def ListCache(
        self, request: bakery_pb2.ListCacheRequest, context: grpc.ServicerContext
    ) -> bakery_pb2.ListCacheReply:
        return bakery_pb2.ListCacheReply(entries=[_entry(row) for row in self.index.entries()])

    def Prune(
        self, request: bakery_pb2.PruneRequest, context: grpc.ServicerContext
    ) -> bakery_pb2.PruneReply:
        """Forget entries past the bounds and delete their `spec-` tags, then remove the
        uploaded file contents no package used within `unused_for` (contents have no age of
        their own: `older_than` alone leaves them). A tag whose image another kept entry also
        names stays (registry 2.8 deletes by digest, which would take that entry's tag too).
        A failure stops the prune; the index keeps exactly the entries whose tags were not
        removed, so running it again finishes the job. `dry_run` counts, removes nothing."""
        if request.older_than_seconds < 0 or request.unused_for_seconds < 0:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "prune bounds cannot be negative")
        if not (request.older_than_seconds or request.unused_for_seconds):
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "give older_than and/or unused_for: a prune without bounds would empty the cache",
            )
        rows = self.index.stale(request.older_than_seconds, request.unused_for_seconds)
        if request.dry_run:
            return self._pruned_contents(request, [_entry(row) for row in rows])
        from bakery.targets import untag

        pruned = {row.spec_id for row in rows}
        shared = {row.image for row in self.index.entries() if row.spec_id not in pruned}
        removed = []
        for row in rows:
            try:
                if row.image not in shared:
                    untag(row.image, f"spec-{row.spec_id}")
            except Exception as exc:  # typed stage errors carry their kind; see _abort
                log.warning("prune stopped at %s: %s", row.spec_id[:12], exc)
                _abort(context, exc)
            self.index.remove(row.spec_id)
            removed.append(_entry(row))
        return self._pruned_contents(request, removed)

    def _pruned_contents(
        self, request: bakery_pb2.PruneRequest, removed: list[bakery_pb2.CacheEntry]
    ) -> bakery_pb2.PruneReply:
        count, size = self.prune_contents(request.unused_for_seconds, request.dry_run)
        return bakery_pb2.PruneReply(
            removed=removed, contents_removed=count, content_bytes_removed=size
        )

    def Stats(
        self, request: bakery_pb2.StatsRequest, context: grpc.ServicerContext
    ) -> bakery_pb2.StatsReply:
        rows = self.index.entries()
        bakes, warm = self.bake_load(), self._warm
        return bakery_pb2.StatsReply(
            bakes_by_outcome=self.index.outcomes(),
            cache_entries=len(rows),
            cache_bytes=sum(row.size for row in rows),
            queued=bakes.queued + warm.queued,
            running=bakes.running + warm.running,
        )

    def CreateToken(
        self, request: bakery_pb2.CreateTokenRequest, context: grpc.ServicerContext
    ) -> bakery_pb2.CreateTokenReply:
        scope = _SCOPES.get(request.scope)
        if scope is None:
            _abort(context, StateError("scope must be SCOPE_BAKE or SCOPE_ADMIN"))
        try:
            secret = self.index.create_token(request.name, scope)
        except StateError as exc:  # a name taken already is ALREADY_EXISTS, not a retry
            taken = _kind(exc) is ErrorKind.CONFLICT
            _abort(context, exc, grpc.StatusCode.ALREADY_EXISTS if taken else None)
        log.info("created %s token %r", scope, request.name)
        return bakery_pb2.CreateTokenReply(token=secret)
