"""The one exception a caller of the packager ever sees, and how a local OSError becomes one.

Each error has a `kind` (`stagekit.errors.ErrorKind`) so a service can map it to a status
code and a client knows whether a retry can help:

- invalid_input: the request is wrong (a missing or non-directory src path, bad options, a
  symlink leaving the tree, nothing to package, over the size limit, an unsupported store
  URL, an object URL naming a directory or FIFO, a fetch destination that is not empty or
  is a mount point) or the package itself is (tampered, truncated, corrupt, not what
  package_code writes, over the limit when fetched): fix it before trying again;
- not_found: the object to fetch is not in the store, or the S3 bucket does not exist;
- unavailable: the S3 endpoint is unreachable, refuses the credentials, or fails a request;
- conflict: a source file changed while it was packaged, or another fetch filled `dest`
  first: running again can succeed;
- internal: this machine failed: a full disk or quota, a read-only filesystem, permission
  denied, an unreadable directory or local store file;
- cancelled / deadline_exceeded: the caller's `CancelToken` stopped the work.

`__cause__` is the underlying OSError or botocore error (none carries credentials: store
URLs name a bucket or a directory only).
"""

import errno

from stagekit.errors import ErrorKind


class CodePackagingException(Exception):
    """Packaging or fetching code failed; the message says what and what to do, `kind`
    what sort of failure it is."""

    kind: ErrorKind = ErrorKind.INVALID_INPUT

    def __init__(self, message: str, *, kind: ErrorKind | None = None) -> None:
        super().__init__(message)
        self.message = message
        if kind is not None:
            self.kind = kind


_HINTS = {
    errno.ENOSPC: "the filesystem is full: free space there or use another directory",
    errno.EDQUOT: "the disk quota is exhausted: free space there or use another directory",
    errno.EFBIG: "the file size limit (ulimit -f) was reached: raise it or use a smaller package",
    errno.EROFS: "the filesystem is read-only: use a writable directory",
    errno.EACCES: "permission denied: use a directory you can write to",
    errno.EPERM: "operation not permitted: use a directory you can write to",
    errno.ENAMETOOLONG: "a path is too long for the filesystem: use a shorter directory path",
    errno.ENOTDIR: "a component of the path is not a directory: check the path",
}


def local_failure(error: OSError, doing: str) -> CodePackagingException:
    """`error` raised while `doing` something on this machine's filesystem, as a message
    that names the real cause (disk full, read-only, ...) and what to do about it."""
    reason = error.strerror or str(error)
    where = f" ({error.filename})" if error.filename else ""
    hint = _HINTS.get(error.errno or 0, "check the path and the filesystem")
    return CodePackagingException(
        f"cannot {doing}: {reason}{where}; {hint}", kind=ErrorKind.INTERNAL
    )
