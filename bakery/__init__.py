"""Image baking: dependency specs -> per-package-layered OCI images (`bake_image`)."""

from bakery.bake import BakedImage, bake_image
from bakery.errors import ImageBakingException

__all__ = ["BakedImage", "ImageBakingException", "bake_image"]
