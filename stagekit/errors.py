"""What kind of failure an error is, for callers that must act on it without reading it.

Every stage's exception carries a `kind`: a service maps it to a status code (invalid input
-> INVALID_ARGUMENT, unavailable -> UNAVAILABLE, ...) and a client retries only what can
succeed on a retry, without parsing messages.
"""

from enum import StrEnum


class ErrorKind(StrEnum):
    INVALID_INPUT = "invalid_input"
    """The request itself is wrong: fix it before trying again."""
    NOT_FOUND = "not_found"
    """Something the request names does not exist (an image, a package, an app)."""
    UNAVAILABLE = "unavailable"
    """A service it needs (registry, PyPI, object store, engine) failed or is unreachable:
    the same request may succeed later."""
    CONFLICT = "conflict"
    """Another operation holds or changed what this one needs."""
    INTERNAL = "internal"
    """A failure of this machine or of bakery itself (a full disk, a bug)."""
    CANCELLED = "cancelled"
    """The caller cancelled the work."""
    DEADLINE_EXCEEDED = "deadline_exceeded"
    """The work ran past its deadline and was stopped."""
