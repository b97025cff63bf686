"""A real S3-compatible server for the tests: moto's ThreadedMotoServer on 127.0.0.1.

Tests only ever talk to 127.0.0.1. Credentials are fake and come from the
environment (set here once, before any client is made); no region is set.
``shared_server()`` starts one server per test process on first use, so
``backends_under_test`` can build S3 backends without a pytest fixture;
``S3Server`` instances can also be started, stopped and restarted on their own
port for fault tests.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import socket
import threading
import uuid
from typing import Any

FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing-key", "AWS_SECRET_ACCESS_KEY": "testing-secret"}


def use_fake_credentials() -> None:
    """Put fake AWS credentials in the environment (real ones must never reach the test server)."""
    for name, value in FAKE_CREDENTIALS.items():
        os.environ[name] = value
    for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE"):
        os.environ.pop(name, None)


class S3Server:
    """One moto S3 server thread bound to 127.0.0.1 (``port=0`` picks a free port)."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self._server: Any = None

    def start(self) -> S3Server:
        from moto.server import ThreadedMotoServer

        use_fake_credentials()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request is noise
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        self.port = self._server.get_host_and_port()[1]  # keep it: a restart reuses the same address
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def storage_options(self, **extra: Any) -> dict[str, Any]:
        """The ObjectStoreBackend / fsspec options that reach this server."""
        return {"endpoint_url": self.endpoint_url, **extra}

    def new_bucket(self, prefix: str = "hcsvfs-test") -> str:
        """Create an empty bucket with a unique name and return the name."""
        import boto3

        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        client.create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> list[str]:
        """Every object key in ``bucket`` (raw, markers and temp keys included)."""
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        out: list[str] = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            out.extend(o["Key"] for o in page.get("Contents", []))
        return sorted(out)

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (for 'server down' tests)."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_shared: S3Server | None = None
_shared_lock = threading.Lock()


def shared_server() -> S3Server:
    """The test process's one long-lived server, started on first use and stopped at exit."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = S3Server().start()
            atexit.register(_shared.stop)
        return _shared


def new_s3_url(prefix: str = "root") -> tuple[str, dict[str, Any]]:
    """A fresh, empty ``s3://bucket/prefix`` URL on the shared server and the options to reach it."""
    server = shared_server()
    return f"s3://{server.new_bucket()}/{prefix}", server.storage_options()
