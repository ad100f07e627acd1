"""package_code: walk -> select -> hash -> deterministic tarball -> object store.

`package(request, ...)` does the work for a typed `PackageRequest` (what a service calls);
`package_code` is the keyword-option entry point that builds and checks one for it.
"""

import os
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import blake3

from packager import config
from packager.cancelling import cancel_token, reported
from packager.errors import CodePackagingException, local_failure
from packager.hashing import StatCache, digest_files, package_key
from packager.members import index_path
from packager.model import PackagedCode
from packager.request import PackageRequest
from packager.spool import MemberSpool
from packager.stores import CodeStore, open_store
from packager.tarball import Entry, write_tarball
from packager.walk import SourceFile, WalkReport, walk_root
from reprotar import END_OF_ARCHIVE, file_entry_size
from stagekit.cancel import CancelToken
from stagekit.files import exclusive
from stagekit.progress import Reporter

LOG_NAME = "bakery.packager"

_REQUEST_OPTIONS = ("store", "max_bytes", "excludes", "cache_dir")
"""Keyword options that are fields of the `PackageRequest`."""
_CALL_OPTIONS = ("progress", "events", "cancel", "timeout", "service")
"""Keyword options about the call: where its progress goes, when it must stop, which Bakery
server makes it."""


def source_roots(src_paths: tuple[str, ...]) -> list[Path]:
    """The src paths, checked to be directories on this machine now."""
    roots = [Path(path) for path in src_paths]
    for root in roots:
        if not root.exists():
            raise CodePackagingException(f"src path {str(root)!r} does not exist")
        if not root.is_dir():
            raise CodePackagingException(f"src path {str(root)!r} is not a directory")
    return roots


def _cache_name(roots: list[Path]) -> str:
    joined = "\0".join(str(root.resolve()) for root in roots)
    return blake3.blake3(joined.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def _merge(roots: list[Path], per_root: list[list[tuple[SourceFile, str]]]) -> list[Entry]:
    """One entry per package path; two roots giving different files at one path is an error."""
    chosen: dict[str, tuple[Entry, Path]] = {}
    for root, files in zip(roots, per_root, strict=True):
        for source, digest in files:
            entry = Entry(source.relative, source.executable, digest, source.size, source.path)
            earlier = chosen.get(entry.relative)
            if earlier is None:
                chosen[entry.relative] = (entry, root)
            elif earlier[0].identity != entry.identity:
                raise CodePackagingException(
                    f"{entry.relative!r} comes from two src paths with different contents: "
                    f"{earlier[1] / entry.relative} and {root / entry.relative}; "
                    "rename one or drop one of the src paths"
                )
    return sorted((entry for entry, _ in chosen.values()), key=lambda entry: entry.relative)


def check_size(entries: list[Entry], limit: int, reporter: Reporter) -> None:
    """Refuse a package over `limit`, warn above WARN_BYTES. The limit counts the whole
    uncompressed tar stream, as fetch_code does when it unpacks."""
    total = len(END_OF_ARCHIVE) + sum(file_entry_size(e.relative, e.size) for e in entries)
    if total <= config.WARN_BYTES and total <= limit:
        return
    largest = sorted(entries, key=lambda entry: entry.size, reverse=True)[:10]
    listing = "; ".join(f"{entry.relative} ({entry.size / 1e6:.1f} MB)" for entry in largest)
    if total > limit:
        raise CodePackagingException(
            f"code package is {total / 1e6:.1f} MB, over the {limit / 1e6:.1f} MB limit "
            f"(BAKERY_CODE_MAX_BYTES). Largest files: {listing}. "
            "Exclude them with .bakeryignore or narrow `suffixes`."
        )
    reporter.warn(f"code package is large: {total / 1e6:.1f} MB. Largest files: {listing}")


def package_code(
    src_paths: Sequence[str | os.PathLike[str]],
    suffixes: Sequence[str] | None = None,
    logger: Callable[[str], Any] | None = None,
    **options: Any,
) -> PackagedCode:
    """Package the files under `src_paths` into a content-addressed tarball in a code store.

    The contents of every src path land at the package root. Options: `store` (URL; default
    BAKERY_CODE_STORE), `max_bytes` (default BAKERY_CODE_MAX_BYTES), `excludes` (replaces the
    built-in ignore patterns), `cache_dir`; `progress` (callback (stage, done, total)),
    `events` (callback receiving each `Progress` / `LogLine` event), `cancel` (a
    `CancelToken`) or `timeout` (seconds): a cancelled call raises CodePackagingException
    of kind cancelled / deadline_exceeded and stores nothing. `service` (default
    BAKERY_URL): a Bakery server, grpc://host:port or grpcs://host:port, that makes the
    package and stores it in its own code store (`packager.remote`).
    """
    unknown = set(options) - {*_REQUEST_OPTIONS, *_CALL_OPTIONS}
    if unknown:
        raise CodePackagingException(
            f"unknown option(s) {sorted(unknown)}; known options: "
            f"{sorted({*_REQUEST_OPTIONS, *_CALL_OPTIONS})}"
        )
    fields = {name: options[name] for name in _REQUEST_OPTIONS if options.get(name) is not None}
    if suffixes is not None:
        fields["suffixes"] = suffixes
    request = PackageRequest(src_paths, **fields)  # type: ignore[arg-type]  # it normalizes
    reporter = Reporter(
        LOG_NAME,
        _callable(logger, "logger"),
        _callable(options.get("progress"), "progress"),
        _callable(options.get("events"), "events"),
    )
    cancel = cancel_token(options.get("cancel"), options.get("timeout"))
    service = _service(options.get("service"), request)
    if service:
        from packager.remote import package_remote

        return package_remote(request, service, reporter=reporter, cancel=cancel)
    return package(request, reporter=reporter, cancel=cancel)


def _service(value: Any, request: PackageRequest) -> str | None:
    """The Bakery server to package on: `service=`, else BAKERY_URL, else none (here)."""
    if value is not None and not isinstance(value, str):
        raise CodePackagingException(f"service must be a grpc:// or grpcs:// URL, got {value!r}")
    service = value or os.environ.get("BAKERY_URL")
    if service and request.store:
        source = "service=" if value else "BAKERY_URL"
        raise CodePackagingException(
            f"store={request.store!r} and a Bakery server ({source} {service}) were both given: "
            "the server stores packages in its own code store; drop one of them"
        )
    return service or None


def _callable(value: Any, name: str) -> Any:
    if value is not None and not callable(value):
        raise CodePackagingException(f"{name} must be a function, got {value!r}")
    return value


def package(
    request: PackageRequest,
    *,
    reporter: Reporter | None = None,
    cancel: CancelToken | None = None,
) -> PackagedCode:
    """Make the package `request` describes and store it. `reporter` receives messages,
    progress and events; `cancel` is checked between files, members and before the upload.
    """
    with reported(f"packaging {', '.join(request.src_paths)}"):
        return _package(request, reporter or Reporter(LOG_NAME), cancel or CancelToken())


def _package(request: PackageRequest, reporter: Reporter, cancel: CancelToken) -> PackagedCode:
    roots = source_roots(request.src_paths)
    cache_root = request.cache_root()
    store = open_store(request.store_url())
    limit = request.size_limit()
    workdir = cache_root / "packages" / _cache_name(roots)
    spool = MemberSpool(workdir / f".spool-{uuid.uuid4().hex}.members")
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        entries = select_entries(
            request,
            roots,
            reporter,
            cancel,
            lambda missing, on_hashed: spool.hash_files(missing, on_hashed, cancel),
        )
        check_size(entries, limit, reporter)
        return store_entries(entries, store, workdir, [spool.path], reporter, cancel)
    except OSError as error:  # the cache's filesystem, or a source file that cannot be read
        raise local_failure(error, f"package {', '.join(map(str, roots))}") from error
    finally:
        spool.discard()


HashMissing = Callable[[list[SourceFile], Callable[[int], None]], list[str]]
"""Digests of the files the stat cache does not know, reporting bytes hashed as it goes."""


def select_entries(
    request: PackageRequest,
    roots: list[Path],
    reporter: Reporter,
    cancel: CancelToken,
    hash_missing: HashMissing,
) -> list[Entry]:
    """The package's files, sorted, with their digests: walk each root with the request's
    suffixes and ignore rules, take digests from the stat cache or `hash_missing`, merge
    the roots. A remote package walks and hashes with this too, so both select alike."""
    report = WalkReport()
    walked = [
        list(walk_root(root, request.suffixes, request.excludes, reporter.warn, report, cancel))
        for root in roots
    ]
    total_bytes = sum(source.size for files in walked for source in files)
    file_count = sum(map(len, walked))
    reporter.info(
        f"Found {file_count} files ({total_bytes / 1e6:.1f} MB) in {len(roots)} src path(s)"
    )
    on_hashed = reporter.meter("hash", total_bytes)
    cache_root = request.cache_root()
    per_root = []
    for root, files in zip(roots, walked, strict=True):
        cache = StatCache(cache_root / "stat" / f"{_cache_name([root])}.marshal")
        digests = digest_files(files, cache, lambda missing: hash_missing(missing, on_hashed))
        per_root.append(list(zip(files, digests, strict=True)))
    entries = _merge(roots, per_root)
    if not entries:
        raise CodePackagingException(
            f"nothing to package in {', '.join(map(str, roots))}: no file matched suffixes "
            f"{' '.join(request.suffixes)} after ignore rules "
            f"({'; '.join(sorted(report.ignore_files))}); "
            f"{report.skipped} path(s) were skipped"
        )
    return entries


def store_entries(
    entries: list[Entry],
    store: CodeStore,
    workdir: Path,
    reuse_from: list[Path],
    reporter: Reporter,
    cancel: CancelToken,
) -> PackagedCode:
    """Store the package of sorted `entries` (each read from its `path`) unless `store`
    holds its key already. Builds in `workdir` take turns (its lock file) and copy members
    from the previous tarball there and from the indexed files `reuse_from`."""
    key = package_key(entry.identity for entry in entries)
    url = store.url(key)
    # One build at a time per workdir: a build reads the previous tarball and removes it
    # when done, which a concurrent build there must not see half-way.
    with exclusive(workdir / ".lock"):
        cancel.check()
        if store.exists(key):
            reporter.info(f"Package {key} is already stored at {url}")
            return PackagedCode(url, key)
        tarball = _build(entries, key, workdir, reuse_from, reporter, cancel)
        reporter.info(f"Uploading {tarball.stat().st_size / 1e6:.1f} MB to {url}")
        cancel.check()
        store.put(key, tarball)
    reporter.info(f"Packaged {len(entries)} files as {key}")
    return PackagedCode(url, key)


def _build(
    entries: list[Entry],
    key: str,
    workdir: Path,
    reuse_from: list[Path],
    reporter: Reporter,
    cancel: CancelToken,
) -> Path:
    """Write the tarball for `entries` into `workdir`, copying members from the previous
    tarball there and from `reuse_from`; older tarballs (and a killed build's hidden temporary
    ones) are removed once this one exists. The caller holds the workdir's lock."""
    target = workdir / f"{key}.tar.gz"
    archives = sorted(workdir.glob("*.tar.gz"), key=lambda path: path.stat().st_mtime_ns)
    older = [path for path in archives if not path.name.startswith(".")]
    temporary = workdir / f".{uuid.uuid4().hex}.tar.gz"
    on_bytes = reporter.meter("tar", sum(entry.size for entry in entries))
    try:
        reused, compressed = write_tarball(
            entries, temporary, [*older[-1:], *reuse_from], on_bytes, cancel
        )
        os.replace(index_path(temporary), index_path(target))
        os.replace(temporary, target)
    except OSError as error:
        raise local_failure(error, f"write the tarball in {workdir}") from error
    finally:
        temporary.unlink(missing_ok=True)
        index_path(temporary).unlink(missing_ok=True)
    reporter.info(f"Wrote tarball: {reused} files copied as compressed, {compressed} compressed")
    for stale in archives:
        if stale != target:
            stale.unlink(missing_ok=True)
            index_path(stale).unlink(missing_ok=True)
    return target
