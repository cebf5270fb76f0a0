"""Read `s3://bucket/prefix` logdirs through TensorBoard's own S3 support, TensorFlow or not.

TensorBoard reads S3 only through the boto3-backed `S3FileSystem` of its TensorFlow stub
(`tensorboard.compat.tensorflow_stub.io.gfile`); its Rust data server rejects the scheme, and
with TensorFlow installed TensorBoard's event readers use TensorFlow's gfile, which has no S3.
So for the duration of one read we point TensorBoard's event-processing modules at the stub
(`stub_io`), and read with the same `EventMultiplexer` path as local logdirs
(`event_files.read_logdir`): the event files are parsed by TensorBoard, never by us.

Two gaps of the stub's `S3FileSystem` at a bucket root are filled by `_S3FileSystem`:
`s3://bucket` (no slash) raises in its `bucket_and_path`, and `s3://bucket/` is listed with the
prefix "/" (nothing). Configuration is boto3's own (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_PROFILE, AWS_DEFAULT_REGION, AWS_ENDPOINT_URL_S3, ...) plus TensorBoard's `S3_ENDPOINT`.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
from typing import TYPE_CHECKING, Iterator, List, Optional, Tuple

from tb_lossdoctor.readers.logdir import LogdirError
if TYPE_CHECKING:  # numpy is imported after the data server has started loading
    from tb_lossdoctor.series import Series

SCHEME = "s3://"
_LOCK = threading.Lock()  # one stub read at a time: the switch below is process-wide
# The modules of TensorBoard's EventMultiplexer read path that do `from tensorboard.compat import tf`.
_TF_USERS = ("io_wrapper", "directory_watcher", "directory_loader", "event_file_loader")


def is_s3(logdir: str) -> bool:
    return logdir[:5].lower() == SCHEME


def split(url: str) -> Tuple[str, str]:
    """("bucket", "a/b") for s3://bucket/a/b/ ; ("bucket", "") for a bucket root."""
    rest = url[len(SCHEME):]
    bucket, _, path = rest.partition("/")
    return bucket, path.strip("/")


def endpoint_url() -> Optional[str]:
    """TensorBoard's `S3_ENDPOINT`, given a scheme when it has none (TensorFlow's old S3
    filesystem took `host:port` with `S3_USE_HTTPS=0` for plain HTTP); None lets boto3 decide
    (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, or AWS itself)."""
    endpoint = os.environ.get("S3_ENDPOINT", "").strip()
    if not endpoint:
        return None
    if "://" not in endpoint:
        plain = os.environ.get("S3_USE_HTTPS", "1").strip().lower() in ("0", "false", "no")
        endpoint = ("http://" if plain else "https://") + endpoint
    return endpoint


def _boto3():
    try:
        import boto3
        import botocore.exceptions
    except ImportError as exc:
        raise LogdirError(
            "reading s3:// logdirs needs boto3 (TensorBoard's S3 support uses it): "
            "pip install boto3"
        ) from exc
    return boto3, botocore.exceptions


def _filesystem_class():
    from tensorboard.compat.tensorflow_stub.io import gfile

    class _S3FileSystem(gfile.S3FileSystem):
        """TensorBoard's S3 filesystem, usable at a bucket root."""

        def __init__(self):
            super().__init__()
            self._s3_endpoint = endpoint_url()

        def bucket_and_path(self, url):
            url = gfile.compat.as_str_any(url)
            if url.startswith(SCHEME) and "/" not in url[len(SCHEME):]:
                return url[len(SCHEME):], ""
            return super().bucket_and_path(url)

        def _root_listing(self, dirname):
            bucket, path = self.bucket_and_path(dirname)
            if path:
                return None
            boto3, _ = _boto3()
            client = boto3.client("s3", endpoint_url=self._s3_endpoint)
            names = []
            for page in client.get_paginator("list_objects").paginate(Bucket=bucket, Delimiter="/"):
                names += [p["Prefix"][:-1] for p in page.get("CommonPrefixes", [])]  # "run/" -> "run"
                names += [o["Key"] for o in page.get("Contents", [])]
            return names

        def isdir(self, dirname):
            root = self._root_listing(dirname)
            return bool(root) if root is not None else super().isdir(dirname)

        def listdir(self, dirname):
            root = self._root_listing(dirname)
            return root if root is not None else super().listdir(dirname)

    return _S3FileSystem


@contextlib.contextmanager
def stub_io() -> Iterator[None]:
    """While active, TensorBoard's event readers use its TF stub (and our S3 filesystem) even
    when TensorFlow is installed or imported. Process-wide: for the CLI, not a running server."""
    from tensorboard.backend.event_processing import plugin_event_multiplexer  # noqa: F401
    from tensorboard.compat.tensorflow_stub.io import gfile

    boto3, _ = _boto3()
    stub = importlib.import_module("tensorboard.compat.tensorflow_stub")
    modules = [importlib.import_module(f"tensorboard.backend.event_processing.{m}") for m in _TF_USERS]
    with _LOCK:
        saved_tf = [m.tf for m in modules]
        saved_fs = gfile._REGISTERED_FILESYSTEMS.get("s3")  # noqa: SLF001 (restored below)
        saved_session = boto3.DEFAULT_SESSION
        # A fresh default session (the stub calls `boto3.client`): credentials and region as
        # the environment gives them now, not as an earlier read in this process cached them.
        boto3.setup_default_session()
        gfile.register_filesystem("s3", _filesystem_class()())
        for m in modules:
            m.tf = stub
        try:
            yield
        finally:
            for m, tf in zip(modules, saved_tf):
                m.tf = tf
            boto3.DEFAULT_SESSION = saved_session
            if saved_fs is None:
                gfile._REGISTERED_FILESYSTEMS.pop("s3", None)  # noqa: SLF001
            else:
                gfile.register_filesystem("s3", saved_fs)


def check(url: str) -> None:
    """One request (a one-key listing) that turns the usual failures into one clear line:
    no credentials, wrong credentials, no such bucket, nothing under the prefix, no endpoint.
    Uses boto3's default session, as TensorBoard's S3 filesystem does (see `stub_io`)."""
    boto3, errors = _boto3()
    from botocore.config import Config

    bucket, path = split(url)
    if not bucket:
        raise LogdirError(f"no bucket in {url}: use s3://BUCKET or s3://BUCKET/PREFIX")
    config = Config(connect_timeout=10, read_timeout=30, retries={"max_attempts": 2})
    endpoint = endpoint_url()
    try:
        client = boto3.client("s3", endpoint_url=endpoint, config=config)
        answer = client.list_objects_v2(Bucket=bucket, Prefix=f"{path}/" if path else "", MaxKeys=1)
    except errors.NoCredentialsError:
        raise LogdirError(
            f"cannot read {url}: no AWS credentials found (set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)"
        ) from None
    except errors.ClientError as exc:
        err = exc.response.get("Error", {})
        code, message = err.get("Code", "?"), err.get("Message", "")
        if code == "NoSuchBucket":
            raise LogdirError(f"cannot read {url}: bucket {bucket!r} does not exist") from None
        hint = ""
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403",
                    "InvalidToken", "ExpiredToken"):
            hint = " (check the AWS credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE)"
        raise LogdirError(f"cannot read {url}: {code}: {message}{hint}") from None
    except (errors.BotoCoreError, ValueError) as exc:  # endpoint unreachable, bad endpoint URL...
        where = f" at {endpoint}" if endpoint else ""
        raise LogdirError(f"cannot read {url}{where}: {exc}") from None
    if not answer.get("KeyCount"):
        if path and _is_object(client, bucket, path):
            parent = f"{SCHEME}{bucket}/{path.rpartition('/')[0]}".rstrip("/")
            raise LogdirError(
                f"logdir is a file, not a directory: {url}; pass the folder that holds it ({parent})"
            )
        raise LogdirError(f"no scalar data found in {url}: no object under it")


def _is_object(client, bucket: str, key: str) -> bool:
    """True when `key` itself is an object (then it is the first key of its own listing)."""
    found = client.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("Contents", [])
    return bool(found) and found[0]["Key"] == key


def read_logdir(
    url: str, *, avoid_tensorflow: bool = False, hparams_out: Optional[dict] = None
) -> Tuple[List[Series], List[dict]]:
    """All scalar series of an s3:// logdir, read by TensorBoard's EventMultiplexer on the
    stub's S3 filesystem. Raises `LogdirError` for the failures `check` recognises.
    `avoid_tensorflow`: see `event_files.read_logdir` (spares a program importing TensorFlow)."""
    from tb_lossdoctor.readers import event_files

    bucket, path = split(url)
    url = f"{SCHEME}{bucket}/{path}" if path else f"{SCHEME}{bucket}"
    with stub_io():
        check(url)
        return event_files.read_logdir(url, avoid_tensorflow=avoid_tensorflow, hparams_out=hparams_out)
