"""The store interface and the URL -> store mapping.

A package lives at `<prefix>/<key[:2]>/<key>.tar.gz`; its URL names the store and the object,
so `fetch_code(url, key, dest)` needs nothing but the URL to find it again.
"""

from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from packager.errors import CodePackagingException


def object_name(key: str) -> str:
    """The object's name below a store's prefix."""
    return f"{key[:2]}/{key}.tar.gz"


class CodeStore(Protocol):
    """Where tarballs are kept. Writes are all-or-nothing: never a partial object at a key."""

    def url(self, key: str) -> str:
        """The URL the package with `key` has in this store."""
        ...

    def exists(self, key: str) -> bool:
        """Whether a complete package with `key` is already stored."""
        ...

    def put(self, key: str, tarball: Path) -> None:
        """Store the file `tarball` under `key`, atomically: a failed write leaves nothing."""
        ...

    def download(self, url: str, target: Path) -> None:
        """Copy the object at `url` (one of this store's URLs) into the new file `target`.

        A missing, unreadable or wrong kind of object is a CodePackagingException; an OSError
        means writing `target` failed."""
        ...


def split_url(url: str) -> tuple[str, str]:
    """(scheme, rest) of a store or object URL; a bare path is a local directory, taken as
    it is, while a file:// URL's path is percent-decoded (`Path.as_uri` encodes it)."""
    parts = urlsplit(url)
    if parts.scheme == "":
        return "file", url
    if parts.scheme == "file":
        return "file", unquote(parts.path, errors="surrogateescape")
    if parts.scheme == "s3":
        return "s3", parts.netloc + parts.path
    raise CodePackagingException(
        f"unsupported store URL {url!r}: use a directory, file:///path or s3://bucket/prefix"
    )


def store_holding(object_url: str) -> CodeStore:
    """The store an object URL (`<store>/<key[:2]>/<key>.tar.gz`) belongs to."""
    scheme, rest = split_url(object_url)
    store_url = rest.rsplit("/", 2)[0] if rest.count("/") >= 2 else ""
    if not store_url:
        raise CodePackagingException(f"{object_url!r} is not the URL of a code package")
    return open_store(f"s3://{store_url}" if scheme == "s3" else store_url)


def open_store(url: str) -> CodeStore:
    """The store a `BAKERY_CODE_STORE`-style URL names."""
    scheme, rest = split_url(url)
    if scheme == "file":
        from packager.stores.local import LocalStore

        return LocalStore(Path(rest).expanduser())
    from packager.stores.s3 import S3Store  # boto3 costs ~0.3 s to import: only when needed

    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise CodePackagingException(f"store URL {url!r} names no bucket: use s3://bucket/prefix")
    return S3Store(bucket, prefix.strip("/"))
