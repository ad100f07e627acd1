"""The upgrade lock: one deployment of an app at a time, across processes on this machine.

A deployment claims the app's record before it starts anything and checks, at every
readiness poll, that the claim is still its own. Another deployment finding a live claim
fails with `AppUpgradeInProgressException` unless it passes `force_upgrade=True`, which takes
the claim over; the deployment that lost it then fails with `AppConcurrentUpgradeException`.
A claim whose holder died (same host, pid gone) or whose deadline passed is stale and free.
"""

import os
import socket
import time
import uuid

from deployer.exceptions import AppConcurrentUpgradeException, AppUpgradeInProgressException
from deployer.host.procfs import running
from deployer.orchestration.records import AppRecord, RecordStore, Upgrade, whoami

_GRACE = 60.0
"""Seconds past max_wait_time after which a claim is stale even if its holder lives."""


def _stale(upgrade: Upgrade) -> bool:
    if time.time() > upgrade.expires_at:
        return True
    return upgrade.host == socket.gethostname() and not running(upgrade.pid)


def claim(
    store: RecordStore, name: str, version: str, *, force: bool, max_wait_time: float
) -> Upgrade:
    """Claim `name` for deploying `version`; creates the record on a first deploy."""
    with store.locked(name):
        record = store.get(name) or AppRecord.new(name, store.runtime)
        held = record.upgrade
        if held is not None and not force and not _stale(held):
            raise AppUpgradeInProgressException(name, held.by)
        now = time.time()
        upgrade = Upgrade(
            id=uuid.uuid4().hex,
            version=version,
            by=whoami(),
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=now,
            expires_at=now + max_wait_time + _GRACE,
        )
        record.upgrade = upgrade
        record.attempted_version = version
        store.put(record)
    return upgrade


def still_ours(record: AppRecord, upgrade: Upgrade) -> None:
    """Raise `AppConcurrentUpgradeException` when another deployment took the app over."""
    held = record.upgrade
    if held is not None and held.id == upgrade.id:
        return
    actual = held.version if held is not None else record.version
    raise AppConcurrentUpgradeException(
        record.name,
        upgrade.version,
        actual or "(none)",
        modified_by=held.by if held is not None else None,
        modified_at=time.ctime(held.started_at) if held is not None else None,
    )


def release(store: RecordStore, name: str, upgrade: Upgrade) -> AppRecord | None:
    """Drop the claim if it is still ours; returns the record (None if the app was deleted)."""
    with store.locked(name):
        record = store.get(name)
        if record is not None and record.upgrade is not None and record.upgrade.id == upgrade.id:
            record.upgrade = None
            store.put(record)
    return record
