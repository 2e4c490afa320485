"""Real PostgreSQL, Redis and S3 peers for the scale-out tests.

PostgreSQL and Redis must run on 127.0.0.1 (5432, 6379). Without them these
tests skip, saying how to run them; with AEROVISION_REQUIRE_SERVICES=1 (CI)
they fail instead. S3 is moto's standalone server, started by the tests.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.server import free_port

PG_ADMIN_URL = os.environ.get("AEROVISION_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("AEROVISION_TEST_REDIS", "redis://127.0.0.1:6379/0")
HOW_TO = (
    "start PostgreSQL and Redis on 127.0.0.1 (ports 5432 and 6379; see .ci/run), "
    "or set AEROVISION_TEST_PG / AEROVISION_TEST_REDIS"
)


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def require(port: int, what: str) -> None:
    """Skip (or, in CI, fail) when a required server is not answering."""
    if _answers(port):
        return
    message = f"{what} is not answering on 127.0.0.1:{port}: {HOW_TO}"
    if os.environ.get("AEROVISION_REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database; dropped afterwards."""
    require(5432, "PostgreSQL")
    import psycopg

    name = f"aerovision_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def redis_prefix() -> Iterator[str]:
    """A key prefix of our own on the test Redis; its keys are deleted afterwards."""
    require(6379, "Redis")
    import redis

    prefix = f"aerovision-test-{uuid.uuid4().hex[:8]}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)
    client.close()


class MotoServer:
    """moto's S3-compatible server on a free port (a real HTTP peer, not a mock object)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while not _answers(self.port):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("moto server did not start")
            time.sleep(0.1)

    def new_bucket(self) -> str:
        import boto3

        name = f"aerovision-{uuid.uuid4().hex[:10]}"
        boto3.client("s3", **self.credentials()).create_bucket(Bucket=name)
        return name

    def credentials(self) -> dict[str, str]:
        return {
            "endpoint_url": self.url,
            "aws_access_key_id": "test",
            "aws_secret_access_key": "test",
            "region_name": "us-east-1",
        }

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
