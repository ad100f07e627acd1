"""The Admin service and the token check, against a real server on loopback.

Auth: refused calls get the right status and change nothing (the index and the registry's
tags are read back). Warm bakes real PyPI specs into the real test registry on two platforms;
the index then lists them, a second warm is all hits, and Prune removes old entries with
their registry tags.
"""

import json
import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from typer.testing import CliRunner

from bakery.bake import BakeResult
from bakery.oci.cache import BlobCache
from bakery.oci.layout import LayoutPublisher
from bakery.oci.model import OCI_CONFIG, OCI_INDEX, Image, canonical_json
from bakery.oci.remote import RegistryPublisher
from bakery.remote import bake_remote
from bakery.request import BakeRequest
from bakery.targets import untag
from frontends.cli import app
from frontends.service.auth import InsecureBindError
from frontends.service.server import SERVICE_NAMES, ServerSettings, start
from frontends.service.state import SqliteIndex, StateError
from stagekit.api.bakery.v1 import bakery_pb2, bakery_pb2_grpc
from tests.fixtures.registry import TestRegistry

DAY = 86400
PLATFORMS = ("linux/amd64", "linux/arm64")


class Clock:
    """Unix seconds the test moves forward, so entries age without waiting."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server(tmp_path, clock):
    index = SqliteIndex(tmp_path / "state" / "index.sqlite", clock=clock)
    running = start(ServerSettings(port=0, state_dir=tmp_path / "state", index=index))
    yield running
    running.stop(grace=1)


@pytest.fixture
def channel(server):
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as opened:
        yield opened


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def status_of(call) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as refused:
        call()
    return refused.value.code()


def fake_result(spec_id: str, image: str) -> BakeResult:
    return BakeResult(image, "/env/bin/python", spec_id, "sha256:lock", "built")


# -- auth -------------------------------------------------------------------------------


def test_without_tokens_the_server_is_open_on_loopback_only_and_says_so(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="bakery.service"):
        running = start(ServerSettings(port=0, state_dir=tmp_path / "a"))
    try:
        assert "WITHOUT auth" in caplog.text
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as opened:
            reply = bakery_pb2_grpc.AdminStub(opened).ListCache(
                bakery_pb2.ListCacheRequest(), timeout=5
            )
            assert list(reply.entries) == []
    finally:
        running.stop(grace=1)
    with pytest.raises(InsecureBindError, match="tokens create"):
        start(ServerSettings(host="0.0.0.0", port=0, state_dir=tmp_path / "b"))
    SqliteIndex(tmp_path / "c" / "index.sqlite").create_token("ops", "admin")
    running = start(ServerSettings(host="0.0.0.0", port=0, state_dir=tmp_path / "c"))
    running.stop(grace=1)


def test_refused_calls_get_their_status_and_change_nothing(
    server, channel, clock, registry, fresh_repo, make_image
):
    admin_token = server.index.create_token("ops", "admin")
    bake_token = server.index.create_token("ci", "bake")
    with RegistryPublisher(fresh_repo) as publisher:
        image = publisher.publish(make_image(), "spec-abc")
    server.index.record_bake(fake_result("abc", image), "linux/amd64")
    clock.now += 2 * DAY  # an allowed prune would now remove the entry and its tag
    admin = bakery_pb2_grpc.AdminStub(channel)
    prune = bakery_pb2.PruneRequest(older_than_seconds=DAY)
    warm_item = bakery_pb2.WarmItem(request=bakery_pb2.BakeRequest(pypi={"six": ""}))
    calls = {
        "no token": (lambda: admin.Prune(prune, timeout=5), grpc.StatusCode.UNAUTHENTICATED),
        "bad token": (
            lambda: admin.Prune(prune, timeout=5, metadata=bearer("bkr_not-a-token")),
            grpc.StatusCode.UNAUTHENTICATED,
        ),
        "not bearer": (
            lambda: admin.Prune(prune, timeout=5, metadata=(("authorization", admin_token),)),
            grpc.StatusCode.UNAUTHENTICATED,
        ),
        "bake token on Prune": (
            lambda: admin.Prune(prune, timeout=5, metadata=bearer(bake_token)),
            grpc.StatusCode.PERMISSION_DENIED,
        ),
        "bake token on Warm": (
            lambda: list(admin.Warm(iter([warm_item]), timeout=5, metadata=bearer(bake_token))),
            grpc.StatusCode.PERMISSION_DENIED,
        ),
        "bake token on CreateToken": (
            lambda: admin.CreateToken(
                bakery_pb2.CreateTokenRequest(name="x", scope=bakery_pb2.SCOPE_ADMIN),
                timeout=5,
                metadata=bearer(bake_token),
            ),
            grpc.StatusCode.PERMISSION_DENIED,
        ),
    }
    for name, (call, expected) in calls.items():
        assert status_of(call) == expected, name
    assert [row.spec_id for row in server.index.entries()] == ["abc"]
    assert registry.tags(fresh_repo.partition("/")[2]) == ["spec-abc"]
    assert server.index.outcomes() == {"built": 1}  # no Warm ran
    assert server.index.token("bkr_not-a-token") is None
    assert {server.index.token(t).name for t in (admin_token, bake_token)} == {"ops", "ci"}


def test_health_and_reflection_need_no_token(server, channel):
    server.index.create_token("ops", "admin")
    checks = health_pb2_grpc.HealthStub(channel)
    for name in (*SERVICE_NAMES, ""):
        answer = checks.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    ask = reflection_pb2.ServerReflectionRequest(list_services="")
    (reply,) = stub.ServerReflectionInfo(iter([ask]), timeout=5)
    assert set(SERVICE_NAMES) <= {service.name for service in reply.list_services_response.service}


def test_a_created_token_is_stored_hashed_and_passes_the_check(server, channel, tmp_path):
    admin_token = server.index.create_token("ops", "admin")
    admin = bakery_pb2_grpc.AdminStub(channel)
    created = admin.CreateToken(
        bakery_pb2.CreateTokenRequest(name="ci", scope=bakery_pb2.SCOPE_BAKE),
        timeout=5,
        metadata=bearer(admin_token),
    )
    secret = created.token
    assert secret.startswith("bkr_") and len(secret) > 40
    stored = b"".join(path.read_bytes() for path in (tmp_path / "state").glob("index.sqlite*"))
    assert secret.encode() not in stored and admin_token.encode() not in stored
    with sqlite3.connect(tmp_path / "state" / "index.sqlite") as db:
        assert dict(db.execute("SELECT name, scope FROM tokens")) == {"ops": "admin", "ci": "bake"}
    again = bakery_pb2.CreateTokenRequest(name="ci", scope=bakery_pb2.SCOPE_BAKE)
    duplicate = lambda: admin.CreateToken(again, timeout=5, metadata=bearer(admin_token))  # noqa: E731
    assert status_of(duplicate) == grpc.StatusCode.ALREADY_EXISTS
    bakery = bakery_pb2_grpc.BakeryStub(channel)
    try:  # whatever PackageCode answers, the token check let it through
        bakery.PackageCode(bakery_pb2.PackageRequest(), timeout=30, metadata=bearer(secret))
    except grpc.RpcError as error:
        assert error.code() not in (
            grpc.StatusCode.UNAUTHENTICATED,
            grpc.StatusCode.PERMISSION_DENIED,
        ), error.details()
    assert (
        status_of(lambda: bakery.PackageCode(bakery_pb2.PackageRequest(), timeout=5))
        == grpc.StatusCode.UNAUTHENTICATED
    )


# -- warm, list, prune, stats -----------------------------------------------------------


@pytest.fixture
def two_platform_base(registry, debian_base, tmp_path) -> str:
    """The test Debian base as an image index for linux/amd64 and linux/arm64, tagged.

    This machine cannot build an arm64 Debian (no qemu), so the arm64 entry reuses the amd64
    root filesystem under an arm64 config: a bake never runs anything from its base, and the
    arm64 locks and wheels it resolves are real."""
    cache = BlobCache(tmp_path / "arm64-config")
    config = json.loads(debian_base.config.path.read_bytes())
    config["architecture"] = "arm64"
    arm64 = Image(
        config=cache.blob(cache.put_bytes(canonical_json(config)), OCI_CONFIG),
        layers=debian_base.layers,
    )
    repository = f"{registry.host}/base/two-platform"
    with RegistryPublisher(repository) as publisher:
        entries = []
        for image, architecture in ((debian_base, "amd64"), (arm64, "arm64")):
            publisher.publish(image, f"bookworm-{architecture}")
            manifest = image.manifest
            entries.append(
                {
                    "mediaType": manifest.media_type,
                    "digest": manifest.digest,
                    "size": len(manifest.data),
                    "platform": {"os": "linux", "architecture": architecture},
                }
            )
        index = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
        publisher.client.put_manifest("bookworm", index, OCI_INDEX)
    return f"{repository}:bookworm"


def warm(admin, items: list[bakery_pb2.WarmItem]) -> list[bakery_pb2.WarmResult]:
    return list(admin.Warm(iter(items), timeout=600))


def item(pypi: dict[str, str], **request) -> bakery_pb2.WarmItem:
    return bakery_pb2.WarmItem(
        request=bakery_pb2.BakeRequest(pypi=pypi, **request), platforms=PLATFORMS
    )


def test_warm_lists_hits_prunes_and_counts(
    tmp_path, bake_env, monkeypatch, registry, fresh_repo, two_platform_base, server, channel, clock
):
    monkeypatch.setenv("BAKERY_REGISTRY", fresh_repo)
    monkeypatch.setenv("BAKERY_BASE_IMAGE", two_platform_base)
    admin = bakery_pb2_grpc.AdminStub(channel)
    six, attrs = item({"six": ""}), item({"attrs": ""})
    bad = bakery_pb2.WarmItem(request=bakery_pb2.BakeRequest(pypi={"six": ""}, cache_name="Bad!"))

    first = warm(admin, [six, attrs, bad])
    failed = [r for r in first if r.HasField("error")]
    assert len(failed) == 1 and failed[0].error.kind == bakery_pb2.ERROR_KIND_INVALID_INPUT
    assert "cache_name" in failed[0].error.message
    built = [r for r in first if r.HasField("result")]
    assert sorted((next(iter(r.request.pypi)), r.platform) for r in built) == sorted(
        (name, platform) for name in ("six", "attrs") for platform in PLATFORMS
    )
    assert {r.result.outcome for r in built} == {bakery_pb2.OUTCOME_BUILT}
    assert len({r.result.spec_id for r in built}) == 4
    listed = admin.ListCache(bakery_pb2.ListCacheRequest(), timeout=5).entries
    assert {(e.spec_id, e.image, e.platform) for e in listed} == {
        (r.result.spec_id, r.result.image, r.platform) for r in built
    }

    clock.now += 10 * DAY
    second = warm(admin, [six])
    assert [r.result.outcome for r in second] == [bakery_pb2.OUTCOME_HIT] * 2
    assert {r.result.image for r in second} <= {r.result.image for r in built}

    stats = admin.Stats(bakery_pb2.StatsRequest(), timeout=5)
    assert dict(stats.bakes_by_outcome) == {"built": 4, "hit": 2, "failed": 1}
    assert stats.cache_entries == 4 and (stats.queued, stats.running) == (0, 0)
    sizes = {e.spec_id: e.size for e in listed}
    for result in built:
        with RegistryPublisher(fresh_repo) as publisher:
            manifest = publisher.find(f"spec-{result.result.spec_id}").manifest
        layers = sum(layer["size"] for layer in manifest["layers"])
        assert sizes[result.result.spec_id] > layers + manifest["config"]["size"]
    assert stats.cache_bytes == sum(sizes.values())

    repo = fresh_repo.partition("/")[2]
    tags_before = set(registry.tags(repo))
    assert tags_before == {f"spec-{r.result.spec_id}" for r in built}
    old = {r.result.spec_id for r in built if "attrs" in r.request.pypi}
    week = bakery_pb2.PruneRequest(unused_for_seconds=7 * DAY, dry_run=True)
    listed_only = admin.Prune(week, timeout=5).removed
    assert {e.spec_id for e in listed_only} == old
    assert set(registry.tags(repo)) == tags_before and len(server.index.entries()) == 4

    week.dry_run = False
    removed = admin.Prune(week, timeout=60).removed
    assert {e.spec_id for e in removed} == old
    assert set(registry.tags(repo)) == tags_before - {f"spec-{spec}" for spec in old}
    remaining = admin.ListCache(bakery_pb2.ListCacheRequest(), timeout=5).entries
    assert {e.spec_id for e in remaining} == {r.result.spec_id for r in second}
    assert all(e.hits == 1 for e in remaining)
    assert admin.Stats(bakery_pb2.StatsRequest(), timeout=5).cache_entries == 2

    warm_file = tmp_path / "warm.yaml"
    warm_file.write_text('- pypi: {six: ""}\n  platforms: [linux/amd64, linux/arm64]\n')
    url = f"grpc://127.0.0.1:{server.port}"
    cli = CliRunner().invoke(app, ["cache", "warm", str(warm_file), "--server", url])
    assert cli.exit_code == 0, cli.output
    assert sorted(line.split()[:3] for line in cli.stdout.splitlines()) == [
        ["hit", "six", "linux/amd64"],
        ["hit", "six", "linux/arm64"],
    ]


def test_a_warm_file_of_five_specs_on_two_platforms_makes_their_bakes_hits(
    tmp_path, bake_env, monkeypatch, fresh_repo, two_platform_base, server
):
    """The issue's case: `bakery cache warm FILE` with five specs on two platforms bakes ten
    images; the same bakes from a client afterwards are all hits."""
    monkeypatch.setenv("BAKERY_REGISTRY", fresh_repo)
    monkeypatch.setenv("BAKERY_BASE_IMAGE", two_platform_base)
    names = ["six", "attrs", "idna", "iniconfig", "pluggy"]
    (tmp_path / "requirements.txt").write_text("pluggy>=1\n")
    entries = [f'- pypi: {{{name}: ""}}' for name in names[:4]] + [
        "- requirements: requirements.txt"
    ]
    warm_file = tmp_path / "warm.yaml"
    warm_file.write_text(
        "".join(f"{e}\n  platforms: [linux/amd64, linux/arm64]\n" for e in entries)
    )
    url = f"grpc://127.0.0.1:{server.port}"

    warmed = CliRunner().invoke(app, ["cache", "warm", str(warm_file), "--server", url])
    assert warmed.exit_code == 0, warmed.output
    lines = [line.split() for line in warmed.stdout.splitlines()]
    assert len(lines) == 10 and {line[0] for line in lines} == {"built"}

    again = [
        bake_remote(BakeRequest(pypi={name: ""}, platform=platform), url, timeout=600)
        for name in names[:4]
        for platform in PLATFORMS
    ]
    again += [
        bake_remote(
            BakeRequest(requirements_file=tmp_path / "requirements.txt", platform=platform),
            url,
            timeout=600,
        )
        for platform in PLATFORMS
    ]
    assert [result.outcome for result in again] == ["hit"] * 10
    assert len({result.image for result in again}) == 10
    assert server.service.builds_started == 10


def test_prune_without_bounds_is_refused(server, channel):
    server.index.record_bake(fake_result("abc", "127.0.0.1:9/x@sha256:" + "0" * 64), "linux/amd64")
    admin = bakery_pb2_grpc.AdminStub(channel)
    refused = status_of(lambda: admin.Prune(bakery_pb2.PruneRequest(), timeout=5))
    assert refused == grpc.StatusCode.INVALID_ARGUMENT
    assert len(server.index.entries()) == 1


def test_untag_in_a_layout_removes_only_that_tag(tmp_path, make_image):
    layout = LayoutPublisher(tmp_path / "layout")
    image = layout.publish(make_image("one"), "spec-one")
    layout.publish(make_image("two"), "spec-two")
    assert untag(image, "spec-one") is True
    assert layout.find("spec-one") is None and layout.find("spec-two") is not None
    assert untag(image, "spec-one") is False


# -- the command line -------------------------------------------------------------------


def test_cli_tokens_create_then_cache_ls_and_prune(
    tmp_path, registry, fresh_repo, make_image, clock
):
    state = tmp_path / "state"
    runner = CliRunner()
    created = runner.invoke(
        app, ["tokens", "create", "--scope", "admin", "--state-dir", str(state), "ops"]
    )
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip()
    bad_scope = runner.invoke(
        app, ["tokens", "create", "--scope", "root", "--state-dir", str(state), "x"]
    )
    assert bad_scope.exit_code == 1 and "unknown scope 'root'" in bad_scope.output
    index = SqliteIndex(state / "index.sqlite", clock=clock)
    running = start(ServerSettings(host="0.0.0.0", port=0, state_dir=state, index=index))
    try:
        with RegistryPublisher(fresh_repo) as publisher:
            image = publisher.publish(make_image(), "spec-abc")
        running.index.record_bake(fake_result("abc", image), "linux/amd64")
        env = {"BAKERY_URL": f"grpc://127.0.0.1:{running.port}", "BAKERY_TOKEN": secret}
        listed = runner.invoke(app, ["cache", "ls", "--json"], env=env)
        assert listed.exit_code == 0, listed.output
        assert [row["image"] for row in json.loads(listed.stdout)] == [image]
        refused = runner.invoke(app, ["cache", "ls"], env={**env, "BAKERY_TOKEN": "bkr_wrong"})
        assert refused.exit_code == 1 and "not known to this server" in refused.output
        unbounded = runner.invoke(app, ["cache", "prune"], env=env)
        assert unbounded.exit_code == 2 and "--older-than" in unbounded.output
        args = ["cache", "prune", "--older-than", "0s", "--unused-for", "1d", "--json"]
        assert runner.invoke(app, ["cache", "prune", "--older-than", "1x"], env=env).exit_code == 2
        kept = runner.invoke(app, args, env=env)  # used just now: not unused for a day
        assert kept.exit_code == 0 and json.loads(kept.stdout) == []
        repo = fresh_repo.partition("/")[2]
        assert registry.tags(repo) == ["spec-abc"]
        clock.now += 2 * DAY
        pruned = runner.invoke(app, args, env=env)
        assert pruned.exit_code == 0 and [r["spec_id"] for r in json.loads(pruned.stdout)] == [
            "abc"
        ]
        assert registry.tags(repo) == [] and index.entries() == []
    finally:
        running.stop(grace=1)


def test_cli_warm_reports_failures_and_bad_files(server, tmp_path):
    url = f"grpc://127.0.0.1:{server.port}"
    runner = CliRunner()
    bad_spec = tmp_path / "bad.yaml"
    bad_spec.write_text('- pypi: {six: ""}\n  cache_name: "Bad!"\n')
    failed = runner.invoke(app, ["cache", "warm", str(bad_spec), "--server", url])
    assert failed.exit_code == 1
    assert failed.stdout.startswith("failed  six") and "cache_name" in failed.stdout
    assert "1 bake(s) failed" in failed.output
    assert server.index.outcomes() == {"failed": 1} and server.index.entries() == []
    for text, message in [
        ("[]", "holds no specs"),
        ("- {pypi: {six: ''}, requirements: r.txt}", "exactly one of"),
        ("- {pypi: {six: ''}, colour: blue}", "keys from"),
        ("- {requirements: missing.txt}", "cannot read requirements file"),
    ]:
        bad_spec.write_text(text)
        refused = runner.invoke(app, ["cache", "warm", str(bad_spec), "--server", url])
        assert refused.exit_code == 1 and message in refused.output, refused.output


def test_prune_keeps_a_tag_whose_manifest_a_kept_entry_shares(
    server, channel, clock, registry, fresh_repo, make_image
):
    """Registry 2.8 deletes tags by deleting their manifest: pruning `old` must not take
    `new`'s tag with it when both name the same image."""
    with RegistryPublisher(fresh_repo) as publisher:
        image = publisher.publish(make_image(), "spec-old")
        assert publisher.publish(make_image(), "spec-new") == image
    server.index.record_bake(fake_result("old", image), "linux/amd64")
    clock.now += 2 * DAY
    server.index.record_bake(fake_result("new", image), "linux/amd64")
    admin = bakery_pb2_grpc.AdminStub(channel)
    removed = admin.Prune(bakery_pb2.PruneRequest(older_than_seconds=DAY), timeout=30).removed
    assert [e.spec_id for e in removed] == ["old"]
    assert [row.spec_id for row in server.index.entries()] == ["new"]
    assert sorted(registry.tags(fresh_repo.partition("/")[2])) == ["spec-new", "spec-old"]


def test_prune_on_a_registry_that_refuses_deletes_says_so_and_keeps_the_entry(
    server, channel, clock, tmp_path, make_image
):
    workdir = tmp_path / "no-delete-registry"
    workdir.mkdir()
    no_delete = TestRegistry(workdir)
    config = json.loads(no_delete.config.read_text())
    config["storage"]["delete"]["enabled"] = False
    no_delete.config.write_text(json.dumps(config))
    no_delete.start()
    try:
        with RegistryPublisher(f"{no_delete.host}/test/prune") as publisher:
            image = publisher.publish(make_image(), "spec-abc")
        server.index.record_bake(fake_result("abc", image), "linux/amd64")
        clock.now += 2 * DAY
        admin = bakery_pb2_grpc.AdminStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            admin.Prune(bakery_pb2.PruneRequest(older_than_seconds=DAY), timeout=30)
        assert refused.value.code() == grpc.StatusCode.INTERNAL
        assert "storage: delete: enabled: true" in refused.value.details()
        assert [row.spec_id for row in server.index.entries()] == ["abc"]
        assert no_delete.tags("test/prune") == ["spec-abc"]
    finally:
        no_delete.stop()


# -- the index itself -------------------------------------------------------------------


def test_the_index_counts_exactly_under_concurrent_writers(tmp_path):
    index = SqliteIndex(tmp_path / "index.sqlite")
    image = "127.0.0.1:9/x@sha256:" + "0" * 64

    def serve(worker: int) -> None:
        index.record_bake(fake_result(f"spec{worker}", image), "linux/amd64", size=10)
        for _ in range(25):
            index.record_hit(f"spec{worker}")
            index.record_bake(
                BakeResult(image, "/p", "shared", "", "hit"), "linux/amd64", seconds=0.1
            )

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(serve, range(8)))
    hits = {row.spec_id: row.hits for row in index.entries()}
    assert hits == {"shared": 200, **{f"spec{worker}": 25 for worker in range(8)}}
    assert index.outcomes() == {"built": 8, "hit": 200}


def test_an_index_from_a_newer_bakery_is_refused(tmp_path):
    path = tmp_path / "index.sqlite"
    SqliteIndex(path)
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(StateError, match="schema version 99, newer"):
        SqliteIndex(path)
