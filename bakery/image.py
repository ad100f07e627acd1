"""Image assembly: base config + package layers + environment layer -> an OCI `Image`.

The base image's config is kept (user, workdir, entrypoint...); the bakery adds the
environment to PATH, sets VIRTUAL_ENV, labels the spec id and lock digest, and appends its
layers. No timestamps are added, so the same layers on the same base give the same digest.
"""

import copy
from collections.abc import Sequence
from typing import Any

from bakery.base.model import BaseImage
from bakery.layers.model import BuiltLayer
from bakery.lock import Lock
from bakery.oci.cache import BlobCache
from bakery.oci.model import OCI_CONFIG, Image, canonical_json

SPEC_ID_LABEL = "org.bakery.spec-id"
LOCK_DIGEST_LABEL = "org.bakery.lock-digest"
LOCK_ANNOTATION = "org.bakery.lock"
BASE_DIGEST_ANNOTATION = "org.opencontainers.image.base.digest"
BASE_NAME_ANNOTATION = "org.opencontainers.image.base.name"
BASE_LAYERS_ANNOTATION = "org.bakery.base.layers"
"""How many of the manifest's layers are the base's: the rest are the bake's (interpreter,
packages, environment), which the process runtime unpacks on the host without the base."""


def _with_env(env: list[str], prefix: str) -> list[str]:
    """`env` with `<prefix>/bin` first on PATH and VIRTUAL_ENV set."""
    values = dict(item.split("=", 1) for item in env if "=" in item)
    path = values.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    values["PATH"] = f"{prefix}/bin:{path}"
    values["VIRTUAL_ENV"] = prefix
    return [f"{name}={value}" for name, value in values.items()]


def _history(base_config: dict[str, Any], layers: Sequence[BuiltLayer]) -> list[dict[str, Any]]:
    """Base history plus one entry per layer, kept only while it matches the layer count
    (engines compare non-empty history entries with rootfs.diff_ids)."""
    history = base_config.get("history", [])
    base_layers = len(base_config.get("rootfs", {}).get("diff_ids", []))
    if sum(not entry.get("empty_layer") for entry in history) != base_layers:
        return []
    return [*history, *({"created_by": f"bakery: {layer.source}"} for layer in layers)]


def assemble(
    base: BaseImage,
    layers: Sequence[BuiltLayer],
    *,
    prefix: str,
    spec_id: str,
    lock: Lock,
    blobs: BlobCache,
) -> Image:
    """The baked image: `layers` (packages, then environment) on top of `base`."""
    config = copy.deepcopy(base.config)
    runtime = config.setdefault("config", {})
    runtime["Env"] = _with_env(runtime.get("Env") or [], prefix)
    runtime["Labels"] = {
        **(runtime.get("Labels") or {}),
        SPEC_ID_LABEL: spec_id,
        LOCK_DIGEST_LABEL: lock.digest,
    }
    config["rootfs"] = {
        "type": "layers",
        "diff_ids": [
            *config.get("rootfs", {}).get("diff_ids", []),
            *(layer.diff_id for layer in layers),
        ],
    }
    history = _history(base.config, layers)
    if history:
        config["history"] = history
    else:
        config.pop("history", None)
    config_blob = blobs.blob(blobs.put_bytes(canonical_json(config)), OCI_CONFIG)
    return Image(
        config=config_blob,
        layers=(*base.layers, *(layer.oci_layer() for layer in layers)),
        annotations={
            SPEC_ID_LABEL: spec_id,
            LOCK_ANNOTATION: lock.to_json(),
            BASE_DIGEST_ANNOTATION: base.digest,
            BASE_NAME_ANNOTATION: base.reference,
            BASE_LAYERS_ANNOTATION: str(len(base.layers)),
        },
    )
