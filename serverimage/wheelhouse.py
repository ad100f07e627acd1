"""The build context of the server image: the Dockerfile, bakery's own wheel, and one wheel of
every runtime dependency uv.lock pins, chosen for the image's platform and Python.

The wheels come from the lock exported as PEP 751 (`uv export --format pylock.toml`), picked
by the bakery's own wheel-tag ranking and fetched by its own verified downloader into the
bake cache, so a second build downloads nothing. `requirements.txt` pins each with its sha256:
the image installs exactly these files, offline, and checks them again.
"""

import hashlib
import os
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import Marker

from bakery import config
from bakery.artifacts import fetch_artifacts
from bakery.lock import LockedPackage, choose_wheel, target_tags

ROOT = Path(__file__).resolve().parents[1]
"""The repository: its pyproject.toml, uv.lock and Dockerfile."""
PLATFORM = "linux/amd64"
PYTHON = "3.11"
"""Debian bookworm's python3, the interpreter of the image's base."""
_MARKER_ENVIRONMENT = {
    "implementation_name": "cpython",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "platform_python_implementation": "CPython",
    "platform_system": "Linux",
    "python_full_version": f"{PYTHON}.2",
    "python_version": PYTHON,
    "sys_platform": "linux",
}


class WheelhouseError(Exception):
    """A step of making the context failed; the message says which and what to do."""


@dataclass(frozen=True)
class Wheelhouse:
    """A finished build context directory and the digest of everything in it."""

    directory: Path
    digest: str


def make_context(directory: Path, root: Path = ROOT) -> Wheelhouse:
    """Fill `directory` with Dockerfile, wheels/ and wheels/requirements.txt."""
    wheels = directory / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(root / "Dockerfile", directory / "Dockerfile")
    build = ["uv", "build", "--wheel", "--out-dir", str(wheels), "--quiet"]
    _run(build, root, "build bakery's wheel")
    packages = runtime_wheels(root)
    paths = fetch_artifacts(packages, config.bake_cache_dir())
    for package, path in zip(packages, paths, strict=True):
        _link(path, wheels / package.filename)
    (wheels / "requirements.txt").write_text(
        "".join(f"{p.name}=={p.version} --hash=sha256:{p.sha256}\n" for p in packages)
    )
    return Wheelhouse(directory, context_digest(directory))


def runtime_wheels(root: Path = ROOT) -> list[LockedPackage]:
    """One wheel per locked runtime dependency (no dev group, not bakery itself) that
    applies to the image's platform and Python."""
    exported = _run(
        ["uv", "export", "--frozen", "--no-dev", "--no-emit-project", "--format", "pylock.toml"],
        root,
        "export uv.lock",
    )
    tags = target_tags(PLATFORM, PYTHON)
    target = f"{PLATFORM} and Python {PYTHON}"
    return [
        choose_wheel(entry, tags, target)
        for entry in tomllib.loads(exported)["packages"]
        if Marker(entry.get("marker") or "python_version >= '3'").evaluate(_MARKER_ENVIRONMENT)
    ]


def context_digest(directory: Path) -> str:
    """sha256 over every file's path and bytes: the same context, the same digest."""
    total = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        total.update(f"{path.relative_to(directory)}\0".encode())
        total.update(hashlib.sha256(path.read_bytes()).digest())
    return total.hexdigest()


def _link(source: Path, target: Path) -> None:
    """A hard link where the cache and the context share a file system, else a copy."""
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _run(command: list[str], cwd: Path, doing: str) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise WheelhouseError(
            f"could not {doing} (`{' '.join(command)}` exited {done.returncode}):\n"
            f"{done.stderr.strip()}\nCheck that uv is installed and uv.lock is current "
            "(`uv lock`)."
        )
    return done.stdout
