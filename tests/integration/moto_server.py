"""moto's S3 in server mode, on 127.0.0.1 only, for the S3 archive tests.

`ThreadedMotoServer(ip_address="127.0.0.1", port=0)` binds the loopback address only and
lets the OS pick a free port (no probing, no race). It runs in a thread of the test
process, so nothing is left behind: teardown resets moto's state and shuts the server
down. Fake credentials and empty AWS config files keep ~/.aws and the network out.

Use: import the fixtures into a test module
    from tests.integration.moto_server import moto_endpoint, s3_bucket_name  # noqa: F401
"""
from __future__ import annotations

import logging
import os
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from moto.server import ThreadedMotoServer

REGION = "eu-central-1"
ACCESS_KEY = "testing"
SECRET_KEY = "testing"

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": ACCESS_KEY,
    "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}
UNSET_ENV = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")


@contextmanager
def running_moto() -> Iterator[str]:
    """A moto server on 127.0.0.1:<free port>; yields its endpoint URL, stops it after."""
    werkzeug_log = logging.getLogger("werkzeug")
    old_level = werkzeug_log.level
    werkzeug_log.setLevel(logging.WARNING)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        yield endpoint
    finally:
        try:  # moto's backends live in this process: leave them empty for the next module
            urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"),
                                   timeout=5).close()
        finally:
            server.stop()
            werkzeug_log.setLevel(old_level)


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """One moto S3 server per test module, with fake credentials in the environment."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in FAKE_AWS_ENV.items():
            patch.setenv(name, value)
        for name in UNSET_ENV:
            patch.delenv(name, raising=False)
        with running_moto() as endpoint:
            yield endpoint


@pytest.fixture
def s3_bucket_name() -> str:
    """A fresh bucket name per test (the server is shared by the module)."""
    return f"evidence-{uuid.uuid4().hex[:16]}"
