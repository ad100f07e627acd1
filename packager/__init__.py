"""Code packaging: source trees -> content-addressed tarballs in an object store."""

from typing import TYPE_CHECKING

from stagekit.lazy import lazy_exports

if TYPE_CHECKING:
    from packager.errors import CodePackagingException
    from packager.fetch import fetch_code
    from packager.model import PackagedCode
    from packager.package import package_code
    from packager.request import PackageRequest

__all__ = [
    "CodePackagingException",
    "PackageRequest",
    "PackagedCode",
    "fetch_code",
    "package_code",
]
__getattr__ = lazy_exports(
    __name__,
    {
        "CodePackagingException": "packager.errors",
        "fetch_code": "packager.fetch",
        "PackagedCode": "packager.model",
        "PackageRequest": "packager.request",
        "package_code": "packager.package",
    },
)
