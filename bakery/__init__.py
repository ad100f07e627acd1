"""Image baking: dependency specs -> per-package-layered OCI images (`bake_image`)."""

from typing import TYPE_CHECKING

from stagekit.lazy import lazy_exports

if TYPE_CHECKING:
    from bakery.bake import BakedImage, bake_image
    from bakery.errors import ImageBakingException

__version__ = "0.1.0"
"""The builder's version: part of every spec id (pyproject.toml reads it from here)."""

__all__ = ["BakedImage", "ImageBakingException", "bake_image"]
__getattr__ = lazy_exports(
    __name__,
    {
        "BakedImage": "bakery.bake",
        "bake_image": "bakery.bake",
        "ImageBakingException": "bakery.errors",
    },
)
