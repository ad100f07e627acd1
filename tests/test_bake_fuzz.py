"""Fuzzed bad inputs at bake_image's door: each is refused with a short ImageBakingException.

Every generated input is bad by construction (one defect injected into otherwise valid
inputs), so bake_image must refuse it while validating, before it touches a base image, a
registry or the package index. The base image is a loopback listener that counts
connections: a bad input that slipped through validation would connect to it (the base is
pinned before anything is resolved) and fail the test even though it also ends in an
ImageBakingException.
"""

import json
import os
import socket
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bakery.bake import bake_image
from bakery.errors import ImageBakingException

MESSAGE_LIMIT = 500
EXAMPLES = 600
WHEEL_URL = "https://files.example/six-1.17.0-py2.py3-none-any.whl"


class ConnectionCounter:
    """A loopback TCP listener that accepts, counts and closes every connection."""

    def __init__(self) -> None:
        self.count = 0
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            self.count += 1
            connection.close()

    def close(self) -> None:
        self._socket.close()


@pytest.fixture(scope="module")
def listener(tmp_path_factory) -> Iterator[ConnectionCounter]:
    """bake_image with a base image and registry that only count connections."""
    counter = ConnectionCounter()
    root = tmp_path_factory.mktemp("fuzz")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BAKERY_CACHE_DIR", str(root / "cache"))
        patch.setenv("BAKERY_IMAGE_LAYOUT", str(root / "layout"))
        patch.setenv("BAKERY_BASE_IMAGE", f"127.0.0.1:{counter.port}/fuzz/base:1")
        patch.delenv("BAKERY_REGISTRY", raising=False)
        patch.delenv("BAKERY_PLATFORM", raising=False)
        yield counter
    counter.close()


@dataclass
class Case:
    """bake_image keyword arguments; `files` (name -> bytes, or "fifo"/"dir") are made in a
    fresh directory first, and a value `"@name"` names such a file."""

    kwargs: dict[str, Any]
    files: dict[str, bytes | str] = field(default_factory=dict)

    def materialize(self, root: Path) -> dict[str, Any]:
        for name, content in self.files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if content == "fifo":
                os.mkfifo(path)
            elif content == "dir":
                path.mkdir()
            else:
                assert isinstance(content, bytes)
                path.write_bytes(content)
        return {key: self._path(root, value) for key, value in self.kwargs.items()}

    @staticmethod
    def _path(root: Path, value: Any) -> Any:
        return str(root / value[1:]) if isinstance(value, str) and value.startswith("@") else value


# -- building blocks -------------------------------------------------------------------------

# Line breaks, NUL, escape, DEL, C1, bidi override, zero-width, BOM, surrogate, separators.
LINE_BREAKS = ["\n", "\r", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029"]
IN_LINE = ["\x00", "\x01", "\x1b", "\x7f", "\x9b", "\u202e", "\u200b", "\ufeff", "\ud800"]
CONTROLS = st.sampled_from(LINE_BREAKS + IN_LINE)
LONG = st.integers(20_000, 100_000).map(lambda n: "x" * n + "!")
ODD = st.one_of(
    st.integers(),
    st.floats(allow_nan=True),
    st.binary(max_size=8),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
    st.tuples(st.text(max_size=3)),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.just(object()),
)
ODD_KEYS = st.one_of(  # hashable, so they can be dict keys
    st.integers(),
    st.floats(allow_nan=False),
    st.binary(max_size=8),
    st.booleans(),
    st.tuples(st.text(max_size=3)),
    st.just(object()),
)
GOOD_NAMES = ["six", "requests[socks]", "Flask", "zope.interface", "typing_extensions"]
GOOD_VALUES = ["", ">=1", "1.16.0", "==1.17.0", ">=1; python_version >= '3.8'", f"@ {WHEEL_URL}"]
GOOD_LINES = ["six", "flask>=2", "requests[socks]==2.32.3", 'idna ; python_version >= "3"']


@st.composite
def inject(draw, base: str, controls=CONTROLS) -> str:
    """`base` with a control character inside it (never at an edge, where strip() hides it)."""
    position = draw(st.integers(1, max(1, len(base) - 1)))
    return base[:position] + draw(controls) + base[position:]


def toml_string(text: str) -> str:
    return json.dumps(text)  # a JSON string with \\uXXXX escapes is a TOML basic string


# -- pypi= -----------------------------------------------------------------------------------

BAD_NAMES = st.one_of(
    ODD_KEYS,
    st.sampled_from(GOOD_NAMES).flatmap(inject),
    st.sampled_from(
        [
            "",
            " ",
            "not a name!",
            "six>=1",
            "six; python_version > '3'",
            f"six @ {WHEEL_URL}",
            "-e .",
            "[x]",
            "six[",
            "../six",
            "six==",
            "*",
        ]
    ),
    LONG,
)
BAD_VALUES = st.one_of(
    ODD.filter(lambda value: not isinstance(value, str)),
    st.just(None),
    st.sampled_from(GOOD_VALUES[1:]).flatmap(inject),
    st.sampled_from(
        [
            "latest",
            ">>2",
            "==",
            "@",
            "@ not a url",
            "@ git+https://github.com/benjaminp/six",
            "@ https://files.example/six-1.17.0.tar.gz",
            "@ file:///tmp/six-1.0-py3-none-any.whl",
            "; python_version >>> '3'",
            "; os_name",
            ">=1;;",
            "===",
            "~=1",
            ">=1 @ x",
        ]
    ),
    LONG.map(lambda junk: ">=" + junk),
)


@st.composite
def bad_pypi(draw) -> Case:
    good = draw(st.dictionaries(st.sampled_from(GOOD_NAMES), st.sampled_from(GOOD_VALUES)))
    kind = draw(st.sampled_from(["not a dict", "key", "value", "empty"]))
    if kind == "not a dict":
        pypi = draw(st.one_of(ODD.filter(lambda v: not isinstance(v, dict)), st.text()))
    elif kind == "key":
        pypi = {**good, draw(BAD_NAMES): draw(st.sampled_from(GOOD_VALUES))}
    elif kind == "value":
        pypi = {**good, "bad-value-package": draw(BAD_VALUES)}
    else:
        pypi = {}
    return Case({"pypi": pypi})


# -- requirements_file= -------------------------------------------------------------------

BAD_LINES = st.one_of(
    st.sampled_from(GOOD_LINES).flatmap(lambda line: inject(line, st.sampled_from(IN_LINE))),
    st.sampled_from(
        [
            "--pre",
            "-e .",
            "six --hash=md5:abc",
            "six --hash=sha256:abc",
            "--index-url",
            "-i",
            '-r "unclosed',
            "--index-url 'unclosed",
            "six --hash 'sha256:",
            "-r missing.txt",
            "six -r other.txt",
            "--hash=sha256:" + "a" * 64,
            "--index-url=not-a-url",
            "--extra-index-url=ftp://files.example/simple",
            "six >>= 1",
            "-c constraints.txt",
            "six @ git+https://github.com/benjaminp/six",
            "six @ https://files.example/six.zip",
            "--index-url=https://a.example/simple\n-i https://b.example/simple",
            "-f ./wheels",
        ]
    ),
    st.sampled_from(["--index-url=https://", "--extra-index-url=https://", "-r "]).flatmap(
        lambda option: st.sampled_from(["files.example/simple", "inc.txt"]).flatmap(
            lambda rest: inject(option + rest, st.sampled_from(IN_LINE))
        )
    ),
    LONG,
)


@st.composite
def bad_requirements(draw) -> Case:
    kind = draw(st.sampled_from(["line", "include", "deep", "cycle", "special", "empty", "bytes"]))
    good = draw(st.lists(st.sampled_from(GOOD_LINES), max_size=3))
    files: dict[str, bytes | str] = {}
    if kind == "line":
        lines = [*good, draw(BAD_LINES)]
        lines = draw(st.permutations(lines))
        files["requirements.txt"] = "\n".join(lines).encode("utf-8", "surrogatepass")
    elif kind == "include":  # the defect is in an included file
        files["requirements.txt"] = "\n".join([*good, "-r sub/inc.txt"]).encode()
        files["sub/inc.txt"] = draw(BAD_LINES).encode("utf-8", "surrogatepass")
    elif kind == "deep":  # a chain of includes deeper than any recursion limit
        depth = draw(st.integers(300, 1200))
        files["requirements.txt"] = b"-r r1.txt\n"
        for level in range(1, depth):
            files[f"r{level}.txt"] = f"-r r{level + 1}.txt\n".encode()
        files[f"r{depth}.txt"] = b"six\n"
    elif kind == "cycle":
        files["requirements.txt"] = b"six\n-r a.txt\n"
        files["a.txt"] = b"-r b.txt\n"
        files["b.txt"] = draw(st.sampled_from([b"-r a.txt\n", b"-r ../requirements.txt\n"]))
    elif kind == "special":
        files["requirements.txt"] = draw(st.sampled_from(["fifo", "dir"]))
    elif kind == "empty":
        files["requirements.txt"] = draw(st.sampled_from([b"", b"# only a comment\n", b"\n\n"]))
    else:
        files["requirements.txt"] = draw(st.sampled_from([b"\xff\xfe\x00s", b"six\n\x80\x81\n"]))
    path = "@requirements.txt" if kind != "special" or draw(st.booleans()) else "@missing.txt"
    return Case({"requirements_file": path}, files)


# -- pyproject_toml= -----------------------------------------------------------------------

BAD_DEPENDENCIES = st.one_of(
    st.sampled_from(GOOD_LINES).flatmap(inject).map(lambda d: f"[{toml_string(d)}]"),
    st.just(f'["six @ {WHEEL_URL}\\n--index-url=http://127.0.0.1:9/simple\\nsix"]'),
    st.sampled_from(
        [
            "[]",
            '"six"',
            "5",
            "[1, 2]",
            '["six >> 1"]',
            '[["six"]]',
            '["six", 2]',
            '["six @ git+https://github.com/benjaminp/six"]',
            "{ a = 1 }",
            '[""]',
        ]
    ),
    LONG.map(lambda junk: f'["{junk}"]'),
)


@st.composite
def bad_pyproject(draw) -> Case:
    kind = draw(st.sampled_from(["dependencies", "table", "toml", "deep", "dynamic", "python"]))
    project = '[project]\nname = "app"\nversion = "1"\n'
    if kind == "dependencies":
        text = project + f"dependencies = {draw(BAD_DEPENDENCIES)}\n"
    elif kind == "table":
        text = draw(st.sampled_from(["project = 1\n", "[tool.x]\na = 1\n", "", "project = []\n"]))
    elif kind == "toml":
        text = draw(st.sampled_from(["[project\n", 'a = "\\u0000\n', "= 1\n", "a = [1,\n"]))
    elif kind == "deep":
        depth = draw(st.integers(2_000, 20_000))
        text = project + 'dependencies = ["six"]\nx = ' + "[" * depth + "]" * depth + "\n"
    elif kind == "dynamic":
        dynamic = draw(st.sampled_from(['["dependencies"]', "5", "[5]", '{ a = "b" }']))
        text = project + f'dynamic = {dynamic}\ndependencies = ["six"]\n'
    else:
        requires = draw(
            st.one_of(
                st.sampled_from(["5", '"junk"', '">=4"', "[1]", '"<3"', '">=3.8\\n"']),
                LONG.map(lambda junk: f'"{junk}"'),
            )
        )
        text = project + f'requires-python = {requires}\ndependencies = ["six"]\n'
    return Case({"pyproject_toml": "@pyproject.toml"}, {"pyproject.toml": text.encode()})


# -- everything else: the target, the base, the options -----------------------------------


def odd_or(*bad: str) -> st.SearchStrategy:
    return st.one_of(ODD, st.sampled_from(list(bad)), LONG)


BAD_OPTIONS: dict[str, st.SearchStrategy] = {
    "python": odd_or("", "3.7", "2.7", "3", "4.0", "latest", "3.11\n", "3.11 ", "3.x"),
    "platform": odd_or("", "linux/s390x", "windows/amd64", "linux/amd64\n", "linux/AMD64"),
    "base_image": st.one_of(
        odd_or("", " ", "\n", "UPPER/Case:1", "x@sha256:bad", "oci-layout://x@sha256:bad"),
        inject("127.0.0.1:5000/base/debian:12"),
    ),
    "cache_name": odd_or("", "Bad Name", "a" * 65, "ok\n", "-dash", "UPPER"),
    "compression": odd_or("", "bzip2", "gzip\n", "GZIP"),
    "registry": odd_or("", "Upper/x", "127.0.0.1:5000/repo:tag", "\n", "a b/c"),
    "target": odd_or("", "s3", "layout\n", "Registry"),
    "force": st.one_of(st.sampled_from(["yes", "false", 1, 0.0, [], "no"])),
    "progress": st.sampled_from([5, "bar", b"x", [print]]),
    "logger": st.sampled_from([5, "log", b"x", {"a": 1}]),
    "conda": st.sampled_from(
        [{}, "numpy", 5, {"numpy": ">>1"}, {"": "1"}, {"numpy": 5}, {"numpy\n": ""}]
    ),
    "channels": st.sampled_from(
        [
            "conda-forge",
            [],
            ["ftp://mirror/ch"],
            ["https://user:secret@mirror/ch"],
            [5],
            ["conda-forge\n"],
            ["x", "x"],
            ["not a channel"],
        ]
    ),
    "environment": ODD.filter(lambda value: value is not None),
    "conda_lock": ODD.filter(lambda value: value is not None),
    "requirements_file": ODD.filter(lambda value: value is not None),
    "pyproject_toml": ODD.filter(lambda value: value is not None),
}


@st.composite
def bad_option(draw) -> Case:
    kind = draw(st.sampled_from([*BAD_OPTIONS, "unknown", "two sources", "no source"]))
    pypi = {"six": ""}
    if kind == "unknown":
        name = draw(st.sampled_from(["flavour", "registy", "base", "requirements", "Platform"]))
        return Case({"pypi": pypi, name: draw(st.one_of(ODD, st.text(max_size=5)))})
    if kind == "two sources":
        return Case({"pypi": pypi, "requirements_file": "@r.txt"}, {"r.txt": b"six\n"})
    if kind == "no source":
        return Case({"python": "3.11"})
    value = draw(BAD_OPTIONS[kind])
    if kind in ("requirements_file", "pyproject_toml", "environment", "conda_lock"):
        return Case({kind: value})
    if kind == "conda":
        return Case({kind: value})
    if kind == "channels":
        return Case({"conda": {"numpy": ""}, kind: value})
    kwargs = {"pypi": pypi, kind: value}
    if kind == "registry":
        kwargs["target"] = "registry"
    return Case(kwargs)


BAD_INPUTS = st.one_of(bad_pypi(), bad_requirements(), bad_pyproject(), bad_option())


def check_refused(listener: ConnectionCounter, case: Case) -> ImageBakingException:
    connections = listener.count
    with tempfile.TemporaryDirectory(prefix="bakery-fuzz-") as scratch:
        kwargs = case.materialize(Path(scratch))
        with pytest.raises(ImageBakingException) as raised:
            bake_image(**kwargs)
    message = raised.value.message
    assert message and len(message) <= MESSAGE_LIMIT, (len(message), message[:1000])
    assert listener.count == connections, f"{case.kwargs!r:.300} reached the base image"
    return raised.value


def test_every_bad_input_is_a_short_image_baking_exception_before_any_io(listener):
    refused: list[Case] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(case=BAD_INPUTS)
    def refuse(case: Case) -> None:
        check_refused(listener, case)
        refused.append(case)

    refuse()
    assert len(refused) >= 500  # hypothesis may stop early if the strategies are too narrow


@pytest.mark.parametrize(
    "option",
    [
        {"python": "3.11\n"},
        {"platform": "linux/amd64\n"},
        {"base_image": "oci-layout:///srv/images\n:base"},
        {"base_image": "127.0.0.1:5000/base/debian:12\n"},
        {"cache_name": "team\n"},
        {"registry": "127.0.0.1:5000/baked\n", "target": "registry"},
        {"compression": "gzip\n"},
        {"target": "layout\n"},
        {"base_image": ""},
        {"python": ""},
        {"platform": ""},
        {"force": "false"},
    ],
)
def test_option_strings_with_line_breaks_or_empty_are_refused(listener, option):
    check_refused(listener, Case({"pypi": {"six": ""}, **option}))
