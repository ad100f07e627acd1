"""Image references: `host[:port]/repo[:tag][@sha256:...]`, with Docker Hub's short names."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from bakery.errors import quoted
from bakery.oci.errors import InvalidReference

DOCKER_HUB = "registry-1.docker.io"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}

_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_HOST = re.compile(r"(?:[a-zA-Z0-9.-]+|\[[0-9a-fA-F:]+\])(?::[0-9]+)?")


@dataclass(frozen=True)
class Reference:
    """Where an image lives: registry host, repository, and a tag and/or a digest."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        """Parse like `docker pull` does: no host means Docker Hub (`library/` for one name)."""
        rest, digest = text, None
        if "@" in rest:
            rest, digest = rest.split("@", 1)
            if not DIGEST.fullmatch(digest):
                raise InvalidReference(
                    f"invalid digest {quoted(digest)} in image reference {quoted(text)}"
                )
        registry, path = DOCKER_HUB, rest
        first, slash, remainder = rest.partition("/")
        if slash and ("." in first or ":" in first or first == "localhost"):
            registry, path = first, remainder
            if not _HOST.fullmatch(registry):
                raise InvalidReference(
                    f"invalid registry host {quoted(registry)} in {quoted(text)}"
                )
        tag = None
        last_slash = path.rfind("/")
        colon = path.rfind(":")
        if colon > last_slash:
            path, tag = path[:colon], path[colon + 1 :]
            if not _TAG.fullmatch(tag):
                raise InvalidReference(
                    f"invalid tag {quoted(tag)} in image reference {quoted(text)}"
                )
        if registry in _HUB_ALIASES:
            registry = DOCKER_HUB
            if "/" not in path:
                path = f"library/{path}"
        if not path or not all(_COMPONENT.fullmatch(part) for part in path.split("/")):
            raise InvalidReference(
                f"invalid repository {quoted(path)} in image reference {quoted(text)}: "
                "use lowercase letters, digits and separators (. _ -) between '/'"
            )
        return cls(registry, path, tag, digest)

    @property
    def name(self) -> str:
        """`host/repository`, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def identifier(self) -> str:
        """What to ask the registry for: the digest if pinned, else the tag (`latest`)."""
        return self.digest or self.tag or "latest"

    def with_tag(self, tag: str) -> Reference:
        return replace(self, tag=tag, digest=None)

    def with_digest(self, digest: str) -> Reference:
        return replace(self, tag=None, digest=digest)

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text
