"""Where BuildKit is: `BAKERY_BUILDKIT=docker` (the Docker Engine's embedded BuildKit, the
default), `tcp://HOST:PORT` or `unix:///PATH` (a standalone buildkitd, as a farm runs it)."""

import os
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from bakery.errors import ImageBakingException, quoted

DEFAULT_DOCKER_SOCKET = "/var/run/docker.sock"


@dataclass(frozen=True)
class BuildKitAddress:
    """`kind` docker: `target` is the engine's unix socket path; buildkitd: a grpc target."""

    kind: Literal["docker", "buildkitd"]
    target: str
    setting: str
    """What the user wrote (or the default), for error messages."""

    def describe(self) -> str:
        if self.kind == "docker":
            return f"the Docker Engine's BuildKit at unix://{self.target}"
        return f"buildkitd at {self.setting}"

    def what_to_start(self) -> str:
        if self.kind == "docker":
            return (
                "start the Docker Engine (dockerd, Debian's docker.io), set DOCKER_HOST to its "
                "socket, or set BAKERY_BUILDKIT=tcp://HOST:PORT to a buildkitd"
            )
        return f"start buildkitd listening on {self.setting}, or set BAKERY_BUILDKIT=docker"


def buildkit_address(value: str | None = None) -> BuildKitAddress:
    """Parse `value` (default: `BAKERY_BUILDKIT`, else `docker`)."""
    setting = (value if value is not None else os.environ.get("BAKERY_BUILDKIT") or "").strip()
    setting = setting or "docker"
    if setting == "docker":
        host = os.environ.get("DOCKER_HOST") or f"unix://{DEFAULT_DOCKER_SOCKET}"
        if not host.startswith("unix://"):
            raise ImageBakingException(
                f"BAKERY_BUILDKIT=docker needs the engine on a unix socket, but DOCKER_HOST is "
                f"{quoted(host)}; point DOCKER_HOST at unix:///PATH, or set "
                "BAKERY_BUILDKIT=tcp://HOST:PORT to a buildkitd."
            )
        return BuildKitAddress("docker", host.removeprefix("unix://"), setting)
    parts = urlsplit(setting)
    if parts.scheme == "tcp" and parts.hostname and parts.port:
        return BuildKitAddress("buildkitd", f"{parts.hostname}:{parts.port}", setting)
    if parts.scheme == "unix" and parts.path:
        return BuildKitAddress("buildkitd", f"unix:{parts.path}", setting)
    raise ImageBakingException(
        f"BAKERY_BUILDKIT={quoted(setting)} is not 'docker', 'tcp://HOST:PORT' or "
        "'unix:///PATH'; fix the variable."
    )
