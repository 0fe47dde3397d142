"""One contract, every ArchiveStore: the filesystem store and S3 with Object Lock (moto)
must behave alike through the protocol methods.

Times are whole seconds (S3 keeps retain-until to the second). "Retention over" uses a
retain-until in the real past, because moto checks a delete against the real clock.
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from recorder.archive import ArchiveStore, FilesystemArchive, ObjectMissing, ObjectRetention, RetentionError
from recorder.s3_store import S3ObjectLockArchive
from tests.integration.moto_server import (ACCESS_KEY, REGION, SECRET_KEY,  # noqa: F401 (fixtures)
                                           moto_endpoint, s3_bucket_name)

WHEN = datetime(2026, 11, 30, 2, 0, tzinfo=timezone.utc)
STARTED = datetime.now(timezone.utc).replace(microsecond=0)
THREE_YEARS = STARTED + timedelta(days=3 * 365)
FIVE_YEARS = STARTED + timedelta(days=5 * 365)
EXPIRED = datetime(2021, 1, 1, tzinfo=timezone.utc)
LATER = datetime(2040, 1, 1, tzinfo=timezone.utc)
MISSING = f"2026/11/30/{'0' * 64}.wav"


@pytest.fixture(params=["fs", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArchiveStore:
    if request.param == "fs":
        return FilesystemArchive(tmp_path / "archive")
    archive = S3ObjectLockArchive.from_endpoint(
        request.getfixturevalue("moto_endpoint"), request.getfixturevalue("s3_bucket_name"),
        REGION, ACCESS_KEY, SECRET_KEY, prefix="recordings")
    archive.ensure_bucket()
    return archive


@pytest.fixture
def source(tmp_path: Path):
    def write(data: bytes, name: str = "call.wav") -> Path:
        (tmp_path / "spool").mkdir(exist_ok=True)
        path = tmp_path / "spool" / name
        path.write_bytes(data)
        return path
    return write


def test_name_says_which_store(store):
    assert store.name in {"fs", "s3"}


def test_put_then_read_back(store, source):
    data = b"RIFF evidence " * 1000
    sha = hashlib.sha256(data).hexdigest()
    stored = store.put(source(data), WHEN, retain_until=THREE_YEARS)
    assert stored.key == f"2026/11/30/{sha}.wav"
    assert (stored.sha256, stored.size_bytes) == (sha, len(data))
    assert store.exists(stored.key)
    with store.open_read(stored.key) as handle:
        assert handle.read() == data
    assert store.hash_of(stored.key) == (sha, len(data))
    assert store.retention_of(stored.key) == ObjectRetention(THREE_YEARS, legal_hold=False)


def test_suffix_is_kept(store, source):
    stored = store.put(source(b"mixed"), WHEN, retain_until=THREE_YEARS, suffix=".mixed.wav")
    assert stored.key.endswith(f"{stored.sha256}.mixed.wav")
    assert store.exists(stored.key)


def test_keys_lists_every_object_in_order(store, source):
    assert list(store.keys()) == []
    first = store.put(source(b"one", "a.wav"), WHEN, retain_until=THREE_YEARS)
    second = store.put(source(b"two", "b.wav"), WHEN + timedelta(days=1), retain_until=THREE_YEARS)
    assert list(store.keys()) == sorted([first.key, second.key])


def test_put_is_idempotent_and_only_extends_retention(store, source):
    path = source(b"same bytes")
    first = store.put(path, WHEN, retain_until=THREE_YEARS)
    assert store.put(path, WHEN, retain_until=FIVE_YEARS) == first
    assert store.retention_of(first.key).retain_until == FIVE_YEARS
    assert store.put(path, WHEN, retain_until=THREE_YEARS) == first
    assert store.retention_of(first.key).retain_until == FIVE_YEARS
    assert list(store.keys()) == [first.key]


def test_identical_recordings_stored_at_once_make_one_object_with_the_longest_retention(store, source):
    """Two calls with the same audio (two muted lines of one length, the same prompt) are
    ingested by two threads at once: one content-addressed object, no failed put, and the
    retention is the longer of the two, whoever came last (found by the load bench: a shared
    temporary name made one put fail)."""
    from concurrent.futures import ThreadPoolExecutor

    data = b"RIFF the same silence " * 4000
    paths = [source(data, f"call-{i}.wav") for i in range(8)]
    retentions = [FIVE_YEARS if i == 3 else THREE_YEARS for i in range(8)]
    for _ in range(3):
        with ThreadPoolExecutor(8) as pool:
            stored = list(pool.map(lambda pr: store.put(pr[0], WHEN, retain_until=pr[1]), zip(paths, retentions)))
        assert len({s.key for s in stored}) == 1
        assert store.retention_of(stored[0].key).retain_until == FIVE_YEARS
        assert list(store.keys()) == [stored[0].key]


def test_put_keeps_a_legal_hold(store, source):
    path = source(b"held")
    stored = store.put(path, WHEN, retain_until=THREE_YEARS)
    store.set_legal_hold(stored.key, True)
    store.put(path, WHEN, retain_until=FIVE_YEARS)
    assert store.retention_of(stored.key) == ObjectRetention(FIVE_YEARS, legal_hold=True)


def test_retention_is_extended_never_shortened(store, source):
    stored = store.put(source(b"evidence"), WHEN, retain_until=THREE_YEARS)
    with pytest.raises(RetentionError):
        store.extend_retention(stored.key, THREE_YEARS - timedelta(days=1))
    assert store.retention_of(stored.key).retain_until == THREE_YEARS
    store.extend_retention(stored.key, THREE_YEARS)  # the same date is fine
    store.extend_retention(stored.key, FIVE_YEARS)
    assert store.retention_of(stored.key).retain_until == FIVE_YEARS


def test_legal_hold_on_and_off(store, source):
    stored = store.put(source(b"evidence"), WHEN, retain_until=THREE_YEARS)
    store.set_legal_hold(stored.key, True)
    assert store.retention_of(stored.key) == ObjectRetention(THREE_YEARS, legal_hold=True)
    store.extend_retention(stored.key, FIVE_YEARS)
    assert store.retention_of(stored.key).legal_hold, "extending keeps the hold"
    store.set_legal_hold(stored.key, False)
    assert store.retention_of(stored.key) == ObjectRetention(FIVE_YEARS, legal_hold=False)


def test_delete_before_retain_until_is_refused(store, source):
    stored = store.put(source(b"evidence"), WHEN, retain_until=THREE_YEARS)
    with pytest.raises(RetentionError):
        store.delete(stored.key, now=THREE_YEARS - timedelta(seconds=1))
    assert store.exists(stored.key)
    assert store.hash_of(stored.key) == (stored.sha256, stored.size_bytes)


def test_delete_under_legal_hold_is_refused(store, source):
    stored = store.put(source(b"evidence"), WHEN, retain_until=EXPIRED)
    store.set_legal_hold(stored.key, True)
    with pytest.raises(RetentionError):
        store.delete(stored.key, now=LATER)
    assert store.exists(stored.key)


def test_delete_after_retention_removes_the_object(store, source):
    stored = store.put(source(b"evidence"), WHEN, retain_until=EXPIRED)
    kept = store.put(source(b"other evidence", "other.wav"), WHEN, retain_until=THREE_YEARS)
    store.delete(stored.key, now=LATER)
    assert not store.exists(stored.key)
    assert list(store.keys()) == [kept.key]
    for call in (lambda: store.open_read(stored.key), lambda: store.retention_of(stored.key),
                 lambda: store.delete(stored.key, now=LATER)):
        with pytest.raises(ObjectMissing):
            call()


def test_stored_again_after_deletion(store, source):
    path = source(b"evidence")
    stored = store.put(path, WHEN, retain_until=EXPIRED)
    store.delete(stored.key, now=LATER)
    assert store.put(path, WHEN, retain_until=THREE_YEARS) == stored
    assert store.retention_of(stored.key) == ObjectRetention(THREE_YEARS, legal_hold=False)


def test_missing_key(store):
    assert not store.exists(MISSING)
    for call in (lambda: store.open_read(MISSING), lambda: store.hash_of(MISSING),
                 lambda: store.retention_of(MISSING), lambda: store.extend_retention(MISSING, LATER),
                 lambda: store.set_legal_hold(MISSING, True), lambda: store.delete(MISSING, now=LATER)):
        with pytest.raises(ObjectMissing):
            call()


def test_keys_escaping_the_archive_are_refused(store):
    with pytest.raises(ValueError):
        store.exists("../../etc/passwd")


def test_a_key_that_names_a_folder_is_missing(store, source):
    store.put(source(b"evidence"), WHEN, retain_until=THREE_YEARS)
    assert not store.exists("2026/11/30")
    with pytest.raises(ObjectMissing):
        store.hash_of("2026/11/30")


def test_concurrent_puts_of_the_same_content_all_succeed_and_keep_the_longest_retention(tmp_path, source):
    """Ingest archives several recordings at a time (threads of one process); two calls may
    leave identical files (two muted legs of the same length). The filesystem store (S3 does
    this itself with If-None-Match) must neither fail one of them nor keep the shorter retention."""
    import threading

    store = FilesystemArchive(tmp_path / "archive")
    wanted = [THREE_YEARS + timedelta(days=d) for d in range(8)]
    for round_ in range(5):
        paths = [source(b"the same silence %d" % round_, name=f"call-{round_}-{n}.wav") for n in range(len(wanted))]
        start = threading.Barrier(len(wanted))
        stored, errors = [], []

        def put(path, until):
            start.wait()
            try:
                stored.append(store.put(path, WHEN, retain_until=until))
            except Exception as exc:  # noqa: BLE001 (collected, asserted below)
                errors.append(exc)

        threads = [threading.Thread(target=put, args=pair) for pair in zip(paths, wanted)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len({s.key for s in stored}) == 1
        assert store.retention_of(stored[0].key).retain_until == max(wanted)
        assert store.hash_of(stored[0].key)[0] == hashlib.sha256(b"the same silence %d" % round_).hexdigest()
    assert not [f for f in store.all_files() if ".incoming-" in f], "no half-written file left"
