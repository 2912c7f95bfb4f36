"""A real S3 API on 127.0.0.1 for the registry tests: moto's server, one per session.

* ``s3_server``: the endpoint URL (``http://127.0.0.1:PORT``) of moto's threaded
  server, started for the session and stopped after it.
* ``s3_registry_url``: a fresh bucket per test, with the process environment pointed
  at the server (``AWS_ENDPOINT_URL`` plus dummy credentials); returns
  ``s3://<bucket>/models``.
* :func:`s3_env`: the same variables as a full environment for subprocesses
  (``subprocess.run(..., env=s3_env(s3_server))``).

Every variable that could send a request elsewhere (a developer's ``~/.aws``, a
profile, a session token, ``AWS_ENDPOINT_URL_S3``, the EC2 metadata service) is
neutralised, so the tests only ever talk to 127.0.0.1.
Under ``CI=true`` a missing moto/s3fs fails the test; elsewhere it skips.
"""

from __future__ import annotations

import logging
import os
import uuid
from typing import Iterator

import pytest

#: set to these values for every S3 test (and its subprocesses)
_SET = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
#: removed: they would override the endpoint, the credentials or the retry policy
_UNSET = ("AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_REGION", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")


def _require(module: str, why: str) -> None:
    try:
        __import__(module)
    except ImportError:
        message = f"{module} is not installed ({why}); pip install -e '.[test]'"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def s3_vars(endpoint: str) -> dict[str, str]:
    """The variables that point boto/s3fs at ``endpoint`` with dummy credentials."""
    return {"AWS_ENDPOINT_URL": endpoint, **_SET}


def s3_env(endpoint: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """A full environment for a subprocess that talks to the moto server at ``endpoint``."""
    env = dict(os.environ if base is None else base)
    for name in _UNSET:
        env.pop(name, None)
    env.update(s3_vars(endpoint))
    return env


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    _require("moto.server", "the S3 registry tests run against moto's S3 server")
    _require("s3fs", "the S3 registry backend")
    _require("boto3", "creating test buckets")
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def make_bucket(endpoint: str, name: str | None = None) -> str:
    """Create a bucket on the moto server; its name."""
    import boto3

    name = name or f"reg-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_registry_url(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """``s3://<fresh bucket>/models`` with this process's environment aimed at moto."""
    for name in _UNSET:
        monkeypatch.delenv(name, raising=False)
    for name, value in s3_vars(s3_server).items():
        monkeypatch.setenv(name, value)
    return f"s3://{make_bucket(s3_server)}/models"
