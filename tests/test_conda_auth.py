"""Conda channels behind HTTP auth: the test channel served by a server that answers 401 to
wrong or missing credentials, baked from with credentials in BAKERY_CONDA_AUTH (a bearer
token) or rattler's credentials file (basic auth), and no credential anywhere a bake writes
or says."""

import base64
import gzip
import json
import logging
from pathlib import Path

import pytest

from bakery.bake import bake_image
from bakery.conda.auth import Credentials, configured_credentials
from bakery.conda.layers import staging_removed
from bakery.errors import ImageBakingException
from bakery.inspect import read_lock, read_manifest
from bakery.locking import lock_request
from bakery.request import BakeRequest
from stagekit.errors import ErrorKind
from tests.fixtures.conda_channel import PRIVATE_PASSWORD, PRIVATE_TOKEN, PRIVATE_USER

SPECS = {"python": "", "libdemo": "", "demo-cli": ""}
BASIC = base64.b64encode(f"{PRIVATE_USER}:{PRIVATE_PASSWORD}".encode()).decode()
SECRETS = (PRIVATE_TOKEN, PRIVATE_PASSWORD, BASIC)


def bearer(token: str = PRIVATE_TOKEN) -> str:
    return json.dumps({"127.0.0.1": {"BearerToken": token}})


def assert_no_secret(text: str | bytes, where: str) -> None:
    data = text.encode() if isinstance(text, str) else text
    for secret in SECRETS:
        assert secret.encode() not in data, f"a credential is in {where}"


def assert_no_secret_under(root: Path) -> None:
    """No file under `root` (gzip layers inflated) holds a credential."""
    staging_removed()  # the bake removes its staged files after it returns
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            assert_no_secret(data, str(path))


def test_a_bearer_token_from_bakery_conda_auth(
    bake_env, private_conda_channel, monkeypatch, caplog
):
    monkeypatch.setenv("BAKERY_CONDA_AUTH", bearer())
    logs: list[str] = []
    with caplog.at_level(logging.DEBUG):
        baked = bake_image(conda=SPECS, channels=[private_conda_channel.url], logger=logs.append)
    lock = read_lock(baked.image)
    assert [p.name for p in lock.conda] == ["demo-cli", "libdemo", "python"]
    assert lock.channels == (private_conda_channel.url,)
    assert all(p.url.startswith(private_conda_channel.url + "/") for p in lock.conda)
    # Repodata and packages alike were fetched with the token.
    package_requests = [p for p in private_conda_channel.served if p.endswith(".tar.bz2")]
    assert package_requests and f"Bearer {PRIVATE_TOKEN}" in private_conda_channel.authorization
    # Nowhere a credential: spec, lock, manifest and labels, logs, cache and image files.
    locked = lock_request(BakeRequest(conda=SPECS, channels=[private_conda_channel.url]))
    assert_no_secret(repr(locked.spec), "the spec")
    assert_no_secret(locked.text, "the conda-lock file")
    assert_no_secret(lock.to_json(), "the lock")
    assert_no_secret(json.dumps(read_manifest(baked.image)), "the manifest")
    assert_no_secret("\n".join(logs), "the bake's log")
    assert_no_secret(caplog.text, "Python logging")
    assert_no_secret_under(bake_env)


def test_basic_auth_from_rattlers_credentials_file(
    bake_env, private_conda_channel, monkeypatch, tmp_path_factory
):
    auth_file = tmp_path_factory.mktemp("rattler-auth") / "credentials.json"
    basic = {"BasicHTTP": {"username": PRIVATE_USER, "password": PRIVATE_PASSWORD}}
    auth_file.write_text(json.dumps({"127.0.0.1": basic}))
    monkeypatch.setenv("RATTLER_AUTH_FILE", str(auth_file))
    monkeypatch.delenv("BAKERY_CONDA_AUTH", raising=False)
    baked = bake_image(conda={"libdemo": ""}, channels=[private_conda_channel.url])
    (package,) = read_lock(baked.image).conda
    assert package.url.startswith(private_conda_channel.url)
    assert f"Basic {BASIC}" in private_conda_channel.authorization
    assert_no_secret_under(bake_env)


def test_missing_credentials_name_the_channel_and_what_to_set(
    bake_env, private_conda_channel, monkeypatch
):
    monkeypatch.delenv("BAKERY_CONDA_AUTH", raising=False)
    monkeypatch.delenv("RATTLER_AUTH_FILE", raising=False)
    with pytest.raises(ImageBakingException) as caught:
        bake_image(conda={"libdemo": ""}, channels=[private_conda_channel.url])
    error = caught.value
    assert error.kind is ErrorKind.INVALID_INPUT
    assert f"The conda channel {private_conda_channel.url} refused access" in error.message
    assert "401 Unauthorized" in error.message
    assert "no credentials for host 127.0.0.1 were given" in error.message
    assert "BAKERY_CONDA_AUTH" in error.message and "RATTLER_AUTH_FILE" in error.message


def test_wrong_credentials_are_refused_without_being_shown(
    bake_env, private_conda_channel, monkeypatch
):
    wrong = "not-the-token-" + PRIVATE_TOKEN[::-1]
    monkeypatch.setenv("BAKERY_CONDA_AUTH", bearer(wrong))
    with pytest.raises(ImageBakingException) as caught:
        bake_image(conda={"libdemo": ""}, channels=[private_conda_channel.url])
    error = caught.value
    assert "refused the credentials BAKERY_CONDA_AUTH gives for host 127.0.0.1" in error.message
    assert f"Bearer {wrong}" in private_conda_channel.authorization  # it was sent...
    for text in (error.message, error.details or "", str(error)):
        assert wrong not in text  # ...and is never shown


def test_a_lockfile_bake_needs_the_credentials_for_its_packages(
    bake_env, private_conda_channel, monkeypatch, tmp_path
):
    monkeypatch.setenv("BAKERY_CONDA_AUTH", bearer())
    locked = lock_request(BakeRequest(conda={"libdemo": ""}, channels=[private_conda_channel.url]))
    lockfile = tmp_path / "conda-lock.yml"
    lockfile.write_text(locked.text)
    monkeypatch.delenv("BAKERY_CONDA_AUTH")
    # Nothing is solved from a lockfile: the package download is what is refused.
    with pytest.raises(ImageBakingException) as caught:
        bake_image(conda_lock=lockfile)
    assert caught.value.kind is ErrorKind.INVALID_INPUT
    assert f"The conda channel {private_conda_channel.url} refused access" in caught.value.message
    monkeypatch.setenv("BAKERY_CONDA_AUTH", bearer())
    assert read_lock(bake_image(conda_lock=lockfile).image).conda == locked.lock.conda


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("{not json", "it is not JSON"),
        ('["127.0.0.1"]', "not a JSON object"),
        ('{"https://mirror.test": {"BearerToken": "s3cret-value"}}', "is not a host name"),
        ('{"mirror.test": {"Token": "s3cret-value"}}', "the entry for mirror.test is not"),
        ('{"mirror.test": {"BasicHTTP": {"username": "u"}}}', "the entry for mirror.test"),
    ],
)
def test_a_malformed_bakery_conda_auth_is_refused_without_its_secrets(monkeypatch, value, match):
    monkeypatch.setenv("BAKERY_CONDA_AUTH", value)
    with pytest.raises(ImageBakingException, match=match) as caught:
        configured_credentials()
    assert "s3cret-value" not in caught.value.message


def test_hosts_match_exactly_or_by_wildcard_and_secrets_are_redacted(monkeypatch):
    monkeypatch.setenv(
        "BAKERY_CONDA_AUTH",
        json.dumps(
            {
                "mirror.test": {"BearerToken": "tok-1"},
                "*.corp.test": {"BasicHTTP": {"username": "u", "password": "pw-2"}},
            }
        ),
    )
    credentials = configured_credentials()
    assert credentials.header_for("mirror.test") == "Bearer tok-1"
    assert credentials.header_for("conda.mirror.test") is None
    basic = "Basic " + base64.b64encode(b"u:pw-2").decode()
    assert credentials.header_for("a.b.corp.test") == basic
    text = "GET https://u:pw-2@x.corp.test/t/tk-9/linux-64/repodata.json with tok-1"
    redacted = credentials.redact(text)
    assert redacted == "GET https://***@x.corp.test/t/***/linux-64/repodata.json with ***"
    assert Credentials().redact("nothing to hide") == "nothing to hide"


def test_bakery_conda_auth_wins_over_rattlers_file_for_the_same_host(
    bake_env, private_conda_channel, monkeypatch, tmp_path_factory
):
    auth_file = tmp_path_factory.mktemp("rattler-auth") / "credentials.json"
    stale = {"BasicHTTP": {"username": PRIVATE_USER, "password": "an-old-password"}}
    auth_file.write_text(json.dumps({"127.0.0.1": stale}))
    monkeypatch.setenv("RATTLER_AUTH_FILE", str(auth_file))
    monkeypatch.setenv("BAKERY_CONDA_AUTH", bearer())
    locked = lock_request(BakeRequest(conda={"six": ""}, channels=[private_conda_channel.url]))
    assert [p.name for p in locked.lock.conda] == ["python", "six"]
