"""The test channel itself: real packages that rattler indexes, solves and installs.

Every conda test bakes from this channel, so it is checked on its own first: a plain rattler
install of it on this machine must give a working environment (the ELF finds its library
through the rewritten RUNPATH, the text and binary placeholders hold the prefix, the noarch
entry point runs on the package's python).
"""

import asyncio
import json
import subprocess

from rattler import VirtualPackage, install, solve

from tests.fixtures.conda_channel import PLACEHOLDER


def test_the_channel_is_indexed_in_both_archive_formats(conda_channel):
    linux = json.loads((conda_channel.path / "linux-64" / "repodata.json").read_text())
    noarch = json.loads((conda_channel.path / "noarch" / "repodata.json").read_text())
    aarch64 = json.loads((conda_channel.path / "linux-aarch64" / "repodata.json").read_text())
    names = {record["name"] for record in linux["packages"].values()}
    names |= {record["name"] for record in linux["packages.conda"].values()}
    assert names == {"libdemo", "python", "needs-postlink", "needs-new-glibc", "needs-cuda"}
    assert "libdemo-1.0-bakery_0.tar.bz2" in linux["packages"]
    assert f"python-{conda_channel.python_version}-bakery_0.conda" in linux["packages.conda"]
    assert {r["name"] for r in noarch["packages.conda"].values()} == {"demo-cli"}
    assert {r["name"] for r in noarch["packages"].values()} == {"six"}
    assert [r["subdir"] for r in aarch64["packages"].values()] == ["linux-aarch64"]
    for record in [*linux["packages"].values(), *linux["packages.conda"].values()]:
        assert len(record["sha256"]) == 64 and len(record["md5"]) == 32


def test_rattler_installs_a_working_environment_from_it(conda_channel, tmp_path):
    prefix = tmp_path / "env"

    async def create() -> None:
        records = await solve(
            [conda_channel.url],
            ["python", "libdemo", "demo-cli"],
            platforms=["linux-64", "noarch"],
            virtual_packages=VirtualPackage.detect(),
        )
        await install(records, prefix, cache_dir=tmp_path / "pkgs", show_progress=False)

    asyncio.run(create())
    demo = subprocess.run([prefix / "bin" / "demo"], capture_output=True, text=True, check=True)
    assert demo.stdout == f"libdemo is installed at {prefix}\n"
    assert PLACEHOLDER.encode() not in (prefix / "lib" / "libdemo.so").read_bytes()
    cli = subprocess.run([prefix / "bin" / "demo-cli"], capture_output=True, text=True, check=True)
    assert cli.stdout.startswith(f"demo-cli runs on {prefix}/bin/python")
    version = conda_channel.python_version.rpartition(".")[0]
    check = "import sysconfig; print(sysconfig.get_config_var('prefix'))"
    done = subprocess.run(
        [prefix / "bin" / "python", "-c", check], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == str(prefix)
    assert (prefix / "conda-meta" / f"python-{conda_channel.python_version}-bakery_0.json").exists()
    assert (prefix / "lib" / f"python{version}" / "site-packages" / "demo_cli").is_dir()
