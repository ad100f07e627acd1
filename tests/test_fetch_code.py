"""fetch_code on crafted, tampered and truncated packages: refused, nothing left behind."""

import io
import tarfile
from pathlib import Path

import pytest

from packager import CodePackagingException, fetch_code, package_code
from packager.hashing import package_key
from packager.stores import object_name


def crafted(tmp_path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> tuple[str, str]:
    """A tar.gz placed where a store would keep it, plus a key matching its regular files."""
    key = package_key([("payload", False, "0" * 64)])
    path = tmp_path / "store" / object_name(key)
    path.parent.mkdir(parents=True)
    with tarfile.open(path, "w:gz") as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path.as_uri(), key


def regular(name: str, data: bytes = b"evil") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, b""


def leftovers(tmp_path: Path) -> list[str]:
    return sorted(path.name for path in tmp_path.iterdir() if path.name != "store")


@pytest.mark.parametrize(
    ("members", "match"),
    [
        ([regular("../escape.py")], "outside the destination"),
        ([regular("/etc/cron.d/evil")], "outside the destination"),
        ([regular("a/../../escape.py")], "outside the destination"),
        ([link("innocent.py", "/etc/passwd")], "not a regular file"),
        ([link("hard.py", "../../etc/passwd", tarfile.LNKTYPE)], "not a regular file"),
        ([regular("dup.py"), regular("dup.py")], "twice"),
    ],
)
def test_crafted_packages_are_refused(tmp_path, members, match):
    url, key = crafted(tmp_path, members)
    with pytest.raises(CodePackagingException, match=match):
        fetch_code(url, key, tmp_path / "dest")
    assert leftovers(tmp_path) == []
    assert not (tmp_path.parent / "escape.py").exists()


@pytest.fixture
def package(tmp_path, monkeypatch):
    monkeypatch.setenv("BAKERY_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "src"
    src.mkdir()
    (src / "app.py").write_text("print('hello')\n" * 1000)
    (src / "README.md").write_text("readme\n")
    return package_code([str(src)], store=str(tmp_path / "store"))


def test_tampered_package_fails_key_check(package, tmp_path):
    path = Path(package.url.removeprefix("file://"))
    replacement = tmp_path / "replacement"
    replacement.mkdir()
    (replacement / "app.py").write_text("import os; os.system('curl evil')\n")
    with tarfile.open(path, "w:gz") as archive:
        archive.add(replacement / "app.py", "app.py")
    with pytest.raises(CodePackagingException, match="does not match its key"):
        fetch_code(package.url, package.key, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()
    assert not [p for p in tmp_path.iterdir() if "fetch" in p.name]


def test_truncated_package_is_corrupt(package, tmp_path):
    path = Path(package.url.removeprefix("file://"))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CodePackagingException, match="corrupt or truncated"):
        fetch_code(package.url, package.key, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()
    assert not [p for p in tmp_path.iterdir() if "fetch" in p.name]


def test_wrong_key_is_refused(package, tmp_path):
    with pytest.raises(CodePackagingException, match="does not match its key"):
        fetch_code(package.url, "f" * 64, tmp_path / "dest")


def test_fetch_into_an_existing_empty_directory(package, tmp_path):
    (tmp_path / "empty").mkdir()
    dest = fetch_code(package.url, package.key, tmp_path / "empty")
    assert sorted(p.name for p in dest.iterdir()) == ["README.md", "app.py"]
