"""fetch_code on crafted, tampered and truncated packages: refused, nothing left behind."""

import gzip
import io
import os
import re
import tarfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from packager import CodePackagingException, fetch_code, package_code
from packager.hashing import package_key
from packager.stores import object_name
from packager.unpack import MAX_EXTENDED_HEADER, remove_tree


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


# --- hostile packages: bounded before they cost anything ------------------------------------


def stored_tar(tmp_path: Path, tar_bytes: bytes) -> tuple[str, str]:
    """Raw (possibly truncated) tar bytes gzipped where a store would keep them."""
    key = "ab" + "0" * 62
    path = tmp_path / "store" / object_name(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(tar_bytes, compresslevel=9))
    return path.as_uri(), key


def header(name: str, size: int, kind: bytes = tarfile.REGTYPE, **pax: str) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.type = kind
    info.pax_headers = pax
    return info.tobuf(tarfile.PAX_FORMAT if pax else tarfile.GNU_FORMAT)


def blocks(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % tarfile.BLOCKSIZE)


def test_gzip_bomb_is_refused_by_its_declared_size_before_any_data_is_read(tmp_path):
    """A 4 GiB entry under the default 1 GB limit: refused from its header alone (the data
    is cut short, so reading any of it would report a truncated package instead)."""
    url, key = stored_tar(tmp_path, header("bomb.py", 4 * 1024**3) + b"\0" * 1024 * 1024)
    with pytest.raises(CodePackagingException, match="larger than 1000000000 bytes uncompressed"):
        fetch_code(url, key, tmp_path / "dest")
    assert leftovers(tmp_path) == []


def test_entries_adding_up_past_the_limit_stop_at_the_entry_that_crosses_it(tmp_path, monkeypatch):
    monkeypatch.setenv("BAKERY_CODE_MAX_BYTES", "1000000")
    fits = header("one.py", 600_000) + blocks(b"1" * 600_000)
    crosses = header("two.py", 600_000) + b"2" * 1000  # cut short: must never be read
    url, key = stored_tar(tmp_path, fits + crosses)
    with pytest.raises(CodePackagingException, match="larger than 1000000 bytes uncompressed"):
        fetch_code(url, key, tmp_path / "dest")
    assert leftovers(tmp_path) == []


def sparse_gnu(name: str, real_size: int) -> bytes:
    """An old-GNU sparse entry: 512 stored bytes placed at the end of `real_size` bytes."""
    raw = bytearray(header(name, tarfile.BLOCKSIZE, tarfile.GNUTYPE_SPARSE))
    raw[386:410] = b"%011o\0%011o\0" % (real_size - tarfile.BLOCKSIZE, tarfile.BLOCKSIZE)
    raw[483:495] = b"%011o\0" % real_size
    raw[148:156] = b" " * 8
    raw[148:156] = b"%06o\0 " % sum(raw)
    return bytes(raw) + b"x" * tarfile.BLOCKSIZE


def sparse_pax(version: str, name: str, real_size: int) -> bytes:
    data = b"x" * tarfile.BLOCKSIZE
    hole = str(real_size - len(data))
    if version == "1.0":
        records = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0"}
        records |= {"GNU.sparse.name": name, "GNU.sparse.realsize": str(real_size)}
        sparse_map = blocks(f"1\n{hole}\n{len(data)}\n".encode())
        return header(name, len(sparse_map) + len(data), **records) + sparse_map + data
    records = {"GNU.sparse.size": str(real_size), "GNU.sparse.numblocks": "1"}
    if version == "0.1":
        records["GNU.sparse.map"] = f"{hole},{len(data)}"
    else:
        records |= {"GNU.sparse.offset": hole, "GNU.sparse.numbytes": str(len(data))}
    return header(name, len(data), **records) + data


@pytest.mark.parametrize(
    "entry",
    [
        sparse_gnu("sparse.py", 8 * 1024 * 1024),
        sparse_pax("0.0", "sparse.py", 8 * 1024 * 1024),
        sparse_pax("0.1", "sparse.py", 8 * 1024 * 1024),
        sparse_pax("1.0", "sparse.py", 8 * 1024 * 1024),
    ],
    ids=["gnu", "pax-0.0", "pax-0.1", "pax-1.0"],
)
def test_sparse_entries_are_refused(tmp_path, entry):
    """A sparse entry writes far more than it stores (95 gzipped bytes can become 4 GiB)."""
    url, key = stored_tar(tmp_path, entry + b"\0" * 1024)
    with pytest.raises(CodePackagingException, match=r"holds a (GNU )?sparse file|a sparse map"):
        fetch_code(url, key, tmp_path / "dest")
    assert leftovers(tmp_path) == []


def test_oversized_extended_header_is_refused_before_it_is_read(tmp_path):
    """tarfile would read a PAX header into memory whole: a 4.4 GB one (cut short here, so
    reading it would report a truncated package) is refused from its size field alone."""
    url, key = stored_tar(tmp_path, header("pax", 4_400_000_000, tarfile.XHDTYPE) + b"9" * 4096)
    with pytest.raises(CodePackagingException, match="4400000000-byte extended header"):
        fetch_code(url, key, tmp_path / "dest")
    assert leftovers(tmp_path) == []


def test_extended_header_over_the_cap_is_refused(tmp_path):
    comment = "c" * (MAX_EXTENDED_HEADER + 1)
    url, key = stored_tar(
        tmp_path, header("a.py", 1, comment=comment) + blocks(b"a") + b"\0" * 1024
    )
    with pytest.raises(CodePackagingException, match="extended header, over the"):
        fetch_code(url, key, tmp_path / "dest")


def extended_header_only(comment: str) -> bytes:
    """A PAX header and its one block of records, without the entry it should describe."""
    return header("a.py", 1, comment=comment)[: 2 * tarfile.BLOCKSIZE]


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        (header("g", 512, tarfile.XGLTYPE) + blocks(b"19 comment=global\n"), "global extended"),
        (
            extended_header_only("first") + header("b.py", 1, comment="second") + blocks(b"b"),
            "right after another",
        ),
    ],
    ids=["global-header", "chained-extended-headers"],
)
def test_headers_package_code_never_writes_are_refused(tmp_path, entry, match):
    url, key = stored_tar(tmp_path, entry + b"\0" * 1024)
    with pytest.raises(CodePackagingException, match=match):
        fetch_code(url, key, tmp_path / "dest")
    assert leftovers(tmp_path) == []


def test_package_code_and_fetch_code_count_the_same_bytes_against_the_limit(tmp_path, monkeypatch):
    """The limit is on the uncompressed tar stream, headers included, on both sides: a
    package exactly at the limit is made and fetched, one byte over is refused by both."""
    monkeypatch.setenv("BAKERY_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "src"
    (src / ("long_directory_name_" * 6)).mkdir(parents=True)
    (src / ("long_directory_name_" * 6) / "módulo.py").write_text("x = 1\n" * 100)
    (src / "app.py").write_text("print('hi')\n")
    (src / "empty.py").write_text("")
    store = str(tmp_path / "store")
    package = package_code([str(src)], store=store)
    size = len(gzip.decompress(Path(package.url.removeprefix("file://")).read_bytes()))

    assert package_code([str(src)], store=store, max_bytes=size) == package
    with pytest.raises(CodePackagingException, match="over the"):
        package_code([str(src)], store=store, max_bytes=size - 1)

    monkeypatch.setenv("BAKERY_CODE_MAX_BYTES", str(size))
    fetch_code(package.url, package.key, tmp_path / "at-limit")
    monkeypatch.setenv("BAKERY_CODE_MAX_BYTES", str(size - 1))
    with pytest.raises(CodePackagingException, match="larger than"):
        fetch_code(package.url, package.key, tmp_path / "over-limit")
    assert not (tmp_path / "over-limit").exists()


def test_a_limit_that_is_not_a_number_is_explained(package, tmp_path, monkeypatch):
    monkeypatch.setenv("BAKERY_CODE_MAX_BYTES", "1GB")
    with pytest.raises(CodePackagingException, match="BAKERY_CODE_MAX_BYTES='1GB'"):
        fetch_code(package.url, package.key, tmp_path / "dest")


# --- deep trees, concurrency, store paths ----------------------------------------------------


def nest(root: Path, depth: int) -> Path:
    """`depth` directories below `root`, one mkdir at a time (Path.mkdir(parents=True)
    recurses once per level, as the old fetch did)."""
    root.mkdir(parents=True, exist_ok=True)
    directory = root
    for _ in range(depth):
        directory = directory / "d"
        directory.mkdir()
    return directory


def test_a_package_a_thousand_directories_deep_is_fetched(tmp_path, monkeypatch):
    monkeypatch.setenv("BAKERY_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "src"
    (nest(src, 1000) / "leaf.py").write_text("leaf\n")
    (src / "top.py").write_text("top\n")
    try:
        package = package_code([str(src)], store=str(tmp_path / "store"))
        dest = fetch_code(package.url, package.key, tmp_path / "dest")
        assert (dest / ("d/" * 1000 + "leaf.py")).read_text() == "leaf\n"
        with pytest.raises(CodePackagingException, match="does not match its key"):
            fetch_code(package.url, "f" * 64, tmp_path / "refused")
        assert leftovers(tmp_path) == ["cache", "dest", "src"]  # the refused tree was removed
    finally:  # pytest's own cleanup (shutil.rmtree) recurses once per level
        remove_tree(src)
        remove_tree(tmp_path / "dest")


@pytest.fixture
def sizable_package(tmp_path, monkeypatch):
    """A few MB, so concurrent fetches overlap while downloading and extracting."""
    monkeypatch.setenv("BAKERY_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "src"
    for index in range(8):
        path = src / f"pkg{index}" / "data.txt"
        path.parent.mkdir(parents=True)
        path.write_bytes(os.urandom(256 * 1024) * 2)
    return package_code([str(src)], store=str(tmp_path / "store"))


def test_concurrent_fetches_into_one_destination_succeed_or_fail_cleanly(sizable_package, tmp_path):
    dest = tmp_path / "dest"
    start = threading.Barrier(8)

    def fetch(_: int) -> Path | CodePackagingException:
        start.wait()
        try:
            return fetch_code(sizable_package.url, sizable_package.key, dest)
        except CodePackagingException as error:
            return error

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(fetch, range(8)))

    assert dest in results
    for failure in (result for result in results if result != dest):
        assert re.search("was filled while|exists and is not an empty directory", str(failure))
    assert sorted(path.name for path in dest.iterdir()) == [f"pkg{index}" for index in range(8)]
    assert leftovers(tmp_path) == ["cache", "dest", "src"]


def test_a_file_named_like_a_download_beside_dest_is_left_alone(package, tmp_path):
    bystander = tmp_path / ".dest.tar.gz"
    bystander.write_bytes(b"not yours")
    fetch_code(package.url, package.key, tmp_path / "dest")
    assert bystander.read_bytes() == b"not yours"


@pytest.mark.parametrize("name", ["with space", "café", "100%", "%41", "a#b", "why?"])
def test_local_stores_whose_path_needs_url_encoding(tmp_path, monkeypatch, name):
    monkeypatch.setenv("BAKERY_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "src"
    src.mkdir()
    (src / "app.py").write_text("print('hi')\n")
    package = package_code([str(src)], store=str(tmp_path / name / "store"))
    dest = fetch_code(package.url, package.key, tmp_path / "dest")
    assert (dest / "app.py").read_text() == "print('hi')\n"
