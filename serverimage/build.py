"""Build the server image: base in the engine, wheelhouse context, `docker build`.

The image is named `bakery-server:<digest>`, the digest over the context (Dockerfile and
wheels) and the base's image ID, so an unchanged tree builds once per machine and a changed
one builds anew. The build uses the engine's legacy builder (`DOCKER_BUILDKIT=0`): Debian's
docker.io has no buildx, and nothing in the Dockerfile needs BuildKit.
"""

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from bakery.oci.daemon import DockerEngine
from bakery.oci.model import Image
from serverimage.base import ensure_base
from serverimage.wheelhouse import ROOT, WheelhouseError, make_context

REPOSITORY = "bakery-server"


class ImageBuildError(Exception):
    """`docker build` failed; the message holds the end of its output."""


def build_image(
    *,
    make_base: Callable[[], Image] | None = None,
    root: Path = ROOT,
    tags: tuple[str, ...] = (),
    log: Callable[[str], object] = print,
) -> str:
    """The server image's name, built first unless the engine has it; `tags` are extra
    names given to it."""
    engine = DockerEngine()
    base = ensure_base(make_base, engine)
    with tempfile.TemporaryDirectory(prefix="bakery-server-context-") as scratch:
        context = make_context(Path(scratch), root)
        key = hashlib.sha256(f"{context.digest}\n{engine.image_id(base)}".encode()).hexdigest()
        name = f"{REPOSITORY}:{key[:16]}"
        if engine.image_id(name) is None:
            log(f"building {name} on {base}")
            _docker_build(context.directory, base, name)
        else:
            log(f"{name} is built already")
    for tag in tags:
        subprocess.run(["docker", "tag", name, tag], check=True)
    return name


def _docker_build(context: Path, base: str, name: str) -> None:
    command = ["docker", "build", "--build-arg", f"BASE={base}", "--tag", name, str(context)]
    done = subprocess.run(
        command,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise ImageBuildError(
            f"`{' '.join(command)}` exited {done.returncode}; its output ends:\n"
            f"{done.stdout[-4000:]}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m serverimage", description="Build the Bakery server's image."
    )
    parser.add_argument(
        "--tag", action="append", default=[], help="Also name the image this (repeatable)."
    )
    arguments = parser.parse_args(argv)
    try:
        name = build_image(tags=tuple(arguments.tag), log=lambda line: print(line, file=sys.stderr))
    except (WheelhouseError, ImageBuildError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(name)
    return 0
