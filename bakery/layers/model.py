"""What a built layer is, as the image assembler and publishers see it."""

from dataclasses import dataclass
from pathlib import Path

from bakery.oci.model import OCI_LAYER_GZIP, Layer


@dataclass(frozen=True)
class BuiltLayer:
    """A finished, cached layer blob.

    `digest` names the compressed blob (manifest `layers[].digest`), `diff_id` the
    uncompressed tar (config `rootfs.diff_ids`). `source` says what the layer holds (e.g. the
    wheel's filename), for annotations and logs. `reused` is true when the cache already had
    the layer and nothing was built.
    """

    key: str
    path: Path
    digest: str
    diff_id: str
    size: int
    uncompressed_size: int
    source: str
    reused: bool
    media_type: str = OCI_LAYER_GZIP

    def oci_layer(self) -> Layer:
        """The blob as a manifest and a publisher see it."""
        return Layer(self.digest, self.size, self.media_type, self.path, self.diff_id)
