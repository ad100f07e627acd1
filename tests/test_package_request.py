"""package_code's keyword options are one typed `PackageRequest`; `package(request)` does the
work, so a service calling it with a request gets what package_code gives."""

import dataclasses
from pathlib import Path

import pytest

from packager import CodePackagingException, PackageRequest, package_code
from packager.package import package
from stagekit.errors import ErrorKind

pytestmark = pytest.mark.usefixtures("isolated_cache")


@pytest.fixture
def src(tmp_path) -> Path:
    root = tmp_path / "src"
    for relative, text in {
        "app.py": "print('hi')\n",
        "notes.txt": "notes\n",
        "build/out.py": "generated = True\n",
        "data.csv": "a,b\n",
    }.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root


def test_package_code_and_package_of_a_request_give_one_package(src, tmp_path):
    options = {"store": str(tmp_path / "store"), "excludes": ["build/"], "max_bytes": 10**6}
    by_keywords = package_code([src], [".py", ".csv"], cache_dir=tmp_path / "c1", **options)
    request = PackageRequest(
        src_paths=(str(src),), suffixes=(".py", ".csv"), cache_dir=str(tmp_path / "c2"), **options
    )
    by_request = package(request)

    assert by_request == by_keywords
    assert Path(by_request.url.removeprefix("file://")).is_file()
    everything = package(dataclasses.replace(request, excludes=()))
    assert everything.key != by_request.key  # build/out.py is in it: excludes took effect


def test_a_request_is_a_frozen_normalised_value(src, tmp_path):
    request = PackageRequest([src], suffixes=[".py"], store="", max_bytes=0, cache_dir="")
    assert request == PackageRequest((str(src),), (".py",))
    assert (request.store, request.max_bytes, request.cache_dir) == (None, None, None)
    assert hash(request) == hash(PackageRequest((str(src),), (".py",)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.store = "elsewhere"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        ({"src_paths": 5}, "src_paths must be a list of directories, got int"),
        ({"src_paths": [b"/bytes/path"]}, r"each src path must be a path \(str"),
        ({"src_paths": ["a\0b"]}, "no NUL"),
        ({"excludes": "build/"}, "excludes must be a list, not a string"),
        ({"excludes": [None]}, "excludes must be a list of strings"),
        ({"suffixes": [""]}, "suffixes must be a list of non-empty strings"),
        ({"max_bytes": "1GB"}, "max_bytes must be a positive number of bytes"),
        ({"max_bytes": -1}, "max_bytes must be a positive number of bytes"),
        ({"store": 42}, r"store must be a path \(str"),
        ({"progress": "bar"}, "progress must be a function"),
        ({"events": 1}, "events must be a function"),
        (
            {"compress_level": 9, "colour": "red"},
            r"unknown option\(s\) \['colour', 'compress_level'\]",
        ),
    ],
)
def test_bad_input_is_a_short_typed_message(src, tmp_path, call, match):
    arguments = {"src_paths": [str(src)], "store": str(tmp_path / "store")} | call
    with pytest.raises(CodePackagingException, match=match) as raised:
        package_code(**arguments)
    assert raised.value.kind is ErrorKind.INVALID_INPUT
    assert not (tmp_path / "store").exists()


def test_unknown_options_are_listed_with_the_known_ones(src):
    with pytest.raises(CodePackagingException) as raised:
        package_code([str(src)], compress_level=9)
    for known in ("store", "max_bytes", "excludes", "cache_dir", "progress", "events"):
        assert known in str(raised.value)
