"""Bake inputs: validation errors, normalization, and what the spec id depends on."""

from pathlib import Path

import pytest

from bakery.errors import ImageBakingException
from bakery.spec import Spec, make_spec

DIGEST = "sha256:" + "a" * 64
SIX_HASH = "4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_pypi_dict_is_normalized_and_sorted() -> None:
    spec = make_spec(
        pypi={
            "requests[socks]": "2.31.0",
            "Flask": ">=2.0",
            "six": "",
            "idna": ">=3; python_version>='3.8'",
        },
        base_image_digest=DIGEST,
    )
    assert spec.requirements == (
        "flask>=2.0",
        'idna>=3; python_version >= "3.8"',
        "requests[socks]==2.31.0",
        "six",
    )
    assert (spec.platform, spec.python, spec.index_url) == ("linux/amd64", "3.11", None)


def test_python_patch_version_is_dropped() -> None:
    spec = make_spec(pypi={"six": ""}, base_image_digest=DIGEST, python="3.12.4")
    assert (spec.python, spec.python_tag) == ("3.12", "cp312")


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({}, "none was given"),
        ({"pypi": {"six": ""}, "requirements_file": "r.txt"}, "got pypi and requirements_file"),
        ({"pypi": {"six": ""}, "pyproject_toml": "p.toml"}, "got pypi and pyproject_toml"),
        ({"pypi": {"flask": ">>2"}}, "Invalid version specifier '>>2' for 'flask'"),
        ({"pypi": {"flask": "latest"}}, "Invalid version specifier 'latest'"),
        ({"pypi": {"flask": None}}, "must be a string"),
        ({"pypi": {"flask>=2": ""}}, "must be a package name"),
        ({"pypi": {"not a name!": ""}}, "Invalid package name"),
        ({"pypi": {"six": "; python_version >>> '3'"}}, "Invalid requirement"),
        ({"pypi": {}}, "no requirements"),
        ({"requirements_file": "missing.txt"}, "missing.txt does not exist"),
        ({"pyproject_toml": "missing.toml"}, "missing.toml does not exist"),
        ({"pypi": {"six": ""}, "platform": "linux/s390x"}, "platform 'linux/s390x'"),
        ({"pypi": {"six": ""}, "python": "2.7"}, "python '2.7'"),
        ({"pypi": {"six": ""}, "python": "latest"}, "python 'latest'"),
        ({"pypi": {"six": ""}, "base_image_digest": "debian:12"}, "digest 'debian:12'"),
    ],
)
def test_invalid_inputs_are_refused(
    inputs: dict, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ImageBakingException, match=message.replace("(", r"\(")) as caught:
        make_spec(**{"base_image_digest": DIGEST, **inputs})
    assert caught.value.__cause__ is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-e .\n", "Unsupported option -e"),
        ("--pre\n", "Unsupported option --pre"),
        ("six --hash=md5:abc\n", "Unsupported hash 'md5:abc'"),
        ("six --hash=sha256:abc\n", "Unsupported hash"),
        ("--hash=sha256:" + SIX_HASH + "\n", "must follow a requirement"),
        ("six -r other.txt\n", "only --hash is"),
        ("--index-url\n", "needs a value"),
        ("-i https://a.example/simple\n-i https://b.example/simple\n", "Two different"),
        ("six >>= 1\n", "Invalid requirement"),
        ("-r nowhere.txt\n", "nowhere.txt does not exist"),
    ],
)
def test_invalid_requirements_files_are_refused(text: str, message: str, tmp_path: Path) -> None:
    path = write(tmp_path / "requirements.txt", text)
    with pytest.raises(ImageBakingException, match=message):
        make_spec(requirements_file=path, base_image_digest=DIGEST)


def test_requirements_file_with_includes_markers_extras_hashes(tmp_path: Path) -> None:
    write(
        tmp_path / "deps" / "base.txt",
        "# pinned and hashed\n"
        "--index-url https://pypi.org/simple\n"
        f"six==1.17.0 \\\n    --hash=sha256:{SIX_HASH}\n"
        "-r ../web.txt  # relative to this file, so ../ is the top directory\n",
    )
    write(tmp_path / "web.txt", "Flask>=2.0\n")
    path = write(
        tmp_path / "requirements.txt",
        "-r deps/base.txt\n"
        "\n"
        'requests[socks] ; python_version >= "3.8"   # with a marker\n'
        "--extra-index-url=https://mirror.example/simple\n"
        "idna # trailing comment\n"
        "click>=8,\\\n<9\n",
    )
    spec = make_spec(requirements_file=str(path), base_image_digest=DIGEST)
    assert spec.requirements == (
        "click<9,>=8",
        "flask>=2.0",
        "idna",
        'requests[socks]; python_version >= "3.8"',
        "six==1.17.0",
    )
    assert spec.index_url == "https://pypi.org/simple"
    assert spec.extra_index_urls == ("https://mirror.example/simple",)
    assert spec.hashes == {"six": (SIX_HASH,)}


def test_requirements_include_cycle_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "a.txt", "six\n-r sub/b.txt\n")
    write(tmp_path / "sub" / "b.txt", "-r ../a.txt\n")
    with pytest.raises(ImageBakingException, match=r"cycle: .*a\.txt -> .*b\.txt -> .*a\.txt"):
        make_spec(requirements_file=tmp_path / "a.txt", base_image_digest=DIGEST)


def test_requirements_file_included_twice_is_not_a_cycle(tmp_path: Path) -> None:
    write(tmp_path / "common.txt", "six\n")
    write(tmp_path / "a.txt", "-r common.txt\n-r common.txt\nidna\n")
    spec = make_spec(requirements_file=tmp_path / "a.txt", base_image_digest=DIGEST)
    assert spec.requirements == ("idna", "six")


def test_pyproject_dependencies(tmp_path: Path) -> None:
    path = write(
        tmp_path / "pyproject.toml",
        '[project]\nname = "app"\nversion = "1"\nrequires-python = ">=3.10"\n'
        'dependencies = ["Flask>=2", "requests[socks]; python_version >= \'3.8\'"]\n',
    )
    spec = make_spec(pyproject_toml=path, base_image_digest=DIGEST)
    assert spec.requirements == ("flask>=2", 'requests[socks]; python_version >= "3.8"')


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[project]\nname = "app"\ndynamic = ["dependencies"]\n', "dynamic"),
        ("[tool.x]\na = 1\n", r"no \[project\] table"),
        ('[project]\ndependencies = "six"\n', "must be a list of strings"),
        ('[project]\ndependencies = ["six >> 1"]\n', "Invalid"),
        ("[project]\ndependencies = []\n", "no requirements"),
        ('[project]\nrequires-python = ">=3.12"\ndependencies = ["six"]\n', "requires Python"),
        ("[project\n", "not valid TOML"),
    ],
)
def test_invalid_pyprojects_are_refused(text: str, message: str, tmp_path: Path) -> None:
    path = write(tmp_path / "pyproject.toml", text)
    with pytest.raises(ImageBakingException, match=message):
        make_spec(pyproject_toml=path, base_image_digest=DIGEST)


def test_same_requirements_from_any_source_give_the_same_id(tmp_path: Path) -> None:
    from_dict = make_spec(pypi={"six": "", "Flask": ">=2"}, base_image_digest=DIGEST)
    reordered = make_spec(pypi={"flask": ">=2", "six": ""}, base_image_digest=DIGEST)
    from_file = make_spec(
        requirements_file=write(tmp_path / "r.txt", "six\nflask >= 2\n"),
        base_image_digest=DIGEST,
    )
    from_pyproject = make_spec(
        pyproject_toml=write(
            tmp_path / "pyproject.toml", '[project]\ndependencies = ["flask>=2", "six"]\n'
        ),
        base_image_digest=DIGEST,
    )
    assert len({s.spec_id for s in (from_dict, reordered, from_file, from_pyproject)}) == 1
    assert len(from_dict.spec_id) == 64


@pytest.mark.parametrize(
    "change",
    [
        {"requirements": ("six", "idna")},
        {"index_url": "https://mirror.example/simple"},
        {"extra_index_urls": ("https://mirror.example/simple",)},
        {"hashes": {"six": (SIX_HASH,)}},
        {"platform": "linux/arm64"},
        {"python": "3.12"},
        {"base_image_digest": "sha256:" + "b" * 64},
        {"builder_version": "999"},
        {"cache_name": "team-a"},
        {"compression": "zstd"},
        {"source_date_epoch": 1700000000},
    ],
)
def test_spec_id_depends_on_every_field(change: dict) -> None:
    base = {"requirements": ("six",), "base_image_digest": DIGEST}
    assert Spec(**base).spec_id == Spec(**base).spec_id
    assert Spec(**{**base, **change}).spec_id != Spec(**base).spec_id
