"""Deploy order for depends_on, and multi-document YAML deployment specs."""

import textwrap
from pathlib import Path

import pytest

from deployer.exceptions import AppConfigError
from deployer.model.specs import load_specs, order_specs
from deployer.orchestration.graph import deploy_order
from packager import PackagedCode

# --- deploy_order -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("apps", "waves"),
    [
        ({}, []),
        ({"a": []}, [["a"]]),
        ({"b": [], "a": []}, [["a", "b"]]),
        ({"service-3": ["service-2"], "service-2": ["service-1"], "service-1": []},
         [["service-1"], ["service-2"], ["service-3"]]),
        ({"api": ["backend", "database"], "backend": [], "database": []},
         [["backend", "database"], ["api"]]),
        ({"root": ["a", "b"], "a": ["base"], "b": ["base"], "base": [], "lone": []},
         [["base", "lone"], ["a", "b"], ["root"]]),
        ({"a": ["b", "b"], "b": ()}, [["b"], ["a"]]),
    ],
)  # fmt: skip
def test_deploy_order_waves(apps: dict, waves: list[list[str]]) -> None:
    assert deploy_order(apps) == waves


@pytest.mark.parametrize(
    ("apps", "cycle"),
    [
        ({"a": ["b"], "b": ["a"]}, "a -> b -> a"),
        ({"a": ["a"]}, "a -> a"),
        ({"a": ["b"], "b": ["c"], "c": ["a"], "d": []}, "a -> b -> c -> a"),
        ({"tail": ["x"], "x": ["y"], "y": ["x"], "free": []}, "x -> y -> x"),
    ],
)
def test_deploy_order_names_the_cycle(apps: dict, cycle: str) -> None:
    with pytest.raises(AppConfigError, match=f"depends_on has a cycle: {cycle};"):
        deploy_order(apps)


def test_deploy_order_refuses_unknown_dependencies() -> None:
    with pytest.raises(AppConfigError, match=r"app 'web' depends on 'db', which is not among"):
        deploy_order({"web": ["db"]})


# --- load_specs -----------------------------------------------------------------------------


def write(directory: Path, text: str, name: str = "apps.yaml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "web").mkdir()
    (tmp_path / "requirements.txt").write_text("flask>=2.0\n")
    return tmp_path


THREE_APPS = """\
    name: backend-api
    port: 8000
    commands: ["python server.py"]
    replicas: {min: 1, max: 3}
    resources: {cpu: "500m", memory: 512Mi}
    code:
      src_paths: [./src]
      suffixes: [.py, .json]
    bake:
      pypi: {flask: ">=2.0", requests:}
      python: "3.11"
    ---
    name: database
    port: 5432
    image: postgres:16
    code_package: {url: "file:///store/code/abc.tar.gz", key: abc}
    environment: {POSTGRES_PASSWORD: secret}
    ---
    name: frontend-app
    port: 8080
    depends_on: [backend-api, database]
    tags: [{env: staging}]
    auth: {type: API}
    code: {src_paths: [web]}
    bake: {requirements_file: requirements.txt}
    ---
"""


def test_three_documents(project: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    path = write(project, THREE_APPS)
    elsewhere = tmp_path_factory.mktemp("cwd")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(elsewhere)
        specs = load_specs(path)
    backend, database, frontend = specs
    assert [spec.name for spec in specs] == ["backend-api", "database", "frontend-app"]
    assert [spec.document for spec in specs] == [1, 2, 3]
    assert all(spec.path == path for spec in specs)

    assert backend.code is not None and backend.bake is not None
    assert backend.code.kwargs() == {
        "src_paths": [str(project / "src")],
        "suffixes": [".py", ".json"],
    }
    assert backend.bake.kwargs() == {"pypi": {"flask": ">=2.0", "requests": ""}, "python": "3.11"}
    assert backend.config.image is None and backend.config.code_package is None
    assert backend.config.replicas.scaling_policy is not None
    assert backend.config.resources.cpu is not None and backend.config.resources.cpu.value == 500

    assert database.code is None and database.bake is None
    assert database.config.code_package == PackagedCode("file:///store/code/abc.tar.gz", "abc")
    assert database.config.image == "postgres:16"

    assert frontend.bake is not None and frontend.code is not None
    assert frontend.bake.kwargs() == {"requirements_file": str(project / "requirements.txt")}
    assert frontend.code.kwargs() == {"src_paths": [str(project / "web")]}
    assert frontend.config.depends_on == ("backend-api", "database")
    assert frontend.config.auth.type == "API"

    waves = order_specs(specs)
    assert [[spec.name for spec in wave] for wave in waves] == [
        ["backend-api", "database"],
        ["frontend-app"],
    ]


def test_filled_in_after_packaging_and_baking(project: Path) -> None:
    backend = load_specs(write(project, THREE_APPS))[0]
    ready = backend.config.replace(image="registry/backend:1", code_package=("s3://b/k", "k"))
    assert ready.required_code_package() == PackagedCode("s3://b/k", "k")
    assert ready.image == "registry/backend:1"


def test_every_problem_names_the_file_and_document(project: Path) -> None:
    path = write(
        project,
        """\
        name: good
        port: 8000
        image: img:1
        code: {src_paths: [src]}
        ---
        name: bad-port
        port: 99999
        image: img:1
        code: {src_paths: [src]}
        ---
        name: typo
        prot: 8000
        image: img:1
        code: {src_paths: [src]}
        """,
    )
    with pytest.raises(AppConfigError) as caught:
        load_specs(path)
    assert caught.value.problems == [
        f"{path}: document 2 (app 'bad-port'): port: 99999 is out of range: use a TCP port "
        "from 1 to 65535, e.g. 8000",
        f"{path}: document 3 (app 'typo'): port: missing; this parameter is required",
        f"{path}: document 3 (app 'typo'): prot: unknown parameter; did you mean 'port'? "
        f"(known: {', '.join(_parameters())})",
    ]
    assert str(caught.value).startswith(f"invalid deployment specs in {path}:")


def _parameters() -> list[str]:
    from deployer.model.config import AppConfig

    return list(AppConfig.model_fields)


APP = "port: 8000\nimage: img:1\ncode: {src_paths: [src]}\n"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (f"name: a\n{APP}---\nname: a\n{APP}", "documents 1 and 2 both define app 'a'"),
        (f"name: a\ndepends_on: [b]\n{APP}", "app 'a' depends on 'b', which is not among"),
        (
            f"name: a\ndepends_on: [b]\n{APP}---\nname: b\ndepends_on: [a]\n{APP}",
            "depends_on has a cycle: a -> b -> a",
        ),
        ("name: a\nport: 1\nport: 2\n", "duplicate key 'port'"),
        ("name: a\nport: [8000\n", "is not valid YAML"),
        ("- name: a\n", "document 1: must be a mapping of AppDeployer parameters"),
        ("name: a\nport: 8000\nimage: img:1\n", "no code: section and no code_package"),
        (
            f"name: a\n{APP}bake: {{pypi: {{flask: ''}}}}\n",
            "image and bake are both given; bake produces the image",
        ),
        (
            "name: a\nport: 8000\ncode: {src_paths: [src]}\n"
            "bake: {pypi: {flask: ''}, requirements_file: requirements.txt}\n",
            "bake: give exactly one of pypi, requirements_file or pyproject_toml, "
            "not pypi and requirements_file",
        ),
        ("name: a\nport: 8000\ncode: {src_paths: [src]}\nbake: {python: '3.11'}\n", "exactly one"),
        (
            "name: a\nport: 8000\ncode: {src_paths: [src]}\nbake: {pyproject_toml: nope.toml}\n",
            "nope.toml is not a file",
        ),
        ("name: a\nport: 8000\nimage: img:1\ncode: {src_paths: [missing]}\n", "is not a directory"),
        ("name: a\nport: 8000\nimage: img:1\ncode: {src_paths: []}\n", "src_paths is empty"),
        ("name: a\nport: 8000\nimage: img:1\ncode: {src_paths: src}\n", "code.src_paths:"),
        (
            "name: a\nport: 8000\nimage: img:1\ncode: {src_paths: [src], suffixes: [py]}\n",
            "suffix 'py' must start with '.'",
        ),
        ("name: a\nport: 8000\nimage: img:1\ncode: {src: [src]}\n", "code.src: unknown key"),
        ("name: a\nport: 8000\nimage: img:1\ncode: [src]\n", "code: must be a mapping"),
        (
            f"name: a\n{APP}code_package: {{url: u, key: k}}\n",
            "code and code_package are both given",
        ),
        (
            "name: a\nport: 8000\nimage: img:1\ncode_package: s3://x\n",
            "code_package: must be a mapping {url: ..., key: ...}",
        ),
        ("name: a\nport: 8000\nimage: img:1\ncode: {src_paths: [src]}\nenvironment: {DEBUG: no}\n",
         'DEBUG must be a string, got bool False; quote it, e.g. DEBUG: "false"'),
        ("", "has no deployment specs"),
        ("---\n---\n", "has no deployment specs"),
    ],
)  # fmt: skip
def test_spec_errors(project: Path, text: str, fragment: str) -> None:
    path = write(project, text)
    with pytest.raises(AppConfigError) as caught:
        load_specs(path)
    assert fragment in str(caught.value)
    assert str(path) in str(caught.value)


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AppConfigError, match=r"cannot read deployment spec .*nope\.yaml"):
        load_specs(tmp_path / "nope.yaml")


def test_non_string_keys(project: Path) -> None:
    path = write(project, f"name: a\n{APP}1: x\n")
    with pytest.raises(AppConfigError, match="1: keys must be parameter names"):
        load_specs(path)
