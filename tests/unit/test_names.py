"""The shared names: spool files and ledger subjects, parsed back the way they were made."""
from __future__ import annotations

from storage.names import (attempt_of_spool_file, attempt_of_subject, case_of_subject, case_subject,
                           end_file_name, mixmonitor_argument, recording_subject, spool_file_names)

A = "0123456789abcdef" * 2


def test_spool_files_of_an_attempt_lead_back_to_it():
    names = [*spool_file_names(A).values(), end_file_name(A)]
    assert names == [f"{A}.wav", f"{A}-rx.wav", f"{A}-tx.wav", f"{A}.end"]
    assert {attempt_of_spool_file(n) for n in names} == {A}


def test_other_files_belong_to_no_attempt():
    for name in ("vanished.wav", f"{A}-xx.wav", f"{A}.wav.tmp", f"{A[:-1]}.wav", f"../{A}.wav", f"{A.upper()}.wav",
                 f"selftest-{A}.wav"):
        assert attempt_of_spool_file(name) is None, name


def test_mixmonitor_writes_the_three_files_where_the_pbx_sees_them():
    assert mixmonitor_argument("/spool", A) == f"/spool/{A}.wav,r(/spool/{A}-rx.wav)t(/spool/{A}-tx.wav)"


def test_subjects_round_trip():
    assert attempt_of_subject(recording_subject(A)) == A
    assert case_of_subject(case_subject("C-1")) == "C-1"
    assert attempt_of_subject(case_subject("C-1")) is None and case_of_subject(recording_subject(A)) is None
