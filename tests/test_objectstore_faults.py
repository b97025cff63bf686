"""ObjectStoreBackend under faults: a server that dies mid-batch, bad credentials, endpoints that hang.

Each test has a pytest-timeout: a hang is a failure, which is the point of
bounded timeouts (speed itself is never asserted in tests).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import numpy as np
import pytest

from hcsvfs.backends.objectstore import ObjectStoreBackend, ObjectStoreError, ObjectStorePermissionError
from hcsvfs.errors import StorageError
from s3_server import S3Server, free_port

pytestmark = pytest.mark.s3

# One quick attempt: these tests are about failing fast, not about riding out a blip.
FAST_FAIL = {"config_kwargs": {"connect_timeout": 1, "read_timeout": 1, "retries": {"max_attempts": 1}}}


def img(seed: int) -> np.ndarray:
    return np.full((32, 32), seed, dtype=np.uint16)


@pytest.fixture
def own_server() -> Iterator[S3Server]:
    """A server of this test's own, which the test may stop and restart."""
    server = S3Server().start()
    yield server
    server.stop()


@pytest.mark.timeout(120)
def test_server_stopped_mid_batch_then_restarted_rerun_is_clean(own_server: S3Server) -> None:
    bucket = own_server.new_bucket()
    b = ObjectStoreBackend(f"s3://{bucket}/run", **own_server.storage_options(**FAST_FAIL))
    b.ensure_directory("plate")
    paths = [f"plate/f{i:02d}.npy" for i in range(12)]
    real_put = b._put_bytes
    puts = 0

    def dying_put(key: str, data: bytes, *, overwrite: bool) -> None:
        nonlocal puts
        puts += 1
        if puts == 6:
            own_server.stop()  # the server goes away in the middle of the batch
        real_put(key, data, overwrite=overwrite)

    b._put_bytes = dying_put  # type: ignore[method-assign]
    with pytest.raises(ObjectStoreError) as info:
        b.save_batch([img(i) for i in range(12)], paths)
    err = info.value
    assert isinstance(err, StorageError) and isinstance(err, OSError)
    assert "plate/f05.npy" in str(err) and bucket in str(err) and "reachable" in str(err)

    own_server.start()  # same port; moto keeps its objects, like a restarted S3 service
    b._put_bytes = real_put  # type: ignore[method-assign]
    done = [p for p in paths if b.exists(p)]
    assert done == paths[:5]  # the first five completed, nothing half-written is visible
    todo = [p for p in paths if p not in done]
    b.save_batch([img(int(p[-6:-4])) for p in todo], todo)  # the rerun only writes what is missing

    keys = own_server.keys(bucket)
    assert keys == sorted(["run/plate/.hcsvfs-dir", *[f"run/{p}" for p in paths]])  # no duplicates, no temp keys
    for i, p in enumerate(paths):
        assert np.array_equal(b.load(p), img(i)), p  # none corrupt


@pytest.mark.timeout(60)
def test_wrong_credentials_are_a_clear_permission_error(own_server: S3Server) -> None:
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    bucket = own_server.new_bucket()
    previous = settings.INITIAL_NO_AUTH_ACTION_COUNT
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0  # from now on moto checks signatures against its IAM users
    ActionAuthenticatorMixin.request_count = 0
    try:
        b = ObjectStoreBackend(
            f"s3://{bucket}/x", key="AKIAWRONGWRONGWRONG", secret="not-the-secret", **own_server.storage_options()
        )
        with pytest.raises(ObjectStorePermissionError) as info:
            b.save(img(1), "x.npy")
        assert isinstance(info.value, PermissionError) and isinstance(info.value, StorageError)
        message = str(info.value)
        assert "credentials" in message and bucket in message and "not-the-secret" not in message
        with pytest.raises(PermissionError):
            b.list_files(".")
    finally:
        settings.INITIAL_NO_AUTH_ACTION_COUNT = previous


@pytest.mark.timeout(60)
def test_nothing_listening_fails_fast() -> None:
    b = ObjectStoreBackend("s3://bucket/x", endpoint_url=f"http://127.0.0.1:{free_port()}", **FAST_FAIL)
    with pytest.raises(ObjectStoreError, match="reachable"):
        b.save(img(1), "x.npy")
    with pytest.raises(ObjectStoreError):
        b.load("x.npy")


@pytest.mark.timeout(60)
def test_a_server_that_never_answers_times_out() -> None:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # accepts connections (kernel backlog) but never sends a byte
        port = silent.getsockname()[1]
        b = ObjectStoreBackend("s3://bucket/x", endpoint_url=f"http://127.0.0.1:{port}", **FAST_FAIL)
        with pytest.raises(ObjectStoreError, match="reachable"):
            b.stat("x.npy")


def test_default_s3_options_bound_timeouts_and_keep_no_listing_cache() -> None:
    b = ObjectStoreBackend("s3://bucket/x", endpoint_url="http://127.0.0.1:1")
    config = b.fs.config_kwargs
    assert config["connect_timeout"] <= 10 and config["read_timeout"] <= 120
    assert config["retries"]["max_attempts"] <= 5 and b.fs.retries <= 5
    assert b.fs.dircache.use_listings_cache is False  # other workers change the bucket; never trust a stale listing
    custom = ObjectStoreBackend("s3://bucket/x", endpoint_url="http://127.0.0.1:1", config_kwargs={"read_timeout": 2})
    assert custom.fs.config_kwargs["read_timeout"] == 2  # the caller's value wins...
    assert custom.fs.config_kwargs["connect_timeout"] == config["connect_timeout"]  # ...the other defaults stay


@pytest.mark.s3
def test_the_retry_setting_stays_on_our_own_s3fs_instance() -> None:
    """s3fs caches file systems by their options: setting retries on the cached one would change it for every
    other user of s3fs with the same endpoint in the process."""
    import pickle

    import s3fs

    from s3_server import new_s3_url

    from hcsvfs.backends.objectstore import fsspec_options

    url, options = new_s3_url()
    same = fsspec_options(url, options)  # exactly the options the backend gives s3fs
    theirs = s3fs.S3FileSystem(**same)  # someone else's
    default = theirs.retries
    ours = ObjectStoreBackend(url, **options)
    assert ours.fs.retries == 2 and ours.fs is not theirs
    assert s3fs.S3FileSystem(**same) is theirs and theirs.retries == default != 2
    again = pickle.loads(pickle.dumps(ours))  # a worker's copy has the setting too, on an instance of its own
    assert again.fs.retries == 2 and again.fs is not theirs and theirs.retries == default
