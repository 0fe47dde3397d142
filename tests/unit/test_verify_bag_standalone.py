"""The standalone bag verifier (recorder/standalone/verify_bag.py, copied into every bag as
verify-bag.py) against bags made here by an independent generator written from
docs/proof-format.md: an untouched bag passes, under the venv's Python (`cryptography`) and
under a bare system Python (`-S`: the `openssl` command), and each way of tampering fails.
Nothing of dunline is imported: the verifier runs as a subprocess, as a bag's reader runs it."""
from __future__ import annotations

import ast
import base64
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

VERIFIER = Path(__file__).resolve().parents[2] / "recorder" / "standalone" / "verify_bag.py"
GENESIS = "0" * 64
CASE = "2026-0042"


# -- an independent generator of ledgers, proofs and bags, from the spec ----------------------

def canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(key: Ed25519PrivateKey) -> str:
    return sha(raw_public(key))


def public_pem(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def link(seq: int, prev_hash: str, body_hash: str) -> str:
    return sha(f"dunline-ledger-v2\n{seq}\n{prev_hash}\n{body_hash}".encode())


def make_entry(prev: dict | None, action: str, subject: str, detail: dict, *, v: int = 2,
               seq: int | None = None) -> dict:
    """The entry after `prev`; `seq` overrides the next number (to sign a chain with a gap)."""
    seq = seq or (prev["seq"] + 1 if prev else 1)
    prev_hash = prev["entry_hash"] if prev else GENESIS
    entry = {"v": v, "seq": seq, "at": f"2026-03-01T10:{seq:02d}:07.{secrets.randbelow(10**6):06d}Z",
             "actor": "clerk@example.org", "action": action, "subject": subject,
             "detail": canonical(detail).decode(), "prev_hash": prev_hash}
    shown = {k: entry[k] for k in ("seq", "at", "actor", "action", "subject", "detail")}
    if v == 1:
        entry["entry_hash"] = sha(b"dunline-ledger-v1\n" + prev_hash.encode() + b"\n" + canonical(shown))
        return entry
    entry["salt"] = secrets.token_hex(16)
    body_hash = sha(b"dunline-ledger-body-v2\n" + canonical({"v": 2, **shown, "salt": entry["salt"]}))
    entry["entry_hash"] = link(seq, prev_hash, body_hash)
    entry["_body_hash"] = body_hash  # generator's bookkeeping, never written into a proof
    return entry


def full(entry: dict) -> dict:
    return {k: v for k, v in entry.items() if not k.startswith("_")}


def redacted(entry: dict) -> dict:
    return {"v": 2, "seq": entry["seq"], "prev_hash": entry["prev_hash"], "body_hash": entry["_body_hash"],
            "entry_hash": entry["entry_hash"]}


def checkpoint(key: Ed25519PrivateKey, seq: int, head_hash: str) -> dict:
    message = f"dunline-ledger-checkpoint-v1\n{seq}\n{head_hash}\n"
    return {"format": "dunline-checkpoint-v1", "seq": seq, "head_hash": head_hash, "at": "2026-03-01T11:00:00.000000Z",
            "key_id": fingerprint(key)[:16], "signature": base64.b64encode(key.sign(message.encode())).decode(),
            "message": message}


def make_proof(chain: list[dict], entry: dict, cp: dict, key: Ed25519PrivateKey, attempt_id: str,
               reveal: tuple[int, ...] = ()) -> dict:
    items = [full(e) if e["v"] == 1 or e["seq"] in reveal else redacted(e)
             for e in chain if entry["seq"] < e["seq"] <= cp["seq"]]
    return {"format": "dunline-ledger-proof-v2", "attempt_id": attempt_id, "case_id": CASE, "entry": full(entry),
            "chain": items, "checkpoint": cp, "public_key_pem": public_pem(key)}


def fake_wav(size: int = 400) -> bytes:
    data = secrets.token_bytes(size)
    return (b"RIFF" + (36 + size).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little")
            + bytes.fromhex("01000100401f0000803e00000200100064617461") + size.to_bytes(4, "little") + data)


def ingest_detail(attempt_id: str, audio: dict[str, bytes], playback: bool = False) -> dict:
    files = {leg: {"key": f"2026/03/01/{attempt_id}-{leg}.wav", "sha256": sha(data), "size_bytes": len(data)}
             for leg, data in audio.items()}
    if playback:
        files["playback"] = {"key": f"2026/03/01/{attempt_id}.ogg", "sha256": sha(b"ogg"), "size_bytes": 3}
    return {"case_id": CASE, "store": "fs", "duration_s": 12.5, "flags": [], "files": files,
            "retain_until": "2033-03-01T00:00:00.000000Z"}


def remake_manifests(bag: Path) -> None:
    """What a forger (or dunline) does: list every payload and tag file with its SHA-256."""
    payload = sorted(p for p in (bag / "data").rglob("*") if p.is_file())
    (bag / "manifest-sha256.txt").write_text(
        "".join(f"{sha(p.read_bytes())}  {p.relative_to(bag).as_posix()}\n" for p in payload))
    oxum = f"{sum(p.stat().st_size for p in payload)}.{len(payload)}"
    (bag / "bag-info.txt").write_text(f"Source-Organization: dunline\nExternal-Identifier: {CASE}\n"
                                      f"Bagging-Date: 2026-03-01\nPayload-Oxum: {oxum}\n")
    tags = ["bagit.txt", "bag-info.txt", "manifest-sha256.txt", "verify-bag.py"]
    (bag / "tagmanifest-sha256.txt").write_text("".join(f"{sha((bag / t).read_bytes())}  {t}\n" for t in tags))


@dataclass
class Bag:
    path: Path
    key: Ed25519PrivateKey
    ids: dict[str, str]  # A: format-1 ingest; B: long redacted chain; C: empty chain; D, E: purged
    chain: list[dict]
    checkpoints: list[dict]
    audio: dict[str, dict[str, bytes]] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.key)

    def proof_path(self, name: str) -> Path:
        return self.path / "data" / "ledger-proof" / f"{self.ids[name]}.json"

    def proof(self, name: str) -> dict:
        return json.loads(self.proof_path(name).read_text())

    def write_proof(self, name: str, proof: dict) -> None:
        self.proof_path(name).write_text(json.dumps(proof, indent=2))
        remake_manifests(self.path)

    def wav(self, name: str, leg: str = "mixed") -> Path:
        return self.path / "data" / "recordings" / self.ids[name] / f"{leg}.wav"

    def metadata(self) -> dict:
        return json.loads((self.path / "data" / "metadata.json").read_text())

    def write_metadata(self, metadata: dict) -> None:
        (self.path / "data" / "metadata.json").write_text(json.dumps(metadata, indent=2))
        remake_manifests(self.path)


def build_bag(root: Path) -> Bag:
    key = Ed25519PrivateKey.generate()
    ids = {name: secrets.token_hex(16) for name in "ABCDE"}
    audio = {name: {leg: fake_wav() for leg in ("mixed", "rx", "tx")} for name in "ABC"}
    # seq 1-2 format 1 (before the salt existed), then format 2
    chain = [make_entry(None, "ingest", f"recording:{ids['A']}", ingest_detail(ids["A"], audio["A"]), v=1)]
    chain.append(make_entry(chain[-1], "access", f"recording:{ids['A']}", {"who": "x", "why": "review"}, v=1))
    chain.append(make_entry(chain[-1], "ingest", f"recording:{ids['B']}",
                            ingest_detail(ids["B"], audio["B"], playback=True)))
    for action, subject in (("access", f"recording:{ids['B']}"), ("hold", "case:7777-0001"),
                            ("access", "recordings:search"), ("retention", f"recording:{ids['B']}"),
                            ("export", "case:7777-0001")):
        chain.append(make_entry(chain[-1], action, subject, {"who": "someone", "why": "another case"}))
    cp1 = checkpoint(key, 8, chain[7]["entry_hash"])
    chain.append(make_entry(chain[-1], "ingest", f"recording:{ids['C']}", ingest_detail(ids["C"], audio["C"])))
    cp2 = checkpoint(key, 9, chain[8]["entry_hash"])
    # D was purged since: its audio is not in the bag, its proof is (E has neither)
    chain.append(make_entry(chain[-1], "ingest", f"recording:{ids['D']}",
                            ingest_detail(ids["D"], {leg: fake_wav() for leg in ("mixed", "rx", "tx")})))
    chain.append(make_entry(chain[-1], "purge", f"recording:{ids['D']}", {"why": "retention ended"}))
    cp3 = checkpoint(key, 11, chain[10]["entry_hash"])
    proofs = {"A": make_proof(chain, chain[0], cp1, key, ids["A"]),
              "B": make_proof(chain, chain[2], cp1, key, ids["B"], reveal=(4,)),
              "C": make_proof(chain, chain[8], cp2, key, ids["C"]),
              "D": make_proof(chain, chain[9], cp3, key, ids["D"])}
    bag = root / f"case-{CASE}-20260301T110000Z"
    data = bag / "data"
    (data / "ledger-proof").mkdir(parents=True)
    recordings = []
    for name in "ABCDE":
        attempt_id = ids[name]
        files = {}
        for leg, wav in audio.get(name, {}).items():
            files[leg] = f"recordings/{attempt_id}/{leg}.wav"
            (data / files[leg]).parent.mkdir(parents=True, exist_ok=True)
            (data / files[leg]).write_bytes(wav)
        if name in proofs:
            (data / "ledger-proof" / f"{attempt_id}.json").write_text(json.dumps(proofs[name], indent=2))
        proof = f"ledger-proof/{attempt_id}.json" if name in proofs else None
        recordings.append({"attempt_id": attempt_id, "case_id": CASE, "started_at": "2026-03-01T09:00:00Z",
                           "files": files, "ledger_proof": proof})
    (data / "metadata.json").write_text(json.dumps({"case_id": CASE, "recordings": recordings}, indent=2))
    (data / "ledger-proof" / "public-key.pem").write_text(public_pem(key))
    (bag / "bagit.txt").write_text("BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n")
    shutil.copyfile(VERIFIER, bag / "verify-bag.py")
    remake_manifests(bag)
    return Bag(bag, key, ids, chain, [cp1, cp2, cp3], audio)


# -- running it -------------------------------------------------------------------------------

def _system_python() -> list[str] | None:
    python3 = shutil.which("python3")
    if python3 is None or shutil.which("openssl") is None:
        return None
    return [python3, "-I", "-S"]  # -S: no site-packages, so no cryptography: the openssl path


VENV = [sys.executable, "-I"]
SYSTEM = _system_python()
INTERPRETERS = [pytest.param(VENV, id="venv-cryptography"),
                pytest.param(SYSTEM, id="system-openssl",
                             marks=pytest.mark.skipif(SYSTEM is None, reason="no python3 or no openssl command"))]


def run(bag: Bag | Path, *args: str, python: list[str] | None = None, pin: bool = True,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    path = bag.path if isinstance(bag, Bag) else bag
    pinning = ["--fingerprint", bag.fingerprint] if pin and isinstance(bag, Bag) and not args else []
    script = path / "verify-bag.py" if (path / "verify-bag.py").exists() else VERIFIER
    return subprocess.run([*(python or VENV), str(script), str(path), *pinning, *args], capture_output=True,
                          text=True, timeout=60, cwd=path.parent, env=env)


def failed_line(result: subprocess.CompletedProcess, attempt_id: str) -> str:
    lines = [line for line in result.stdout.splitlines() if line.startswith(f"FAILED {attempt_id}:")]
    assert lines, result.stdout + result.stderr
    return lines[0]


@pytest.fixture
def bag(tmp_path) -> Bag:
    return build_bag(tmp_path)


# -- an untouched bag ---------------------------------------------------------------------------

@pytest.mark.parametrize("python", INTERPRETERS)
def test_untouched_bag_passes(bag, python):
    result = run(bag, python=python)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for name in "ABCDE":
        assert any(line.startswith(f"OK {bag.ids[name]} ") for line in lines), result.stdout
    assert "mixed, rx, tx match ingest entry 3" in result.stdout  # B, past its revealed and redacted items
    assert "no audio in the bag (purged); its ingest entry 10 is chained to checkpoint 11" in result.stdout
    assert lines[-1].startswith("VERIFIED: all 5 recordings") and bag.fingerprint in lines[-1]
    backend = "cryptography" if python is VENV else "openssl"
    assert backend in lines[-1]


def test_public_key_file_pins_by_content(bag, tmp_path):
    good, other = tmp_path / "good.pem", tmp_path / "other.pem"
    good.write_text(public_pem(bag.key))
    other.write_text(public_pem(Ed25519PrivateKey.generate()))
    assert run(bag, "--public-key", str(good)).returncode == 0
    result = run(bag, "--public-key", str(other))
    assert result.returncode == 1 and "not the pinned key" in failed_line(result, bag.ids["B"])


@pytest.mark.parametrize("python", INTERPRETERS)
def test_trust_bag_key_passes_loudly(bag, python):
    result = run(bag, "--trust-bag-key", python=python)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" in result.stderr and "NOT pinned" in result.stderr
    assert "NOT pinned" in result.stdout.splitlines()[-1]


# -- usage and environment ----------------------------------------------------------------------

def test_no_pin_is_a_usage_error(bag):
    result = run(bag, pin=False)
    assert result.returncode == 2 and "--fingerprint" in result.stderr


def test_short_fingerprint_is_a_usage_error(bag):
    assert run(bag, "--fingerprint", bag.fingerprint[:16]).returncode == 2


def test_not_a_bag(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run(tmp_path / "empty", "--fingerprint", "0" * 64)
    assert result.returncode == 2 and "not a BagIt bag" in result.stderr


def test_no_cryptography_and_no_openssl(bag, tmp_path):
    (tmp_path / "nothing").mkdir()
    result = run(bag, python=[sys.executable, "-I", "-S"], env={"PATH": str(tmp_path / "nothing")})
    assert result.returncode == 2 and "cryptography" in result.stderr and "openssl" in result.stderr


# -- the audio (rule 7) ---------------------------------------------------------------------------

def test_flipped_byte_in_a_wav_fails(bag):
    data = bytearray(bag.wav("B", "rx").read_bytes())
    data[100] ^= 0x01
    bag.wav("B", "rx").write_bytes(bytes(data))
    result = run(bag)
    assert result.returncode == 1
    assert "rx.wav: its SHA-256 is not the one recorded at ingest" in failed_line(result, bag.ids["B"])


@pytest.mark.parametrize("python", INTERPRETERS)
def test_silent_wav_swapped_in_with_manifests_remade_fails(bag, python):
    bag.wav("C", "mixed").write_bytes(fake_wav(400)[:44] + bytes(400))  # silence
    remake_manifests(bag.path)  # the bag's own BagIt checks now hold
    result = run(bag, python=python)
    assert result.returncode == 1
    assert "mixed.wav: its SHA-256 is not the one recorded at ingest" in failed_line(result, bag.ids["C"])
    assert "FAILED bag" not in result.stdout  # caught by the proof, not by the manifests


def test_manifest_mismatch_fails(bag):
    metadata = bag.metadata()
    metadata["reason"] = "edited"
    (bag.path / "data" / "metadata.json").write_text(json.dumps(metadata))  # manifests not re-made
    result = run(bag)
    assert result.returncode == 1
    assert "FAILED bag: manifest-sha256.txt: data/metadata.json does not have the SHA-256 listed" in result.stdout


def test_payload_file_missing_from_the_manifest_fails(bag):
    (bag.path / "data" / "note.txt").write_text("added later")
    result = run(bag)
    assert result.returncode == 1 and "data/note.txt is not in manifest-sha256.txt" in result.stdout


def test_tag_file_changed_fails(bag):
    with (bag.path / "bag-info.txt").open("a") as handle:
        handle.write("Contact-Name: someone else\n")
    result = run(bag)
    assert result.returncode == 1 and "tagmanifest-sha256.txt: bag-info.txt" in result.stdout


def test_wav_not_covered_by_any_proof_fails(bag):
    (bag.path / "data" / "recordings" / bag.ids["B"] / "extra.wav").write_bytes(fake_wav())
    remake_manifests(bag.path)
    result = run(bag)
    assert result.returncode == 1
    assert f"data/recordings/{bag.ids['B']}/extra.wav is not covered" in result.stdout


def test_a_leg_dropped_from_the_bag_fails(bag):
    """Its file, metadata entry and manifest line all removed: the ingest entry still names it."""
    bag.wav("B", "tx").unlink()
    metadata = bag.metadata()
    rec = next(r for r in metadata["recordings"] if r["attempt_id"] == bag.ids["B"])
    del rec["files"]["tx"]
    bag.write_metadata(metadata)
    result = run(bag)
    assert result.returncode == 1
    assert "the ingest entry records tx, missing from the bag" in failed_line(result, bag.ids["B"])


def test_recording_passed_off_as_purged_fails(bag):
    metadata = bag.metadata()
    rec = next(r for r in metadata["recordings"] if r["attempt_id"] == bag.ids["B"])
    rec["files"], rec["ledger_proof"] = {}, None  # its WAVs stay in the bag, unchecked
    bag.write_metadata(metadata)
    result = run(bag)
    assert result.returncode == 1 and f"data/recordings/{bag.ids['B']}/mixed.wav is not covered" in result.stdout


def test_metadata_pointing_at_another_path_fails(bag):
    metadata = bag.metadata()
    rec = next(r for r in metadata["recordings"] if r["attempt_id"] == bag.ids["B"])
    rec["files"]["mixed"] = f"recordings/{bag.ids['C']}/mixed.wav"
    bag.write_metadata(metadata)
    result = run(bag)
    assert result.returncode == 1 and "is not at recordings/" in failed_line(result, bag.ids["B"])


# -- the proof (rules 1-6) ---------------------------------------------------------------------------

def test_proof_file_removed_fails(bag):
    bag.proof_path("B").unlink()
    remake_manifests(bag.path)
    result = run(bag)
    assert result.returncode == 1 and "is missing" in failed_line(result, bag.ids["B"])


def test_recording_without_a_proof_fails(bag):
    metadata = bag.metadata()
    next(r for r in metadata["recordings"] if r["attempt_id"] == bag.ids["A"])["ledger_proof"] = None
    bag.write_metadata(metadata)
    result = run(bag)
    assert result.returncode == 1 and "has no ledger proof" in failed_line(result, bag.ids["A"])


def test_wrong_fingerprint_fails(bag):
    result = run(bag, "--fingerprint", fingerprint(Ed25519PrivateKey.generate()))
    assert result.returncode == 1
    assert all("not the pinned key" in failed_line(result, bag.ids[name]) for name in "ABC")


@pytest.mark.parametrize("python", INTERPRETERS)
def test_checkpoint_signed_by_another_key_fails(bag, python):
    proof = bag.proof("B")
    forged = checkpoint(Ed25519PrivateKey.generate(), proof["checkpoint"]["seq"], proof["checkpoint"]["head_hash"])
    proof["checkpoint"] = {**forged, "key_id": bag.fingerprint[:16]}  # claims the real key
    bag.write_proof("B", proof)
    result = run(bag, python=python)
    assert result.returncode == 1
    assert "signature (entry 8) does not verify" in failed_line(result, bag.ids["B"])


def test_rewritten_ledger_resigned_with_own_key_fails(bag):
    """A forger rebuilds B's whole proof (new audio hash, new chain) and signs it with a key of
    their own, shipping their key in the proof: only the pinned fingerprint stops it."""
    forger = Ed25519PrivateKey.generate()
    silent = fake_wav(400)[:44] + bytes(400)
    audio = {**bag.audio["B"], "mixed": silent}
    entry = make_entry(bag.chain[1], "ingest", f"recording:{bag.ids['B']}", ingest_detail(bag.ids["B"], audio))
    bag.wav("B").write_bytes(silent)
    bag.write_proof("B", make_proof([entry], entry, checkpoint(forger, 3, entry["entry_hash"]), forger, bag.ids["B"]))
    assert run(bag, "--trust-bag-key").returncode == 1  # the bag's public-key.pem is the real one
    result = run(bag)
    assert result.returncode == 1 and "not the pinned key" in failed_line(result, bag.ids["B"])


def test_edited_ingest_detail_fails(bag):
    """A silent WAV swapped in and the ingest entry's detail edited to list its hash."""
    silent = fake_wav(400)[:44] + bytes(400)
    bag.wav("B").write_bytes(silent)
    proof = bag.proof("B")
    detail = json.loads(proof["entry"]["detail"])
    detail["files"]["mixed"]["sha256"] = sha(silent)
    proof["entry"]["detail"] = canonical(detail).decode()
    bag.write_proof("B", proof)
    result = run(bag)
    assert result.returncode == 1
    assert "entry 3 does not hash to its entry_hash" in failed_line(result, bag.ids["B"])


def test_edited_ingest_detail_with_rehashed_entry_fails(bag):
    proof = bag.proof("B")
    entry = proof["entry"]
    detail = json.loads(entry["detail"])
    detail["duration_s"] = 1.0
    entry["detail"] = canonical(detail).decode()
    shown = {k: entry[k] for k in ("seq", "at", "actor", "action", "subject", "detail")}
    entry["entry_hash"] = link(3, entry["prev_hash"], sha(b"dunline-ledger-body-v2\n" + canonical(
        {"v": 2, **shown, "salt": entry["salt"]})))
    bag.write_proof("B", proof)
    result = run(bag)
    assert result.returncode == 1 and "entry 4 does not link to entry 3" in failed_line(result, bag.ids["B"])


def test_edited_format1_entry_fails(bag):
    silent = fake_wav(400)[:44] + bytes(400)
    bag.wav("A", "tx").write_bytes(silent)
    proof = bag.proof("A")
    assert proof["entry"]["v"] == 1 and "salt" not in proof["entry"] and proof["chain"][0]["v"] == 1
    detail = json.loads(proof["entry"]["detail"])
    detail["files"]["tx"]["sha256"] = sha(silent)
    proof["entry"]["detail"] = canonical(detail).decode()
    bag.write_proof("A", proof)
    result = run(bag)
    assert result.returncode == 1
    assert "entry 1 does not hash to its entry_hash" in failed_line(result, bag.ids["A"])


def test_redacted_item_with_wrong_body_hash_fails(bag):
    proof = bag.proof("B")
    item = proof["chain"][2]
    assert "detail" not in item and item["seq"] == 6
    item["body_hash"] = sha(b"something else")
    bag.write_proof("B", proof)
    result = run(bag)
    assert result.returncode == 1 and "entry 6 does not hash to its entry_hash" in failed_line(result, bag.ids["B"])


def test_revealed_item_edited_fails(bag):
    proof = bag.proof("B")
    item = proof["chain"][0]
    assert item["seq"] == 4 and "detail" in item
    item["detail"] = canonical({"who": "nobody", "why": "nothing"}).decode()
    bag.write_proof("B", proof)
    result = run(bag)
    assert result.returncode == 1 and "entry 4 does not hash to its entry_hash" in failed_line(result, bag.ids["B"])


def test_missing_chain_item_fails(bag):
    proof = bag.proof("B")
    del proof["chain"][1]  # entry 5
    bag.write_proof("B", proof)
    result = run(bag)
    assert result.returncode == 1 and "the chain skips from entry 4 to 6" in failed_line(result, bag.ids["B"])


def test_gap_in_a_chain_signed_by_the_real_key_fails(bag):
    """Entry 5 deleted and the rest re-linked before signing: every hash holds, the seq does not."""
    chain = [bag.chain[2], bag.chain[3]]
    for entry in bag.chain[5:8]:
        chain.append(make_entry(chain[-1], entry["action"], entry["subject"], {"who": "x"}, seq=entry["seq"]))
    cp = checkpoint(bag.key, 8, chain[-1]["entry_hash"])
    bag.write_proof("B", make_proof(chain, chain[0], cp, bag.key, bag.ids["B"]))
    result = run(bag)
    assert result.returncode == 1 and "the chain skips from entry 4 to 6" in failed_line(result, bag.ids["B"])


def test_chain_cut_short_fails(bag):
    proof = bag.proof("B")
    proof["chain"].pop()
    bag.write_proof("B", proof)
    result = run(bag)
    assert result.returncode == 1 and "not at the checkpoint's head" in failed_line(result, bag.ids["B"])


def test_genuine_checkpoint_of_another_head_fails(bag):
    proof = bag.proof("B")
    proof["checkpoint"] = bag.checkpoints[1]  # validly signed, but over entry 9
    bag.write_proof("B", proof)
    result = run(bag)
    assert result.returncode == 1 and "not at the checkpoint's head" in failed_line(result, bag.ids["B"])


def test_stored_message_is_not_trusted(bag):
    """The chain truncated at entry 7, the checkpoint's seq/head_hash set to entry 7, and
    the message and signature of the genuine checkpoint over entry 8 kept."""
    proof = bag.proof("B")
    last = proof["chain"].pop()
    proof["checkpoint"].update(seq=7, head_hash=last["prev_hash"])
    bag.write_proof("B", proof)
    result = run(bag)
    assert result.returncode == 1
    assert "stored message is not its seq/head_hash" in failed_line(result, bag.ids["B"])
    del proof["checkpoint"]["message"]  # with no stored message at all, the signature still fails
    bag.write_proof("B", proof)
    assert "signature (entry 7) does not verify" in failed_line(run(bag), bag.ids["B"])


def test_signed_entry_that_is_not_the_ingest_fails(bag):
    """An access entry of the recording, signed by the real key and even listing the swapped
    file's hash, is not its ingest."""
    silent = fake_wav(400)[:44] + bytes(400)
    bag.wav("B").write_bytes(silent)
    detail = ingest_detail(bag.ids["B"], {**bag.audio["B"], "mixed": silent})
    entry = make_entry(bag.chain[-1], "access", f"recording:{bag.ids['B']}", detail)
    bag.write_proof("B", make_proof([entry], entry, checkpoint(bag.key, entry["seq"], entry["entry_hash"]),
                                    bag.key, bag.ids["B"]))
    result = run(bag)
    assert result.returncode == 1 and "not the ingest" in failed_line(result, bag.ids["B"])


def test_first_entry_not_from_genesis_fails(bag):
    """A ledger whose entry 1 links to something: it is not the start of the chain."""
    entry = make_entry(None, "ingest", f"recording:{bag.ids['A']}", ingest_detail(bag.ids["A"], bag.audio["A"]))
    entry = make_entry({"seq": 0, "entry_hash": sha(b"elsewhere")}, "ingest", entry["subject"],
                       json.loads(entry["detail"]))
    assert entry["seq"] == 1
    bag.write_proof("A", make_proof([entry], entry, checkpoint(bag.key, 1, entry["entry_hash"]), bag.key,
                                    bag.ids["A"]))
    result = run(bag)
    assert result.returncode == 1 and "genesis" in failed_line(result, bag.ids["A"])


def test_checkpoint_naming_another_key_id_fails(bag):
    proof = bag.proof("C")
    proof["checkpoint"]["key_id"] = "0" * 16
    bag.write_proof("C", proof)
    result = run(bag)
    assert result.returncode == 1 and "names key" in failed_line(result, bag.ids["C"])


def test_proof_of_another_recording_fails(bag):
    proof = bag.proof("C")
    proof["attempt_id"] = bag.ids["B"]
    bag.write_proof("B", proof)
    result = run(bag)
    assert result.returncode == 1 and "the entry's subject is" in failed_line(result, bag.ids["B"])


def test_proof_of_another_case_fails(bag):
    proof = bag.proof("B")
    proof["case_id"] = "9999-0001"
    bag.write_proof("B", proof)
    metadata = bag.metadata()
    next(r for r in metadata["recordings"] if r["attempt_id"] == bag.ids["B"])["case_id"] = "9999-0001"
    bag.write_metadata(metadata)
    result = run(bag)
    assert result.returncode == 1 and "detail names another case" in failed_line(result, bag.ids["B"])


def test_purged_recordings_proof_is_still_checked(bag):
    proof = bag.proof("D")
    proof["checkpoint"] = bag.checkpoints[1]
    bag.write_proof("D", proof)
    result = run(bag)
    assert result.returncode == 1 and "not at the checkpoint's head" in failed_line(result, bag.ids["D"])


def test_malformed_proof_fails_cleanly(bag):
    bag.proof_path("C").write_text('{"format": "dunline-ledger-proof-v2", "attempt_id": "%s"' % bag.ids["C"])
    remake_manifests(bag.path)
    result = run(bag)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    failed_line(result, bag.ids["C"])


# -- the file itself ---------------------------------------------------------------------------------

def test_verifier_imports_only_the_standard_library_or_cryptography():
    source = VERIFIER.read_text()
    tree = ast.parse(source, feature_version=(3, 9))  # also: no syntax newer than Python 3.9
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports"
            modules.add(node.module)
    assert modules
    for module in modules:
        top = module.split(".")[0]
        assert top in sys.stdlib_module_names or top == "cryptography", module
