"""The layer cache: `<cache>/layers/<compression>/<key>/` holds the blob and `layer.json`.

A key directory appears by one atomic rename of a fully written temporary directory, so its
presence means the layer is complete; concurrent builders of the same key race harmlessly
(the loser discards its copy). Keys are content addresses of the inputs, so entries never go
stale.
"""

import json
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path

from bakery.errors import room_in
from bakery.layers.model import BuiltLayer
from bakery.layers.tarball import MEDIA_TYPES, Compression, LayerEntry, write_layer

BLOB = "layer.tar"
META = "layer.json"


def _directory(cache: Path, key: str, compression: Compression) -> Path:
    return cache / "layers" / compression / key


def cached_layer(cache: Path, key: str, compression: Compression = "gzip") -> BuiltLayer | None:
    """The layer stored under `key` with `compression`, or None if it was never built."""
    directory = _directory(cache, key, compression)
    try:
        meta = json.loads((directory / META).read_text())
    except FileNotFoundError:
        return None
    return BuiltLayer(path=directory / BLOB, reused=True, **meta)


def store_layer(
    cache: Path,
    key: str,
    source: str,
    files: Mapping[str, LayerEntry],
    compression: Compression = "gzip",
) -> BuiltLayer:
    """Write `files` as a layer and publish it under `key`; `source` says what it holds.

    A full disk leaves no trace (the staging directory goes) and says which one is full."""
    with room_in(cache, "BAKERY_CACHE_DIR"):
        return _store(cache, key, source, files, compression)


def _store(
    cache: Path, key: str, source: str, files: Mapping[str, LayerEntry], compression: Compression
) -> BuiltLayer:
    target = _directory(cache, key, compression)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    try:
        with (staging / BLOB).open("wb") as out:
            digests = write_layer(files, out, compression)
        layer = BuiltLayer(
            key=key,
            path=target / BLOB,
            digest=f"sha256:{digests.sha256}",
            diff_id=f"sha256:{digests.diff_sha256}",
            size=digests.size,
            uncompressed_size=digests.uncompressed_size,
            source=source,
            reused=False,
            media_type=MEDIA_TYPES[compression],
        )
        meta = {k: v for k, v in asdict(layer).items() if k not in ("path", "reused")}
        (staging / META).write_text(json.dumps(meta, sort_keys=True, indent=1) + "\n")
        staging.chmod(0o755)  # mkdtemp's 0700 would hide the layer from other workers' users
        try:
            staging.rename(target)
        except OSError:
            existing = cached_layer(cache, key, compression)
            if existing is None:
                raise
            return existing
        return layer
    finally:
        shutil.rmtree(staging, ignore_errors=True)
