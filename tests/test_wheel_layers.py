"""Real wheels from PyPI -> fetched into the artifact cache -> one deterministic layer each."""

import gzip
import hashlib
import importlib.util
import marshal
import os
import tarfile
import types
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from bakery.artifacts import artifact_path, fetch_artifacts
from bakery.errors import ImageBakingException
from bakery.layers import BuiltLayer, build_wheel_layer
from bakery.layers.budget import fit_budget
from bakery.layers.bytecode import Compiler, find_compiler
from bakery.layers.packages import build_package_layers
from bakery.lock import Lock, LockedPackage, lock
from bakery.spec import make_spec

DIGEST = "sha256:" + "a" * 64
SITE = "opt/bakery/env/lib/python3.11/site-packages"


@pytest.fixture(scope="module")
def flask_lock() -> Lock:
    return lock(make_spec(pypi={"flask": ">=3,<4"}, base_image_digest=DIGEST))


@pytest.fixture(scope="module")
def wheels(flask_lock: Lock, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each package's wheel, fetched once into a module-wide artifact cache."""
    cache = tmp_path_factory.mktemp("artifacts")
    paths = fetch_artifacts(flask_lock.packages, cache)
    return {p.name: path for p, path in zip(flask_lock.packages, paths, strict=True)}


@pytest.fixture(scope="module")
def compiler(tmp_path_factory: pytest.TempPathFactory) -> Compiler:
    """A host CPython 3.11 (the image's Python in these tests) writing the layers' bytecode."""
    return find_compiler("3.11", tmp_path_factory.mktemp("compiler-cache"))


def package(flask_lock: Lock, name: str) -> LockedPackage:
    return next(p for p in flask_lock.packages if p.name == name)


def build(
    flask_lock: Lock,
    wheels: dict[str, Path],
    name: str,
    cache: Path,
    compiler: Compiler | None = None,
) -> BuiltLayer:
    """The layer of package `name`, without bytecode unless a `compiler` is given."""
    locked = package(flask_lock, name)
    return build_wheel_layer(
        wheels[name],
        filename=locked.filename,
        sha256=locked.sha256,
        python="3.11",
        cache=cache,
        compiler=compiler,
    )


def members(layer: BuiltLayer) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(layer.path) as tar:
        return {m.name: m for m in tar.getmembers()}


def read(layer: BuiltLayer, name: str) -> bytes:
    with tarfile.open(layer.path) as tar:
        member = tar.extractfile(name)
        assert member is not None
        return member.read()


def test_fetch_puts_verified_artifacts_at_their_digest(flask_lock: Lock, tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    paths = fetch_artifacts(flask_lock.packages, tmp_path, progress=lambda *p: seen.append(p))
    for locked, path in zip(flask_lock.packages, paths, strict=True):
        assert path == tmp_path / "artifacts" / "sha256" / locked.sha256
        assert hashlib.sha256(path.read_bytes()).hexdigest() == locked.sha256
    total = sum(p.size or 0 for p in flask_lock.packages)
    assert seen[-1] == (total, total)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert list((tmp_path / "artifacts" / "sha256").glob(".partial-*")) == []

    again: list[tuple[int, int]] = []
    assert fetch_artifacts(flask_lock.packages, tmp_path, progress=lambda *p: again.append(p))
    assert len(again) == len(flask_lock.packages)  # one tick per present artifact, no download


def test_package_layers_overlap_downloads_and_come_back_in_lock_order(
    flask_lock: Lock, compiler: Compiler, tmp_path: Path
) -> None:
    def build_all(seen: list[BuiltLayer], ticks: list[tuple[int, int]]) -> list[BuiltLayer]:
        return build_package_layers(
            flask_lock.packages,
            tmp_path,
            python="3.11",
            compiler=compiler,
            prefix="/opt/bakery/env",
            compression="gzip",
            on_built=seen.append,
            layer_progress=lambda *tick: ticks.append(tick),
        )

    seen: list[BuiltLayer] = []
    ticks: list[tuple[int, int]] = []
    layers = build_all(seen, ticks)  # nothing cached: each layer starts as its wheel lands
    count = len(flask_lock.packages)
    assert [layer.source for layer in layers] == [p.filename for p in flask_lock.packages]
    assert sorted(layer.digest for layer in seen) == sorted(layer.digest for layer in layers)
    assert ticks == [(done, count) for done in range(1, count + 1)]
    assert not any(layer.reused for layer in layers)

    again = build_all([], [])
    assert [layer.digest for layer in again] == [layer.digest for layer in layers]
    assert all(layer.reused for layer in again)


def test_fetch_refuses_bytes_that_do_not_match(flask_lock: Lock, tmp_path: Path) -> None:
    url = package(flask_lock, "flask").url
    forged = LockedPackage("flask", "0", url, "flask.whl", "0" * 64, None)
    with pytest.raises(ImageBakingException, match="does not match its lock"):
        fetch_artifacts([forged], tmp_path)
    assert list((tmp_path / "artifacts" / "sha256").iterdir()) == []


def test_fetch_names_the_url_on_http_errors(flask_lock: Lock, tmp_path: Path) -> None:
    url = package(flask_lock, "flask").url + ".missing"
    missing = LockedPackage("flask", "0", url, "flask.whl", "1" * 64, None)
    with pytest.raises(ImageBakingException, match=f"Downloading {url} failed: HTTP 404"):
        fetch_artifacts([missing], tmp_path)
    assert not artifact_path(tmp_path, "1" * 64).exists()


def test_click_layer_holds_the_package_in_site_packages(
    flask_lock: Lock, wheels: dict[str, Path], tmp_path: Path
) -> None:
    layer = build(flask_lock, wheels, "click", tmp_path)
    entries = members(layer)
    assert f"{SITE}/click/__init__.py" in entries
    version = package(flask_lock, "click").version
    assert read(layer, f"{SITE}/click-{version}.dist-info/INSTALLER") == b"bakery\n"
    record = read(layer, f"{SITE}/click-{version}.dist-info/RECORD").decode()
    assert "click/__init__.py,sha256=" in record


def test_flask_layer_has_a_console_script_for_the_image_python(
    flask_lock: Lock, wheels: dict[str, Path], tmp_path: Path
) -> None:
    layer = build(flask_lock, wheels, "flask", tmp_path)
    script = members(layer)["opt/bakery/env/bin/flask"]
    assert script.isfile() and script.mode == 0o755
    content = read(layer, "opt/bakery/env/bin/flask").decode()
    assert content.startswith("#!/opt/bakery/env/bin/python\n")
    assert "from flask.cli import main" in content
    record = read(layer, f"{SITE}/flask-{package(flask_lock, 'flask').version}.dist-info/RECORD")
    assert b"../../../bin/flask,sha256=" in record


def test_layer_entries_are_normalized(
    flask_lock: Lock, wheels: dict[str, Path], compiler: Compiler, tmp_path: Path
) -> None:
    layer = build(flask_lock, wheels, "markupsafe", tmp_path, compiler)
    entries = members(layer)
    names = list(entries)
    assert names == sorted(names)
    assert names[:3] == ["opt", "opt/bakery", "opt/bakery/env"]
    for name, member in entries.items():
        assert not name.startswith("/") and ".." not in name.split("/")
        assert (member.mtime, member.uid, member.gid, member.uname, member.gname) == (
            0,
            0,
            0,
            "",
            "",
        )
        parent = name.rpartition("/")[0]
        assert not parent or entries[parent].isdir()
        if member.isdir():
            assert member.mode == 0o755
        else:
            assert member.isfile() and member.mode in (0o644, 0o755)
    assert any(name.endswith(".so") for name in names)  # the platform wheel's extension
    assert any(name.endswith(".cpython-311.pyc") for name in names)


def test_layer_digests_describe_the_blob(
    flask_lock: Lock, wheels: dict[str, Path], tmp_path: Path
) -> None:
    layer = build(flask_lock, wheels, "itsdangerous", tmp_path)
    blob = layer.path.read_bytes()
    assert layer.digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert layer.size == len(blob)
    tar = gzip.decompress(blob)
    assert layer.diff_id == "sha256:" + hashlib.sha256(tar).hexdigest()
    assert layer.uncompressed_size == len(tar)
    assert layer.media_type == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert layer.source == package(flask_lock, "itsdangerous").filename


def test_same_wheel_gives_byte_identical_layers_in_empty_caches(
    flask_lock: Lock, wheels: dict[str, Path], compiler: Compiler, tmp_path: Path
) -> None:
    for name in ("flask", "markupsafe"):
        first = build(flask_lock, wheels, name, tmp_path / "one", compiler)
        second = build(flask_lock, wheels, name, tmp_path / "two", compiler)
        assert not first.reused and not second.reused
        assert (first.digest, first.diff_id, first.key) == (
            second.digest,
            second.diff_id,
            second.key,
        )
        assert first.path.read_bytes() == second.path.read_bytes()


def test_cached_layer_is_reused_without_rebuilding(
    flask_lock: Lock, wheels: dict[str, Path], compiler: Compiler, tmp_path: Path
) -> None:
    built = build(flask_lock, wheels, "werkzeug", tmp_path, compiler)
    stamp = built.path.stat().st_mtime_ns
    again = build(flask_lock, wheels, "werkzeug", tmp_path, compiler)
    assert (built.reused, again.reused) == (False, True)
    assert again == BuiltLayer(**{**built.__dict__, "reused": True})
    assert again.path.stat().st_mtime_ns == stamp
    assert [p.name for p in (tmp_path / "layers" / "gzip").iterdir()] == [built.key]


def test_layer_key_depends_on_prefix_python_and_bytecode(
    flask_lock: Lock, wheels: dict[str, Path], compiler: Compiler, tmp_path: Path
) -> None:
    locked = package(flask_lock, "blinker")
    common = {"filename": locked.filename, "sha256": locked.sha256, "cache": tmp_path}
    default = build_wheel_layer(wheels["blinker"], python="3.11", compiler=compiler, **common)
    other_python = build_wheel_layer(wheels["blinker"], python="3.12", compiler=None, **common)
    other_prefix = build_wheel_layer(
        wheels["blinker"], python="3.11", prefix="/venv", compiler=compiler, **common
    )
    # A layer built without bytecode (as every layer of format 1 was) is not reused for one
    # that should have it.
    no_bytecode = build_wheel_layer(wheels["blinker"], python="3.11", compiler=None, **common)
    assert len({default.key, other_python.key, other_prefix.key, no_bytecode.key}) == 4
    assert not no_bytecode.reused
    assert not any(name.endswith(".pyc") for name in members(no_bytecode))
    assert "opt/bakery/env/lib/python3.12/site-packages/blinker/__init__.py" in members(
        other_python
    )
    assert "venv/lib/python3.11/site-packages/blinker/__init__.py" in members(other_prefix)


def test_corrupt_wheel_is_refused_and_not_cached(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.whl"
    bogus.write_bytes(b"not a zip")
    with pytest.raises(ImageBakingException, match=r"Cannot unpack bogus-1\.0-py3-none-any\.whl"):
        build_wheel_layer(
            bogus,
            filename="bogus-1.0-py3-none-any.whl",
            sha256="2" * 64,
            python="3.11",
            cache=tmp_path / "cache",
            compiler=None,
        )
    assert not (tmp_path / "cache" / "layers").exists()


def make_wheel(path: Path, files: dict[str, bytes]) -> Path:
    """A minimal valid wheel named `evil-1.0` holding `files` besides its dist-info."""
    info = {
        "evil-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\n",
        "evil-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n",
    }
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in {**files, **info}.items():
            archive.writestr(name, data)
        archive.writestr("evil-1.0.dist-info/RECORD", "")
    return path


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("evil-1.0.data/data/../../../../etc/passwd", "outside of the target directory"),
        ("evil-1.0.data/scripts/../../../../../usr/bin/python3", "outside of the target"),
        ("evil/.wh.__init__.py", "overlay whiteout"),
    ],
)
def test_wheel_cannot_write_outside_its_prefix(name: str, message: str, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "evil.whl", {name: b"x", "evil/__init__.py": b""})
    with pytest.raises(ImageBakingException, match=message):
        build_wheel_layer(
            wheel,
            filename="evil-1.0-py3-none-any.whl",
            sha256="3" * 64,
            python="3.11",
            cache=tmp_path / "cache",
            compiler=None,
        )


def test_wheel_data_and_scripts_schemes_map_into_the_prefix(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path / "evil.whl",
        {
            "evil/__init__.py": b"",
            "evil-1.0.data/scripts/tool": b"#!python\nprint('hi')\n",
            "evil-1.0.data/data/share/evil/config.json": b"{}",
            "evil-1.0.data/headers/evil.h": b"",
        },
    )
    layer = build_wheel_layer(
        wheel,
        filename="evil-1.0-py3-none-any.whl",
        sha256="4" * 64,
        python="3.11",
        cache=tmp_path,
        compiler=None,
    )
    entries = members(layer)
    assert read(layer, "opt/bakery/env/bin/tool") == b"#!/opt/bakery/env/bin/python\nprint('hi')\n"
    assert entries["opt/bakery/env/bin/tool"].mode == 0o755
    assert entries["opt/bakery/env/share/evil/config.json"].mode == 0o644
    assert "opt/bakery/env/include/site/python3.11/evil/evil.h" in entries


def test_layer_budget_merges_the_smallest_layers(
    flask_lock: Lock, wheels: dict[str, Path], tmp_path: Path
) -> None:
    layers = [build(flask_lock, wheels, p.name, tmp_path) for p in flask_lock.packages]
    assert len(layers) >= 5
    room = 3

    fitted, merged = fit_budget(layers, room, tmp_path)

    assert len(fitted) == room
    assert len(merged) == len(layers) - room + 1
    largest = max(layers, key=lambda layer: layer.size)
    assert largest in fitted and largest not in merged
    assert max(layer.size for layer in merged) <= min(layer.size for layer in fitted[:-1])
    combined = members(fitted[-1])
    for layer in merged:
        assert set(members(layer)) <= set(combined)
    again, _ = fit_budget(layers, room, tmp_path)
    assert again[-1].reused and again[-1].digest == fitted[-1].digest
    unchanged, none_merged = fit_budget(layers, len(layers), tmp_path)
    assert unchanged == layers and none_merged == []


def code_objects(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield from code_objects(constant)


def test_every_module_ships_an_unchecked_hash_pyc_naming_its_in_image_path(
    flask_lock: Lock, wheels: dict[str, Path], compiler: Compiler, tmp_path: Path
) -> None:
    layer = build(flask_lock, wheels, "click", tmp_path, compiler)
    entries = members(layer)
    sources = [name for name in entries if name.startswith(SITE) and name.endswith(".py")]
    assert len(sources) > 10
    for source in sources:
        directory, _, name = source.rpartition("/")
        pyc = read(layer, f"{directory}/__pycache__/{name.removesuffix('.py')}.cpython-311.pyc")
        assert pyc[:4] == importlib.util.MAGIC_NUMBER  # the test venv's Python is 3.11
        assert int.from_bytes(pyc[4:8], "little") == 0b01  # PEP 552: hash-based, unchecked
        assert pyc[8:16] == importlib.util.source_hash(read(layer, source))
        assert b"bakery-bytecode-" not in pyc  # no trace of the host's scratch directory
        filenames = {code.co_filename for code in code_objects(marshal.loads(pyc[16:]))}
        assert filenames == {f"/{source}"}
    assert len([name for name in entries if name.endswith(".pyc")]) == len(sources)


def test_only_valid_python_in_site_packages_gets_bytecode(
    compiler: Compiler, tmp_path: Path
) -> None:
    wheel = make_wheel(
        tmp_path / "evil.whl",
        {
            "evil/__init__.py": b"VALUE = 1\n",
            "evil/template.py": b"{% if user %}hello{% endif %}\n",  # not Python: left as is
            "evil/legacy.py": b"print 'python 2'\n",
            "evil-1.0.data/scripts/tool.py": b"#!python\nprint('hi')\n",
            "evil-1.0.data/data/share/evil/hook.py": b"print('hi')\n",
        },
    )
    layer = build_wheel_layer(
        wheel,
        filename="evil-1.0-py3-none-any.whl",
        sha256="5" * 64,
        python="3.11",
        cache=tmp_path,
        compiler=compiler,
    )
    pycs = sorted(name for name in members(layer) if name.endswith(".pyc"))
    assert pycs == [f"{SITE}/evil/__pycache__/__init__.cpython-311.pyc"]


def test_a_package_compiled_in_several_processes_gives_the_same_layer_twice(
    compiler: Compiler, tmp_path: Path
) -> None:
    modules = {
        f"evil/m{i:03}.py": f"VALUE = {{'n': {i}, 's': {{'a', 'b'}}}}\n".encode()
        for i in range(450)
    }
    wheel = make_wheel(tmp_path / "evil.whl", {"evil/__init__.py": b"", **modules})
    built = [
        build_wheel_layer(
            wheel,
            filename="evil-1.0-py3-none-any.whl",
            sha256="6" * 64,
            python="3.11",
            cache=tmp_path / run,
            compiler=compiler,
        )
        for run in ("one", "two")
    ]
    assert built[0].path.read_bytes() == built[1].path.read_bytes()
    assert sum(name.endswith(".pyc") for name in members(built[0])) == 451


def test_a_small_package_compiled_here_matches_one_compiled_in_a_process(
    compiler: Compiler, tmp_path: Path
) -> None:
    """Small packages are compiled in this interpreter (no process to start); the bytes
    must be those a compiler process writes, or layer digests would depend on the path."""
    assert compiler.is_this_process()
    # the same interpreter by another path: compiled in a process of its own
    elsewhere = replace(compiler, executable=os.path.realpath(compiler.executable))
    assert elsewhere.executable != compiler.executable
    assert not elsewhere.is_this_process()
    source = b"VALUE = {'a', 'b', frozenset({1, 2})}\ndef f():\n    return r'\\d'\n"
    wheel = make_wheel(tmp_path / "evil.whl", {"evil/__init__.py": source})
    built = [
        build_wheel_layer(
            wheel,
            filename="evil-1.0-py3-none-any.whl",
            sha256="7" * 64,
            python="3.11",
            cache=tmp_path / name,
            compiler=chosen,
        )
        for name, chosen in (("here", compiler), ("process", elsewhere))
    ]
    assert built[0].path.read_bytes() == built[1].path.read_bytes()
