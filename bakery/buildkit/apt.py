"""`system_packages`: Debian packages installed with apt in BuildKit, their files one layer.

The exec runs apt on the bake's base (with network: apt verifies what it fetches against the
base's keyring), then lists every file whose inode changed after the install began (ctime,
which dpkg cannot backdate the way it keeps package mtimes) and tars them into the exported
mount. The host turns that tar into one deterministic layer, cached by (base digest, the
sorted package list, platform, builder version): the base digest pins the base's apt sources,
since they are files of the base. Files apt removed (rare on install) are not recorded.
"""

import json
import re
import shlex
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

import blake3

from bakery.buildkit.address import buildkit_address
from bakery.buildkit.client import BuildKit
from bakery.buildkit.llb import SCRATCH, Graph, Mount, Output
from bakery.buildkit.run import export
from bakery.errors import ImageBakingException
from bakery.layers.cache import cached_layer, store_layer
from bakery.layers.model import BuiltLayer
from bakery.layers.tarball import LayerEntry, LayerFile, LayerSymlink
from bakery.spec import BUILDER_VERSION, Spec
from stagekit.cancel import CancelToken
from stagekit.progress import Reporter

APT_LAYER_FORMAT = 1
NOT_DEBIAN = 97
"""Exit code of the install script on a base without apt-get and /etc/debian_version."""
_UNKNOWN = re.compile(
    r"Unable to locate package (\S+)|Package '?(\S+?)'? has no installation candidate"
)
_SKIPPED = (
    "/proc", "/sys", "/dev", "/run", "/tmp", "/var/tmp", "/out", "/var/lib/apt/lists",
    "/var/cache", "/var/log", "/etc/resolv.conf", "/etc/hosts", "/etc/hostname",
)  # fmt: skip
"""What the install leaves that is not part of the packages: mounts, apt's caches, logs."""


def apt_layer_key(spec: Spec) -> str:
    fields = [
        APT_LAYER_FORMAT,
        spec.base_image_digest,
        sorted(spec.system_packages),
        spec.platform,
        BUILDER_VERSION,
    ]
    return blake3.blake3(json.dumps(fields).encode()).hexdigest()


def install_script(packages: tuple[str, ...]) -> str:
    """The shell the exec runs: check for apt, install, tar what changed into /out."""
    names = " ".join(shlex.quote(name) for name in packages)
    pruned = " -o ".join(f"-path {path}" for path in _SKIPPED)
    return "\n".join(
        [
            "set -eu",
            "if ! command -v apt-get >/dev/null || [ ! -e /etc/debian_version ]; then",
            "  echo 'bakery: this base has no apt-get or /etc/debian_version' >&2",
            f"  exit {NOT_DEBIAN}",
            "fi",
            "marker=/tmp/.bakery-apt-start; : > $marker",
            "export DEBIAN_FRONTEND=noninteractive",
            "apt-get update -qq",
            f"apt-get install -y -qq --no-install-recommends {names}",
            f"find / -xdev \\( {pruned} \\) -prune -o ! -type d -cnewer $marker -print0"
            " > /tmp/.bakery-added",
            "tar -C / --null --no-recursion -cf /out/added.tar -T /tmp/.bakery-added",
            "echo \"bakery: $(tr -cd '\\000' < /tmp/.bakery-added | wc -c) files added\"",
        ]
    )


def build_apt_layer(
    spec: Spec, base_reference: str, cache: Path, reporter: Reporter, cancel: CancelToken
) -> BuiltLayer:
    """The (cached) layer of the files `spec.system_packages` add to the base."""
    key = apt_layer_key(spec)
    if (layer := cached_layer(cache, key, spec.compression)) is not None:
        reporter.info(f"System packages: using the layer built earlier ({layer.digest[:19]})")
        return layer
    names = spec.system_packages
    reporter.info(f"Installing system packages with apt in BuildKit: {', '.join(names)}")

    def make_graph(_session: str) -> tuple[Graph, Output]:
        graph = Graph(spec.platform)
        outputs = graph.exec(
            ["/bin/sh", "-c", install_script(names)],
            mounts=[Mount("/", graph.image(base_reference)), Mount("/out", SCRATCH, output=True)],
            env={"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
            name=f"apt-get install {' '.join(names)}",
            network="sandbox",
        )
        return graph, outputs["/out"]

    with tempfile.TemporaryDirectory(prefix="bakery-apt-") as scratch:
        out = Path(scratch) / "out"
        with BuildKit(buildkit_address()) as client:
            try:
                export(
                    client,
                    make_graph,
                    context=None,
                    destination=out,
                    reporter=reporter,
                    cancel=cancel,
                    what=f"the system packages {', '.join(names)}",
                )
            except ImageBakingException as error:
                raise _explain(error, names) from None
        files = _entries(out / "added.tar", Path(scratch) / "files")
        source = f"apt: {' '.join(names)}"
        return store_layer(cache, key, source, files, spec.compression)


def _explain(error: ImageBakingException, names: tuple[str, ...]) -> ImageBakingException:
    """A failed install as what the user must change: an unknown package, a non-Debian base."""
    text = error.message
    unknown = sorted({a or b for a, b in _UNKNOWN.findall(text)})
    if unknown:
        return ImageBakingException(
            f"apt knows no package {', '.join(unknown)} (system_packages: {', '.join(names)}) "
            f"in the base's apt sources; check the spelling (apt-cache search NAME on a "
            f"Debian machine) and the base's Debian release.\n{text}",
            details=error.details,
        )
    if f"exit code: {NOT_DEBIAN}" in text:
        return ImageBakingException(
            "system_packages need a Debian-based base image with apt-get; this base has "
            "none. Bake on a Debian or Ubuntu base, or drop system_packages.",
            details=error.details,
        )
    return error


def _entries(tar: Path, scratch: Path) -> dict[str, LayerEntry]:
    """The tar's files as layer entries (regular files staged under `scratch`); directories
    come from the layer writer, devices and fifos are not kept."""
    scratch.mkdir(parents=True)
    files: dict[str, LayerEntry] = {}
    with tarfile.open(tar) as archive:
        for index, member in enumerate(archive):
            path = PurePosixPath(member.name)
            if path.is_absolute() or ".." in path.parts or not path.parts:
                raise ImageBakingException(f"apt's output names an unsafe path {member.name!r}.")
            name = path.as_posix()
            if member.issym():
                files[name] = LayerSymlink(member.linkname)
            elif member.islnk():
                linked = files.get(PurePosixPath(member.linkname).as_posix())
                if isinstance(linked, LayerFile):
                    files[name] = LayerFile(member.mode & 0o7777, linked.size, linked.content)
            elif member.isfile():
                staged = scratch / str(index)
                source = archive.extractfile(member)
                assert source is not None
                with staged.open("wb") as sink:
                    while chunk := source.read(1 << 20):
                        sink.write(chunk)
                files[name] = LayerFile(member.mode & 0o7777, member.size, staged)
    return files
