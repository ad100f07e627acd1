"""Registry authentication: anonymous, Basic, and the Bearer token flow Docker Hub & co. use.

Credentials come from the Docker CLI's config (`$DOCKER_CONFIG/config.json`, else
`~/.docker/config.json`), looked up as the Docker CLI does: a per-registry credential helper
(`credHelpers`), else the default credential store (`credsStore`), else the `auths` entries.
So `docker login` is all a user ever has to do, whether it saved to a keychain or the file.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import shutil
import subprocess
from collections.abc import Generator
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from bakery.oci.errors import RegistryError
from bakery.oci.reference import DOCKER_HUB

Credentials = tuple[str, str]

_HUB_KEYS = {"index.docker.io", "docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
_HUB_SERVER = "https://index.docker.io/v1/"
"""The server name `docker login` gives Docker Hub, in `auths` and to credential helpers."""
_HELPER_TIMEOUT = 30
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


def docker_config_path() -> Path:
    """Where the Docker CLI keeps `auths`; `DOCKER_CONFIG` names the directory."""
    directory = os.environ.get("DOCKER_CONFIG")
    return Path(directory) / "config.json" if directory else Path.home() / ".docker/config.json"


def _host_of(key: str) -> str:
    """`https://index.docker.io/v1/` → `index.docker.io`; `host:5000` stays as is."""
    return urlsplit(key if "://" in key else f"//{key}").netloc.lower()


def load_credentials(registry: str) -> Credentials | None:
    """Username and password for `registry` from the Docker config, if it has any."""
    path = docker_config_path()
    try:
        config = json.loads(path.read_text())
        if not isinstance(config, dict):
            raise ValueError("not a JSON object")
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise RegistryError(
            f"cannot read registry credentials from {path}: {exc}; "
            "fix or remove the file, or point DOCKER_CONFIG at another directory"
        ) from exc
    wanted = _HUB_KEYS if registry == DOCKER_HUB else {registry.lower()}
    helpers = config.get("credHelpers") or {}
    helper = next((name for key, name in helpers.items() if _host_of(key) in wanted), None)
    helper = helper or config.get("credsStore")
    if helper:
        return _from_helper(helper, _HUB_SERVER if registry == DOCKER_HUB else registry)
    return _from_auths(config.get("auths") or {}, wanted, path)


def _from_auths(auths: dict, wanted: set[str], path: Path) -> Credentials | None:
    """The `auths` entry `docker login` writes when no credential store is configured."""
    for key, entry in auths.items():
        if _host_of(key) not in wanted or not isinstance(entry, dict):
            continue
        if entry.get("username") and entry.get("password"):
            return entry["username"], entry["password"]
        if entry.get("auth"):
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise RegistryError(
                    f"the 'auth' entry for {key} in {path} is not base64 of 'user:password'; "
                    "run `docker login` again"
                ) from exc
            return user, password
    return None


def _from_helper(helper: str, server: str) -> Credentials | None:
    """Ask `docker-credential-<helper> get` for `server`, as the Docker CLI does (the
    credential-helpers protocol: server name on stdin, JSON Username/Secret on stdout)."""
    program = f"docker-credential-{helper}"
    if shutil.which(program) is None:
        raise RegistryError(
            f"{docker_config_path()} names the credential helper {helper!r}, but {program} is "
            "not on PATH; install it, or remove the helper from the Docker config"
        )
    try:
        result = subprocess.run(
            [program, "get"],
            input=server,
            capture_output=True,
            text=True,
            timeout=_HELPER_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RegistryError(f"the credential helper {program} failed for {server}: {exc}") from exc
    if result.returncode != 0:
        if "credentials not found" in (result.stdout + result.stderr).lower():
            return None
        output = (result.stderr or result.stdout).strip()[:200]
        raise RegistryError(
            f"the credential helper {program} failed for {server} (exit {result.returncode}): "
            f"{output}; run `docker login {server}` again"
        )
    try:
        answer = json.loads(result.stdout)
        username, secret = answer["Username"], answer["Secret"]
    except (ValueError, KeyError, TypeError) as exc:
        raise RegistryError(
            f"the credential helper {program} answered {server} with no Username and Secret"
        ) from exc
    if username == "<token>":
        raise RegistryError(
            f"the credential helper {program} holds an identity token for {server}, which "
            "bakery cannot use; `docker login` with a password or an access token instead"
        )
    return username, secret


def _basic_header(credentials: Credentials) -> str:
    return "Basic " + base64.b64encode(":".join(credentials).encode()).decode()


class RegistryAuth(httpx.Auth):
    """Answers 401 challenges: Basic with stored credentials, or a Bearer token for the scope.

    The last good Authorization header is reused, so only the first request to a new scope
    pays for a challenge round trip.
    """

    def __init__(self, registry: str, credentials: Credentials | None) -> None:
        self.registry = registry
        self.credentials = credentials
        self._header: str | None = None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._header:
            request.headers["Authorization"] = self._header
        response = yield request
        if response.status_code != 401:
            return
        challenge = response.headers.get("WWW-Authenticate", "")
        scheme, _, params_text = challenge.partition(" ")
        params = dict(_CHALLENGE_PARAM.findall(params_text))
        if scheme.lower() == "basic":
            if self.credentials is None:
                return
            header = _basic_header(self.credentials)
        elif scheme.lower() == "bearer" and "realm" in params:
            token_response = yield self._token_request(params)
            header = "Bearer " + self._token(token_response)
        else:
            return
        if header == request.headers.get("Authorization"):
            return  # this very answer was refused: let the caller report the 401
        self._header = header
        request.headers["Authorization"] = header
        yield request

    def _token_request(self, params: dict[str, str]) -> httpx.Request:
        query: list[tuple[str, str | int | float | bool | None]] = []
        if "service" in params:
            query.append(("service", params["service"]))
        query += [("scope", scope) for scope in params.get("scope", "").split() if scope]
        headers = {"Authorization": _basic_header(self.credentials)} if self.credentials else {}
        return httpx.Request("GET", params["realm"], params=query, headers=headers)

    def _token(self, response: httpx.Response) -> str:
        response.read()
        if response.status_code != 200:
            raise RegistryError(
                f"registry {self.registry}: token service {response.request.url.host} refused "
                f"a token ({response.status_code}); check the credentials for {self.registry} "
                f"in {docker_config_path()} (`docker login {self.registry}`)"
            )
        try:
            body = response.json()
            return body.get("token") or body["access_token"]
        except (ValueError, KeyError) as exc:
            raise RegistryError(
                f"registry {self.registry}: token service sent no token; "
                "is the realm in its WWW-Authenticate challenge a token endpoint?"
            ) from exc
