"""A real S3-compatible server for tests: moto's server in its own process on 127.0.0.1.

`S3Server(auth=True)` turns authentication on (`INITIAL_NO_AUTH_ACTION_COUNT`: the first
requests, which create an IAM user and its access key, are let through; every later request
must be signed with a key that exists), so wrong credentials are refused as AWS refuses them.
Only for credential tests: with auth on, moto (5.x) also refuses correctly signed listings
whose query has a "/" (a prefix, a delimiter): getmoto/moto#5948. Without auth it accepts
any credentials.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Optional

REGION = "us-east-1"
_SETUP_REQUESTS = 3  # create_user, put_user_policy, create_access_key
_ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3Server:
    """`with S3Server() as s3:` -> s3.endpoint, s3.env() (credentials), s3.upload(dir, url)."""

    def __init__(self, *, auth: bool = False, timeout: float = 30.0):
        self.auth = auth
        self.timeout = timeout
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.key_id, self.secret = "lossdoctor-test-key", "lossdoctor-test-secret"
        self._popen = None

    def __enter__(self) -> "S3Server":
        env = {k: v for k, v in os.environ.items() if k != "INITIAL_NO_AUTH_ACTION_COUNT"}
        if self.auth:
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(_SETUP_REQUESTS)
        self._popen = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        )
        try:
            self._wait_ready()
            if self.auth:
                self._make_user()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        popen, self._popen = self._popen, None
        if popen is not None:
            popen.terminate()
            try:
                popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait(timeout=10)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            if self._popen.poll() is not None:
                raise RuntimeError(f"moto server exited with status {self._popen.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto server not listening after {self.timeout:g} s")
                time.sleep(0.05)

    def _make_user(self) -> None:
        iam = self.client("iam", key_id="setup", secret="setup")
        iam.create_user(UserName="lossdoctor")
        iam.put_user_policy(UserName="lossdoctor", PolicyName="all", PolicyDocument=json.dumps(_ALLOW_ALL))
        key = iam.create_access_key(UserName="lossdoctor")["AccessKey"]
        self.key_id, self.secret = key["AccessKeyId"], key["SecretAccessKey"]

    def client(self, service: str = "s3", *, key_id: str = "", secret: str = ""):
        import boto3
        from botocore.config import Config

        return boto3.client(
            service, endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id=key_id or self.key_id, aws_secret_access_key=secret or self.secret,
            config=Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 1}),
        )

    def env(self, **overrides: Optional[str]) -> Dict[str, str]:
        """The environment a user would set: credentials, region, TensorBoard's S3_ENDPOINT;
        and nothing from this machine's own AWS configuration."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_"))}
        env.update(
            AWS_ACCESS_KEY_ID=self.key_id,
            AWS_SECRET_ACCESS_KEY=self.secret,
            AWS_REGION=REGION,
            AWS_DEFAULT_REGION=REGION,  # the name boto3 reads; AWS_REGION is the other SDKs'
            S3_ENDPOINT=self.endpoint,
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
            AWS_EC2_METADATA_DISABLED="true",  # never ask 169.254.169.254 for credentials
        )
        env.update(overrides)
        return {k: v for k, v in env.items() if v is not None}

    def upload(self, local: Path, bucket: str, prefix: str = "") -> None:
        """Every file under `local` to s3://bucket/prefix/..., keeping relative paths."""
        client = self.client()
        existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        if bucket not in existing:
            client.create_bucket(Bucket=bucket)
        for path in sorted(Path(local).rglob("*")):
            if path.is_file():
                key = path.relative_to(local).as_posix()
                client.upload_file(str(path), bucket, f"{prefix.strip('/')}/{key}" if prefix else key)
