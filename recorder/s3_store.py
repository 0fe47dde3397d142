"""S3 archive store: evidence objects under Object Lock in COMPLIANCE mode.

Same layout and rules as `recorder.archive.FilesystemArchive`: content-addressed keys
`[prefix/]YYYY/MM/DD/<sha256><suffix>`, a retain-until per object (set at upload, only
ever extended), a legal hold, and a delete that is refused before retain-until or while
held. An "object" is every version stored under its key (an Object Lock bucket is
versioned, and a plain PUT over a key adds a version): retention_of reports the
strongest retention among the versions, extend_retention and set_legal_hold apply to
each, delete removes them all (delete markers too), hash_of and open_read read the latest.

Our own policy layer runs before S3 is asked, because not every S3 enforces the lock:
every retention change goes through `_put_retention`, which has just read the version's
current retention and refuses (RetentionError) a shorter date; the mode is always
COMPLIANCE, so nothing ever switches away from it. An S3 refusal (AccessDenied) of a
delete also becomes RetentionError; other botocore errors become ObjectMissing or
S3ArchiveError here, at the boundary.

What moto 5.2.5 (server mode) does and does not enforce, checked by hand and in
tests/integration/test_s3_store.py:
- enforces: DeleteObject with a VersionId is refused (AccessDenied) while that version's
  retain-until is ahead of the *real* clock or a legal hold is ON; lock headers on a
  bucket without Object Lock are refused; lock headers need a checksum/MD5 header.
- does not enforce: PutObjectRetention may shorten a retention or switch COMPLIANCE to
  GOVERNANCE (after which BypassGovernanceRetention deletes the version); a retain-until
  in the past is accepted at PUT (real S3 refuses it); x-amz-checksum-sha256 is stored
  and echoed but never verified against the body.
- does not implement GetObjectRetention (HTTP 500), so the retention is read from
  HeadObject (ObjectLockMode / ObjectLockRetainUntilDate); the legal hold is read with
  GetObjectLegalHold, which fails loudly when not permitted instead of looking "off".
- like real S3, a PUT over a locked key succeeds as a new version (the lock protects
  versions, not names) and a DELETE without VersionId only adds a delete marker.
Needed permissions: s3:{Get,Put}Object, ListBucket, ListBucketVersions, DeleteObjectVersion,
{Get,Put}ObjectRetention, {Get,Put}ObjectLegalHold; ensure_bucket also CreateBucket,
GetBucketObjectLockConfiguration, GetBucketVersioning. All methods block: call them from a thread.
"""
from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, BinaryIO, cast

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from recorder.archive import (CHUNK, ObjectMissing, ObjectRetention, RetentionError, StoredObject,
                              check_deletable, check_extend, sha256_stream)

LOCK_MODE = "COMPLIANCE"
CONTENT_TYPES = {".wav": "audio/wav", ".mp3": "audio/mpeg", ".opus": "audio/ogg", ".ckpt": "application/json"}
SHA256_METADATA = "sha256"  # hex digest, also sent as x-amz-checksum-sha256 (base64)
EVIDENCE_KEY = re.compile(r"\d{4}/\d{2}/\d{2}/[0-9a-f]{64}\.[A-Za-z0-9]+")
MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchVersion"})
NO_BUCKET_CODES = frozenset({"404", "NoSuchBucket", "NotFound"})
NO_LOCK_CODES = frozenset({"NoSuchObjectLockConfiguration", "ObjectLockConfigurationNotFoundError"})


class S3ArchiveError(RuntimeError):
    """S3 failed, or the bucket is unfit for evidence (no Object Lock, no versioning)."""


@dataclass(frozen=True, slots=True)
class VersionLock:
    """The lock state of one stored version of an object."""
    version_id: str
    mode: str | None
    retain_until: datetime | None  # aware UTC; None = no retention on this version
    legal_hold: bool


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def lock_until(value: datetime) -> datetime:
    """`value` in UTC, rounded up to a whole second (rounding never shortens a retention)."""
    if value.tzinfo is None:
        raise ValueError(f"retain_until must be timezone-aware: {value!r}")
    utc = value.astimezone(timezone.utc)
    return utc if utc.microsecond == 0 else utc.replace(microsecond=0) + timedelta(seconds=1)


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


@contextmanager
def s3_errors(action: str, key: str = "") -> Iterator[None]:
    """Map botocore errors to ours; RetentionError / ObjectMissing raised inside pass through."""
    try:
        yield
    except ClientError as exc:
        code = error_code(exc)
        if code in MISSING_CODES:
            raise ObjectMissing(key or action) from None
        if code == "AccessDenied" and action == "delete":
            raise RetentionError(f"{key}: S3 refused to delete it (Object Lock)") from exc
        message = exc.response.get("Error", {}).get("Message", "")
        raise S3ArchiveError(f"S3 {action} {key}: {code} {message}".strip()) from exc
    except BotoCoreError as exc:
        raise S3ArchiveError(f"S3 {action} {key}: {exc}") from exc


class S3ObjectLockArchive:
    """An S3 bucket with Object Lock (compliance mode) as the evidence archive (blocking I/O)."""

    name = "s3"

    def __init__(self, client: Any, bucket: str, *, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""

    @classmethod
    def from_endpoint(cls, endpoint_url: str | None, bucket: str, region: str,
                      access_key: str | None, secret_key: str | None,
                      prefix: str = "") -> S3ObjectLockArchive:
        """A store with its own boto3 client; no endpoint = AWS, no keys = boto3's usual chain."""
        config = Config(region_name=region, connect_timeout=10, read_timeout=60,
                        retries={"max_attempts": 5, "mode": "standard"},
                        s3={"addressing_style": "path"} if endpoint_url else {})
        client = boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url, aws_access_key_id=access_key,
            aws_secret_access_key=secret_key, config=config)
        return cls(client, bucket, prefix=prefix)

    # -- the bucket ------------------------------------------------------------------

    def ensure_bucket(self) -> None:
        """Create the bucket with Object Lock if missing; refuse one without lock or versioning."""
        with s3_errors("ensure_bucket", self.bucket):
            try:
                self.client.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if error_code(exc) not in NO_BUCKET_CODES:
                    raise
                self._create_bucket()
            try:
                lock = self.client.get_object_lock_configuration(Bucket=self.bucket)
            except ClientError as exc:
                if error_code(exc) not in NO_LOCK_CODES:
                    raise
                lock = {}
            versioning = self.client.get_bucket_versioning(Bucket=self.bucket)
        if lock.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") != "Enabled":
            raise S3ArchiveError(f"bucket {self.bucket!r} has no Object Lock: refusing to keep "
                                 "evidence in it (create a new bucket with Object Lock enabled)")
        if versioning.get("Status") != "Enabled":
            raise S3ArchiveError(f"bucket {self.bucket!r} is not versioned: refusing to keep evidence in it")

    def _create_bucket(self) -> None:
        region = self.client.meta.region_name
        extra = {} if region in (None, "us-east-1") else {
            "CreateBucketConfiguration": {"LocationConstraint": region}}
        try:
            self.client.create_bucket(Bucket=self.bucket, ObjectLockEnabledForBucket=True, **extra)
        except ClientError as exc:
            if error_code(exc) != "BucketAlreadyOwnedByYou":
                raise

    # -- objects -----------------------------------------------------------------------

    def _full(self, key: str) -> str:
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"archive key escapes the archive: {key!r}")
        return self.prefix + key

    def put(self, source: Path, when: datetime, *, retain_until: datetime,
            suffix: str = ".wav") -> StoredObject:
        """Upload `source` locked until `retain_until`; identical content keeps the stored
        object and only extends its retention. The key is the SHA-256, so the file is hashed
        first; S3 checks the upload against that hash (x-amz-checksum-sha256)."""
        wanted = lock_until(retain_until)
        with source.open("rb") as handle:
            digest = hashlib.sha256()
            size = 0
            while block := handle.read(CHUNK):
                digest.update(block)
                size += len(block)
            sha = digest.hexdigest()
            key = f"{when:%Y}/{when:%m}/{when:%d}/{sha}{suffix}"
            with s3_errors("put", key):
                if not self.exists(key):
                    handle.seek(0)
                    try:
                        self.client.put_object(
                            Bucket=self.bucket, Key=self._full(key), Body=handle, ContentLength=size,
                            ContentType=CONTENT_TYPES.get(suffix, "application/octet-stream"),
                            ChecksumAlgorithm="SHA256",
                            ChecksumSHA256=base64.b64encode(digest.digest()).decode("ascii"),
                            Metadata={SHA256_METADATA: sha}, ObjectLockMode=LOCK_MODE,
                            ObjectLockRetainUntilDate=wanted, IfNoneMatch="*")
                        return StoredObject(key=key, sha256=sha, size_bytes=size)
                    except ClientError as exc:
                        if error_code(exc) != "PreconditionFailed":
                            raise  # PreconditionFailed: stored meanwhile, same content
                self._raise_retention(key, wanted, self._locks(key))
        return StoredObject(key=key, sha256=sha, size_bytes=size)

    def open_read(self, key: str) -> BinaryIO:
        """The latest version's bytes, streamed (close it, or use it in a `with`)."""
        with s3_errors("read", key):
            return cast(BinaryIO, self.client.get_object(Bucket=self.bucket, Key=self._full(key))["Body"])

    def hash_of(self, key: str) -> tuple[str, int]:
        with self.open_read(key) as handle, s3_errors("read", key):
            return sha256_stream(handle)

    def exists(self, key: str) -> bool:
        with s3_errors("exists", key):
            try:
                self.client.head_object(Bucket=self.bucket, Key=self._full(key))
            except ClientError as exc:
                if error_code(exc) in MISSING_CODES:
                    return False
                raise
        return True

    def keys(self) -> Iterator[str]:
        """Every evidence key (archive-relative) in lexical order; other objects are skipped."""
        with s3_errors("list", self.prefix):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix)
            for page in pages:
                for item in page.get("Contents", []):
                    relative = item["Key"][len(self.prefix):]
                    if EVIDENCE_KEY.fullmatch(relative):
                        yield relative

    def all_files(self) -> Iterator[str]:
        """Every object under the prefix, whatever its name (archive-relative)."""
        with s3_errors("list", self.prefix):
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
            for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"][len(self.prefix):]

    def companions(self, key: str) -> list[str]:
        return []  # retention and legal hold live on the object itself (Object Lock)

    # -- retention ---------------------------------------------------------------------

    def _version_ids(self, key: str) -> tuple[list[str], list[str]]:
        """(object version ids, delete marker ids) stored under exactly `key`, newest first."""
        full = self._full(key)
        versions: list[str] = []
        markers: list[str] = []
        pages = self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=full)
        for page in pages:
            versions += [v["VersionId"] for v in page.get("Versions", []) if v["Key"] == full]
            markers += [m["VersionId"] for m in page.get("DeleteMarkers", []) if m["Key"] == full]
        return versions, markers

    def _lock_of(self, key: str, version_id: str) -> VersionLock:
        full = self._full(key)
        head = self.client.head_object(Bucket=self.bucket, Key=full, VersionId=version_id)
        until = head.get("ObjectLockRetainUntilDate")
        try:
            hold = self.client.get_object_legal_hold(Bucket=self.bucket, Key=full, VersionId=version_id)
            held = hold.get("LegalHold", {}).get("Status") == "ON"
        except ClientError as exc:
            if error_code(exc) not in NO_LOCK_CODES:
                raise
            held = False
        return VersionLock(version_id, head.get("ObjectLockMode"), _as_utc(until) if until else None, held)

    def _locks(self, key: str) -> list[VersionLock]:
        versions, _ = self._version_ids(key)
        if not versions:
            raise ObjectMissing(key)
        return [self._lock_of(key, version_id) for version_id in versions]

    @staticmethod
    def _combined(key: str, locks: list[VersionLock]) -> ObjectRetention:
        dates = [lock.retain_until for lock in locks if lock.retain_until is not None]
        if not dates:
            raise ObjectMissing(f"{key}: no retention record")
        return ObjectRetention(max(dates), any(lock.legal_hold for lock in locks))

    def _put_retention(self, key: str, lock: VersionLock, until: datetime) -> None:
        """The only call that changes a retention: always COMPLIANCE, never shorter."""
        if lock.retain_until is not None:
            check_extend(lock.retain_until, until)
        self.client.put_object_retention(Bucket=self.bucket, Key=self._full(key), VersionId=lock.version_id,
                                         Retention={"Mode": LOCK_MODE, "RetainUntilDate": until})

    def _raise_retention(self, key: str, wanted: datetime, locks: list[VersionLock]) -> None:
        """Every version retained until at least `wanted` (later dates are kept)."""
        for lock in locks:
            target = wanted if lock.retain_until is None else max(wanted, lock.retain_until)
            if (lock.mode, lock.retain_until) != (LOCK_MODE, target):
                self._put_retention(key, lock, target)

    def retention_of(self, key: str) -> ObjectRetention:
        with s3_errors("retention_of", key):
            return self._combined(key, self._locks(key))

    def extend_retention(self, key: str, retain_until: datetime) -> None:
        wanted = lock_until(retain_until)
        with s3_errors("extend_retention", key):
            locks = self._locks(key)
            check_extend(self._combined(key, locks).retain_until, wanted)
            self._raise_retention(key, wanted, locks)

    def set_legal_hold(self, key: str, on: bool) -> None:
        with s3_errors("set_legal_hold", key):
            for lock in self._locks(key):
                if lock.legal_hold != on:
                    self.client.put_object_legal_hold(
                        Bucket=self.bucket, Key=self._full(key), VersionId=lock.version_id,
                        LegalHold={"Status": "ON" if on else "OFF"})

    def delete(self, key: str, *, now: datetime) -> None:
        """Remove every version and delete marker of `key`, once no version is retained or held."""
        with s3_errors("delete", key):
            versions, markers = self._version_ids(key)
            if not versions:
                raise ObjectMissing(key)
            locks = [self._lock_of(key, version_id) for version_id in versions]
            check_deletable(key, self._combined(key, locks), now)
            # locked versions first: if S3 still refuses one, nothing unprotected is gone yet
            locked_first = sorted(locks, key=lambda lock: lock.retain_until is None)
            for version_id in [lock.version_id for lock in locked_first] + markers:
                self.client.delete_object(Bucket=self.bucket, Key=self._full(key), VersionId=version_id)
