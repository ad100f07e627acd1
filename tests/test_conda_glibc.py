"""The base's glibc as the conda solve assumes it: read from glibc's `ldd` script or its
`libc.so.6`, whichever the newest layer holding one of them has first."""

import gzip
import io
import tarfile
from pathlib import Path

from bakery.conda.virtual import _layer_glibc
from bakery.oci.model import OCI_LAYER_GZIP, Layer

DEBIAN_LDD = b"#! /bin/bash\nTEXTDOMAIN=libc\n    echo 'ldd (Debian GLIBC 2.36-9+deb12u14) 2.36'\n"
RHEL_LDD = b'#! /usr/bin/bash\n    echo $"ldd (GNU libc) 2.34"\n'
LIBC = b"\x7fELF...GNU C Library (GNU libc) stable release version 2.39.\n..."


def layer(directory: Path, entries: list[tuple[str, bytes]]) -> Layer:
    """A gzip layer of `entries` (regular files), in that order."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path = directory / f"layer-{len(list(directory.iterdir()))}.tar.gz"
    path.write_bytes(gzip.compress(out.getvalue()))
    return Layer("sha256:" + "0" * 64, path.stat().st_size, OCI_LAYER_GZIP, path, "")


def test_ldd_comes_first_and_says_the_version(tmp_path):
    debian = [("usr/bin/ldd", DEBIAN_LDD), ("usr/lib/x86_64-linux-gnu/libc.so.6", LIBC)]
    assert _layer_glibc(layer(tmp_path, debian)) == "2.36"
    assert _layer_glibc(layer(tmp_path, [("./usr/bin/ldd", RHEL_LDD)])) == "2.34"


def test_libc_decides_without_glibcs_ldd(tmp_path):
    other_ldd = [("usr/bin/ldd", b'#!/bin/sh\nexec /lib/ld-musl-x86_64.so.1 --list "$@"\n')]
    distroless = [("usr/lib/x86_64-linux-gnu/libc.so.6", LIBC)]
    assert _layer_glibc(layer(tmp_path, [*other_ldd, *distroless])) == "2.39"
    assert _layer_glibc(layer(tmp_path, distroless)) == "2.39"
    # An ldd elsewhere (a toolchain's sysroot) is not the base's.
    sysroot = [("opt/x86_64-conda-linux-gnu/sysroot/usr/bin/ldd", RHEL_LDD)]
    assert _layer_glibc(layer(tmp_path, sysroot)) is None
    assert _layer_glibc(layer(tmp_path, [("etc/os-release", b"ID=alpine\n")])) is None
