"""Host environments for baked images: a venv of the host's pythonX.Y holding the bake's files.

The image's packages were installed for one Python X.Y and platform, so the host must run
that same X.Y (found on PATH as `pythonX.Y`, never downloaded) on the same architecture.
Each image gets one env, `<cache dir>/deployer/process-envs/<image id>-<format>/`, shared by
every app and version that runs it. It is built in a staging directory beside that path and
renamed into place, so an env that exists is complete; concurrent builders race harmlessly.
Every env also holds the loopback guard (`loopback.py`), which keeps workers' servers behind
the app's proxy; `ENV_FORMAT` names what an env holds, so envs built without it are rebuilt.
"""

import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

from bakery.inspect import BakedImageInfo
from bakery.platforms import ARCHITECTURES
from deployer.exceptions import AppConfigError
from deployer.runtimes.process.image import fetch_layers, read_bake_layers
from deployer.runtimes.process.unpack import unpack
from stagekit.dirs import cache_dir
from stagekit.progress import Reporter

ENV_FORMAT = "2"
"""Bumped when envs gain something older ones lack (2: the loopback guard)."""
LOOPBACK_GUARD = "_bakery_loopback"


def host_env(reference: str, reporter: Reporter) -> Path:
    """The venv that runs image `reference`'s packages on this host, built on first use."""
    image = read_bake_layers(reference)
    name = f"{image.config_digest.removeprefix('sha256:')}-{ENV_FORMAT}"
    target = cache_dir() / "deployer" / "process-envs" / name
    if target.is_dir():
        return target
    python = host_python(image)
    reporter.info(f"Building the host environment for {reference} with {python}")
    layers = fetch_layers(image)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    try:
        _create_venv(python, staging)
        unpack(
            layers,
            image.prefix,
            staging,
            python=image.python,
            interpreter=target / "bin" / "python",
        )
        _install_loopback_guard(staging, image.python)
        _relocate(staging, target)
        staging.chmod(0o755)  # mkdtemp's 0700 would hide the env from other users
        try:
            staging.rename(target)
        except OSError:
            if not target.is_dir():
                raise  # not a lost race with another builder: a real failure
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def host_python(image: BakedImageInfo) -> str:
    """This host's `pythonX.Y` for the image's packages, or why the host cannot run them."""
    machine = platform.machine()
    if ARCHITECTURES.get(image.platform) != machine:
        raise AppConfigError(
            f"image {image.reference!r} was baked for {image.platform}, but this machine is "
            f"{machine}; bake it for this machine's platform or use the docker runtime"
        )
    name = f"python{image.python}"
    found = shutil.which(name)
    if found is None:
        raise AppConfigError(
            f"image {image.reference!r} holds packages for Python {image.python}, and the "
            f"process runtime runs them with the host's {name}, which is not on PATH; install "
            f"{name} (e.g. apt-get install {name}, or uv python install {image.python}), or "
            "use the docker runtime, which runs the image's own interpreter"
        )
    return found


def _create_venv(python: str, directory: Path) -> None:
    result = subprocess.run(
        [python, "-m", "venv", "--without-pip", str(directory)], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise AppConfigError(
            f"{python} -m venv failed: {result.stderr.strip() or result.stdout.strip()}; "
            "the process runtime needs the venv module of that interpreter"
        )


def _install_loopback_guard(venv: Path, python: str) -> None:
    """The guard module and the `.pth` line that imports it at every interpreter start."""
    site_packages = venv / "lib" / f"python{python}" / "site-packages"
    guard = Path(__file__).with_name("loopback.py").read_bytes()
    (site_packages / f"{LOOPBACK_GUARD}.py").write_bytes(guard)
    (site_packages / f"{LOOPBACK_GUARD}.pth").write_text(f"import {LOOPBACK_GUARD}\n")


def _relocate(staging: Path, target: Path) -> None:
    """The venv module writes its own path into pyvenv.cfg and the activation scripts:
    make them name where the env will be, so `source <env>/bin/activate` works."""
    for path in [staging / "pyvenv.cfg", *(staging / "bin").glob("[Aa]ctivate*")]:
        path.write_text(path.read_text().replace(str(staging), str(target)))
