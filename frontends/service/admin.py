"""The Admin service: warm the cache, list and prune it, count bakes, create tokens.

Every call needs an `admin` token (auth.py checks it before a call gets here). Warm bakes
through the bake RPCs' builds (bakes.py), so its bakes queue, join and are counted like any
other; the index (state.py) is what ListCache, Prune and Stats read.
"""

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import NoReturn

import grpc

from bakery import config, wire
from bakery.errors import ImageBakingException
from frontends.service.auth import caller_of
from frontends.service.bakes import BakeRpcs, LocalCaller
from frontends.service.slots import QueueFull
from frontends.service.state import CacheRow, Scope, ServiceIndex, StateError
from stagekit.api.bakery.v1 import bakery_pb2, bakery_pb2_grpc
from stagekit.api.calls import status_of
from stagekit.cancel import CancelToken
from stagekit.errors import ErrorKind

log = logging.getLogger("bakery.service")

_SCOPES: dict[int, Scope] = {bakery_pb2.SCOPE_BAKE: "bake", bakery_pb2.SCOPE_ADMIN: "admin"}


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
    """`bakery.v1.Admin`. Warm submits to the bake RPCs' build machinery (`bakes`), so warm
    bakes share its slots, queue and singleflight with every other caller.
    `prune_contents(unused_for, dry_run)` is the package RPCs' hook that Prune calls for
    uploaded file contents."""

    def __init__(self, index: ServiceIndex, bakes: BakeRpcs) -> None:
        self.index = index
        self.bakes = bakes
        self.prune_contents: Callable[[int, bool], tuple[int, int]] = lambda _for, _dry: (0, 0)

    # -- Warm ----------------------------------------------------------------------------

    def Warm(
        self, request_iterator: Iterator[bakery_pb2.WarmItem], context: grpc.ServicerContext
    ) -> Iterator[bakery_pb2.WarmResult]:
        """Bake every item on each of its platforms as the calling admin token, at most
        `max_builds` of this call's bakes submitted at once (a long warm file never fills the
        queue); results stream back as bakes finish. `refresh` re-resolves every unpinned spec
        now (max age 0): an unchanged lock keeps its image (a hit, `refreshed`), a changed
        one is baked and its tag moves."""
        name = caller_of(context)
        gone = CancelToken()
        context.add_callback(lambda: gone.cancel("the Warm call ended"))
        jobs = [
            (item, platform)
            for item in request_iterator
            for platform in list(item.platforms) or [None]
        ]
        with ThreadPoolExecutor(self.bakes.max_builds, thread_name_prefix="bakery-warm") as pool:
            futures = [pool.submit(self._warm_one, *job, name, gone) for job in jobs]
            for future in as_completed(futures):
                yield future.result()

    def _warm_one(
        self, item: bakery_pb2.WarmItem, platform: str | None, name: str, gone: CancelToken
    ) -> bakery_pb2.WarmResult:
        message = bakery_pb2.BakeRequest()
        message.CopyFrom(item.request)
        message.platform = platform or message.platform
        if item.refresh:
            message.max_age_seconds = 0
        answer = bakery_pb2.WarmResult(
            request=item.request, platform=message.platform or config.platform()
        )
        if gone.cancelled:
            return answer  # nobody reads it
        caller = LocalCaller(name)
        try:
            build, started = self.bakes.submit(message, caller)
            while not build.done and not gone.cancelled:
                build.after(len(build.events), wait=1.0)
            if not build.done:
                return answer
            last = self.bakes.last_event(build, joined=not started)
        except (ImageBakingException, QueueFull) as exc:  # one failed spec; the others go on
            kind = exc.kind if isinstance(exc, ImageBakingException) else ErrorKind.UNAVAILABLE
            self.index.record_failure(wire.fingerprint(message), 0.0)  # in the warm's history
            answer.error.CopyFrom(wire.error_message(kind, str(exc)).error)
            return answer
        finally:
            caller.leave()
        if last.HasField("error"):
            answer.error.CopyFrom(last.error)
        else:
            answer.result.CopyFrom(last.result)
        return answer

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
        try:
            for row in rows:
                try:
                    if row.image not in shared:
                        untag(row.image, f"spec-{row.spec_id}")
                except Exception as exc:  # typed stage errors carry their kind; see _abort
                    log.warning("prune stopped at %s: %s", row.spec_id[:12], exc)
                    _abort(context, exc)
                self.index.remove(row.spec_id)
                removed.append(_entry(row))
        finally:
            self.bakes.lookups.forget()  # a removed tag must not be answered from memory
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
        return bakery_pb2.StatsReply(
            bakes_by_outcome=self.index.outcomes(),
            cache_entries=len(rows),
            cache_bytes=sum(row.size for row in rows),
            queued=len(self.bakes.slots.waiting),
            running=self.bakes.slots.running,
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
