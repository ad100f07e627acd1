"""The one exception a caller of the bakery ever sees."""


class ImageBakingException(Exception):
    """Baking failed; the message says what went wrong and what to do about it.

    `details` carries the raw evidence (e.g. uv's full output) for logs, so the message itself
    can stay short enough for a person to read.
    """

    def __init__(self, message: str, *, details: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
