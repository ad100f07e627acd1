"""What the bakery knows about a base image once it has been loaded."""

from dataclasses import dataclass
from typing import Any

from bakery.oci.model import Layer
from bakery.oci.reference import Reference


@dataclass(frozen=True)
class PythonInfo:
    """The interpreter a base image ships: `version` like "3.11", `executable` an absolute
    in-image path such as /usr/bin/python3.11."""

    version: str
    executable: str


@dataclass(frozen=True)
class BaseImage:
    """A base image pinned by manifest digest, its blobs in the local BlobCache.

    `repository` is the registry repository holding its blobs (a cross-repo mount source when
    publishing to the same registry), or None when it came from an OCI layout directory.
    """

    reference: str
    digest: str
    repository: Reference | None
    config: dict[str, Any]
    layers: tuple[Layer, ...]
    python: PythonInfo | None
