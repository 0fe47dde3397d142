"""S3ObjectLockArchive against moto in server mode (127.0.0.1, one server per module).

moto enforces a version's lock on DeleteObject(VersionId) against the real clock, but
lets PutObjectRetention shorten a retention or leave COMPLIANCE, accepts a past
retain-until at PUT and has no GetObjectRetention (retention is read back with
HeadObject). The tests below show that our policy layer refuses what moto would allow,
and use moto's leniency (a retain-until in the past) to reach "retention over".
"""
from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from recorder.archive import ObjectMissing, ObjectRetention, RetentionError
from recorder.s3_store import S3ArchiveError, S3ObjectLockArchive
from tests.integration.moto_server import (ACCESS_KEY, REGION, SECRET_KEY,  # noqa: F401 (fixtures)
                                           moto_endpoint, s3_bucket_name)

WHEN = datetime(2026, 11, 30, 2, 0, tzinfo=timezone.utc)
EXPIRED = datetime(2021, 1, 1, tzinfo=timezone.utc)  # real S3 refuses a past date; moto takes it
LATER = datetime(2040, 1, 1, tzinfo=timezone.utc)
STARTED = datetime.now(timezone.utc).replace(microsecond=0)


def in_years(years: int) -> datetime:
    """A retain-until in the real future (moto checks deletes against the real clock)."""
    return STARTED + timedelta(days=365 * years)


@pytest.fixture
def store(moto_endpoint: str, s3_bucket_name: str) -> S3ObjectLockArchive:
    archive = S3ObjectLockArchive.from_endpoint(moto_endpoint, s3_bucket_name, REGION, ACCESS_KEY,
                                                SECRET_KEY, prefix="evidence")
    archive.ensure_bucket()
    return archive


def recording(tmp_path: Path, data: bytes, name: str = "call.wav") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def versions(store: S3ObjectLockArchive, key: str) -> tuple[list[dict], list[dict]]:
    listing = store.client.list_object_versions(Bucket=store.bucket, Prefix=store.prefix + key)
    return listing.get("Versions", []), listing.get("DeleteMarkers", [])


def head(store: S3ObjectLockArchive, key: str) -> dict:
    return store.client.head_object(Bucket=store.bucket, Key=store.prefix + key, ChecksumMode="ENABLED")


def test_put_read_and_hash_round_trip(store, tmp_path):
    data = b"RIFF" + bytes(range(256)) * 64
    sha = hashlib.sha256(data).hexdigest()
    stored = store.put(recording(tmp_path, data), WHEN, retain_until=in_years(3))
    assert (stored.key, stored.sha256, stored.size_bytes) == (f"2026/11/30/{sha}.wav", sha, len(data))
    assert store.exists(stored.key)
    with store.open_read(stored.key) as handle:
        assert handle.read() == data
    assert store.hash_of(stored.key) == (sha, len(data))
    assert list(store.keys()) == [stored.key]
    meta = head(store, stored.key)  # stored under the prefix, with its SHA-256 twice
    assert meta["Metadata"] == {"sha256": sha}
    assert meta["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert meta["ContentType"] == "audio/wav"


def test_object_lock_compliance_and_retain_until_are_set_on_the_object(store, tmp_path):
    until = in_years(3)
    stored = store.put(recording(tmp_path, b"evidence"), WHEN, retain_until=until)
    meta = head(store, stored.key)  # moto has no GetObjectRetention; HeadObject carries the lock
    assert meta["ObjectLockMode"] == "COMPLIANCE"
    assert meta["ObjectLockRetainUntilDate"] == until
    assert store.retention_of(stored.key) == ObjectRetention(until, legal_hold=False)


def test_retain_until_is_rounded_up_to_the_second(store, tmp_path):
    until = in_years(3) + timedelta(microseconds=250)
    stored = store.put(recording(tmp_path, b"evidence"), WHEN, retain_until=until)
    assert store.retention_of(stored.key).retain_until == until.replace(microsecond=0) + timedelta(seconds=1)


def test_idempotent_put_extends_retention_and_never_shortens(store, tmp_path):
    source = recording(tmp_path, b"same bytes")
    first = store.put(source, WHEN, retain_until=in_years(3))
    again = store.put(source, WHEN, retain_until=in_years(5))
    assert again == first
    assert store.retention_of(first.key).retain_until == in_years(5)
    store.put(source, WHEN, retain_until=in_years(1))  # earlier: kept as is, no error
    assert store.retention_of(first.key).retain_until == in_years(5)
    assert len(versions(store, first.key)[0]) == 1, "no second upload"


def test_shortening_retention_is_refused(store, tmp_path):
    stored = store.put(recording(tmp_path, b"evidence"), WHEN, retain_until=in_years(3))
    with pytest.raises(RetentionError, match="only be extended"):
        store.extend_retention(stored.key, in_years(2))
    assert head(store, stored.key)["ObjectLockRetainUntilDate"] == in_years(3)
    store.extend_retention(stored.key, in_years(4))
    assert head(store, stored.key)["ObjectLockRetainUntilDate"] == in_years(4)


def test_a_version_moved_to_governance_out_of_band_goes_back_to_compliance(store, tmp_path):
    stored = store.put(recording(tmp_path, b"evidence"), WHEN, retain_until=in_years(3))
    store.client.put_object_retention(  # moto allows this; real S3 refuses it in COMPLIANCE mode
        Bucket=store.bucket, Key=store.prefix + stored.key,
        Retention={"Mode": "GOVERNANCE", "RetainUntilDate": in_years(3)})
    store.extend_retention(stored.key, in_years(3))
    assert head(store, stored.key)["ObjectLockMode"] == "COMPLIANCE"


def test_legal_hold_refuses_delete_until_released(store, tmp_path):
    stored = store.put(recording(tmp_path, b"evidence"), WHEN, retain_until=EXPIRED)
    store.set_legal_hold(stored.key, True)
    assert store.retention_of(stored.key).legal_hold
    with pytest.raises(RetentionError, match="legal hold"):
        store.delete(stored.key, now=LATER)
    assert store.exists(stored.key)
    store.set_legal_hold(stored.key, False)
    store.delete(stored.key, now=LATER)
    assert not store.exists(stored.key)


def test_delete_before_retain_until_is_refused(store, tmp_path):
    until = in_years(3)
    stored = store.put(recording(tmp_path, b"evidence"), WHEN, retain_until=until)
    with pytest.raises(RetentionError, match="retained until"):
        store.delete(stored.key, now=until - timedelta(seconds=1))
    assert store.exists(stored.key)
    assert len(versions(store, stored.key)[0]) == 1


def test_s3_refusing_a_delete_is_a_retention_error(store, tmp_path):
    """Our policy is told it is later than it is; moto still holds the version (real clock)."""
    until = datetime.now(timezone.utc) + timedelta(hours=1)
    stored = store.put(recording(tmp_path, b"evidence"), WHEN, retain_until=until)
    with pytest.raises(RetentionError, match="S3 refused"):
        store.delete(stored.key, now=until + timedelta(days=1))
    assert store.exists(stored.key)


def test_delete_after_retention_removes_every_version(store, tmp_path):
    stored = store.put(recording(tmp_path, b"evidence"), WHEN, retain_until=EXPIRED)
    full = store.prefix + stored.key
    store.client.put_object(Bucket=store.bucket, Key=full, Body=b"second version")
    store.client.delete_object(Bucket=store.bucket, Key=full)  # a delete marker on top
    assert len(versions(store, stored.key)[0]) == 2
    store.delete(stored.key, now=LATER)
    assert versions(store, stored.key) == ([], [])
    assert not store.exists(stored.key)
    assert list(store.keys()) == []
    with pytest.raises(ObjectMissing):
        store.retention_of(stored.key)


def test_hash_of_reads_the_latest_version_and_notices_a_change(store, tmp_path):
    data = b"original evidence"
    stored = store.put(recording(tmp_path, data), WHEN, retain_until=in_years(3))
    # moto (like S3) lets a PUT over a locked key add a new version; the old one stays locked
    store.client.put_object(Bucket=store.bucket, Key=store.prefix + stored.key, Body=b"tampered")
    assert store.hash_of(stored.key) == (hashlib.sha256(b"tampered").hexdigest(), len(b"tampered"))
    assert store.hash_of(stored.key)[0] != stored.sha256
    # the original version's retention still governs the object, and it cannot be deleted
    assert store.retention_of(stored.key).retain_until == in_years(3)
    with pytest.raises(RetentionError):
        store.delete(stored.key, now=datetime.now(timezone.utc))


def test_missing_key_is_object_missing(store):
    key = f"2026/11/30/{'0' * 64}.wav"
    assert not store.exists(key)
    for call in (lambda: store.open_read(key), lambda: store.hash_of(key),
                 lambda: store.retention_of(key), lambda: store.extend_retention(key, LATER),
                 lambda: store.set_legal_hold(key, True), lambda: store.delete(key, now=LATER)):
        with pytest.raises(ObjectMissing):
            call()


def test_keys_lists_only_evidence_under_the_prefix(store, tmp_path):
    stored = store.put(recording(tmp_path, b"evidence"), WHEN, retain_until=in_years(3))
    for stray in ("evidence/notes.txt", "evidence/2026/11/30/not-a-hash.wav",
                  f"other/2026/11/30/{'a' * 64}.wav"):
        store.client.put_object(Bucket=store.bucket, Key=stray, Body=b"x")
    assert list(store.keys()) == [stored.key]


def test_keys_that_escape_the_archive_are_refused(store):
    with pytest.raises(ValueError, match="escapes"):
        store.exists("../other/secret.wav")


def test_ensure_bucket_creates_a_locked_versioned_bucket(store):
    lock = store.client.get_object_lock_configuration(Bucket=store.bucket)["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
    assert store.client.get_bucket_versioning(Bucket=store.bucket)["Status"] == "Enabled"
    store.ensure_bucket()  # an existing locked bucket is fine


@pytest.mark.parametrize("versioned", [False, True])
def test_ensure_bucket_refuses_a_bucket_without_object_lock(moto_endpoint, s3_bucket_name, versioned):
    archive = S3ObjectLockArchive.from_endpoint(moto_endpoint, s3_bucket_name, REGION, ACCESS_KEY, SECRET_KEY)
    archive.client.create_bucket(Bucket=s3_bucket_name,
                                 CreateBucketConfiguration={"LocationConstraint": REGION})
    if versioned:
        archive.client.put_bucket_versioning(Bucket=s3_bucket_name,
                                             VersioningConfiguration={"Status": "Enabled"})
    with pytest.raises(S3ArchiveError, match="no Object Lock"):
        archive.ensure_bucket()


def test_unreachable_endpoint_is_a_clear_error():
    client = boto3.session.Session().client(
        "s3", endpoint_url="http://127.0.0.1:9", region_name=REGION, aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY, config=Config(retries={"total_max_attempts": 1}, connect_timeout=2))
    with pytest.raises(S3ArchiveError, match="exists"):
        S3ObjectLockArchive(client, "evidence").exists(f"2026/11/30/{'0' * 64}.wav")


def test_moto_blocks_deleting_a_locked_version_itself(store, tmp_path):
    """The one lock rule moto enforces: a version under retention cannot be deleted."""
    stored = store.put(recording(tmp_path, b"evidence"), WHEN, retain_until=in_years(3))
    [version] = versions(store, stored.key)[0]
    with pytest.raises(ClientError, match="AccessDenied"):
        store.client.delete_object(Bucket=store.bucket, Key=store.prefix + stored.key,
                                   VersionId=version["VersionId"])
