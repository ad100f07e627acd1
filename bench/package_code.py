"""Benchmark package_code against Metaflow-style packaging and `tar -czf | sha256sum`.

Run: uv run python -m bench.package_code [--small-files 10000] [--large-mb 1000]

Two trees are generated under bench/.work (deterministic pseudo-source text; the large tree
mixes text and incompressible bytes like model weights). For each tree three figures are
measured, each side in the same run on the same page-cache-warm files:
  cold       empty bakery caches and store
  unchanged  the same tree again
  one file   one file edited
The peers have no cache, so they do the whole job every time. Results -> bench/RESULTS.md.
"""

import argparse
import gzip
import hashlib
import os
import random
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.results import table, update_section
from packager import package_code

WORK = Path(__file__).with_name(".work")


def _vocabulary(rng: random.Random) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz_"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(2, 12))) for _ in range(5000)]


def _source_text(rng: random.Random, words: list[str], size: int) -> bytes:
    lines, total = [], 0
    while total < size:
        indent = "    " * rng.randint(0, 3)
        arguments = ", ".join(rng.choices(words, k=3))
        line = f"{indent}{rng.choice(words)} = {rng.choice(words)}({arguments})\n"
        lines.append(line)
        total += len(line)
    return "".join(lines).encode()[:size]


def make_small_tree(root: Path, files: int) -> None:
    """`files` source-like files of ~10 KB in nested packages (~100 MB for 10,000)."""
    if (root / ".done").exists():
        return
    shutil.rmtree(root, ignore_errors=True)
    rng = random.Random(7)
    words = _vocabulary(rng)
    for index in range(files):
        path = root / f"pkg{index % 50:02}" / f"sub{index % 7}" / f"module_{index:05}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_source_text(rng, words, rng.randint(5_000, 15_000)))
    _age(root)


def _age(root: Path) -> None:
    """Date the tree an hour back, like a checkout that is not being edited right now."""
    past = time.time_ns() - 3600 * 10**9
    for path in root.rglob("*"):
        os.utime(path, ns=(past, past))
    (root / ".done").touch()


def make_large_tree(root: Path, megabytes: int) -> None:
    """Four large files totalling `megabytes`: two text-like, two random (weights)."""
    if (root / ".done").exists():
        return
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    rng = random.Random(11)
    words = _source_text(rng, _vocabulary(rng), 4 * 1024 * 1024)
    quarter = megabytes * 1_000_000 // 4
    for index in range(4):
        with open(
            root / f"data_{index}.json" if index < 2 else root / f"weights_{index}.txt", "wb"
        ) as out:
            written = 0
            while written < quarter:
                block = words if index < 2 else rng.randbytes(4 * 1024 * 1024)
                out.write(block[: quarter - written])
                written += len(block)
    (root / "app.py").write_text("print('large')\n")
    _age(root)


def metaflow_style(root: Path, out: Path) -> str:
    """What Metaflow's code packaging does: tar.gz at level 3, sha1 of the tarball, no cache."""
    with (
        open(out, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=3, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w") as archive,
    ):
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.name != ".done":
                archive.add(path, path.relative_to(root).as_posix())
    return hashlib.sha1(out.read_bytes()).hexdigest()


def tar_sha256(root: Path, out: Path) -> str:
    command = f"tar -C {root} --exclude=.done -czf - . | tee {out} | sha256sum"
    return subprocess.run(command, shell=True, check=True, capture_output=True, text=True).stdout


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def edit_one_file(root: Path, generation: int) -> None:
    target = sorted(root.rglob("*.py"))[len(list(root.rglob("*.py"))) // 2]
    with open(target, "a") as handle:
        handle.write(f"# edit {generation}\n")


def bench_tree(name: str, root: Path, scratch: Path) -> list[list[str]]:
    store, cache = scratch / "store", scratch / "cache"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    suffixes = [".py", ".json", ".txt"]

    def bakery() -> None:
        package_code(
            [str(root)], suffixes=suffixes, store=str(store), cache_dir=cache, max_bytes=10**10
        )

    rows = []
    generation = 0
    for figure in ("cold", "unchanged", "one file changed"):
        if figure == "one file changed":
            generation += 1
            edit_one_file(root, generation)
        ours = timed(bakery)
        metaflow = timed(lambda: metaflow_style(root, scratch / "metaflow.tar.gz"))
        tar = timed(lambda: tar_sha256(root, scratch / "tar.tar.gz"))
        timings = [f"{seconds * 1000:.0f} ms" for seconds in (ours, metaflow, tar)]
        rows.append([name, figure, *timings, f"{metaflow / ours:.1f}x", f"{tar / ours:.1f}x"])
        print(rows[-1], flush=True)
    sizes = [
        ("bakery", next(store.rglob("*.tar.gz")).stat().st_size),
        ("metaflow-style", (scratch / "metaflow.tar.gz").stat().st_size),
        ("tar -czf", (scratch / "tar.tar.gz").stat().st_size),
    ]
    rows.append([name, "tarball size", *(f"{size / 1e6:.1f} MB" for _, size in sizes), "", ""])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small-files", type=int, default=10_000)
    parser.add_argument("--large-mb", type=int, default=1000)
    args = parser.parse_args()
    small, large = WORK / f"small-{args.small_files}", WORK / f"large-{args.large_mb}"
    make_small_tree(small, args.small_files)
    make_large_tree(large, args.large_mb)
    small_mb = sum(p.stat().st_size for p in small.rglob("*.py")) / 1e6
    large_mb = sum(p.stat().st_size for p in large.rglob("*") if p.is_file()) / 1e6
    rows = bench_tree(f"{args.small_files} files, {small_mb:.0f} MB", small, WORK / "scratch-small")
    rows += bench_tree(f"5 files, {large_mb:.0f} MB", large, WORK / "scratch-large")
    headers = ["tree", "figure", "bakery", "metaflow-style", "tar -czf \\| sha256sum",
               "metaflow / bakery", "tar / bakery"]  # fmt: skip
    update_section(
        "package_code",
        "Peers: Metaflow-style packaging (tar.gz level 3 + sha1 of the tarball, every file read "
        "every time) and `tar -czf - | sha256sum`. Ratios > 1 mean bakery is faster. "
        "Files are in the page cache for every side. Reproduce: "
        "`uv run python -m bench.package_code`.\n\n" + table(headers, rows),
    )


if __name__ == "__main__":
    main()
