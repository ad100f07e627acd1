"""Benchmark the first `import pandas` in a fresh container: bakery image vs docker + pip.

Run: uv run python -m bench.first_import [--rounds 7]

The same setup as bench/bake.py (its loopback registry, its mmdebstrap Debian bookworm +
python3 base pushed there, which holds the system libraries manylinux wheels link; wheels
resolved and downloaded once by bakery's lock): three images of pandas on that base, all
pulled into the Docker Engine:
  bakery             bake_image as shipped: package layers carry unchecked-hash .pyc
  bakery, no .pyc    the same bake with bytecode compilation turned off (what a bake does
                     when the host has no CPython of the image's minor version)
  docker + pip       bench/bake.py's pip peer: `docker build` of a Dockerfile whose
                     `RUN pip install` installs the same wheels (pip compiles .pyc by default)
Each round starts one new container per image, interleaved, and times `import pandas` inside
it (so container start-up is left out; `docker run` wall time is reported beside it). A new
container has an empty writable layer, so every run is a first import. Results ->
bench/RESULTS.md.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bakery.bake import bake_image
from bakery.ecosystems import pypi
from bakery.layers.bytecode import NoCompiler
from bench.bake import (
    Registry,
    cleanup_docker,
    docker_context,
    ensure_docker,
    link_wheels,
    locked_wheels,
    push_base,
    run,
)
from bench.results import table, update_section

WORK = Path(__file__).with_name(".work") / "first-import"
PACKAGES = ["pandas"]
IMPORT = "import time; t = time.perf_counter(); import pandas; print(time.perf_counter() - t)"
COUNT_PYCS = "find / -xdev -path '*/pandas/*' -name '*.pyc' | wc -l"


@contextmanager
def bytecode_off() -> Iterator[None]:
    """Bakes inside take the no-compiler path, as on a host without the image's CPython."""

    def no_compiler(python: str, _cache: Path) -> None:
        raise NoCompiler(f"turned off to measure images without it (Python {python})")

    found = pypi.find_compiler
    pypi.find_compiler = no_compiler  # type: ignore[assignment]
    try:
        yield
    finally:
        pypi.find_compiler = found


def bake(name: str, registry: Registry, base: str, wheels: list) -> tuple[str, float]:
    """A cold bake of PACKAGES into its own repository: (pulled image, seconds)."""
    cache = WORK / f"cache-{name}"
    os.environ["BAKERY_CACHE_DIR"] = str(cache)
    link_wheels(wheels, cache / "bake", by_sha=True)  # downloads warm, nothing else
    start = time.perf_counter()
    image = bake_image(
        pypi=dict.fromkeys(PACKAGES, ""),
        registry=f"{registry.relay_host}/bench/first-import-{name}",
        base_image=base,
        logger=lambda _message: None,
    ).image
    seconds = time.perf_counter() - start
    run("docker", "pull", "-q", image, timeout=600)
    return image, seconds


def pip_image(registry: Registry, base: str, wheels: list) -> tuple[str, str]:
    """bench/bake.py's pip peer image for PACKAGES, and the PYTHONPATH its env needs."""
    tag = f"{registry.relay_host}/bench/first-import-pip:latest"
    context = docker_context(WORK / "ctx-pip", base, "pip", wheels)
    run("docker", "build", "-q", "-t", tag, str(context))
    found = run("docker", "run", "--rm", tag, "find", "/opt/venv", "-type", "d", "-name", "pandas")
    package = min(found.split(), key=len)  # the top-level package, not a subpackage
    return tag, package.rpartition("/")[0]


def first_import(image: list[str]) -> tuple[float, float]:
    """(seconds `import pandas` took, seconds the whole `docker run` took) in a new container."""
    start = time.perf_counter()
    out = run("docker", "run", "--rm", *image, "-c", IMPORT)
    return float(out.split()[-1]), time.perf_counter() - start


def image_size(image: str) -> int:
    return int(run("docker", "image", "inspect", "--format", "{{.Size}}", image))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    ensure_docker()
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "registry").mkdir(parents=True)
    registry = Registry(WORK / "registry")
    registry.start()
    pulled: list[str] = []
    base = None
    try:
        base = push_base(registry)
        wheels = locked_wheels(PACKAGES)
        print("== baking (cold caches, wheels downloaded)", flush=True)
        with_pyc, bake_seconds = bake("bakery", registry, base, wheels)
        with bytecode_off():
            without_pyc, bake_seconds_off = bake("bakery-no-pyc", registry, base, wheels)
        print("== docker build (pip)", flush=True)
        peer, site_packages = pip_image(registry, base, wheels)
        pulled += [with_pyc, without_pyc, peer]
        python = "/opt/bakery/env/bin/python"
        sides = {
            "bakery": [with_pyc, python],
            "bakery, no .pyc": [without_pyc, python],
            "docker + pip": ["-e", f"PYTHONPATH={site_packages}", peer, "python3"],
        }
        pycs = {
            name: run("docker", "run", "--rm", command[-2], "sh", "-c", COUNT_PYCS).strip()
            for name, command in sides.items()
        }
        base_size = image_size(base)
        added = {name: image_size(command[-2]) - base_size for name, command in sides.items()}
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
        for round_number in range(args.rounds):
            for name, command in sides.items():
                times[name].append(first_import(command))
            print(f"   round {round_number + 1}: {times}", flush=True)
    finally:
        cleanup_docker()
        for image in [*pulled, *([base] if base else [])]:
            subprocess.run(["docker", "rmi", "-f", image], capture_output=True)
        registry.stop()

    medians = {
        name: (
            statistics.median(t[0] for t in samples),
            statistics.median(t[1] for t in samples),
        )
        for name, samples in times.items()
    }
    ours = medians["bakery"][0]
    rows = [
        [
            name,
            pycs[name],
            f"{added[name] / 1e6:.0f} MB",
            f"{imported * 1000:.0f} ms",
            f"{wall * 1000:.0f} ms",
            f"{imported / ours:.2f}x",
        ]
        for name, (imported, wall) in medians.items()
    ]
    headers = ["image", "pandas .pyc files", "added to the base", "first `import pandas`",
               "`docker run` wall", "import time / bakery"]  # fmt: skip
    update_section(
        "first import",
        "A new container of each image (so the first import every time) runs "
        f"`import pandas` (pandas {next(w.version for w in wheels if w.name == 'pandas')}, "
        f"{len(wheels)} wheels), median of {args.rounds} rounds, images interleaved; the "
        "import is timed inside the container, `docker run` wall time includes container "
        "start and interpreter start. Same base for all: the mmdebstrap Debian bookworm + "
        "python3 image of bench/bake.py (it holds libstdc++6, which numpy's wheels need). "
        "Peer: bench/bake.py's docker+pip image (`RUN pip "
        "install` of the same wheels, which compiles .pyc as pip does by default). "
        "`bakery, no .pyc` is the same bake with bytecode compilation turned off, as when the "
        "host has no CPython of the image's minor version. Ratios > 1 mean bakery imports "
        f"faster. Cold bake of pandas with .pyc {bake_seconds:.1f} s, without "
        f"{bake_seconds_off:.1f} s (the difference is compiling; load average "
        f"{os.getloadavg()[0]:.1f} at the end: the cores are shared). Base image "
        f"{base_size / 1e6:.0f} MB. Reproduce: `uv run python -m bench.first_import`.\n\n"
        + table(headers, rows),
    )


if __name__ == "__main__":
    main()
