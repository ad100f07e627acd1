"""The package key, recomputed from the README's description alone.

Independent of the packager: the files are read back from the tarball with tarfile, hashed
with the `blake3` package, and the bytes assembled exactly as the README's "Key" paragraph
says. If the code and the documentation ever disagree, this fails.
"""

import re
import tarfile
from pathlib import Path

import blake3

from packager import package_code

README = Path(__file__).parent.parent / "README.md"


def documented_format_tag() -> bytes:
    """The tag the README's key formula starts with, e.g. b"bakery-code-package/v1\\n"."""
    match = re.search(r'key\s+= hex\(blake3\(b"([^"]+)\\n" \+ record_1', README.read_text())
    assert match, "the README no longer states the key formula"
    return match.group(1).encode() + b"\n"


def key_from_readme(tarball: Path) -> str:
    records = []
    with tarfile.open(tarball, "r:gz") as archive:
        for member in archive:
            content = archive.extractfile(member).read()
            path = member.name.encode("utf-8")
            mode = b"x" if member.mode & 0o100 else b"-"
            records.append((path, path + b"\x00" + mode + blake3.blake3(content).digest()))
    ordered = b"".join(record for _, record in sorted(records))
    return blake3.blake3(documented_format_tag() + ordered).hexdigest()


def test_the_key_is_what_the_readme_says(tmp_path, monkeypatch):
    monkeypatch.setenv("BAKERY_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "src"
    files = {
        "app.py": b"print('hello')\n",
        "run.py": b"#!/usr/bin/env python\n",
        "empty.py": b"",
        "pkg/Zeta.py": b"z = 1\n",
        "pkg/alpha.py": b"a = 1\n",
        "pkg-data/é.txt": b"non-ASCII name\n",
        "deep/" + "long_directory_name/" * 8 + "module.py": b"x = 1\n",
    }
    for relative, content in files.items():
        path = src / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(0o755 if relative == "run.py" else 0o644)

    package = package_code([str(src)], store=str(tmp_path / "store"))

    tarball = Path(package.url.removeprefix("file://"))
    with tarfile.open(tarball, "r:gz") as archive:
        assert sorted(archive.getnames()) == sorted(files)
    assert key_from_readme(tarball) == package.key
