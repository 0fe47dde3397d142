"""The ledger's pure core: hash chain (formats 1 and 2), signed checkpoints, heads kept
outside the database, outsider proofs that reveal nothing of other cases, and keys that are
only ever made on purpose."""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from recorder.ledger import (
    GENESIS,
    Checkpoint,
    Entry,
    KeyMissing,
    Signer,
    check_proof,
    create_key,
    fingerprint_of,
    hash_entry,
    load_public_key,
    load_signer,
    make_entry,
    proof_of,
    public_key_pem,
    verify_chain,
    verify_checkpoints,
    verify_heads,
)

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=timezone.utc)


def chain(n: int):
    entries, prev = [], None
    for i in range(n):
        prev = make_entry(prev, at=T0 + timedelta(seconds=i), actor="recorder", action="ingest",
                          subject=f"recording:{i:032x}", detail={"sha256": f"{i:064x}", "n": i})
        entries.append(prev)
    return entries


def test_a_clean_chain_verifies_and_starts_at_the_genesis():
    entries = chain(5)
    assert entries[0].prev_hash == GENESIS and [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert verify_chain(entries) == []


@pytest.mark.parametrize("field,value", [("actor", "mallory"), ("detail", '{"n":2}'),
                                         ("subject", "recording:x"), ("at", T0)])
def test_editing_any_field_is_named(field, value):
    entries = chain(5)
    entries[2] = replace(entries[2], **{field: value})
    kinds = {(p.kind, p.what) for p in verify_chain(entries)}
    assert ("entry_altered", "entry 3") in kinds


def test_removing_or_reordering_entries_breaks_the_chain():
    entries = chain(5)
    assert {p.kind for p in verify_chain(entries[:2] + entries[3:])} >= {"seq_gap", "chain_broken"}
    swapped = [entries[0], entries[2], entries[1], *entries[3:]]
    assert verify_chain(swapped)


def test_rewriting_the_whole_tail_consistently_is_caught_by_the_checkpoint():
    signer = Signer(Ed25519PrivateKey.generate())
    entries = chain(5)
    cp = signer.sign(5, entries[4].entry_hash, T0)
    prev, forged = entries[1], entries[:2]
    for e in entries[2:]:  # an attacker with database access re-hashes everything after entry 2
        prev = make_entry(prev, at=e.at, actor="mallory", action=e.action, subject=e.subject,
                          detail=e.detail_map())
        forged.append(prev)
    assert verify_chain(forged) == []
    problems = verify_checkpoints([cp], {e.seq: e for e in forged}, signer.public_key)
    assert [p.kind for p in problems] == ["checkpoint_mismatch"]


def test_truncation_below_a_checkpoint_and_foreign_signatures():
    signer, other = Signer(Ed25519PrivateKey.generate()), Signer(Ed25519PrivateKey.generate())
    entries = chain(5)
    cp = signer.sign(5, entries[4].entry_hash, T0)
    assert verify_checkpoints([cp], {e.seq: e for e in entries}, signer.public_key) == []
    assert [p.kind for p in verify_checkpoints([cp], {e.seq: e for e in entries[:3]}, signer.public_key)] \
        == ["ledger_truncated"]
    assert [p.kind for p in verify_checkpoints([cp], {e.seq: e for e in entries}, other.public_key)] \
        == ["checkpoint_invalid"]
    bad = replace(cp, signature=other.sign(5, entries[4].entry_hash, T0).signature)
    assert [p.kind for p in verify_checkpoints([bad], {e.seq: e for e in entries}, signer.public_key)] \
        == ["checkpoint_invalid"]


def ingest_chain(n: int):
    """Entries of several cases; entry 3 is the ingest of case C-3's recording."""
    entries, prev = [], None
    for i in range(n):
        prev = make_entry(prev, at=T0 + timedelta(seconds=i), actor="recorder" if i == 2 else "qc-li",
                          action="ingest" if i == 2 else "access", subject=f"recording:{i + 1:032x}",
                          detail={"case_id": f"C-{i + 1}", "why": f"complaint about case C-{i + 1}"})
        entries.append(prev)
    return entries


def test_an_outsider_checks_one_entry_against_the_signed_head():
    signer = Signer(Ed25519PrivateKey.generate())
    entries = ingest_chain(6)
    cp = signer.sign(6, entries[5].entry_hash, T0)
    public = load_public_key(public_key_pem(signer.public_key).encode())
    proof = proof_of(entries, 3, cp, attempt_id=f"{3:032x}", case_id="C-3", public_key=signer.public_key)
    assert [p["seq"] for p in proof["chain"]] == [4, 5, 6]
    assert check_proof(proof, public) is None
    text = json.dumps(proof)
    assert "C-4" not in text and "qc-li" not in text and "complaint" not in text.replace(
        "complaint about case C-3", ""), "other cases' entries appear only as hashes"
    tampered = json.loads(text)
    tampered["entry"]["detail"] = '{"case_id":"C-3","files":{}}'
    assert "does not hash" in check_proof(tampered, public)
    short = json.loads(text)
    short["chain"] = short["chain"][:-1]
    assert "signed head" in check_proof(short, public)
    gap = json.loads(text)
    del gap["chain"][0]
    assert "breaks" in check_proof(gap, public)
    forged_body = json.loads(text)
    forged_body["chain"][1]["body_hash"] = "0" * 64
    assert "does not hash" in check_proof(forged_body, public)
    other = Signer(Ed25519PrivateKey.generate())
    assert "not signed" in check_proof(proof, other.public_key)
    foreign = json.loads(text)
    foreign["case_id"] = "C-4"
    assert "another case" in check_proof(foreign, public)


def test_format_1_entries_still_verify_and_show_in_full():
    """Entries written before the salt existed keep their hashes; a proof shows them whole."""
    signer = Signer(Ed25519PrivateKey.generate())
    detail = json.dumps({"case_id": "C-1"}, separators=(",", ":"))
    legacy = Entry(1, T0, "recorder", "ingest", f"recording:{1:032x}", detail, GENESIS,
                   hash_entry(GENESIS, 1, T0, "recorder", "ingest", f"recording:{1:032x}", detail))
    old_access = Entry(2, T0, "qc-li", "access", f"recording:{9:032x}", "{}", legacy.entry_hash,
                       hash_entry(legacy.entry_hash, 2, T0, "qc-li", "access", f"recording:{9:032x}", "{}"))
    new = make_entry(old_access, at=T0, actor="qc-li", action="access", subject="case:C-9", detail={})
    entries = [legacy, old_access, new]
    assert verify_chain(entries) == [] and [e.version for e in entries] == [1, 1, 2]
    proof = proof_of(entries, 1, signer.sign(3, new.entry_hash, T0), attempt_id=f"{1:032x}", case_id="C-1",
                     public_key=signer.public_key)
    assert "actor" in proof["chain"][0] and "actor" not in proof["chain"][1], "format 1 cannot be redacted"
    assert check_proof(proof, signer.public_key) is None
    proof["chain"][0]["actor"] = "someone else"
    assert check_proof(proof, signer.public_key) == "entry 2 does not hash to its entry_hash"


def test_heads_kept_outside_name_a_rollback_and_a_rewrite():
    signer = Signer(Ed25519PrivateKey.generate())
    entries = chain(6)
    heads = [signer.sign(3, entries[2].entry_hash, T0), signer.sign(6, entries[5].entry_hash, T0)]
    by_seq = {e.seq: e for e in entries}
    assert verify_heads(heads, by_seq, signer.public_key, source="witness") == []
    rolled_back = {s: e for s, e in by_seq.items() if s <= 4}
    assert [(p.kind, p.what) for p in verify_heads(heads, rolled_back, signer.public_key, source="witness")] \
        == [("ledger_rolled_back", "witness at entry 6")]
    prev, rewritten = entries[1], dict(list(by_seq.items())[:2])
    for e in entries[2:]:
        prev = make_entry(prev, at=e.at, actor="mallory", action=e.action, subject=e.subject, detail={})
        rewritten[prev.seq] = prev
    assert {p.kind for p in verify_heads(heads, rewritten, signer.public_key, source="given")} == {"ledger_rewritten"}
    resigned = [Signer(Ed25519PrivateKey.generate()).sign(6, entries[5].entry_hash, T0)]
    assert [p.kind for p in verify_heads(resigned, by_seq, signer.public_key, source="given")] == ["given_invalid"]
    assert Checkpoint.from_json(heads[1].as_json()) == heads[1]


def test_unknown_actions_and_anonymous_actors_are_refused():
    with pytest.raises(ValueError, match="unknown ledger action"):
        make_entry(None, at=T0, actor="x", action="delete", subject="s", detail={})
    with pytest.raises(ValueError, match="actor"):
        make_entry(None, at=T0, actor="", action="access", subject="s", detail={})
    with pytest.raises(ValueError, match="aware"):
        make_entry(None, at=T0.replace(tzinfo=None), actor="x", action="access", subject="s", detail={})


def test_a_key_is_only_made_on_purpose_private_and_once(tmp_path):
    path = tmp_path / "keys" / "ledger.pem"
    with pytest.raises(KeyMissing):
        load_signer(path)
    assert not path.exists(), "loading never creates a key"
    first = create_key(path)
    assert path.stat().st_mode & 0o077 == 0
    assert load_signer(path).key_id == first.key_id
    assert len(fingerprint_of(first.public_key)) == 64 and fingerprint_of(first.public_key).startswith(first.key_id)
    with pytest.raises(FileExistsError):
        create_key(path)
    assert load_signer(path).key_id == first.key_id


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=12), st.data())
def test_any_single_change_anywhere_is_detected(n, data):
    entries = chain(n)
    i = data.draw(st.integers(min_value=0, max_value=n - 1))
    detail = data.draw(st.dictionaries(st.text(max_size=5), st.integers(), max_size=3))
    changed = replace(entries[i], detail=make_entry(None, at=T0, actor="a", action="access",
                                                    subject="s", detail=detail).detail)
    if changed.detail == entries[i].detail:
        return
    entries[i] = changed
    assert verify_chain(entries)
