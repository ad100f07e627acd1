"""Benchmark the Bakery service: remote bakes over gRPC against in-process bakes.

Run: uv run python -m bench.service [--rounds 3] [--clients 50]

A loopback registry (CNCF distribution, as in the tests) holds a Debian + python3 base built
with mmdebstrap. Each server runs in its own process (`bakery serve`'s `start()`), with its
own empty bake cache and its own repository prefix, so its first bake of a spec is cold.
Figures:
  hit latency    `bake_image(service=)` of a baked spec, one client: p50 / p99 of 300 calls
  hits/s         the same with 50 client threads for ~5 s (client and server share 2 cores)
  cold overhead  cold bake through a server vs cold in-process bake, both with empty bakery
                 caches, alternated `--rounds` times (medians); a throwaway bake first puts
                 the wheels in uv's cache and the base's blobs in the registry for both
  50 identical   50 concurrent identical cold bakes on a fresh server vs one cold bake on
                 another fresh server: wall time and the number of builds the server ran
  package        remote `package_code` of an unchanged 10k-file tree (median of 5)
Results -> bench/RESULTS.md.
"""

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bakery.bake import bake_image
from bakery.base.debian import build_debian_base
from bakery.oci.cache import BlobCache
from bakery.oci.remote import RegistryPublisher
from bench.package_code import WORK as PACKAGE_WORK
from bench.package_code import make_small_tree
from bench.results import table, update_section
from bench.servers import ServerProcess
from packager import package_code
from tests.fixtures.registry import TestRegistry

WORK = Path(__file__).with_name(".work") / "service"
KEPT = Path(__file__).with_name(".work") / "service-base"  # the base's blobs, kept between runs
HIT_SPEC = {"requests": ""}
COLD_SPEC = {"flask": "", "requests": ""}
WARM_SPEC = {"six": ""}
PROCESSES = 2
"""Client processes the concurrent hits come from."""
"""Baked by each server first (shares no package with the others): a long-running server has
imported its build pipeline already, as the in-process side has."""


class Server(ServerProcess):
    """A server with an empty cache, baking into `registry`/bench/`name`."""

    def __init__(self, name: str, registry: str) -> None:
        scratch = WORK / name
        env = {
            "BAKERY_CACHE_DIR": str(scratch / "cache"),
            "BAKERY_REGISTRY": f"{registry}/bench/{name}",
            "BAKERY_CODE_STORE": str(scratch / "code-store"),
        }
        super().__init__(scratch, env)

    def warm(self, base: str) -> None:
        bake_image(pypi=WARM_SPEC, base_image=base, service=self.url)


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def push_base(registry: TestRegistry) -> str:
    """Build (or reuse) the Debian base and push it: every bake here starts from it."""
    image = build_debian_base(BlobCache(KEPT / "blobs"))
    with RegistryPublisher(f"{registry.host}/bench/base") as publisher:
        publisher.publish(image, "bookworm")
    return f"{registry.host}/bench/base:bookworm"


def local_bake(spec: dict[str, str], base: str, registry: str, cache: Path) -> str:
    """A cold in-process bake: its own empty cache dir and repository."""
    shutil.rmtree(cache, ignore_errors=True)
    os.environ["BAKERY_CACHE_DIR"] = str(cache)
    try:
        return bake_image(pypi=spec, base_image=base, registry=registry).image
    finally:
        del os.environ["BAKERY_CACHE_DIR"]


def cold_round(number: int, registry: str, base: str) -> tuple[float, float]:
    """(a cold bake through a fresh server, a cold in-process bake) of COLD_SPEC."""
    server = Server(f"cold-{number}", registry)
    try:
        server.warm(base)
        remote = timed(lambda: bake_image(pypi=COLD_SPEC, base_image=base, service=server.url))
    finally:
        server.stop()
    repo, cache = f"{registry}/bench/local-{number}", WORK / f"local-{number}"
    local = timed(lambda: local_bake(COLD_SPEC, base, repo, cache))
    print(f"   round {number}: {remote:.2f} s vs {local:.2f} s", flush=True)
    return remote, local


def hit_latencies(url: str, base: str, calls: int) -> list[float]:
    return [
        timed(lambda: bake_image(pypi=HIT_SPEC, base_image=base, service=url)) for _ in range(calls)
    ]


_HIT_CLIENTS = """
import json, sys, threading, time
from bakery.bake import bake_image
url, base, threads, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
spec = json.loads(sys.argv[5])
bake_image(pypi=spec, base_image=base, service=url)  # connected and warm
print("ready", flush=True)
sys.stdin.readline()
stop, counts = time.perf_counter() + seconds, [0] * threads
def client(index):
    while time.perf_counter() < stop:
        bake_image(pypi=spec, base_image=base, service=url)
        counts[index] += 1
workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
for worker in workers: worker.start()
for worker in workers: worker.join()
print(sum(counts), flush=True)
"""


def hits_per_second(url: str, base: str, clients: int, seconds: float) -> float:
    """Hits answered per second with `clients` callers as fast as they can: threads in
    PROCESSES client processes (one process's GIL would be the limit, not the server)."""
    share = [clients // PROCESSES + (i < clients % PROCESSES) for i in range(PROCESSES)]
    command = [sys.executable, "-c", _HIT_CLIENTS, url, base]
    workers = [
        subprocess.Popen(
            [*command, str(n), str(seconds), json.dumps(HIT_SPEC)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in share
    ]
    for worker in workers:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
    started = time.perf_counter()
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    hits = sum(int(worker.communicate()[0]) for worker in workers)
    return hits / (time.perf_counter() - started)


def identical_cold_bakes(
    registry: str, base: str, clients: int, number: int
) -> tuple[float, float, int]:
    """(one cold bake, `clients` identical cold bakes at once, builds among them), each on
    its own fresh server."""
    single = Server(f"single-{number}", registry)
    try:
        single.warm(base)
        one = timed(lambda: bake_image(pypi=COLD_SPEC, base_image=base, service=single.url))
    finally:
        single.stop()
    crowd = Server(f"crowd-{number}", registry)
    try:
        crowd.warm(base)
        warm_builds = crowd.builds()

        def call(_: int) -> str:
            return bake_image(pypi=COLD_SPEC, base_image=base, service=crowd.url).image

        with ThreadPoolExecutor(clients) as pool:
            started = time.perf_counter()
            images = set(pool.map(call, range(clients)))
            many = time.perf_counter() - started
        if len(images) != 1:
            raise RuntimeError(f"{clients} identical bakes gave {len(images)} images")
        builds = crowd.builds() - warm_builds
    finally:
        crowd.stop()
    return one, many, builds


def remote_package_unchanged(url: str) -> float:
    root = PACKAGE_WORK / "small-10000"
    make_small_tree(root, 10_000)
    options = {
        "suffixes": [".py"],
        "max_bytes": 10**10,
        "cache_dir": str(WORK / "pkg-cache"),
    }
    package_code([str(root)], service=url, **options)
    return statistics.median(
        timed(lambda: package_code([str(root)], service=url, **options)) for _ in range(5)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the 107 MB tree's size warning, once per call
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "registry").mkdir(parents=True)
    registry = TestRegistry(WORK / "registry")
    registry.start()
    try:
        base = push_base(registry)
        print("== warming uv's cache and the registry (untimed)", flush=True)
        local_bake(COLD_SPEC, base, f"{registry.host}/bench/warm", WORK / "warm-cache")

        print("== cold: through a server vs in-process", flush=True)
        rounds = [cold_round(n, registry.host, base) for n in range(args.rounds)]
        remote_cold, local_cold = [r for r, _ in rounds], [local for _, local in rounds]

        print("== hits", flush=True)
        server = Server("hits", registry.host)
        try:
            bake_image(pypi=HIT_SPEC, base_image=base, service=server.url)
            hit_latencies(server.url, base, 20)  # connections and the server's threads warm
            latencies = sorted(hit_latencies(server.url, base, 300))
            rate = hits_per_second(server.url, base, args.clients, 5.0)
            package = remote_package_unchanged(server.url)
        finally:
            server.stop()
        p50 = latencies[len(latencies) // 2]
        p99 = latencies[int(len(latencies) * 0.99) - 1]

        print(f"== {args.clients} identical cold bakes", flush=True)
        crowds = [
            identical_cold_bakes(registry.host, base, args.clients, n) for n in range(args.rounds)
        ]
        one = statistics.median(single for single, _, _ in crowds)
        many = statistics.median(crowd for _, crowd, _ in crowds)
        builds = max(count for _, _, count in crowds)
    finally:
        registry.stop()

    remote, local = statistics.median(remote_cold), statistics.median(local_cold)
    rows = [
        ["cache-hit bake over gRPC, p50 / p99", f"{p50 * 1e3:.1f} ms / {p99 * 1e3:.1f} ms", ""],
        [
            f"cache hits/s, {args.clients} clients ({PROCESSES} processes)",
            f"{rate:.0f}/s",
            "",
        ],
        [
            "cold bake {flask, requests}: server vs in-process",
            f"{remote:.2f} s vs {local:.2f} s",
            f"{remote / local:.2f}x",
        ],
        [
            f"{args.clients} identical cold bakes vs one (medians)",
            f"{many:.2f} s vs {one:.2f} s, {builds} build(s)",
            f"{many / one:.2f}x",
        ],
        ["remote package, unchanged 10k-file tree (median of 5)", f"{package * 1e3:.0f} ms", ""],
    ]
    for row in rows:
        print(row)
    body = (
        "Servers in their own processes on loopback (`max_builds=2`), a loopback registry, the "
        "mmdebstrap Debian base; the client and the server share the machine's 2 cores. "
        f"Cold figures are medians of {args.rounds} alternated rounds, each with empty bakery "
        "caches on both sides (uv's download cache and the registry's blobs warm for both). "
        "Reproduce: `uv run python -m bench.service`.\n\n"
        + table(["figure", "measured", "ratio"], rows)
    )
    update_section("service", body)


if __name__ == "__main__":
    main()
