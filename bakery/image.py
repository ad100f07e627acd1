"""Image assembly: base config + package layers + environment layer -> an OCI `Image`.

The base image's config is kept (user, workdir, entrypoint...); the bakery adds the
environment to PATH, sets VIRTUAL_ENV, labels the spec id and lock digest, and appends its
layers. Its only timestamp is `created` (and its history entries'), taken from
SOURCE_DATE_EPOCH as reproducible builders do, so the same layers on the same base at the same
epoch give the same digest.
"""

import copy
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bakery.base.model import BaseImage
from bakery.layers.model import BuiltLayer
from bakery.oci.cache import BlobCache
from bakery.oci.model import OCI_CONFIG, Image, canonical_json
from bakery.oci.reference import DOCKER_HUB

if TYPE_CHECKING:  # the lock module loads the resolver's helpers; a cache hit needs neither
    from bakery.lock import Lock

SPEC_ID_LABEL = "org.bakery.spec-id"
LOCK_DIGEST_LABEL = "org.bakery.lock-digest"
LOCK_ANNOTATION = "org.bakery.lock"
BASE_DIGEST_ANNOTATION = "org.opencontainers.image.base.digest"
BASE_NAME_ANNOTATION = "org.opencontainers.image.base.name"
BASE_LAYERS_ANNOTATION = "org.bakery.base.layers"
"""How many of the manifest's layers are the base's: the rest are the bake's (interpreter,
packages, environment), which the process runtime unpacks on the host without the base."""


def _with_env(env: list[str], prefix: str, variable: str = "VIRTUAL_ENV") -> list[str]:
    """`env` with `<prefix>/bin` first on PATH and `variable` (VIRTUAL_ENV, CONDA_PREFIX)
    naming the prefix."""
    values = dict(item.split("=", 1) for item in env if "=" in item)
    path = values.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    values["PATH"] = f"{prefix}/bin:{path}"
    values[variable] = prefix
    return [f"{name}={value}" for name, value in values.items()]


def rfc3339(epoch: int) -> str:
    """`epoch` seconds as the UTC RFC 3339 time OCI configs use, e.g. 1970-01-01T00:00:00Z."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def base_name(base: BaseImage) -> str | None:
    """The base as a distribution reference (`registry/repository@digest`, Docker Hub as
    `docker.io`), or None for a base read from a layout directory: its reference is a path
    on the machine that baked, meaningless to anyone pulling the image."""
    if base.repository is None:
        return None
    registry = "docker.io" if base.repository.registry == DOCKER_HUB else base.repository.registry
    return f"{registry}/{base.repository.repository}@{base.digest}"


def _history(
    base_config: dict[str, Any], layers: Sequence[BuiltLayer], created: str
) -> list[dict[str, Any]]:
    """Base history plus one entry per layer, kept only while it matches the layer count
    (engines compare non-empty history entries with rootfs.diff_ids)."""
    history = base_config.get("history", [])
    base_layers = len(base_config.get("rootfs", {}).get("diff_ids", []))
    if sum(not entry.get("empty_layer") for entry in history) != base_layers:
        return []
    ours = ({"created": created, "created_by": f"bakery: {layer.source}"} for layer in layers)
    return [*history, *ours]


def assemble(
    base: BaseImage,
    layers: Sequence[BuiltLayer],
    *,
    prefix: str,
    prefix_variable: str = "VIRTUAL_ENV",
    spec_id: str,
    lock: "Lock",
    blobs: BlobCache,
    source_date_epoch: int,
) -> Image:
    """The baked image: `layers` (packages, then environment) on top of `base`, created at
    `source_date_epoch`."""
    created = rfc3339(source_date_epoch)
    config = copy.deepcopy(base.config)
    config["created"] = created
    runtime = config.setdefault("config", {})
    runtime["Env"] = _with_env(runtime.get("Env") or [], prefix, prefix_variable)
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
    history = _history(base.config, layers, created)
    if history:
        config["history"] = history
    else:
        config.pop("history", None)
    config_blob = blobs.blob(blobs.put_bytes(canonical_json(config)), OCI_CONFIG)
    annotations = {
        SPEC_ID_LABEL: spec_id,
        LOCK_ANNOTATION: lock.to_json(),
        BASE_DIGEST_ANNOTATION: base.digest,
        BASE_LAYERS_ANNOTATION: str(len(base.layers)),
    }
    if (name := base_name(base)) is not None:
        annotations[BASE_NAME_ANNOTATION] = name
    return Image(
        config=config_blob,
        layers=(*base.layers, *(layer.oci_layer() for layer in layers)),
        annotations=annotations,
    )
