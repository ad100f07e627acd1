"""Typed OCI failures; each message says what failed, where, and what to do.

They are ImageBakingExceptions, so the bakery can let them reach its caller unchanged.
"""

from bakery.errors import ImageBakingException
from stagekit.errors import ErrorKind


class OciError(ImageBakingException):
    """Any failure reading or publishing an OCI image."""


class InvalidReference(OciError):
    """An image reference string does not parse."""


class RegistryError(OciError):
    """A registry could not be reached, refused a request, or sent bad content."""

    kind = ErrorKind.UNAVAILABLE


class LayoutError(OciError):
    """An OCI image-layout directory is unreadable or malformed."""

    kind = ErrorKind.NOT_FOUND


class DaemonError(OciError):
    """The Docker Engine could not be reached or refused to load an image."""

    kind = ErrorKind.UNAVAILABLE
