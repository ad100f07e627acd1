"""The one exception a caller of the packager ever sees."""


class CodePackagingException(Exception):
    """Packaging or fetching code failed; the message says what and what to do."""
