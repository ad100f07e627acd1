"""Keep an image under the layer budget by merging the smallest package layers.

overlayfs and containerd fail near 127 layers. When base + package + environment layers
exceed the budget, the smallest package layers are merged into one: large packages keep
their own layer (and stay shared between images), small ones cost little to duplicate.
"""

import io
import json
from collections.abc import Sequence
from pathlib import Path

import blake3

from bakery.layers.cache import cached_layer, store_layer
from bakery.layers.model import BuiltLayer
from bakery.layers.tarball import Compression, LayerEntry, LayerFile, LayerSymlink, read_layer

LAYER_BUDGET = 100
MERGE_FORMAT = 1


def fit_budget(
    layers: Sequence[BuiltLayer], room: int, cache: Path, compression: Compression = "gzip"
) -> tuple[list[BuiltLayer], list[BuiltLayer]]:
    """Package layers fitting in `room` slots, in their original order, with the smallest
    merged into one layer placed last; also returns the layers that were merged."""
    if len(layers) <= room:
        return list(layers), []
    if room < 2:
        raise ValueError(f"no room for package layers: {room} slot(s) left under the budget")
    smallest = sorted(layers, key=lambda layer: (layer.size, layer.digest))
    merged_away = smallest[: len(layers) - room + 1]
    kept = [layer for layer in layers if layer not in merged_away]
    return [*kept, merge_layers(merged_away, cache, compression)], merged_away


def merge_layers(
    layers: Sequence[BuiltLayer], cache: Path, compression: Compression = "gzip"
) -> BuiltLayer:
    """One layer holding the files of all `layers` (cached by their keys)."""
    keys = sorted(layer.key for layer in layers)
    key = blake3.blake3(json.dumps([MERGE_FORMAT, keys]).encode()).hexdigest()
    if (merged := cached_layer(cache, key, compression)) is not None:
        return merged
    files: dict[str, LayerEntry] = {}
    for layer in layers:
        for member, data in read_layer(layer.path, layer.media_type):
            if member.issym():
                files[member.name] = LayerSymlink(member.linkname)
            elif data is not None:
                files[member.name] = LayerFile(member.mode, len(data), io.BytesIO(data))
    source = f"merged: {', '.join(sorted(layer.source for layer in layers))}"
    return store_layer(cache, key, source, files, compression)
