"""Staleness on the server: `max_age` over the wire, the server's default, Warm --refresh.

A real server on loopback, the real registry (its access log counts uploads), real PyPI.
"""

import grpc
import pytest
from typer.testing import CliRunner

from bakery import config
from bakery.freshness import Resolutions
from bakery.remote import bake_remote, request_message
from bakery.request import BakeRequest
from bakery.targets import target_name
from frontends.cli import app
from frontends.service.server import ServerSettings, start
from stagekit.api.bakery.v1 import bakery_pb2, bakery_pb2_grpc


@pytest.fixture
def running(server_repo, tmp_path):
    server = start(ServerSettings(port=0, state_dir=tmp_path / "state"))
    yield server
    server.stop(grace=1)


def resolved_at(target: str, spec_id: str) -> float:
    record = Resolutions(config.bake_cache_dir(), target_name(None, target)).get(spec_id)
    assert record is not None, f"no resolution recorded for {spec_id[:12]}"
    return record.at


def result_of(url: str, message: bakery_pb2.BakeRequest) -> bakery_pb2.BakeResult:
    channel = grpc.insecure_channel(url.removeprefix("grpc://"))
    events = list(bakery_pb2_grpc.BakeryStub(channel).Bake(message, timeout=600))
    return events[-1].result


def test_max_age_travels_and_the_server_default_applies(
    running, server_repo, registry, monkeypatch
):
    target, repo = server_repo
    url = f"grpc://127.0.0.1:{running.port}"
    loose = BakeRequest(pypi={"six": ">=1.15"})
    assert not request_message(loose).HasField("max_age_seconds")  # unset: the server decides
    assert request_message(BakeRequest(pypi={"six": ""}, max_age=0)).max_age_seconds == 0

    first = bake_remote(loose, url, timeout=600)
    when = resolved_at(target, first.spec_id)
    uploads = registry.uploads(repo)

    again = bake_remote(BakeRequest(pypi={"six": ">=1.15"}, max_age=0), url, timeout=600)
    assert (again.outcome, again.refreshed, again.image) == ("hit", True, first.image)
    assert resolved_at(target, first.spec_id) > when
    assert registry.uploads(repo) == uploads

    monkeypatch.setenv("BAKERY_SPEC_MAX_AGE", "0s")  # the server's default (same process)
    plain = result_of(url, bakery_pb2.BakeRequest(pypi={"six": ">=1.15"}))
    assert (plain.outcome, plain.refreshed) == (bakery_pb2.OUTCOME_HIT, True)
    patient = result_of(url, bakery_pb2.BakeRequest(pypi={"six": ">=1.15"}, max_age_seconds=600))
    assert (patient.outcome, patient.refreshed) == (bakery_pb2.OUTCOME_HIT, False)

    assert running.index.outcomes() == {"built": 1, "hit": 3, "retagged": 2}
    admin = bakery_pb2_grpc.AdminStub(grpc.insecure_channel(f"127.0.0.1:{running.port}"))
    stats = admin.Stats(bakery_pb2.StatsRequest(), timeout=5)
    assert stats.bakes_by_outcome["retagged"] == 2
    assert registry.uploads(repo) == uploads


def test_warm_refresh_resolves_every_unpinned_spec_again(running, server_repo, registry, tmp_path):
    target, repo = server_repo
    url = f"grpc://127.0.0.1:{running.port}"
    warm_file = tmp_path / "warm.yaml"
    warm_file.write_text('- pypi: {idna: ">=3"}\n- pypi: {six: "==1.17.0"}\n')

    def warm(*flags: str) -> dict[str, list[str]]:
        cli = CliRunner().invoke(app, ["cache", "warm", str(warm_file), "--server", url, *flags])
        assert cli.exit_code == 0, cli.output
        return {line.split()[1]: line.split() for line in cli.stdout.splitlines()}

    first = warm()
    assert {name: line[0] for name, line in first.items()} == {"idna": "built", "six": "built"}
    loose = running.index.entries()
    idna_id = next(row.spec_id for row in loose if row.image == first["idna"][3])
    when = resolved_at(target, idna_id)
    uploads = registry.uploads(repo)

    plain = warm()
    assert all(line[0] == "hit" and "again)" not in line for line in plain.values())
    assert resolved_at(target, idna_id) == when

    refreshed = warm("--refresh")
    assert refreshed["idna"][0] == "hit" and refreshed["idna"][-2:] == ["(resolved", "again)"]
    assert refreshed["six"][0] == "hit" and "again)" not in refreshed["six"]  # pinned
    assert refreshed["idna"][3] == first["idna"][3]  # the same image: nothing rebuilt
    assert resolved_at(target, idna_id) > when
    assert registry.uploads(repo) == uploads
