"""The ledger's pure core: hash chain, signed checkpoints, outsider proofs."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from recorder.ledger import (
    GENESIS,
    Signer,
    chain_proof,
    load_or_create_key,
    load_public_key,
    make_entry,
    public_key_pem,
    verify_chain,
    verify_checkpoints,
    verify_proof,
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


def test_an_outsider_checks_one_entry_against_the_signed_head():
    signer = Signer(Ed25519PrivateKey.generate())
    entries = chain(6)
    cp = signer.sign(6, entries[5].entry_hash, T0).as_json()
    public = load_public_key(public_key_pem(signer.public_key).encode())
    proof = chain_proof(entries, 3, signer.sign(6, entries[5].entry_hash, T0))
    assert [p["seq"] for p in proof] == [3, 4, 5, 6]
    assert verify_proof(proof, cp, public)
    tampered = [dict(proof[0], detail='{"sha256":"00"}'), *proof[1:]]
    assert not verify_proof(tampered, cp, public)
    assert not verify_proof(proof[:-1], cp, public)


def test_unknown_actions_and_anonymous_actors_are_refused():
    with pytest.raises(ValueError, match="unknown ledger action"):
        make_entry(None, at=T0, actor="x", action="delete", subject="s", detail={})
    with pytest.raises(ValueError, match="actor"):
        make_entry(None, at=T0, actor="", action="access", subject="s", detail={})
    with pytest.raises(ValueError, match="aware"):
        make_entry(None, at=T0.replace(tzinfo=None), actor="x", action="access", subject="s", detail={})


def test_the_key_file_is_created_private_and_read_back(tmp_path):
    path = tmp_path / "keys" / "ledger.pem"
    first = load_or_create_key(path)
    assert path.stat().st_mode & 0o077 == 0
    assert load_or_create_key(path).key_id == first.key_id


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
