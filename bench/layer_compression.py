"""Layer compression: zlib (stdlib) vs ISA-L vs zlib-ng vs zstd on real layer tars.

Run: uv run python -m bench.layer_compression

The tars are the uncompressed layers bakery builds for numpy, pandas and flask (wheels from
PyPI, installed with bakery's own layer builder), so the input is what a bake compresses.
"""

import gzip
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import zstandard
from isal import isal_zlib
from zlib_ng import zlib_ng

from bakery.artifacts import fetch_artifacts
from bakery.layers import build_wheel_layer
from bakery.layers.bytecode import find_compiler
from bakery.lock import lock
from bakery.spec import make_spec
from bench.results import table, update_section

CODECS: dict[str, Callable[[bytes], bytes]] = {
    "zlib level 6 (gzip default)": lambda data: zlib.compress(data, 6),
    "zlib level 1": lambda data: zlib.compress(data, 1),
    "zlib-ng level 1": lambda data: zlib_ng.compress(data, 1),
    "ISA-L level 1 (bakery gzip)": lambda data: isal_zlib.compress(data, 1),
    "zstd level 3 (bakery zstd)": lambda data: zstandard.ZstdCompressor(level=3).compress(data),
}


def layer_tars(directory: Path) -> bytes:
    """The uncompressed tars of the layers for numpy, pandas and flask, concatenated."""
    spec = make_spec(
        pypi={"numpy": "", "pandas": "", "flask": ""}, base_image_digest="sha256:" + "0" * 64
    )
    locked = lock(spec)
    wheels = fetch_artifacts(locked.packages, directory)
    tars = []
    compiler = find_compiler("3.11", directory)
    for package, wheel in zip(locked.packages, wheels, strict=True):
        layer = build_wheel_layer(
            wheel,
            filename=package.filename,
            sha256=package.sha256,
            python="3.11",
            cache=directory,
            compiler=compiler,
        )
        tars.append(gzip.decompress(layer.path.read_bytes()))
    return b"".join(tars)


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        data = layer_tars(Path(scratch))
    rows = []
    for name, codec in CODECS.items():
        start = time.perf_counter()
        size = len(codec(data))
        seconds = time.perf_counter() - start
        rows.append([name, f"{len(data) / seconds / 1e6:.0f} MB/s", f"{size / len(data):.3f}"])
        print(rows[-1], flush=True)
    baseline = float(rows[0][1].split()[0])
    for row in rows:
        row.append(f"{float(row[1].split()[0]) / baseline:.1f}x")
    update_section(
        "layer compression",
        f"Input: {len(data) / 1e6:.0f} MB of uncompressed layer tars (numpy, pandas, flask and "
        "their dependencies, as bakery builds them), one core. Ratio = compressed / input. "
        "Reproduce: `uv run python -m bench.layer_compression`.\n\n"
        + table(["codec", "speed", "ratio", "speed vs zlib 6"], rows),
    )


if __name__ == "__main__":
    main()
