"""Code packaging: source trees -> content-addressed tarballs in an object store."""

from packager.errors import CodePackagingException
from packager.fetch import fetch_code
from packager.model import PackagedCode
from packager.package import package_code

__all__ = ["CodePackagingException", "PackagedCode", "fetch_code", "package_code"]
