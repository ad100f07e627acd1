"""The one exception a caller of the packager ever sees, and how a local OSError becomes one."""

import errno


class CodePackagingException(Exception):
    """Packaging or fetching code failed; the message says what and what to do."""


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
    hint = _HINTS.get(error.errno, "check the path and the filesystem")
    return CodePackagingException(f"cannot {doing}: {reason}{where}; {hint}")
