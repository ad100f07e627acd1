"""Credentials from Docker credential helpers (`credHelpers`, `credsStore`), as the Docker CLI
finds them, used against a real registry that requires Basic auth.

The helper is a small program speaking the credential-helpers protocol (server name on
stdin, JSON on stdout) that records what it was asked: `docker login` with a keychain store
leaves exactly such a program in charge, and no keychain exists on these machines.
"""

import json
import os
import stat
from pathlib import Path

import pytest

from bakery.oci.auth import load_credentials
from bakery.oci.errors import RegistryError
from bakery.oci.registry import RegistryClient

HELPER = """#!/bin/sh
[ "$1" = get ] || exit 2
read -r server
echo "$server" >> "{log}"
case "$server" in
  {known}) printf '{{"Username": "baker", "Secret": "bakery-secret"}}' ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
"""


def install_helper(directory: Path, name: str, known: str, monkeypatch) -> Path:
    """`docker-credential-<name>` on PATH, knowing credentials for `known` only."""
    directory.mkdir(exist_ok=True)
    log = directory / f"{name}.log"
    program = directory / f"docker-credential-{name}"
    program.write_text(HELPER.format(log=log, known=known))
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ['PATH']}")
    return log


def docker_config(directory: Path, monkeypatch, **config) -> None:
    directory.mkdir(exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("DOCKER_CONFIG", str(directory))


def test_a_credential_store_logs_in_to_a_real_registry(
    basic_auth_registry, make_image, tmp_path, monkeypatch
):
    host = basic_auth_registry.host
    asked = install_helper(tmp_path / "bin", "keychain", host, monkeypatch)
    docker_config(tmp_path / "docker", monkeypatch, credsStore="keychain", auths={host: {}})
    layer = make_image().layers[0]
    with RegistryClient(f"{host}/private/app") as client:
        client.upload_blob(layer)
        assert client.blob_exists(layer.digest)
    assert basic_auth_registry.uploads("private/app") == 1
    assert asked.read_text().split() == [host]


def test_a_per_registry_helper_wins_over_the_store_and_the_auths(tmp_path, monkeypatch):
    install_helper(tmp_path / "bin", "special", "ghcr.io", monkeypatch)
    store_log = install_helper(tmp_path / "bin", "store", "nothing", monkeypatch)
    docker_config(
        tmp_path / "docker",
        monkeypatch,
        credHelpers={"ghcr.io": "special"},
        credsStore="store",
        auths={"ghcr.io": {"username": "stale", "password": "stale"}},
    )
    assert load_credentials("ghcr.io") == ("baker", "bakery-secret")
    assert not store_log.exists()  # the store was never asked for ghcr.io
    assert load_credentials("quay.io") is None  # the store knows nothing of it
    assert store_log.read_text().split() == ["quay.io"]


def test_docker_hub_is_asked_for_by_its_login_server_name(tmp_path, monkeypatch):
    asked = install_helper(tmp_path / "bin", "hub", "https://index.docker.io/v1/", monkeypatch)
    docker_config(tmp_path / "docker", monkeypatch, credsStore="hub")
    assert load_credentials("registry-1.docker.io") == ("baker", "bakery-secret")
    assert asked.read_text().split() == ["https://index.docker.io/v1/"]


def test_a_missing_helper_is_named_with_what_to_do(tmp_path, monkeypatch):
    docker_config(tmp_path / "docker", monkeypatch, credHelpers={"ghcr.io": "absent"})
    with pytest.raises(RegistryError, match=r"docker-credential-absent is not on PATH; install"):
        load_credentials("ghcr.io")


def test_a_failing_helper_says_which_and_why(tmp_path, monkeypatch):
    directory = tmp_path / "bin"
    directory.mkdir()
    program = directory / "docker-credential-broken"
    program.write_text("#!/bin/sh\necho 'keychain is locked' >&2\nexit 3\n")
    program.chmod(0o755)
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ['PATH']}")
    docker_config(tmp_path / "docker", monkeypatch, credsStore="broken")
    with pytest.raises(RegistryError, match=r"broken failed for ghcr.io \(exit 3\): keychain"):
        load_credentials("ghcr.io")
