"""BagIt export: an outsider validates the bag with bagit-python and checks each proof."""
from __future__ import annotations

import hashlib
import json
import os
import tarfile

import bagit
import pytest

from recorder import ledger_store
from recorder.bagit import ExportError, export_case
from recorder.ledger import check_proof, fingerprint_of, load_public_key
from recorder.retrieval import load_recording
from recorder.retrieval_query import NoSuchCase
from tests.integration.test_retrieval import A1, A2, A3, WHO, seed_archive


@pytest.fixture
async def archive(db, ledger, clock, tmp_path):
    return await seed_archive(db, ledger, clock, tmp_path)


@pytest.fixture
def out(tmp_path):
    path = tmp_path / "out"
    path.mkdir()
    return path


async def ledger_entries(db, action):
    async with db.session() as s:
        return [e for e in await ledger_store.entries(s) if e.action == action]


async def test_an_outsider_can_validate_the_bag_and_the_proofs(db, ledger, archive, out):
    result = await export_case(db, archive, ledger, "C-1", out, WHO, organization="Collect Ltd")
    assert os.listdir(out) == [result.path.name], "no temporary left beside the bag"
    bag = bagit.Bag(str(result.path))
    bag.validate()  # manifests, tag manifest, Payload-Oxum
    assert bag.info["External-Identifier"] == "C-1" and bag.info["Source-Organization"] == "Collect Ltd"
    assert bag.info["Payload-Oxum"] == result.payload_oxum and bag.info["Contact-Name"] == "qa.lee"
    data = result.path / "data"
    metadata = json.loads((data / "metadata.json").read_text())
    assert [r["attempt_id"] for r in metadata["recordings"]] == [A1, A2, A3]
    assert metadata["reason"] == "complaint 2026-117"
    public_key = load_public_key((data / "ledger-proof" / "public-key.pem").read_bytes())
    assert fingerprint_of(public_key) == fingerprint_of(ledger.signer.public_key) == bag.info["Ledger-Key-Fingerprint"]
    assert (result.path / "verify-bag.py").is_file(), "the standalone verifier travels with the bag"
    other_cases = ("C-2", "C-3", "case:C-2")
    for rec in metadata["recordings"]:
        text = (data / rec["ledger_proof"]).read_text()
        proof = json.loads(text)
        assert check_proof(proof, public_key) is None
        assert proof["entry"]["subject"] == f"recording:{rec['attempt_id']}" and proof["case_id"] == "C-1"
        assert not any(case in text for case in other_cases), "a proof reveals nothing of other cases"
        files = json.loads(proof["entry"]["detail"])["files"]  # what ingest hashed, signed into the chain
        for leg, path in rec["files"].items():
            assert hashlib.sha256((data / path).read_bytes()).hexdigest() == files[leg]["sha256"]
        forged = json.loads(text)
        forged["entry"]["detail"] = forged["entry"]["detail"].replace("1.0", "9.0")
        assert check_proof(forged, public_key) is not None
    [entry] = await ledger_entries(db, "export")
    assert (entry.actor, entry.subject, entry.seq) == ("qa.lee", "case:C-1", result.ledger_seq)
    assert entry.detail_map()["recordings"] == [A1, A2, A3] and entry.detail_map()["why"] == WHO.why


async def test_a_tarred_bag_validates_after_unpacking(db, ledger, archive, out, tmp_path):
    result = await export_case(db, archive, ledger, "C-2", out, WHO, as_tar=True)
    assert result.path.suffix == ".tar" and os.listdir(out) == [result.path.name]
    with tarfile.open(result.path) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    bagit.Bag(str(tmp_path / "unpacked" / result.path.stem)).validate()


async def test_a_case_without_recordings_is_an_empty_valid_bag(db, ledger, archive, out):
    result = await export_case(db, archive, ledger, "C-EMPTY", out, WHO)
    bagit.Bag(str(result.path)).validate()
    assert json.loads((result.path / "data" / "metadata.json").read_text())["recordings"] == []


async def test_a_tampered_archive_file_aborts_the_export_and_leaves_nothing(db, ledger, archive, out):
    info = await load_recording(db, A2)
    victim = archive.path_of(info.legs[0].archive_path)
    victim.chmod(0o644)
    victim.write_bytes(victim.read_bytes()[:-2] + b"\x01\x02")
    with pytest.raises(ExportError, match="does not match"):
        await export_case(db, archive, ledger, "C-1", out, WHO)
    assert os.listdir(out) == [] and await ledger_entries(db, "export") == []


async def test_unknown_or_hostile_cases_write_nothing(db, ledger, archive, out):
    with pytest.raises(NoSuchCase):
        await export_case(db, archive, ledger, "NOPE", out, WHO)
    with pytest.raises(ValueError):
        await export_case(db, archive, ledger, "../../etc", out, WHO)
    assert os.listdir(out) == [] and await ledger_entries(db, "export") == []


def _verifier(bag, fingerprint: str, python: list[str]):
    """The bag's own verify-bag.py, run from a copy of the bag in isolated mode: no dunline
    code on the path (with -S, no site-packages at all: then `openssl` checks signatures)."""
    import subprocess

    return subprocess.run([*python, str(bag / "verify-bag.py"), str(bag), "--fingerprint", fingerprint],
                          capture_output=True, text=True, timeout=60, cwd=bag)


def _interpreters():
    import shutil
    import sys

    found = [[sys.executable, "-I"]]
    system = shutil.which("python3")
    if system and shutil.which("openssl"):
        found.append([system, "-I", "-S"])
    return found


@pytest.mark.parametrize("python", _interpreters(), ids=lambda p: " ".join(p[1:]))
async def test_the_bags_own_verifier_checks_it_without_dunline(db, ledger, archive, out, tmp_path, python):
    import shutil

    result = await export_case(db, archive, ledger, "C-1", out, WHO)
    fingerprint = fingerprint_of(ledger.signer.public_key)
    copy = tmp_path / "elsewhere" / result.path.name  # as the court receives it
    shutil.copytree(result.path, copy)
    checked = _verifier(copy, fingerprint, python)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("OK ") == 3 and "VERIFIED" in checked.stdout
    assert _verifier(copy, "0" * 64, python).returncode == 1, "another key's fingerprint"
    # a silent WAV swapped in, and the bag's manifests re-made so that BagIt itself is content
    victim = copy / "data" / "recordings" / A2 / "mixed.wav"
    victim.write_bytes(victim.read_bytes()[:44] + bytes(len(victim.read_bytes()) - 44))
    bag = bagit.Bag(str(copy))
    bag.save(manifests=True)
    bag.validate()  # the bag's own checksums hold
    swapped = _verifier(copy, fingerprint, python)
    assert swapped.returncode == 1, swapped.stdout
    assert f"FAILED {A2}" in swapped.stdout and "SHA-256 is not the one recorded at ingest" in swapped.stdout
