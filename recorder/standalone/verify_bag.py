#!/usr/bin/env python3
"""verify-bag.py: check a dunline BagIt export of call recordings, with no dunline installed.

    python3 verify-bag.py BAG_DIR --fingerprint HEX    (the 64-hex fingerprint you were given)
    python3 verify-bag.py BAG_DIR --public-key KEY.pem (the signing key's public PEM you hold)
    python3 verify-bag.py BAG_DIR --trust-bag-key      (the bag's own key: NOT pinned, a warning)

Needs Python 3.9+ and either the `cryptography` package or the `openssl` command (OpenSSL 3).
Prints one line per recording (OK / FAILED) and a summary; exits 0 only when every recording
and the bag itself check out, 1 when anything failed, 2 on a usage or environment error.

The rules (dunline's docs/proof-format.md; summarized here because a bag carries no docs):

- canonical JSON = json.dumps(value, sort_keys=True, separators=(",", ":"),
  ensure_ascii=False) as UTF-8; hashes are SHA-256, lower-case hex; times are
  YYYY-MM-DDTHH:MM:SS.ffffffZ; `detail` is a string (the canonical JSON of a mapping).
- An entry, format 2 (v 2): body_hash = SHA256("dunline-ledger-body-v2\\n" + canonical({v: 2,
  seq, at, actor, action, subject, detail, salt})) and entry_hash = SHA256("dunline-ledger-v2\\n"
  + seq + "\\n" + prev_hash + "\\n" + body_hash). Another recording's entry may be shown
  redacted as {seq, prev_hash, body_hash, entry_hash, v: 2}: its link is still checked.
  Format 1 (v 1, no salt, always shown in full): entry_hash = SHA256("dunline-ledger-v1\\n" +
  prev_hash + "\\n" + canonical({seq, at, actor, action, subject, detail})). Entry 1 has
  prev_hash = 64 zeros.
- A checkpoint signs (Ed25519, base64) the message "dunline-ledger-checkpoint-v1\\n" + seq +
  "\\n" + head_hash + "\\n", recomputed here (the stored `message` is not trusted). A key's
  fingerprint is the SHA-256 of its raw 32-byte public key; take it from somewhere you trust,
  never from the bag.
- data/ledger-proof/<attempt id>.json = {"format": "dunline-ledger-proof-v2", attempt_id,
  case_id, entry (the ingest entry in full), chain (the entries after it up to the
  checkpoint, in order), checkpoint, public_key_pem}. It holds when: (1) its key has the
  pinned fingerprint; (2) entry.subject == "recording:" + attempt_id, entry.action ==
  "ingest", the entry's detail has this case_id; (3) the entry's hash recomputes; (4) each
  chain item has the previous seq + 1, links to the previous entry_hash and its own hash
  recomputes; (5) the last item has the checkpoint's seq and head_hash; (6) the checkpoint
  signature verifies; (7) each WAV of the recording has the SHA-256 that the ingest entry's
  detail lists in files[<leg>].sha256: a swapped-in file fails even when the bag's
  manifests were re-made to match it.
- The bag: every file of data/ is listed in manifest-sha256.txt with its SHA-256 (and the
  tag files in tagmanifest-sha256.txt); each recording of data/metadata.json with audio has
  a proof; no file under data/recordings/ is left outside some recording's checks.
"""
import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
except Exception:  # not installed (or broken): fall back to the openssl command
    Ed25519PublicKey = None

PROOF_FORMAT = "dunline-ledger-proof-v2"
CHECKPOINT_FORMAT = "dunline-checkpoint-v1"
GENESIS = "0" * 64
SPKI_ED25519 = bytes.fromhex("302a300506032b6570032100")  # DER SubjectPublicKeyInfo head
HEX64, HEX32 = re.compile(r"[0-9a-f]{64}\Z"), re.compile(r"[0-9a-f]{32}\Z")
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\Z")
LEG = re.compile(r"[A-Za-z0-9_-]+\Z")
# RFC 8032, test 2: openssl must accept it and reject it altered before its answers count
RFC8032 = ("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
           "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
           "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00")
MALFORMED = (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError)


class Failed(Exception):
    """A check did not hold; the message says which."""


class SetupError(Exception):
    """Usage or environment error (exit 2)."""


def need(condition, why):
    if not condition:
        raise Failed(why)


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def field(obj, key, pattern=None):
    """obj[key], which must be a string (matching `pattern`) or, for seq, a positive int."""
    value = obj[key]
    if key == "seq":
        need(type(value) is int and value >= 1, f"seq {value!r} is not a positive integer")
    else:
        need(isinstance(value, str) and (pattern is None or pattern.match(value)), f"bad {key}: {value!r:.80}")
    return value


# -- keys and signatures ------------------------------------------------------------------

def raw_key_of(pem):
    """The raw 32-byte key of an Ed25519 SubjectPublicKeyInfo PEM (ValueError if it is not one)."""
    match = re.fullmatch(r"\s*-----BEGIN PUBLIC KEY-----([A-Za-z0-9+/=\s]+)-----END PUBLIC KEY-----\s*", pem)
    if not match:
        raise ValueError("not a PEM public key")
    der = base64.b64decode("".join(match.group(1).split()), validate=True)
    if len(der) != 44 or not der.startswith(SPKI_ED25519):
        raise ValueError("not an Ed25519 public key")
    return der[12:]


def pem_of(raw):
    return "-----BEGIN PUBLIC KEY-----\n%s\n-----END PUBLIC KEY-----\n" % base64.b64encode(SPKI_ED25519 + raw).decode()


def signature_checker():
    """(name, verify(raw_key, message, signature) -> bool), by `cryptography` or by openssl."""
    if Ed25519PublicKey is not None:
        def verify(raw, message, signature):
            try:
                Ed25519PublicKey.from_public_bytes(raw).verify(signature, message)
                return True
            except InvalidSignature:
                return False
        return "the cryptography package", verify
    openssl = shutil.which("openssl")
    if openssl is None:
        raise SetupError("cannot check Ed25519 signatures: install the Python package `cryptography` "
                         "or the `openssl` command (OpenSSL 3)")

    def verify(raw, message, signature):
        with tempfile.TemporaryDirectory(prefix="verify-bag-") as tmp:
            paths = [os.path.join(tmp, name) for name in ("key.pem", "msg.bin", "sig.bin")]
            for path, data in zip(paths, (pem_of(raw).encode(), message, signature)):
                with open(path, "wb") as handle:
                    handle.write(data)
            run = subprocess.run([openssl, "pkeyutl", "-verify", "-pubin", "-inkey", paths[0], "-rawin",
                                  "-in", paths[1], "-sigfile", paths[2]],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return run.returncode == 0
    key, message, signature = (bytes.fromhex(h) for h in RFC8032)
    if not verify(key, message, signature) or verify(key, message + b"!", signature):
        raise SetupError(f"{openssl} cannot verify Ed25519 signatures (OpenSSL 3 with `pkeyutl -rawin` "
                         "is needed), and the Python package `cryptography` is not installed")
    return f"openssl ({openssl})", verify


# -- one proof -------------------------------------------------------------------------------

def item_hash(item):
    """The entry_hash a proof item must have, recomputed from what it shows."""
    seq, prev_hash, version = field(item, "seq"), field(item, "prev_hash", HEX64), item.get("v")
    need(type(version) is int and version in (1, 2), f"entry {seq}: unknown format v={version!r}")
    if "detail" not in item:  # redacted: its link only
        need(version == 2, f"entry {seq}: only a format-2 entry can be shown redacted")
        body_hash = field(item, "body_hash", HEX64)
    else:
        shown = {key: field(item, key) for key in ("actor", "action", "subject", "detail")}
        shown["at"] = field(item, "at", TIME)
        if version == 1:
            need("salt" not in item, f"entry {seq}: a format-1 entry has no salt")
            body = canonical({"seq": seq, **shown})
            return sha256_hex(b"dunline-ledger-v1\n" + prev_hash.encode() + b"\n" + body)
        body = canonical({"v": 2, "seq": seq, **shown, "salt": field(item, "salt", HEX32)})
        body_hash = sha256_hex(b"dunline-ledger-body-v2\n" + body)
        need(item.get("body_hash", body_hash) == body_hash, f"entry {seq}: its body_hash does not recompute")
    return sha256_hex(f"dunline-ledger-v2\n{seq}\n{prev_hash}\n{body_hash}".encode())


def check_proof(proof, attempt_id, case_id, pinned, verify):
    """Rules 1-6; returns (the ingest entry's detail mapping, entry seq, checkpoint seq)."""
    need(isinstance(proof, dict) and proof.get("format") == PROOF_FORMAT, f"the proof is not {PROOF_FORMAT}")
    need(proof.get("attempt_id") == attempt_id, f"the proof is of recording {proof.get('attempt_id')!r}")
    need(proof.get("case_id") == case_id,
         f"the proof names case {proof.get('case_id')!r}, the bag's metadata case {case_id!r}")
    try:  # 1. the key is the pinned one
        raw = raw_key_of(proof["public_key_pem"])
    except (TypeError, ValueError) as exc:
        raise Failed(f"the proof's public_key_pem: {exc}") from None
    fingerprint = sha256_hex(raw)
    need(fingerprint == pinned, f"the proof is signed by key {fingerprint}, not the pinned key {pinned}")
    entry = proof["entry"]  # 2. it is this recording's ingest, in this case
    need(entry["subject"] == "recording:" + attempt_id, f"the entry's subject is {entry['subject']!r}")
    need(entry["action"] == "ingest", f"the entry is an {entry['action']!r}, not the ingest")
    detail = json.loads(field(entry, "detail"))
    need(isinstance(detail, dict) and detail.get("case_id") == case_id,
         "the ingest entry's detail names another case")
    chain = proof["chain"]
    need(isinstance(chain, list), "the proof's chain is not a list")
    previous = None
    for item in [entry, *chain]:  # 3. + 4. every hash recomputes, every link holds
        need(isinstance(item, dict), "a chain item is not an object")
        seq = field(item, "seq")
        if previous is None:
            need(seq != 1 or item["prev_hash"] == GENESIS, "entry 1 does not start from the genesis")
        else:
            need(seq == previous["seq"] + 1, f"the chain skips from entry {previous['seq']} to {seq}")
            need(item["prev_hash"] == previous["entry_hash"], f"entry {seq} does not link to entry {previous['seq']}")
        need(item_hash(item) == field(item, "entry_hash", HEX64), f"entry {seq} does not hash to its entry_hash")
        previous = item
    checkpoint = proof["checkpoint"]
    need(isinstance(checkpoint, dict) and checkpoint.get("format") == CHECKPOINT_FORMAT, "bad checkpoint format")
    cp_seq, head = field(checkpoint, "seq"), field(checkpoint, "head_hash", HEX64)
    need(previous["seq"] == cp_seq and previous["entry_hash"] == head,  # 5. ends at the signed head
         f"the chain ends at entry {previous['seq']}, not at the checkpoint's head (entry {cp_seq})")
    message = f"dunline-ledger-checkpoint-v1\n{cp_seq}\n{head}\n"  # 6. the signature, over our message
    need(checkpoint.get("message", message) == message, "the checkpoint's stored message is not its seq/head_hash")
    need(checkpoint.get("key_id") == fingerprint[:16], f"the checkpoint names key {checkpoint.get('key_id')!r}")
    signature = base64.b64decode(field(checkpoint, "signature"), validate=True)
    need(len(signature) == 64 and verify(raw, message.encode(), signature),
         f"the checkpoint signature (entry {cp_seq}) does not verify with the pinned key")
    return detail, entry["seq"], cp_seq


def check_recording(data, rec, pinned, verify, covered):
    """One recording of metadata.json: its proof, then its audio files (rule 7)."""
    attempt_id, case_id = field(rec, "attempt_id", HEX32), rec.get("case_id")
    files = rec.get("files") or {}
    need(isinstance(files, dict), "its `files` is not a mapping")
    for leg, rel in files.items():
        covered.add(f"recordings/{attempt_id}/{leg}.wav")
        need(LEG.match(leg) and rel == f"recordings/{attempt_id}/{leg}.wav",
             f"its {leg!r} file {rel!r} is not at recordings/{attempt_id}/{leg}.wav")
    proof_rel = f"ledger-proof/{attempt_id}.json"
    if not files and rec.get("ledger_proof") is None:
        return "no audio in the bag (purged); nothing to check"
    need(rec.get("ledger_proof") is not None, "its audio files are in the bag but it has no ledger proof")
    need(rec["ledger_proof"] == proof_rel, f"its ledger_proof is {rec['ledger_proof']!r}, not {proof_rel!r}")
    need((data / proof_rel).is_file(), f"its ledger proof data/{proof_rel} is missing")
    proof = json.loads((data / proof_rel).read_text(encoding="utf-8"))
    detail, seq, cp_seq = check_proof(proof, attempt_id, case_id, pinned, verify)
    recorded = detail.get("files")
    need(isinstance(recorded, dict), "the ingest entry lists no files")
    for leg in sorted(files):
        info = recorded.get(leg)
        need(isinstance(info, dict) and HEX64.match(str(info.get("sha256"))), f"{leg}: not in the ingest entry")
        need((data / files[leg]).is_file(), f"{leg}: data/{files[leg]} is missing from the bag")
        need(file_sha256(data / files[leg]) == info["sha256"],
             f"{leg}.wav: its SHA-256 is not the one recorded at ingest (the audio was changed or replaced)")
    if files:  # a leg dropped from the bag (its file, metadata and manifest lines) is missing, not fine
        missing = sorted(leg for leg in recorded if leg != "playback" and leg not in files)
        need(not missing, f"the ingest entry records {', '.join(missing)}, missing from the bag")
    signed = f"chained to checkpoint {cp_seq} signed by key {pinned[:16]}"
    if not files:
        return f"case {case_id}: no audio in the bag (purged); its ingest entry {seq} is {signed}"
    return f"case {case_id}: {', '.join(sorted(files))} match ingest entry {seq}, {signed}"


# -- the bag -------------------------------------------------------------------------------------

def check_manifest(bag, name, payload):
    """Problems with one BagIt manifest, and the paths it lists."""
    problems, listed = [], set()
    if not (bag / name).is_file():
        return ([f"{name} is missing"] if payload else []), listed
    for number, line in enumerate((bag / name).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        match = re.match(r"([0-9A-Fa-f]{64})[ \t]+(.+)\Z", line)
        if not match:
            problems.append(f"{name} line {number} is not `<sha256> <path>`")
            continue
        digest, rel = match.group(1), re.sub(r"%(0[AaDd]|25)", lambda m: chr(int(m.group(1), 16)), match.group(2))
        parts = rel.split("/")
        if rel.startswith("/") or ".." in parts or "\\" in rel or (parts[0] == "data") != payload:
            problems.append(f"{name} line {number}: {rel!r} is not a {'payload' if payload else 'tag'} path")
        elif rel in listed:
            problems.append(f"{name}: {rel} is listed twice")
        elif not (bag / rel).is_file():
            problems.append(f"{name}: {rel} is listed but missing")
        elif file_sha256(bag / rel) != digest.lower():
            problems.append(f"{name}: {rel} does not have the SHA-256 listed")
        listed.add(rel)
    return problems, listed


def files_under(top):
    for root, _dirs, names in os.walk(top):
        for name in names:
            yield Path(root, name).relative_to(top).as_posix()


def pinned_fingerprint(args, bag):
    if args.fingerprint:
        pinned = args.fingerprint.strip().lower().replace(":", "")
        if not HEX64.match(pinned):
            raise SetupError("--fingerprint must be the full 64 hex digits (SHA-256 of the raw public key)")
        return pinned
    path = Path(args.public_key) if args.public_key else bag / "data" / "ledger-proof" / "public-key.pem"
    if not (args.public_key or args.trust_bag_key):
        raise SetupError("no key pinned: give --fingerprint HEX (as `dunline recordings ledger-key` printed it) "
                         "or --public-key PEM_FILE (--trust-bag-key checks nothing against a forger)")
    try:
        return sha256_hex(raw_key_of(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise SetupError(f"{path}: {exc}") from None


def main(argv=None):
    parser = argparse.ArgumentParser(prog="verify-bag.py", description="Check a dunline BagIt export: "
                                     "ledger proofs, signatures and audio hashes.")
    parser.add_argument("bag", metavar="BAG_DIR")
    pin = parser.add_mutually_exclusive_group()
    pin.add_argument("--fingerprint", metavar="HEX", help="SHA-256 of the raw Ed25519 public key you trust")
    pin.add_argument("--public-key", metavar="PEM_FILE", help="the public key you trust (PEM)")
    pin.add_argument("--trust-bag-key", action="store_true", help="use the bag's own key (NOT pinned)")
    args = parser.parse_args(argv)
    bag = Path(args.bag)
    try:
        if not (bag / "bagit.txt").is_file() or not (bag / "data").is_dir():
            raise SetupError(f"{bag} is not a BagIt bag (no bagit.txt or no data/)")
        pinned = pinned_fingerprint(args, bag)
        backend, verify = signature_checker()
    except SetupError as exc:
        print(f"verify-bag.py: error: {exc}", file=sys.stderr)
        return 2
    if args.trust_bag_key:
        print("!" * 78 + "\nWARNING: --trust-bag-key: the key is the bag's own data/ledger-proof/public-key.pem,"
              "\nNOT pinned. Whoever made or changed this bag may have signed it with a key of their own."
              f"\nCompare its fingerprint {pinned} with the one you were given.\n" + "!" * 78, file=sys.stderr)
    data, problems, lines, failed = bag / "data", [], [], 0
    for name, payload in (("manifest-sha256.txt", True), ("tagmanifest-sha256.txt", False)):
        found, listed = check_manifest(bag, name, payload)
        problems += found
        if payload:
            problems += [f"data/{rel} is not in manifest-sha256.txt" for rel in sorted(files_under(data))
                         if f"data/{rel}" not in listed]
    try:
        recordings = json.loads((data / "metadata.json").read_text(encoding="utf-8"))["recordings"]
        need(isinstance(recordings, list), "its `recordings` is not a list")
    except (OSError, Failed, *MALFORMED) as exc:
        problems.append(f"data/metadata.json is unreadable: {exc}")
        recordings = []
    covered, seen = set(), set()
    for rec in recordings:
        name = rec.get("attempt_id") if isinstance(rec, dict) else None
        try:
            need(isinstance(rec, dict), "not an object")
            need(name not in seen, "listed twice in metadata.json")
            seen.add(name)
            lines.append(f"OK {name} {check_recording(data, rec, pinned, verify, covered)}")
            continue
        except KeyError as exc:
            why = f"malformed proof or metadata: no {exc}"
        except (Failed, OSError, *MALFORMED) as exc:
            why = str(exc)
        failed += 1
        lines.append(f"FAILED {name}: {why}")
    if (data / "recordings").is_dir():
        problems += [f"data/recordings/{rel} is not covered by any recording's ledger proof"
                     for rel in sorted(files_under(data / "recordings")) if f"recordings/{rel}" not in covered]
    print("\n".join(lines + [f"FAILED bag: {problem}" for problem in problems]))
    unpinned = " -- WARNING: key taken from the bag itself, NOT pinned" if args.trust_bag_key else ""
    if failed or problems:
        print(f"NOT VERIFIED: {failed} of {len(recordings)} recordings failed, "
              f"{len(problems)} bag problem(s){unpinned}")
        return 1
    print(f"VERIFIED: all {len(recordings)} recordings check out against key {pinned} "
          f"(signatures checked with {backend}){unpinned}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
