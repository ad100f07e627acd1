"""The one-stop import, like the reference's `metaflow.apps`: bake, package, deploy."""

from typing import TYPE_CHECKING

from stagekit.lazy import lazy_exports

if TYPE_CHECKING:
    from bakery.bake import BakedImage, bake_image
    from bakery.errors import ImageBakingException
    from deployer.orchestration.app import AppDeployer
    from deployer.orchestration.deployed import DeployedApp
    from packager.errors import CodePackagingException
    from packager.model import PackagedCode
    from packager.package import package_code

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
__getattr__ = lazy_exports(
    __name__,
    {
        "AppDeployer": "deployer.orchestration.app",
        "DeployedApp": "deployer.orchestration.deployed",
        "BakedImage": "bakery.bake",
        "bake_image": "bakery.bake",
        "ImageBakingException": "bakery.errors",
        "CodePackagingException": "packager.errors",
        "PackagedCode": "packager.model",
        "package_code": "packager.package",
    },
)
