"""Host environments for baked images: a venv of the host's pythonX.Y holding the bake's files.

The image's packages were installed for one Python X.Y and platform, so the host must run
that same X.Y (found on PATH as `pythonX.Y`, never downloaded) on the same architecture.
Each image gets one env, `<cache dir>/deployer/process-envs/<image id>/`, shared by every
app and version that runs it. It is built in a staging directory beside that path and
renamed into place, so an env that exists is complete; concurrent builders race harmlessly.
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


def host_env(reference: str, reporter: Reporter) -> Path:
    """The venv that runs image `reference`'s packages on this host, built on first use."""
    image = read_bake_layers(reference)
    target = cache_dir() / "deployer" / "process-envs" / image.config_digest.removeprefix("sha256:")
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


def _relocate(staging: Path, target: Path) -> None:
    """The venv module writes its own path into pyvenv.cfg and the activation scripts:
    make them name where the env will be, so `source <env>/bin/activate` works."""
    for path in [staging / "pyvenv.cfg", *(staging / "bin").glob("[Aa]ctivate*")]:
        path.write_text(path.read_text().replace(str(staging), str(target)))
