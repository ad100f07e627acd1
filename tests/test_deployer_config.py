"""AppConfig, quantities and the exception hierarchy: every validation rule, valid and invalid."""

import pytest
from pydantic import ValidationError

from deployer.exceptions import (
    AppConcurrentUpgradeException,
    AppConfigError,
    AppCrashLoopException,
    AppCreationFailedException,
    AppDeletedDuringDeploymentException,
    AppDeploymentException,
    AppNotFoundException,
    AppReadinessException,
    AppUpgradeInProgressException,
    BackendUnhealthyException,
    DeployerException,
)
from deployer.model.auth_types import DEFAULT_RPM
from deployer.model.config import AppConfig
from deployer.model.quantities import Quantity, parse_bytes, parse_cpu, parse_gpu
from packager import CodePackagingException, PackagedCode

PKG = PackagedCode("file:///tmp/store/code/abc.tar.gz", "abc")
BASE = {"name": "my-app", "port": 8000, "code_package": PKG}

# --- quantities ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "millicores"),
    [("1", 1000), ("0.5", 500), ("500m", 500), ("1.5", 1500), (".25", 250), (2, 2000), (0.5, 500)],
)
def test_cpu_quantities(value: object, millicores: int) -> None:
    assert parse_cpu(value, "resources.cpu") == Quantity(str(value), millicores)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("1x", "not a CPU quantity"),
        ("-1", "not a CPU quantity"),
        ("", "not a CPU quantity"),
        ("1 core", "not a CPU quantity"),
        ("0.5m", "finer than one millicore"),
        ("0.0001", "finer than one millicore"),
        ("0", "more than zero"),
        ("0m", "more than zero"),
        (True, "got bool"),
        ([1], "got list"),
    ],
)
def test_cpu_quantities_invalid(value: object, fragment: str) -> None:
    with pytest.raises(AppConfigError, match=fragment) as caught:
        parse_cpu(value, "resources.cpu")
    assert str(caught.value).startswith("resources.cpu: ")
    assert "e.g." in str(caught.value)


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("512Mi", 512 * 2**20),
        ("2Gi", 2 * 2**30),
        ("2048Mi", 2 * 2**30),
        ("1.5Gi", 3 * 2**29),
        ("1G", 10**9),
        ("1k", 1000),
        ("1Ki", 1024),
        ("1000000", 1_000_000),
        (4096, 4096),
        ("1Ti", 2**40),
    ],
)
def test_byte_quantities(value: object, size: int) -> None:
    quantity = parse_bytes(value, "resources.memory")
    assert quantity.value == size
    assert quantity.text == str(value) == str(quantity)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("512MB", "write 'Mi'"),
        ("2GB", "write 'Gi'"),
        ("1kb", "write 'k'"),
        ("512m", "write 'Mi'"),
        ("512mi", "write 'Mi'"),
        ("Gi", "not a byte quantity"),
        ("-1Gi", "not a byte quantity"),
        ("1.5", "not a whole number of bytes"),
        ("0", "more than zero"),
        ("0Gi", "more than zero"),
        (1.5, "got float"),
        (None, "got NoneType"),
    ],
)
def test_byte_quantities_invalid(value: object, fragment: str) -> None:
    with pytest.raises(AppConfigError, match=fragment) as caught:
        parse_bytes(value, "resources.memory")
    assert str(caught.value).startswith("resources.memory: ")


@pytest.mark.parametrize(("value", "count"), [("0", 0), ("1", 1), (2, 2), ("8", 8)])
def test_gpu_quantities(value: object, count: int) -> None:
    assert parse_gpu(value).value == count


@pytest.mark.parametrize("value", ["1.5", "-1", "one", "1m", "", True, 0.5])
def test_gpu_quantities_invalid(value: object) -> None:
    with pytest.raises(AppConfigError, match="gpu: "):
        parse_gpu(value)


# --- AppConfig: valid configurations --------------------------------------------------------


def test_defaults_follow_the_reference() -> None:
    config = AppConfig.from_kwargs(**BASE)
    assert (config.replicas.min, config.replicas.max, config.replicas.scaling_policy) == (
        1,
        1,
        None,
    )
    assert config.replicas.fixed == 1
    assert (config.auth.type, config.auth.public) == ("Browser", True)
    assert config.force_upgrade is False
    assert config.generate_static_url is False
    assert config.resources.cpu is None
    assert config.tags == {}
    assert config.environment == {}
    assert config.commands == ()


def test_reference_example_with_every_parameter() -> None:
    config = AppConfig.from_kwargs(
        name="my-flask-app",
        port=8000,
        description="demo",
        app_type="flask",
        image="127.0.0.1:5000/bakery:spec-abc",
        tags=[{"env": "staging"}, {"team": "ml"}],
        secrets=["my-api-keys"],
        compute_pools=["default"],
        environment={"DEBUG": "false", "LOG_LEVEL": "info"},
        commands=["python server.py"],
        resources={
            "cpu": "1",
            "memory": "2048Mi",
            "gpu": "0",
            "disk": "10Gi",
            "shared_memory": "1Gi",
        },
        auth={"type": "API", "public": False},
        replicas={"min": 1, "max": 3},
        code_package=PKG,
        force_upgrade=True,
        persistence="none",
        project="recommendations",
        branch="main",
        models=[{"name": "bert"}],
        data=["s3://bucket/data"],
        generate_static_url=True,
        depends_on=["backend-api"],
    )
    assert config.replicas.scaling_policy is not None
    assert config.replicas.scaling_policy.rpm == DEFAULT_RPM == 60
    assert config.resources.memory == Quantity("2048Mi", 2 * 2**30)
    assert config.tags == {"env": "staging", "team": "ml"}
    assert config.code_package == PKG
    assert config.depends_on == ("backend-api",)


@pytest.mark.parametrize(
    ("replicas", "expected"),
    [
        ({}, (1, 1, None)),
        ({"fixed": 3}, (3, 3, None)),
        ({"min": 1, "max": 3}, (1, 3, 60)),
        ({"min": 2, "max": 2}, (2, 2, None)),
        ({"min": 2}, (2, 2, None)),
        ({"max": 4}, (1, 4, 60)),
        ({"min": 0, "max": 2}, (0, 2, 60)),
        ({"min": 0}, (0, 1, 60)),
        ({"min": 1, "max": 3, "scaling_policy": {"rpm": 120}}, (1, 3, 120)),
        ({"min": 1, "max": 3, "scaling_policy": {}}, (1, 3, 60)),
    ],
)
def test_replicas_are_normalized(replicas: dict, expected: tuple) -> None:
    config = AppConfig.from_kwargs(**BASE, replicas=replicas)
    policy = config.replicas.scaling_policy
    rpm = policy.rpm if policy is not None else None
    assert (config.replicas.min, config.replicas.max, rpm) == expected


@pytest.mark.parametrize(
    ("kwargs", "check"),
    [
        ({"tags": {"env": "prod"}}, lambda c: c.tags == {"env": "prod"}),
        ({"tags": [{"b": "2", "a": "1"}]}, lambda c: list(c.tags) == ["a", "b"]),
        ({"tags": [{"env": "prod"}, {"env": "prod"}]}, lambda c: c.tags == {"env": "prod"}),
        ({"tags": [{"example.com/owner": "me"}]}, lambda c: "example.com/owner" in c.tags),
        ({"auth": {"type": "api"}}, lambda c: c.auth.type == "API"),
        ({"auth": {"type": "browserandapi"}}, lambda c: c.auth.type == "BrowserAndApi"),
        ({"port": 80}, lambda c: c.port == 80),
        ({"port": 65535}, lambda c: c.port == 65535),
        ({"name": "a"}, lambda c: c.name == "a"),
        ({"name": "a" * 63}, lambda c: len(c.name) == 63),
        ({"environment": {"PORT": "8000"}}, lambda c: c.environment["PORT"] == "8000"),
        ({"commands": ("python a.py",)}, lambda c: c.commands == ("python a.py",)),
        ({"code_package": ("s3://b/k.tgz", "k")}, lambda c: isinstance(c.code_package, tuple)),
        ({"resources": {"cpu": 0.5}}, lambda c: c.resources.cpu.value == 500),
        ({"description": None, "replicas": None}, lambda c: c.replicas.min == 1),
        ({"secrets": ["db.creds", "api-keys"]}, lambda c: c.secrets == ("db.creds", "api-keys")),
    ],
)
def test_valid_configs(kwargs: dict, check) -> None:
    assert check(AppConfig.from_kwargs(**{**BASE, **kwargs}))


def test_a_tuple_code_package_equals_the_namedtuple() -> None:
    config = AppConfig.from_kwargs(**{**BASE, "code_package": (PKG.url, PKG.key)})
    assert type(config.code_package) is PackagedCode
    assert config.code_package == PKG
    assert config.required_code_package() == PKG


# --- AppConfig: invalid configurations ------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        (
            {"replicas": {"fixed": 2, "min": 1}},
            "replicas: fixed cannot be combined with min or max",
        ),
        ({"replicas": {"fixed": 2, "max": 3}}, "replicas: fixed cannot be combined"),
        ({"replicas": {"fixed": 0}}, "fixed must be at least 1"),
        ({"replicas": {"min": 3, "max": 2}}, "need 0 <= min <= max"),
        ({"replicas": {"max": 0}}, "max >= 1"),
        ({"replicas": {"min": -1}}, "min must be a whole number >= 0"),
        ({"replicas": {"min": True}}, "min must be a whole number"),
        ({"replicas": {"min": 1.5, "max": 2}}, "min must be a whole number"),
        ({"replicas": {"fixed": 2, "scaling_policy": {"rpm": 10}}}, "only when min != max"),
        (
            {"replicas": {"min": 1, "max": 3, "scaling_policy": {"rpm": 0}}},
            "rpm must be at least 1",
        ),
        ({"replicas": {"min": 1, "max": 3, "scaling_policy": {"rps": 1}}}, "did you mean 'rpm'"),
        ({"replicas": {"minimum": 1}}, "unknown key(s) ['minimum']"),
        ({"replicas": 3}, "replicas: must be a mapping"),
        ({"name": "My_App"}, "e.g. 'my-app'"),
        ({"name": "1app"}, "start with a letter"),
        ({"name": "app-"}, "end with a letter or digit"),
        ({"name": "a" * 64}, "at most 63 characters"),
        ({"name": ""}, "not a valid app name"),
        ({"name": 5}, "name: app name must be a string"),
        ({"port": 0}, "port: 0 is out of range"),
        ({"port": 65536}, "port: 65536 is out of range"),
        ({"port": "8000"}, "port: must be a whole TCP port number"),
        ({"port": True}, "port: must be a whole TCP port number"),
        ({"tags": ["env=prod"]}, "each tag must be a {key: value} mapping"),
        ({"tags": "env"}, "tags: must be a list of {key: value} mappings"),
        ({"tags": [{"env": "a"}, {"env": "b"}]}, "tag 'env' is given twice"),
        ({"tags": [{"bad key": "x"}]}, "not usable as a label key"),
        ({"tags": [{"v": 2}]}, "quote it"),
        ({"tags": [{"v": "x" * 64}]}, "not usable as a label"),
        ({"environment": {"1X": "a"}}, "'1X' is not a variable name"),
        ({"environment": {"DEBUG": False}}, 'quote it, e.g. DEBUG: "false"'),
        ({"environment": {"N": 3}}, 'quote it, e.g. N: "3"'),
        ({"environment": {"EMPTY": None}}, "EMPTY has no value"),
        ({"environment": ["A=1"]}, "environment: must be a mapping"),
        ({"environment": {"PORT": "9000"}}, "environment.PORT: the deployer sets PORT=8000"),
        ({"commands": "python server.py"}, "use ['python server.py']"),
        ({"commands": ["python a.py", ""]}, "non-empty string"),
        ({"secrets": "my-keys"}, "not a single string"),
        ({"secrets": ["a", "a"]}, "'a' listed more than once"),
        ({"secrets": ["My_Keys"]}, "secret name 'My_Keys' is invalid"),
        ({"compute_pools": [1]}, "non-empty string"),
        ({"resources": {"cpu": "1x"}}, "resources.cpu: '1x' is not a CPU quantity"),
        ({"resources": {"memory": "2GB"}}, "resources.memory: '2GB'"),
        ({"resources": {"gpu": "0.5"}}, "resources.gpu: '0.5' is not a GPU count"),
        ({"resources": {"disk": "0"}}, "resources.disk: '0' must be more than zero"),
        ({"resources": {"shared_memory": "x"}}, "resources.shared_memory:"),
        ({"resources": {"memroy": "1Gi"}}, "did you mean 'memory'"),
        ({"auth": {"type": "oauth"}}, "use one of Browser, API, BrowserAndApi"),
        ({"auth": {"public": "yes"}}, "auth.public: Input should be a valid boolean"),
        ({"prot": 8000}, "prot: unknown parameter; did you mean 'port'?"),
        ({"depends_on": ["my-app"]}, "cannot depend on itself"),
        ({"depends_on": ["Backend"]}, "not a valid app name in depends_on"),
        ({"depends_on": ["a", "a"]}, "listed more than once"),
        ({"depends_on": "backend"}, "use ['backend']"),
        ({"image": "has space"}, "image: must be an image reference"),
        ({"image": ("img", "/usr/bin/python3")}, "must be an image reference"),
        ({"project": "team/ml"}, "project 'team/ml' is not usable as a label"),
        ({"branch": ""}, "branch is empty"),
        ({"models": "bert"}, "models: must be a list"),
        ({"force_upgrade": "yes"}, "force_upgrade: Input should be a valid boolean"),
        ({"description": 3}, "description: Input should be a valid string"),
    ],
)
def test_invalid_configs(kwargs: dict, fragment: str) -> None:
    with pytest.raises(AppConfigError) as caught:
        AppConfig.from_kwargs(**{**BASE, **kwargs})
    assert fragment in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, DeployerException)


def test_missing_required_parameters() -> None:
    with pytest.raises(AppConfigError) as caught:
        AppConfig.from_kwargs()
    assert caught.value.problems == [
        "name: missing; this parameter is required",
        "port: missing; this parameter is required",
    ]


def test_every_bad_field_is_listed_at_once() -> None:
    with pytest.raises(AppConfigError) as caught:
        AppConfig.from_kwargs(
            name="Bad_Name",
            port=0,
            resources={"cpu": "lots"},
            replicas={"fixed": 1, "max": 2},
        )
    fields = [problem.split(":")[0] for problem in caught.value.problems]
    assert fields == ["name", "port", "resources.cpu", "replicas"]
    assert str(caught.value).startswith("invalid configuration for app 'Bad_Name':\n  - name: ")


def test_a_baked_image_gets_a_hint() -> None:
    from bakery import BakedImage

    with pytest.raises(AppConfigError, match=r"pass its \.image"):
        AppConfig.from_kwargs(**BASE, image=BakedImage("img:1", "/usr/bin/python3"))


@pytest.mark.parametrize(
    "code_package",
    [["u", "k"], {"url": "u", "key": "k"}, ("u",), ("u", "k", "x"), ("", "k"), ("u", 1), "s3://x"],
)
def test_code_package_must_be_a_packaged_code(code_package: object) -> None:
    with pytest.raises(CodePackagingException) as caught:
        AppConfig.from_kwargs(name="my-app", port=8000, code_package=code_package)
    assert type(caught.value) is CodePackagingException
    assert "package_code(" in str(caught.value)


def test_a_deploy_needs_a_code_package() -> None:
    config = AppConfig.from_kwargs(name="my-app", port=8000)
    assert config.code_package is None
    with pytest.raises(CodePackagingException, match="has no code_package"):
        config.required_code_package()


# --- digest, replace, immutability ----------------------------------------------------------


def test_config_digest_is_stable_and_canonical() -> None:
    one = AppConfig.from_kwargs(
        **BASE,
        resources={"cpu": "1", "memory": "1Gi"},
        tags=[{"b": "2"}, {"a": "1"}],
        environment={"X": "1", "Y": "2"},
    )
    same = AppConfig.from_kwargs(
        **BASE,
        resources={"memory": "1024Mi", "cpu": "1000m"},
        tags={"a": "1", "b": "2"},
        environment={"Y": "2", "X": "1"},
        force_upgrade=True,
        depends_on=["other"],
    )
    assert one.config_digest == same.config_digest
    assert len(one.config_digest) == 64
    assert one.replace(image="img:2").config_digest != one.config_digest
    assert one.replace(port=8001).config_digest != one.config_digest
    assert one.replace(replicas={"min": 1, "max": 2}).config_digest != one.config_digest


def test_replace_revalidates() -> None:
    config = AppConfig.from_kwargs(**BASE, resources={"cpu": "250m"}, replicas={"fixed": 2})
    changed = config.replace(image="registry/app:2")
    assert changed.image == "registry/app:2"
    assert changed.resources == config.resources
    assert changed.replicas == config.replicas
    with pytest.raises(AppConfigError, match="port: 0 is out of range"):
        config.replace(port=0)


def test_config_is_frozen() -> None:
    config = AppConfig.from_kwargs(**BASE)
    with pytest.raises(ValidationError):
        config.port = 9000  # type: ignore[misc]


# --- exceptions -----------------------------------------------------------------------------


def test_exception_hierarchy_matches_the_reference() -> None:
    after_submission = [
        AppCrashLoopException("id", "w-1", ["boom"]),
        AppReadinessException("id", "timed out"),
        AppUpgradeInProgressException("id", "alice"),
        AppConcurrentUpgradeException("id", "v1", "v2", "bob"),
        AppDeletedDuringDeploymentException("id"),
    ]
    for exc in after_submission:
        assert isinstance(exc, AppDeploymentException)
        assert exc.app_id == "id"
        assert exc.deployed_app is None
    outside = [
        AppCreationFailedException("my-app", 409, "conflict"),
        AppNotFoundException("my-app"),
        BackendUnhealthyException("docker", "connection refused"),
        AppConfigError("bad"),
    ]
    for exc in outside:
        assert not isinstance(exc, AppDeploymentException)
    for exc in after_submission + outside:
        assert isinstance(exc, DeployerException)


def test_exception_attributes_and_messages() -> None:
    app = object()
    crash = AppCrashLoopException("id", "w-1", [f"line {n}" for n in range(20)], deployed_app=app)
    assert (crash.worker_id, len(crash.logs), crash.deployed_app) == ("w-1", 20, app)
    assert "line 19" in str(crash) and "line 9" not in str(crash)
    assert AppUpgradeInProgressException("id", "alice").upgrader == "alice"
    assert "force_upgrade=True" in str(AppUpgradeInProgressException("id"))
    concurrent = AppConcurrentUpgradeException("id", "v1", "v2", "bob", "noon")
    assert (concurrent.expected_version, concurrent.actual_version) == ("v1", "v2")
    assert (concurrent.modified_by, concurrent.modified_at) == ("bob", "noon")
    created = AppCreationFailedException("my-app", 409, "name taken")
    assert (created.status_code, created.error_text) == (409, "name taken")
    assert "max_wait_time" in str(AppReadinessException("id"))
    assert "list_deployments" in str(AppNotFoundException("my-app"))
    unhealthy = BackendUnhealthyException("docker", "refused", 503)
    assert (unhealthy.backend, unhealthy.status_code) == ("docker", 503)
    assert "retry" in str(unhealthy)
