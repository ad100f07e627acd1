"""Bytecode for package layers: each module ships its .pyc, so a container neither compiles
its imports at every start nor needs a writable root filesystem to keep them.

The files are unchecked-hash pycs (PEP 552), as reproducible installers write them: they hold
no source mtime, and the interpreter loads them without reading the source, so their bytes
depend only on the source, its in-image path (`co_filename`) and the compiler. Bytecode is
specific to a CPython minor version, so it is made by a host CPython of the image's minor
version (`find_compiler`), in a subprocess with a fixed hash seed (CPython 3.10 and older
marshal sets in hash order).
"""

import contextlib
import json
import os
import platform
import py_compile
import re
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import defaultdict
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from importlib.util import MAGIC_NUMBER
from pathlib import Path

from bakery.errors import ImageBakingException
from bakery.layers.cpython import install_cpython, python_install_dir, python_source
from bakery.layers.tarball import LayerEntry, LayerFile
from bakery.lock import ARCHITECTURES, uv_binary

_PROBE = (
    "import importlib.util, json, platform, sys; print(json.dumps({"
    "'implementation': sys.implementation.name, 'version': platform.python_version(), "
    "'cache_tag': sys.implementation.cache_tag, 'magic': importlib.util.MAGIC_NUMBER.hex()}))"
)
_COMPILE = """
import py_compile, sys
root = sys.argv[1]
for path in sys.stdin.buffer.read().decode("utf-8").split("\\0"):
    if not path:
        continue
    try:
        py_compile.compile(
            root + "/" + path, dfile="/" + path, doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
    except py_compile.PyCompileError:
        pass  # not Python 3 (a template, a Python 2 file): pip leaves it uncompiled too
"""
_TIMEOUT = 600.0
_CHUNK = 200
"""Modules per compiler process: a large package (pandas: 1400 modules, ~5 s of CPU) compiles
on every core. The split depends only on the sorted module list, so the bytes do not depend
on the machine's core count."""


@dataclass(frozen=True)
class Compiler:
    """A host CPython that writes bytecode for the image's interpreter: `cache_tag` (e.g.
    cpython-311) names its pycs, `magic` (hex) is what the image's interpreter checks."""

    executable: str
    version: str
    cache_tag: str
    magic: str

    def compiles_for(self, python: str) -> bool:
        """Whether the image's CPython `python` (e.g. "3.11") loads this compiler's pycs."""
        return self.cache_tag == _cache_tag(python)

    def is_this_process(self) -> bool:
        """Whether this is the running interpreter and its pyc bytes do not depend on the
        hash seed (3.11 and newer), so compiling here gives the subprocesses' bytes."""
        return self.executable == sys.executable and sys.version_info >= (3, 11)

    def identity(self) -> dict[str, str]:
        """What decides the pyc bytes, for layer cache keys (the path does not)."""
        return {key: value for key, value in asdict(self).items() if key != "executable"}


class NoCompiler(Exception):
    """No host CPython of the image's minor version could be found or installed."""


_RETRY_AFTER = 600.0
"""Seconds a failed search stands: a host that cannot download builds pays the attempt once
per this long, not on every bake."""
_found: dict[tuple[str, Path], tuple[Compiler | str, float]] = {}
_finding: dict[tuple[str, Path], threading.Lock] = defaultdict(threading.Lock)
_finding_lock = threading.Lock()


def find_compiler(python: str, cache: Path) -> Compiler:
    """A host CPython `python` (e.g. "3.11") to compile with: this process's interpreter, else
    one uv finds (on PATH, or installed by uv, including the bakery's own managed builds),
    else a build uv installs into the cache from the managed-CPython source. Raises
    `NoCompiler` saying why not (remembered for `_RETRY_AFTER` seconds)."""
    key = (python, python_install_dir(cache, python_source()))
    with _finding_lock:
        finding = _finding[key]
    with finding:  # one search per version and source at a time; others need not wait
        found, at = _found.get(key, (None, 0.0))
        if (
            found is None
            or (isinstance(found, Compiler) and not Path(found.executable).exists())
            or (isinstance(found, str) and time.monotonic() - at > _RETRY_AFTER)
        ):
            found = _find(python, cache, key[1])
            _found[key] = (found, time.monotonic())
    if isinstance(found, str):
        raise NoCompiler(found)
    return found


def _find(python: str, cache: Path, installs: Path) -> Compiler | str:
    if f"{sys.version_info.major}.{sys.version_info.minor}" == python:
        tag = sys.implementation.cache_tag
        if tag == _cache_tag(python):
            return Compiler(sys.executable, platform.python_version(), tag, MAGIC_NUMBER.hex())
    if (compiler := _uv_find(python, installs)) is not None:
        return compiler
    host = _host_platform()
    if host is None:
        return f"no CPython {python} on this {platform.system()} {platform.machine()} host"
    try:
        install = install_cpython(python, host, python_source(), cache)
    except ImageBakingException as exc:
        return f"no CPython {python} on this host, and installing one failed: {exc.message}"
    compiler = _probe(str(install / "bin" / f"python{python}"), python)
    return compiler or f"the CPython {python} installed in {install} does not run on this host"


def _uv_find(python: str, installs: Path) -> Compiler | None:
    """The CPython `python` uv finds: managed ones (the bakery's in `installs` too) or on
    PATH. A broken interpreter on PATH (e.g. a pyenv shim of an inactive version) makes uv
    fail: then nothing is found here."""
    command = [uv_binary(), "python", "find", "--no-config", "--no-project", f"cpython@{python}"]
    try:
        found = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env={**os.environ, "UV_PYTHON_INSTALL_DIR": str(installs)},
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return _probe(found.stdout.strip(), python) if found.returncode == 0 else None


def _cache_tag(python: str) -> str:
    return f"cpython-{python.replace('.', '')}"


def _probe(executable: str, python: str) -> Compiler | None:
    """The interpreter at `executable`, if it runs and is CPython `python`."""
    try:
        done = subprocess.run(
            [executable, "-I", "-S", "-c", _PROBE], capture_output=True, text=True, timeout=60
        )
        facts = json.loads(done.stdout) if done.returncode == 0 else None
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None
    wanted = ("cpython", _cache_tag(python))
    if not facts or (facts["implementation"], facts["cache_tag"]) != wanted:
        return None
    return Compiler(executable, facts["version"], facts["cache_tag"], facts["magic"])


def _host_platform() -> str | None:
    """This machine as a target platform, when managed Linux builds run here."""
    if platform.system() != "Linux":
        return None
    return next((p for p, arch in ARCHITECTURES.items() if arch == platform.machine()), None)


@contextmanager
def compiled(
    files: Mapping[str, LayerEntry], site_packages: str, compiler: Compiler, what: str
) -> Iterator[dict[str, LayerEntry]]:
    """The pycs of the `.py` files under `site_packages` (a layer path, no leading '/'),
    keyed by their layer paths; valid inside the block. Files that are not valid Python get
    none. `what` names the layer's source in errors."""
    sources = sorted(
        path
        for path, entry in files.items()
        if isinstance(entry, LayerFile)
        and path.startswith(f"{site_packages}/")
        and path.endswith(".py")
    )
    with tempfile.TemporaryDirectory(prefix="bakery-bytecode-") as scratch:
        tree = Path(scratch) / "tree"
        for path in sources:
            file = files[path]
            assert isinstance(file, LayerFile)  # sources are regular .py files
            _write(file, tree / path)
        if len(sources) <= _CHUNK and compiler.is_this_process():
            _compile_here(tree, sources, site_packages)  # most packages: no process to start
        else:
            chunks = [sources[i : i + _CHUNK] for i in range(0, len(sources), _CHUNK)]
            with ThreadPoolExecutor(min(len(chunks), os.cpu_count() or 1) or 1) as workers:
                list(workers.map(lambda chunk: _run(compiler, tree, chunk, what), chunks))
        pycs: dict[str, LayerEntry] = {}
        for path in sources:
            directory, _, name = path.rpartition("/")
            pyc = f"{directory}/__pycache__/{name.removesuffix('.py')}.{compiler.cache_tag}.pyc"
            if (tree / pyc).is_file():
                pycs[pyc] = LayerFile(0o644, (tree / pyc).stat().st_size, tree / pyc)
        yield pycs


def _write(entry: LayerFile, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(entry.content, Path):
        target.write_bytes(entry.content.read_bytes())
        return
    entry.content.seek(0)
    with target.open("wb") as out:
        while chunk := entry.content.read(1 << 20):
            out.write(chunk)


def _compile_here(tree: Path, sources: list[str], site_packages: str) -> None:
    """What `_COMPILE` does in a compiler process, in this one. The packages' own compile
    warnings (invalid escapes and the like) stay quiet, as `-W ignore` keeps them there: a
    filter on their in-image paths, which nothing else in this process has."""
    warnings.filterwarnings("ignore", module=re.escape(f"/{site_packages}/"))
    for path in sources:
        with contextlib.suppress(py_compile.PyCompileError):  # not Python 3: left as is
            py_compile.compile(
                str(tree / path),
                dfile=f"/{path}",
                doraise=True,
                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
            )


def _run(compiler: Compiler, tree: Path, sources: list[str], what: str) -> None:
    command = [compiler.executable, "-S", "-s", "-W", "ignore", "-c", _COMPILE, str(tree)]
    try:
        done = subprocess.run(
            command,
            input="\0".join(sources).encode(),
            capture_output=True,
            cwd=tree.parent,
            env={"PYTHONHASHSEED": "0", "PYTHONUTF8": "1"},
            timeout=_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ImageBakingException(
            f"Cannot compile the modules of {what} with {compiler.executable}: {exc}"
        ) from None
    if done.returncode != 0:
        raise ImageBakingException(
            f"Compiling the modules of {what} with {compiler.executable} failed "
            f"(exit {done.returncode}); see details",
            details=done.stderr.decode(errors="replace").strip() or None,
        )
