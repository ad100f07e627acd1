"""reprotar's bytes: the fast header path must equal tarfile's, members must concatenate."""

import gzip
import io
import tarfile

import pytest

from reprotar import END_OF_ARCHIVE, file_header, gzip_member, gzip_members, padding
from reprotar.tar import _header


@pytest.mark.parametrize(
    ("path", "size", "mode"),
    [
        ("a.py", 0, 0o644),
        ("pkg/sub/module.py", 12345, 0o755),
        ("x" * 100, 1, 0o644),  # longest name the fast path takes
        ("x" * 101, 1, 0o644),  # PAX path record
        ("données/é.txt", 5, 0o644),  # non-ASCII: PAX path record
        ("big.bin", 8**11, 0o644),  # size needs a PAX record
    ],
)
def test_file_header_matches_tarfile(path, size, mode):
    info = tarfile.TarInfo(path)
    info.size, info.mode = size, mode
    assert file_header(path, size, mode) == _header(info)


def test_members_form_one_readable_archive():
    data = b"print('hi')\n" * 50
    archive = b"".join(
        [
            gzip_member(file_header("a/b.py", len(data), 0o755) + data + padding(len(data))),
            b"".join(gzip_members([file_header("c.txt", 3, 0o644), b"abc", padding(3)])),
            gzip_member(END_OF_ARCHIVE),
        ]
    )
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(archive))) as opened:
        members = opened.getmembers()
        assert [(m.name, m.mode, m.mtime, m.uid, m.uname) for m in members] == [
            ("a/b.py", 0o755, 0, 0, ""),
            ("c.txt", 0o644, 0, 0, ""),
        ]
        assert opened.extractfile(members[0]).read() == data
    assert gzip_member(data) == gzip_member(data)
    assert gzip_member(data)[4:8] == b"\0\0\0\0"


def test_zstd_stream_is_deterministic_and_decompresses():
    import zstandard

    from reprotar import zstd_stream

    chunks = [b"tar bytes " * 1000, b"", b"more"]
    first = b"".join(zstd_stream(chunks))
    assert first == b"".join(zstd_stream(chunks))
    assert zstandard.ZstdDecompressor().decompressobj().decompress(first) == b"".join(chunks)
