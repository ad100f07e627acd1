"""The server's Prometheus metrics: every metric object, and the small hooks the RPCs call.

Each server owns a `CollectorRegistry` of its own, so several servers in one process (tests,
benchmarks) never share a counter. The bake machinery (bakes.py) counts each build's outcome
once and each caller that joined a build; the package RPCs count the content bytes uploads
deliver; queue depth and in-flight builds are read from the build slots when scraped.
`/metrics` on the HTTP side (http.py) renders `exposition()`.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

if TYPE_CHECKING:
    from bakery.bake import BakeResult

OUTCOMES = ("built", "hit", "joined", "failed")
STAGE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
"""Seconds: from a cache lookup (~ms) to a large build's layers (many minutes)."""


class ServiceMetrics:
    """One server's metrics; every hook is safe to call from any thread."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.bakes = Counter(
            "bakery_bakes",
            "Bakes answered, by outcome: built, hit (image found), joined (a caller of an "
            "identical bake already running), failed.",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in OUTCOMES:  # every outcome is exported from the start, at 0
            self.bakes.labels(outcome)
        self.stage_seconds = Histogram(
            "bakery_bake_stage_duration_seconds",
            "Seconds each stage of a bake took (find, base, resolve, layers, publish).",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=self.registry,
        )
        self.bytes_uploaded = Counter(
            "bakery_bake_uploaded_bytes",
            "Bytes the server's bakes uploaded to the registry.",
            registry=self.registry,
        )
        self.package_bytes = Counter(
            "bakery_package_received_bytes",
            "File content bytes received by UploadContents.",
            registry=self.registry,
        )
        self.queued = Gauge(
            "bakery_builds_queued",
            "Builds waiting for a build slot.",
            registry=self.registry,
        )
        self.running = Gauge(
            "bakery_builds_in_flight",
            "Builds holding a build slot.",
            registry=self.registry,
        )

    def track_load(self, queued: Callable[[], float], running: Callable[[], float]) -> None:
        """Read queue depth and in-flight builds from these callables at each scrape."""
        self.queued.set_function(queued)
        self.running.set_function(running)

    def bake_finished(self, result: "BakeResult") -> None:
        """A build ended with an image: its outcome (built or hit), stage times and uploads."""
        self.bakes.labels(result.outcome).inc()
        for stage, seconds in result.stage_seconds.items():
            self.stage_seconds.labels(stage).observe(seconds)
        self.bytes_uploaded.inc(result.bytes_uploaded)

    def bake_failed(self) -> None:
        """A build ended with an error (cancellations included)."""
        self.bakes.labels("failed").inc()

    def bake_joined(self) -> None:
        """A caller got the result of a build another caller started."""
        self.bakes.labels("joined").inc()

    def package_received(self, size: int) -> None:
        """An upload delivered `size` bytes of file contents."""
        self.package_bytes.inc(size)

    def exposition(self) -> tuple[bytes, str]:
        """The text format Prometheus scrapes, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
