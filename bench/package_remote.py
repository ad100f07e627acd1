"""Benchmark remote packaging (`package_code(service=...)`) against local `package_code`.

Run: uv run python -m bench.package_remote [--small-files 10000]

The server runs in its own process on loopback with a local-directory code store; the tree
is bench/package_code.py's small tree. Figures, end to end in the client: cold (empty
client cache, empty server), unchanged (median of 5: one PackageCode call, no file bytes),
one file changed; the same three for a local package_code. Results -> bench/RESULTS.md.
"""

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from bench.package_code import WORK, edit_one_file, make_small_tree, timed
from bench.results import table, update_section
from bench.servers import ServerProcess
from packager import package_code


def _figures(package: Callable[[], object], root: Path) -> list[float]:
    cold = timed(package)
    unchanged = statistics.median(timed(package) for _ in range(5))
    edit_one_file(root, time.time_ns())
    return [cold, unchanged, timed(package)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small-files", type=int, default=10_000)
    args = parser.parse_args()
    root = WORK / f"small-{args.small_files}"
    make_small_tree(root, args.small_files)
    scratch = WORK / "package-remote"
    server = ServerProcess(scratch, {"BAKERY_CODE_STORE": str(scratch / "server-store")})
    url = server.url
    options = {"suffixes": [".py"], "max_bytes": 10**10}
    try:
        remote = _figures(
            lambda: package_code(
                [str(root)], service=url, cache_dir=str(scratch / "remote-cache"), **options
            ),
            root,
        )
        local = _figures(
            lambda: package_code(
                [str(root)],
                store=str(scratch / "local-store"),
                cache_dir=str(scratch / "local-cache"),
                **options,
            ),
            root,
        )
    finally:
        server.stop()
    rows = [
        [figure, f"{ours * 1000:.0f} ms", f"{theirs * 1000:.0f} ms"]
        for figure, ours, theirs in zip(
            ("cold", "unchanged (median of 5)", "one file changed"), remote, local, strict=True
        )
    ]
    for row in rows:
        print(row)
    body = (
        f"A {args.small_files}-file tree (~10 KB files), server in its own process on loopback "
        "with a local-directory store; end to end in the client. Reproduce: "
        "`uv run python -m bench.package_remote`. Cold sends every file (one message per "
        "file of this tree, one stream) and the server compresses them all; the server keeps "
        "contents, so that is paid once per content. Unchanged is one PackageCode call and "
        "no file bytes; one file changed is two PackageCode calls and one small upload.\n\n"
        + table(["figure", "remote (service=)", "local package_code"], rows)
    )
    update_section("package_remote", body)


if __name__ == "__main__":
    main()
