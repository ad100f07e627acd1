"""Bake inputs: validation errors, normalization, and what the spec id depends on."""

import os
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
        ({"pypi": {"six": "==="}}, "'===' needs a version"),
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


# -- hardening: nothing non-printable reaches uv, every refusal is short and typed -----------

SIX_WHEEL = (
    "https://files.pythonhosted.org/packages/d9/5a/e7c31adbe875f2abbb91bd84cf2dc52d792b5a01"
    "506781dbcf25c91daf11/six-1.16.0-py2.py3-none-any.whl"
)
INJECTED = "\n--index-url=http://127.0.0.1:9/simple\nsix"


def inputs_for(kind: str, tmp_path: Path) -> dict:
    """make_spec inputs that smuggle a line break (or another control character) in via
    `kind`, each into a place that packaging's parser alone would accept."""
    if kind == "pypi key":
        return {"pypi": {"six\n": ""}}
    if kind == "pypi value":
        return {"pypi": {"six": f"@ {SIX_WHEEL}{INJECTED}"}}
    if kind == "pypi marker":
        return {"pypi": {"six": "; python_version >= '3\r--pre'"}}
    if kind == "requirements line":
        text = f"six @ {SIX_WHEEL}\x0b--index-url=http://127.0.0.1:9/simple\n"
        return {"requirements_file": write(tmp_path / "r.txt", text.replace("\x0b", "\x1b"))}
    if kind == "included line":
        write(tmp_path / "sub" / "inc.txt", "idna ; python_version >= '3\x00'\n")
        return {"requirements_file": write(tmp_path / "r.txt", "six\n-r sub/inc.txt\n")}
    if kind == "include path":
        return {"requirements_file": write(tmp_path / "r.txt", '-r "inc\x7f.txt"\n')}
    if kind == "index url option":
        text = "--index-url https://pypi.org/sim\u202eple\nsix\n"
        return {"requirements_file": write(tmp_path / "r.txt", text)}
    if kind == "pyproject dependency":
        dependency = f"six @ {SIX_WHEEL}{INJECTED}".replace("\n", "\\n")
        text = f'[project]\ndependencies = ["{dependency}"]\n'
        return {"pyproject_toml": write(tmp_path / "pyproject.toml", text)}
    if kind == "requires-python":
        text = '[project]\nrequires-python = ">=3.8\\n"\ndependencies = ["six"]\n'
        return {"pyproject_toml": write(tmp_path / "pyproject.toml", text)}
    target = {"python": "python", "platform": "platform", "cache_name": "cache_name"}[kind]
    good = {"python": "3.11", "platform": "linux/amd64", "cache_name": "team"}[kind]
    return {"pypi": {"six": ""}, target: good + "\n"}


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("pypi key", "non-printable character U+000A"),
        ("pypi value", "non-printable character U+000A"),
        ("pypi marker", "non-printable character U+000D"),
        ("requirements line", "non-printable character U+001B"),
        ("included line", r"inc\.txt:1 contains the non-printable character U+0000"),
        ("include path", "non-printable character U+007F"),
        ("index url option", "non-printable character U+202E"),
        ("pyproject dependency", "non-printable character U+000A"),
        ("requires-python", "non-printable character U+000A"),
        ("python", r"python '3\.11\\n' is not a supported version"),
        ("platform", r"platform 'linux/amd64\\n' is not supported"),
        ("cache_name", r"cache_name 'team\\n' must be"),
    ],
)
def test_no_control_character_reaches_uv(kind: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(ImageBakingException, match=message.replace("+", r"\+")):
        make_spec(**{"base_image_digest": DIGEST, **inputs_for(kind, tmp_path)})


def test_a_spec_built_directly_refuses_a_control_character_too() -> None:
    with pytest.raises(ImageBakingException, match="non-printable"):
        Spec(requirements=(f"six @ {SIX_WHEEL}{INJECTED}",), base_image_digest=DIGEST)


@pytest.mark.timeout(30)
def test_a_fifo_as_requirements_file_is_refused_not_read(tmp_path: Path) -> None:
    fifo = tmp_path / "requirements.txt"
    os.mkfifo(fifo)  # nobody writes to it: reading it would block forever
    with pytest.raises(ImageBakingException, match="not a regular file"):
        make_spec(requirements_file=fifo, base_image_digest=DIGEST)


def test_a_directory_as_requirements_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImageBakingException, match="not a regular file"):
        make_spec(requirements_file=tmp_path, base_image_digest=DIGEST)


def test_a_deep_include_chain_is_refused_with_its_limit(tmp_path: Path) -> None:
    for level in range(400):  # deeper than Python's recursion limit allows to follow
        write(tmp_path / f"r{level}.txt", f"-r r{level + 1}.txt\n")
    write(tmp_path / "r400.txt", "six\n")
    with pytest.raises(ImageBakingException, match=r"more than \d+ -r includes"):
        make_spec(requirements_file=tmp_path / "r0.txt", base_image_digest=DIGEST)


@pytest.mark.timeout(60)
def test_a_diamond_of_includes_is_read_once_per_file(tmp_path: Path) -> None:
    for level in range(30):  # each file includes the next twice: 2**30 reads if re-read
        write(tmp_path / f"r{level}.txt", f"-r r{level + 1}.txt\n-r r{level + 1}.txt\n")
    write(tmp_path / "r30.txt", "six\n")
    spec = make_spec(requirements_file=tmp_path / "r0.txt", base_image_digest=DIGEST)
    assert spec.requirements == ("six",)


def test_deeply_nested_toml_is_refused(tmp_path: Path) -> None:
    text = '[project]\ndependencies = ["six"]\nx = ' + "[" * 5000 + "]" * 5000 + "\n"
    with pytest.raises(ImageBakingException, match="nests arrays or tables too deeply"):
        make_spec(pyproject_toml=write(tmp_path / "p.toml", text), base_image_digest=DIGEST)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('-r "unclosed\n', "Cannot split the options at .*r.txt:1 .*close the quote"),
        ("--index-url=file:///srv/simple\nsix\n", "is not an http\\(s\\) URL"),
        ("six @ git+https://github.com/benjaminp/six\n", "link to a wheel"),
        ("six @ https://files.example/six-1.0.tar.gz\n", "link to a wheel"),
        ("six @ file:///tmp/six-1.16.0-py2.py3-none-any.whl\n", "link to a wheel"),
        (f"flask @ {SIX_WHEEL}\n", "a wheel of six, not of flask"),
        ("# only a comment\n", "no requirements"),
    ],
)
def test_more_bad_requirements_files(text: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(ImageBakingException, match=message):
        make_spec(requirements_file=write(tmp_path / "r.txt", text), base_image_digest=DIGEST)


@pytest.mark.parametrize(
    "inputs",
    [
        {"pypi": {"x" * 100_000: ""}},
        {"pypi": {"six": ">=" + "x" * 100_000}},
        {"pypi": {"six": "; python_version >= " + "x" * 100_000}},
        {"requirements_file": "r.txt", "text": "six>=" + "x" * 100_000 + "\n"},
        {"requirements_file": "r.txt", "text": "--" + "x" * 100_000 + "\n"},
        {"pyproject_toml": "p.toml", "text": f'[project]\ndependencies = ["{"x!" * 50_000}"]\n'},
        {"pypi": {"six": ""}, "cache_name": "x" * 100_000},
        {"pypi": {"six": ""}, "python": "3." + "1" * 100_000},
    ],
)
def test_messages_quote_long_inputs_cut_short(inputs: dict, tmp_path: Path) -> None:
    text = inputs.pop("text", None)
    for key in ("requirements_file", "pyproject_toml"):
        if key in inputs:
            inputs[key] = write(tmp_path / inputs[key], text)
    with pytest.raises(ImageBakingException) as raised:
        make_spec(**inputs, base_image_digest=DIGEST)
    message = raised.value.message
    assert len(message) < 400, message[:1000]
    assert "x" * 90 not in message and "1" * 90 not in message  # quoted at most ~80 chars


@pytest.mark.parametrize(
    "pypi",
    [
        {"pypi": 5},
        {"pypi": ["six"]},
        {"pypi": "six"},
        {"pypi": {5: ""}},
        {"pypi": {("six",): ""}},
        {"requirements_file": 5},
        {"requirements_file": b"r.txt"},
        {"pyproject_toml": ["p.toml"]},
        {"requirements_file": "r\x00.txt"},
        {"requirements_file": ""},
        {"pypi": {"six": ""}, "python": 3.11},
        {"pypi": {"six": ""}, "cache_name": b"team"},
        {"pypi": {"six": ""}, "platform": None},
        {"pypi": {"six": ""}, "compression": 0},
    ],
)
def test_odd_types_are_typed_errors(pypi: dict) -> None:
    with pytest.raises(ImageBakingException):
        make_spec(**pypi, base_image_digest=DIGEST)


def test_pyproject_fields_of_the_wrong_type_are_refused(tmp_path: Path) -> None:
    for field_text in ("dynamic = 5", 'dynamic = { a = "b" }', "requires-python = 5"):
        path = write(tmp_path / "p.toml", f'[project]\n{field_text}\ndependencies = ["six"]\n')
        with pytest.raises(ImageBakingException, match="must be"):
            make_spec(pyproject_toml=path, base_image_digest=DIGEST)


def test_a_direct_wheel_link_is_the_same_requirement_from_every_source(tmp_path: Path) -> None:
    from_dict = make_spec(pypi={"six": f"@ {SIX_WHEEL}"}, base_image_digest=DIGEST)
    from_file = make_spec(
        requirements_file=write(tmp_path / "r.txt", f"six @ {SIX_WHEEL}\n"),
        base_image_digest=DIGEST,
    )
    from_pyproject = make_spec(
        pyproject_toml=write(tmp_path / "p.toml", f'[project]\ndependencies = ["six@{SIX_WHEEL}"]'),
        base_image_digest=DIGEST,
    )
    assert from_dict.requirements == (f"six @ {SIX_WHEEL}",)
    assert from_dict.spec_id == from_file.spec_id == from_pyproject.spec_id
    with_marker = make_spec(
        pypi={"six": f"@ {SIX_WHEEL} ; python_version >= '3'"}, base_image_digest=DIGEST
    )
    assert with_marker.requirements == (f'six @ {SIX_WHEEL} ; python_version >= "3"',)
