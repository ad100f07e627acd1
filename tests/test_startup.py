"""Start-up stays cheap: what a module imports decides how fast every CLI call starts.

Timings live in bench/startup.py; these tests pin down the imports that made start-up slow,
each in a fresh interpreter so nothing imported by another test hides a regression.
"""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _imported_after(statement: str, candidates: list[str]) -> list[str]:
    """Which of `candidates` are in sys.modules after running `statement` in a new process."""
    loaded = f"' '.join(m for m in {candidates!r} if m in sys.modules)"
    probe = f"import sys\n{statement}\nprint({loaded})"
    result = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, cwd=ROOT
    )
    return result.stdout.split()


def test_bake_does_not_import_the_deployers_the_s3_client_or_grpc():
    """grpc is loaded only by a remote bake (bakery.remote) or the server."""
    heavy = ["docker", "kubernetes", "boto3", "grpc"]
    assert _imported_after("import bakery.bake", heavy) == []


def test_local_packaging_does_not_import_grpc():
    """The remote client (`packager.remote`) and its stubs load only when a server is used."""
    assert _imported_after("import packager.package", ["grpc", "packager.remote"]) == []


def test_bake_imports_the_build_pipeline_only_when_it_builds():
    """A cache hit needs the spec and the target's `find`: no resolver, layer builder, HTTP
    client or requirement parser is loaded by `import bakery.bake`."""
    heavy = ["bakery.build", "bakery.lock", "bakery.layers.wheel", "httpx", "packaging", "rich"]
    assert _imported_after("import bakery.bake", heavy) == []


@pytest.mark.parametrize(
    "statement",
    ["import bakery", "import packager", "import deployer", "import frontends.cli"],
)
def test_package_imports_load_no_stage_until_used(statement):
    heavy = ["docker", "kubernetes", "boto3", "httpx", "pydantic", "rich", "bakery.bake", "grpc"]
    heavy += ["fastapi", "uvicorn", "starlette", "prometheus_client"]  # the server's HTTP side
    assert (
        _imported_after(statement, [*heavy, "deployer.orchestration.app", "packager.package"]) == []
    )


def test_the_lazy_exports_are_the_real_objects():
    from bakery.bake import bake_image
    from deployer import AppDeployer, package_code
    from deployer import bake_image as exported
    from deployer.orchestration.app import AppDeployer as real_deployer
    from packager.package import package_code as real_package_code

    assert exported is bake_image
    assert AppDeployer is real_deployer and package_code is real_package_code
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        import deployer

        _ = deployer.nothing


def test_the_wheel_installs_only_our_own_top_level_names(tmp_path):
    """`proto/` is data: a top-level `proto` package would collide with proto-plus."""
    subprocess.run(
        ["uv", "build", "--wheel", "--out-dir", str(tmp_path), "--quiet"], check=True, cwd=ROOT
    )
    (wheel,) = tmp_path.glob("*.whl")
    names = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    top_level = {name for name in names if not name.endswith(".dist-info")}
    assert top_level == {"bakery", "deployer", "frontends", "packager", "reprotar", "stagekit"}


def test_app_quantities_use_the_kubernetes_parser_without_loading_the_client():
    """`deployer.model.quantities` takes its values from `kubernetes.utils.parse_quantity`
    (loaded from its own file) yet never imports the Kubernetes API client."""
    statement = "from deployer.model.quantities import parse_bytes; parse_bytes('1.5Gi', 'memory')"
    assert _imported_after(statement, ["kubernetes", "kubernetes.client"]) == []


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("1.5Gi", "bytes"),
        ("512Mi", "bytes"),
        ("1G", "bytes"),
        ("3k", "bytes"),
        ("1Ei", "bytes"),
        ("250m", "cpu"),
        ("2", "cpu"),
        ("0.5", "cpu"),
    ],
)
def test_app_quantities_equal_the_kubernetes_clients_values(text, kind):
    from kubernetes.utils import parse_quantity

    from deployer.model.quantities import parse_bytes, parse_cpu

    if kind == "cpu":
        assert parse_cpu(text).value == parse_quantity(text) * 1000
    else:
        assert parse_bytes(text, "memory").value == parse_quantity(text)
