"""The one-stop import, like the reference's `metaflow.apps`: bake, package, (deploy)."""

from bakery import BakedImage, ImageBakingException, bake_image
from packager import CodePackagingException, PackagedCode, package_code

__all__ = [
    "BakedImage",
    "CodePackagingException",
    "ImageBakingException",
    "PackagedCode",
    "bake_image",
    "package_code",
]
