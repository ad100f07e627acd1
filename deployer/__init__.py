"""The one-stop import, like the reference's `metaflow.apps`: bake, package, (deploy)."""

from bakery import BakedImage, ImageBakingException, bake_image
from deployer.app import AppDeployer, DeployedApp
from packager import CodePackagingException, PackagedCode, package_code

__all__ = [
    "AppDeployer",
    "BakedImage",
    "CodePackagingException",
    "DeployedApp",
    "ImageBakingException",
    "PackagedCode",
    "bake_image",
    "package_code",
]
