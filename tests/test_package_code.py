"""package_code end to end against real stores: a local directory and S3 over HTTP."""

import gzip
import hashlib
import os
import shutil
import socket
import subprocess
import tarfile
from pathlib import Path

import pytest

from packager import CodePackagingException, PackagedCode, fetch_code, package_code


def write(root: Path, relative: str, content: str | bytes = "x", executable: bool = False) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    path.chmod(0o755 if executable else 0o644)
    return path


def packaged_paths(package: PackagedCode) -> list[str]:
    """The paths inside a local package's tarball, in archive order."""
    with tarfile.open(package.url.removeprefix("file://"), "r:gz") as archive:
        return archive.getnames()


pytestmark = pytest.mark.usefixtures("isolated_cache")


@pytest.fixture
def store(tmp_path) -> str:
    return str(tmp_path / "store")


@pytest.fixture
def app_tree(tmp_path) -> Path:
    root = tmp_path / "app"
    write(root, "server.py", "print('serving')\n")
    write(root, "run.py", "#!/usr/bin/env python\n", executable=True)
    write(root, "templates/index.html", "<h1>hi</h1>")
    write(root, "conf/settings.yaml", "debug: false\n")
    write(root, "data.bin", b"\0binary")  # not a default suffix
    return root


def test_package_and_fetch_roundtrip_keeps_contents_and_executable_bit(app_tree, store, tmp_path):
    package = package_code([str(app_tree)], store=store)

    assert package.url.endswith(f"/{package.key[:2]}/{package.key}.tar.gz")
    assert packaged_paths(package) == [
        "conf/settings.yaml",
        "run.py",
        "server.py",
        "templates/index.html",
    ]
    dest = fetch_code(package.url, package.key, tmp_path / "fetched")
    assert (dest / "server.py").read_text() == "print('serving')\n"
    assert os.stat(dest / "run.py").st_mode & 0o777 == 0o755
    assert os.stat(dest / "server.py").st_mode & 0o777 == 0o644
    assert not (dest / "data.bin").exists()


def test_tarball_is_deterministic(store, tmp_path):
    """Same files written in different orders with different mtimes: same key and bytes."""
    files = {f"pkg/mod{i}.py": f"value = {i}\n" for i in range(30)} | {"main.py": "import pkg"}
    first, second = tmp_path / "first", tmp_path / "second"
    for index, (relative, content) in enumerate(files.items()):
        os.utime(write(first, relative, content), ns=(10**18, 10**18 + index))
    for index, (relative, content) in enumerate(reversed(files.items())):
        os.utime(write(second, relative, content), ns=(10**9, 10**9 * index))

    one = package_code([str(first)], store=str(tmp_path / "store-1"), cache_dir=tmp_path / "c1")
    two = package_code([str(second)], store=str(tmp_path / "store-2"), cache_dir=tmp_path / "c2")

    assert one.key == two.key
    tarball_1 = Path(one.url.removeprefix("file://")).read_bytes()
    tarball_2 = Path(two.url.removeprefix("file://")).read_bytes()
    assert tarball_1 == tarball_2
    assert gzip.decompress(tarball_1)[136:148] == b"00000000000\0"  # tar mtime field is 0
    assert tarball_1[4:8] == b"\0\0\0\0"  # gzip header mtime is 0


def test_incremental_build_gives_the_bytes_of_a_cold_build(app_tree, store, tmp_path):
    package_code([str(app_tree)], store=store)
    write(app_tree, "server.py", "print('changed')\n")
    incremental = package_code([str(app_tree)], store=store)

    cold = package_code([str(app_tree)], store=str(tmp_path / "cold"), cache_dir=tmp_path / "c")

    assert cold.key == incremental.key
    assert (
        Path(cold.url.removeprefix("file://")).read_bytes()
        == Path(incremental.url.removeprefix("file://")).read_bytes()
    )


def test_unchanged_tree_is_not_read_again(app_tree, store):
    hashed: list[int] = []

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "hash":
            hashed.append(done)

    for path in app_tree.rglob("*"):  # older than the racy-write window, so cacheable
        os.utime(path, ns=(10**18, 10**18))
    first = package_code([str(app_tree)], store=store, progress=progress)
    assert hashed, "a cold package hashes its files"
    hashed.clear()
    second = package_code([str(app_tree)], store=store, progress=progress)
    assert second == first
    assert hashed == []


def test_key_changes_with_content_path_and_executable_bit(app_tree, store):
    base = package_code([str(app_tree)], store=store).key
    (app_tree / "server.py").chmod(0o755)
    executable = package_code([str(app_tree)], store=store).key
    (app_tree / "server.py").rename(app_tree / "server2.py")
    renamed = package_code([str(app_tree)], store=store).key
    assert len({base, executable, renamed}) == 3


def test_suffixes_replace_the_defaults(app_tree, store):
    package = package_code([str(app_tree)], suffixes=[".bin"], store=store)
    assert packaged_paths(package) == ["data.bin"]


def test_contents_of_several_src_paths_land_at_the_root(tmp_path, store):
    write(tmp_path / "a", "server.py", "a")
    write(tmp_path / "b", "lib/util.py", "b")
    write(tmp_path / "b", "server.py", "a")  # identical file at the same path: fine
    package = package_code([str(tmp_path / "a"), str(tmp_path / "b")], store=store)
    assert packaged_paths(package) == ["lib/util.py", "server.py"]


def test_two_src_paths_with_different_files_at_one_path_is_an_error(tmp_path, store):
    write(tmp_path / "a", "server.py", "one")
    write(tmp_path / "b", "server.py", "two")
    with pytest.raises(CodePackagingException) as raised:
        package_code([str(tmp_path / "a"), str(tmp_path / "b")], store=store)
    message = str(raised.value)
    assert str(tmp_path / "a" / "server.py") in message
    assert str(tmp_path / "b" / "server.py") in message


def test_gitignore_rules_nest_and_negate(tmp_path, store):
    root = tmp_path / "app"
    write(root, ".gitignore", "*.log.txt\nbuild/\nsecret*.py\n")
    write(root, "app.py")
    write(root, "debug.log.txt")
    write(root, "build/out.py")
    write(root, "secret_keys.py")
    write(root, "pkg/.gitignore", "!keep.log.txt\ngenerated.py\n")
    write(root, "pkg/keep.log.txt")
    write(root, "pkg/other.log.txt")
    write(root, "pkg/generated.py")
    write(root, "pkg/mod.py")
    write(root, ".bakeryignore", "tests/\n!secret_public.py\n")
    write(root, "tests/test_app.py")
    write(root, "secret_public.py")

    package = package_code([str(root)], store=store)

    assert packaged_paths(package) == [
        "app.py",
        "pkg/keep.log.txt",
        "pkg/mod.py",
        "secret_public.py",
    ]


def test_default_excludes_and_how_to_override_them(tmp_path, store):
    root = tmp_path / "app"
    write(root, "app.py")
    for skipped in (".git/hooks/x.py", "__pycache__/m.py", ".venv/lib/y.py", "node_modules/a/b.js"):
        write(root, skipped)
    assert packaged_paths(package_code([str(root)], store=store)) == ["app.py"]

    write(root, ".bakeryignore", "!node_modules/\n")
    assert packaged_paths(package_code([str(root)], store=store)) == [
        "app.py",
        "node_modules/a/b.js",
    ]
    everything = package_code([str(root)], store=store, excludes=[])
    assert ".git/hooks/x.py" in packaged_paths(everything)


def test_hidden_directories_above_the_root_do_not_count(tmp_path, store):
    root = tmp_path / ".worktrees" / "feature" / ".venv-not" / "src"
    write(root, "app.py")
    package = package_code([str(root)], store=store)
    assert packaged_paths(package) == ["app.py"]


def test_symlinks_inside_the_tree_are_followed_with_cycle_detection(tmp_path, store, caplog):
    root = tmp_path / "app"
    write(root, "real/mod.py", "module")
    (root / "alias.py").symlink_to("real/mod.py")
    (root / "linked").symlink_to("real")
    (root / "real" / "loop").symlink_to("..")
    (root / "dangling.py").symlink_to("missing.py")

    package = package_code([str(root)], store=store)

    assert packaged_paths(package) == ["alias.py", "linked/mod.py", "real/mod.py"]
    warnings = caplog.text
    assert "symlink cycle" in warnings
    assert "broken symlink" in warnings


def test_symlink_leaving_the_root_is_refused(tmp_path, store):
    root = tmp_path / "app"
    write(root, "app.py")
    write(tmp_path, "outside/credentials.py", "secret")
    (root / "creds.py").symlink_to(tmp_path / "outside" / "credentials.py")
    with pytest.raises(CodePackagingException, match=r"creds\.py is a symlink to .*outside"):
        package_code([str(root)], store=store)


def test_sockets_are_skipped_with_a_warning(tmp_path, store, caplog):
    root = tmp_path / "app"
    write(root, "app.py")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(root / "control.py"))
    try:
        package = package_code([str(root)], store=store)
    finally:
        server.close()
    assert packaged_paths(package) == ["app.py"]
    assert "not a regular file" in caplog.text


@pytest.mark.parametrize(
    ("src_paths", "match"),
    [
        ([], "src_paths is empty"),
        ("./src", "not a single path"),
        (["/no/such/dir"], "'/no/such/dir' does not exist"),
    ],
)
def test_bad_src_paths(src_paths, match, store):
    with pytest.raises(CodePackagingException, match=match):
        package_code(src_paths, store=store)


def test_src_path_that_is_a_file(tmp_path, store):
    write(tmp_path, "file.py")
    with pytest.raises(CodePackagingException, match="is not a directory"):
        package_code([str(tmp_path / "file.py")], store=store)


def test_nothing_matched_says_which_rules_applied(tmp_path, store):
    root = tmp_path / "app"
    write(root, "notes.log")
    write(root, "ignored.py")
    write(root, ".gitignore", "ignored.py\n")
    with pytest.raises(CodePackagingException) as raised:
        package_code([str(root)], store=store)
    message = str(raised.value)
    assert ".py .txt" in message
    assert ".gitignore" in message
    assert "node_modules/" in message


def test_bad_options(app_tree, store):
    with pytest.raises(CodePackagingException, match="unknown option"):
        package_code([str(app_tree)], store=store, compress_level=9)
    with pytest.raises(CodePackagingException, match="not a string"):
        package_code([str(app_tree)], suffixes=".py", store=store)
    with pytest.raises(CodePackagingException, match="unsupported store URL"):
        package_code([str(app_tree)], store="ftp://host/dir")


def test_size_limit_names_the_largest_files(tmp_path, store):
    root = tmp_path / "app"
    for index in range(12):
        write(root, f"blob{index:02}.txt", b"a" * (1000 * (index + 1)))
    with pytest.raises(CodePackagingException) as raised:
        package_code([str(root)], store=store, max_bytes=50_000)
    message = str(raised.value)
    assert "78.0 KB" not in message and "0.1 MB" in message
    assert "blob11.txt" in message and "blob02.txt" in message
    assert "blob01.txt" not in message  # only the ten largest are listed


def test_large_package_warns(tmp_path, store, caplog):
    root = tmp_path / "app"
    root.mkdir()
    with open(root / "big.txt", "wb") as handle:  # sparse: cheap to make, real to package
        handle.truncate(101 * 1000 * 1000)
    package = package_code([str(root)], store=store)
    assert "code package is large: 101.0 MB" in caplog.text
    dest = fetch_code(package.url, package.key, tmp_path / "out")
    assert (dest / "big.txt").stat().st_size == 101 * 1000 * 1000


def test_logger_receives_progress_messages(app_tree, store):
    messages: list[str] = []
    package_code([str(app_tree)], store=store, logger=messages.append)
    assert any(message.startswith("Found 4 files") for message in messages)
    assert any(message.startswith("Packaged 4 files") for message in messages)


def test_s3_store_roundtrip_and_skip_when_present(app_tree, s3_bucket, s3_endpoint, tmp_path):
    url = f"s3://{s3_bucket}/team/code"
    package = package_code([str(app_tree)], store=url)
    assert package.url == f"s3://{s3_bucket}/team/code/{package.key[:2]}/{package.key}.tar.gz"

    client = s3_endpoint.client()
    listed = client.list_objects_v2(Bucket=s3_bucket)["Contents"]
    assert [item["Key"] for item in listed] == [package.url.split("/", 3)[3]]
    modified = listed[0]["LastModified"]

    messages: list[str] = []
    again = package_code([str(app_tree)], store=url, logger=messages.append)
    assert again == package
    assert any("already stored" in message for message in messages)
    assert client.head_object(Bucket=s3_bucket, Key=listed[0]["Key"])["LastModified"] == modified

    dest = fetch_code(package.url, package.key, tmp_path / "from-s3")
    assert (dest / "templates" / "index.html").read_text() == "<h1>hi</h1>"


def test_s3_endpoint_down_names_the_endpoint(app_tree, monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{port}")
    with pytest.raises(CodePackagingException, match=f"127.0.0.1:{port}.*unreachable"):
        package_code([str(app_tree)], store="s3://bucket/code")


def test_s3_missing_bucket(app_tree, s3_bucket):
    with pytest.raises(CodePackagingException, match="bucket does not exist"):
        package_code([str(app_tree)], store=f"{s3_bucket}-missing".join(["s3://", "/x"]))


def test_fetch_refuses_a_non_empty_destination(app_tree, store, tmp_path):
    package = package_code([str(app_tree)], store=store)
    write(tmp_path / "busy", "keep.txt")
    with pytest.raises(CodePackagingException, match="not an empty directory"):
        fetch_code(package.url, package.key, tmp_path / "busy")
    assert (tmp_path / "busy" / "keep.txt").exists()


def test_fetch_of_a_missing_object(tmp_path):
    url = (tmp_path / "store" / "ab" / ("ab" + "0" * 62 + ".tar.gz")).as_uri()
    with pytest.raises(CodePackagingException, match="no code package at"):
        fetch_code(url, "ab" + "0" * 62, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_package_and_fetch(app_tree, store, tmp_path):
    import json

    from typer.testing import CliRunner

    from frontends.cli import app

    runner = CliRunner()
    packaged = runner.invoke(app, ["package", str(app_tree), "--store", store, "--json"])
    assert packaged.exit_code == 0, packaged.output
    result = json.loads(packaged.stdout)
    fetched = runner.invoke(app, ["fetch", result["url"], str(tmp_path / "cli-out")])
    assert fetched.exit_code == 0, fetched.output
    assert (tmp_path / "cli-out" / "server.py").exists()

    missing = runner.invoke(app, ["package", str(tmp_path / "nope")])
    assert missing.exit_code == 1
    assert "does not exist" in missing.output
    assert "Traceback" not in missing.output


def test_hash_of_tarball_is_stable_across_runs(app_tree, tmp_path):
    """Re-packaging into a fresh store and cache reproduces the exact bytes (sha256)."""
    digests = set()
    for run in range(2):
        package = package_code(
            [str(app_tree)], store=str(tmp_path / f"s{run}"), cache_dir=tmp_path / f"c{run}"
        )
        digests.add(hashlib.sha256(Path(package.url[7:]).read_bytes()).hexdigest())
        shutil.rmtree(tmp_path / f"c{run}")
    assert len(digests) == 1


def test_gitignore_lines_git_cannot_use_match_nothing_as_in_git(tmp_path, store):
    """A lone `!` or `\\`, or a trailing backslash: git accepts the file and the line matches
    nothing. The expected selection is git's own (`git ls-files --others --exclude-standard`)."""
    root = tmp_path / "app"
    write(root, ".gitignore", "!\n\\\n!\\\nfoo.py\\\nignored.py\n")
    for name in ("app.py", "ignored.py", "foo.py", "!", "\\"):
        write(root, name)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    listed = subprocess.run(
        ["git", "-C", str(root), "ls-files", "--others", "--exclude-standard", "-z"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\0")
    expected = sorted(name for name in listed if name and name != ".gitignore")

    package = package_code([str(root)], suffixes=[".py", "!", "\\"], store=store)

    assert packaged_paths(package) == expected == ["!", "\\", "app.py", "foo.py"]
