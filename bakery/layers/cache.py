"""The layer cache: `<cache>/layers/<key>/` holds `layer.tar.gz` and `layer.json`.

A key directory appears by one atomic rename of a fully written temporary directory, so its
presence means the layer is complete; concurrent builders of the same key race harmlessly
(the loser discards its copy). Keys are content addresses of the inputs, so entries never go
stale.
"""

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import BinaryIO

from bakery.layers.model import BuiltLayer
from bakery.layers.tarball import TarDigests

BLOB = "layer.tar.gz"
META = "layer.json"


def cached_layer(cache: Path, key: str) -> BuiltLayer | None:
    """The layer stored under `key`, or None if it was never built."""
    directory = cache / "layers" / key
    try:
        meta = json.loads((directory / META).read_text())
    except FileNotFoundError:
        return None
    return BuiltLayer(path=directory / BLOB, reused=True, **meta)


def store_layer(
    cache: Path, key: str, source: str, write: Callable[[BinaryIO], TarDigests]
) -> BuiltLayer:
    """Build a layer with `write` (which streams the blob) and publish it under `key`."""
    layers = cache / "layers"
    layers.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=layers))
    try:
        with (staging / BLOB).open("wb") as out:
            digests = write(out)
        layer = BuiltLayer(
            key=key,
            path=layers / key / BLOB,
            digest=f"sha256:{digests.sha256}",
            diff_id=f"sha256:{digests.diff_sha256}",
            size=digests.size,
            uncompressed_size=digests.uncompressed_size,
            source=source,
            reused=False,
        )
        meta = {k: v for k, v in asdict(layer).items() if k not in ("path", "reused")}
        (staging / META).write_text(json.dumps(meta, sort_keys=True, indent=1) + "\n")
        staging.chmod(0o755)  # mkdtemp's 0700 would hide the layer from other workers' users
        try:
            staging.rename(layers / key)
        except OSError:
            existing = cached_layer(cache, key)
            if existing is None:
                raise
            return existing
        return layer
    finally:
        shutil.rmtree(staging, ignore_errors=True)
