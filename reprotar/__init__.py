"""Reproducible tar + gzip primitives shared by the packager and the bakery.

Both stages promise "same inputs -> same bytes". Everything that decides bytes (tar header
fields, gzip member framing, compressor and level) lives here once, so the promise has one
implementation to get right.
"""

from reprotar.gzip import COMPRESSION_LEVEL, gzip_member, gzip_members
from reprotar.tar import (
    END_OF_ARCHIVE,
    directory_header,
    file_entry_size,
    file_header,
    hardlink_header,
    padding,
    symlink_header,
)
from reprotar.zstd import ZSTD_LEVEL, zstd_stream

__all__ = [
    "COMPRESSION_LEVEL",
    "END_OF_ARCHIVE",
    "ZSTD_LEVEL",
    "directory_header",
    "file_entry_size",
    "file_header",
    "gzip_member",
    "gzip_members",
    "hardlink_header",
    "padding",
    "symlink_header",
    "zstd_stream",
]
