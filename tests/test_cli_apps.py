"""`bakery deploy`, `bakery apps ...` and `bakery secrets ...` against the real Docker Engine.

One spec file of two apps (`web` depends on `api`) is deployed once for the module; its
`bake:` sections bake into the test registry, its `code:` sections package hello-app.
"""

import json
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from deployer import AppDeployer
from deployer.host.secrets import SecretStore
from deployer.orchestration.plan import url_variable
from deployer.orchestration.spec_deploy import deploy_spec_file
from frontends.cli import app as cli
from packager import CodePackagingException
from tests.fixtures.services import isolate_bakery_dirs

HELLO_APP = Path(__file__).parent.parent / "examples" / "hello-app"
FAST = ["--max-wait", "60", "--poll-interval", "0.2"]


def bakery(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def ls_json(*args: str) -> list[dict]:
    listed = bakery("apps", "ls", "--json", *args)
    assert listed.exit_code == 0, listed.output
    return json.loads(listed.stdout)


def write_spec(directory: Path, text: str) -> Path:
    path = directory / "apps.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def cli_env(
    tmp_path_factory, registry_service, pushed_debian_base, docker_engine
) -> Iterator[Path]:
    """Fresh caches, records and secrets for the module; bakes go to a fresh registry repo."""
    root = tmp_path_factory.mktemp("cli-apps")
    with pytest.MonkeyPatch.context() as patch:
        isolate_bakery_dirs(patch, root, base_image=pushed_debian_base, runtime="docker")
        patch.setenv("BAKERY_REGISTRY", f"{registry_service.host}/{registry_service.fresh_repo()}")
        yield root


@dataclass(frozen=True)
class Deployed:
    spec: Path
    suite: str
    api: str
    web: str
    result: Result


@pytest.fixture(scope="module")
def deployed(cli_env: Path) -> Iterator[Deployed]:
    """`bakery deploy` of api and web (web depends on api); both deleted afterwards."""
    suite = f"cli-{uuid.uuid4().hex[:8]}"
    api, web = f"{suite}-api", f"{suite}-web"
    spec = write_spec(
        cli_env,
        f"""\
        name: {api}
        port: 8000
        commands: ["python server.py"]
        tags: [{{suite: {suite}}}, {{role: backend}}]
        code: {{src_paths: ["{HELLO_APP}"]}}
        bake: {{pypi: {{six: ""}}}}
        ---
        name: {web}
        port: 8000
        depends_on: [{api}]
        commands: ['echo "dep=${url_variable(api)}"', "python server.py"]
        tags: [{{suite: {suite}}}, {{role: frontend}}]
        code: {{src_paths: ["{HELLO_APP}"]}}
        bake: {{pypi: {{six: ""}}}}
        """,
    )
    result = bakery("deploy", str(spec), "--readiness", "all_running", *FAST)
    try:
        yield Deployed(spec, suite, api, web, result)
    finally:
        for deployed_app in AppDeployer.list_deployments(tags=[{"suite": suite}]):
            deployed_app.delete()


def test_deploy_packages_and_bakes_once_and_deploys_the_dependency_first(deployed):
    result = deployed.result
    assert result.exit_code == 0, result.output
    printed = result.stdout.splitlines()
    assert [line.split()[0] for line in printed] == [deployed.api, deployed.web]
    assert all(" at http://127.0.0.1:" in line for line in printed)
    log = result.stderr
    assert log.count("packaging") == 1 and log.count("baking its image") == 1
    assert log.index(f"deploy wave 1/2: {deployed.api}") < log.index(
        f"deploy wave 2/2: {deployed.web}"
    )


def test_the_dependent_app_gets_the_dependency_url(deployed):
    inspected = bakery("apps", "inspect", deployed.web)
    assert inspected.exit_code == 0, inspected.output
    url = json.loads(inspected.stdout)["spec"]["environment"][url_variable(deployed.api)]
    assert url.startswith("http://")

    logs = bakery("apps", "logs", deployed.web)
    assert logs.exit_code == 0, logs.output
    [line] = [line for line in logs.stdout.splitlines() if "dep=" in line]
    worker_id, text = line.split(" | ")
    assert worker_id.startswith(f"bakery-{deployed.web}-") and text == f"dep={url}"


def test_redeploying_an_unchanged_file_changes_nothing(deployed):
    versions = {row["name"]: row["version"] for row in ls_json("--tag", f"suite={deployed.suite}")}
    again = bakery("deploy", str(deployed.spec), "--json", *FAST)
    assert again.exit_code == 0, again.output
    assert {row["name"]: row["version"] for row in json.loads(again.stdout)} == versions


def test_apps_ls_filters_by_every_tag(deployed):
    both = ls_json("--tag", f"suite={deployed.suite}")
    assert [row["name"] for row in both] == [deployed.api, deployed.web]
    assert {(row["state"], row["runtime"]) for row in both} == {("serving", "docker")}
    assert all(row["public_url"].startswith("http://127.0.0.1:") for row in both)
    backend = ls_json("--tag", f"suite={deployed.suite}", "--tag", "role=backend")
    assert [row["name"] for row in backend] == [deployed.api]
    assert ls_json("--tag", "suite=no-such-suite") == []

    wide = {"COLUMNS": "200"}  # rich folds cells to fit the terminal: make room for whole rows
    table = CliRunner().invoke(cli, ["apps", "ls", "--tag", f"suite={deployed.suite}"], env=wide)
    assert table.exit_code == 0, table.output
    [row] = [line for line in table.stdout.splitlines() if deployed.api in line]
    api = both[0]
    for cell in (api["version"], "serving", "docker", api["public_url"], "role=backend"):
        assert cell in row


def test_scale_to_zero_then_delete(deployed):
    scaled = bakery("apps", "scale-to-zero", deployed.web)
    assert scaled.exit_code == 0, scaled.output
    info = json.loads(bakery("apps", "inspect", deployed.web).stdout)
    assert info["status"]["state"] == "scaled_to_zero"
    assert {replica["status"] for replica in info["status"]["replicas"]} == {"terminated"}

    deleted = bakery("apps", "delete", deployed.web)
    assert deleted.exit_code == 0, deleted.output
    assert [row["name"] for row in ls_json("--tag", f"suite={deployed.suite}")] == [deployed.api]
    assert bakery("apps", "inspect", deployed.web).exit_code == 1


@pytest.mark.parametrize("command", ["inspect", "logs", "scale-to-zero", "delete"])
def test_an_unknown_app_is_one_line_naming_it(cli_env, command):
    result = bakery("apps", command, "no-such-app")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: app 'no-such-app' is not deployed on the docker runtime; "
        "`bakery apps ls` lists the deployed apps"
    ]


@pytest.mark.parametrize(
    "args",
    [
        ["apps", "ls", "--tag", "env"],
        ["apps", "ls", "--runtime", "elsewhere"],
        ["deploy", "apps.yaml", "--readiness", "eventually"],
        ["secrets", "set", "keys", "TOKEN"],
        ["secrets", "set", "keys"],
    ],
)
def test_bad_arguments_are_usage_errors(cli_env, args):
    result = bakery(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_a_cycle_deploys_nothing_and_names_it(cli_env, tmp_path):
    spec = write_spec(
        tmp_path,
        f"""\
        name: cycle-a
        port: 8000
        depends_on: [cycle-b]
        code: {{src_paths: ["{HELLO_APP}"]}}
        bake: {{pypi: {{six: ""}}}}
        ---
        name: cycle-b
        port: 8000
        depends_on: [cycle-a]
        code: {{src_paths: ["{HELLO_APP}"]}}
        bake: {{pypi: {{six: ""}}}}
        """,
    )
    result = bakery("deploy", str(spec), *FAST)
    assert result.exit_code == 1
    assert "depends_on has a cycle: cycle-a -> cycle-b -> cycle-a" in result.output
    assert "packaging" not in result.output and "Traceback" not in result.output
    assert [row["name"] for row in ls_json() if row["name"].startswith("cycle-")] == []


def test_packaging_errors_keep_their_type_and_deploy_nothing(cli_env, tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "outside.py").write_text("print('outside')\n")
    (tmp_path / "src" / "linked.py").symlink_to(tmp_path / "outside.py")
    spec = write_spec(
        tmp_path,
        """\
        name: leaky-app
        port: 8000
        image: unused
        commands: ["python linked.py"]
        code: {src_paths: [./src]}
        """,
    )
    with pytest.raises(CodePackagingException, match=r"linked\.py"):
        deploy_spec_file(spec, logger_fn=lambda _: None)

    result = bakery("deploy", str(spec), *FAST)
    assert result.exit_code == 1 and "linked.py" in result.output
    assert AppDeployer.list_deployments(name="leaky-app") == []


def test_secrets_set_ls_rm_never_show_values(cli_env, monkeypatch):
    monkeypatch.setenv("CLI_TOKEN", "token-from-env")
    created = bakery("secrets", "set", "cli-keys", "API_KEY=s3cret", "--from-env", "CLI_TOKEN")
    assert created.exit_code == 0, created.output
    assert SecretStore().get("cli-keys") == {"API_KEY": "s3cret", "CLI_TOKEN": "token-from-env"}

    listed = bakery("secrets", "ls")
    assert listed.exit_code == 0, listed.output
    assert "cli-keys" in listed.stdout.splitlines()
    for output in (created.output, listed.output):
        assert "s3cret" not in output and "token-from-env" not in output

    assert bakery("secrets", "rm", "cli-keys").exit_code == 0
    assert "cli-keys" not in bakery("secrets", "ls").stdout.splitlines()
    missing = bakery("secrets", "rm", "cli-keys")
    assert missing.exit_code == 1 and "'cli-keys' does not exist" in missing.output
