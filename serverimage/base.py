"""The image's `FROM` base: the bakery's own Debian bookworm + python3 base, in the engine.

No registry is reachable from these machines but Debian's mirror, so the base is not pulled:
`bakery.base.debian` bootstraps it with mmdebstrap (root, ~20-50 s) and the bakery's daemon
publisher loads it into the Docker Engine as `bakery-server-base:bookworm-<recipe id>`. It is
built only when the engine lacks that tag; a new recipe (package list, layer format) gets a
new tag.
"""

from collections.abc import Callable

from bakery.base.recipe import recipe_id
from bakery.oci.daemon import DaemonPublisher, DockerEngine
from bakery.oci.model import Image

REPOSITORY = "bakery-server-base"
SUITE = "bookworm"


def base_name() -> str:
    """`bakery-server-base:bookworm-<recipe id>`: what the Dockerfile's BASE argument names."""
    return f"{REPOSITORY}:{SUITE}-{recipe_id(SUITE)}"


def ensure_base(make: Callable[[], Image] | None = None, engine: DockerEngine | None = None) -> str:
    """The base's name in the engine, loaded first if missing. `make` gives the base image
    (default: bootstrap it now; tests pass their per-machine cached one)."""
    engine = engine or DockerEngine()
    name = base_name()
    if engine.image_id(name) is None:
        image = (make or _bootstrap)()
        publisher = DaemonPublisher(REPOSITORY, engine=engine)
        publisher.publish(image, name.partition(":")[2])
    return name


def _bootstrap() -> Image:
    from bakery import config
    from bakery.base.debian import build_debian_base
    from bakery.oci.cache import BlobCache

    return build_debian_base(BlobCache(config.bake_cache_dir() / "blobs"), suite=SUITE)
