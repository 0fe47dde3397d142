"""Who may wait for its AGI environment, and how much a flood may write: pure, no sockets."""
from __future__ import annotations

import pytest

from agi_scripts.admission import Admission, RateLimiter


def test_a_peer_over_its_limit_evicts_its_oldest_idle_connection():
    adm = Admission(max_pending=100, max_per_peer=3, evict_idle_after_s=0.1)
    for key in "abc":
        assert adm.admit(key, "127.0.0.1", 0.0) == (True, None)
    assert adm.admit("d", "127.0.0.1", 1.0) == (True, "a")
    assert adm.of_peer("127.0.0.1") == 3


def test_a_connection_that_has_started_talking_is_never_evicted():
    adm = Admission(max_pending=100, max_per_peer=2, evict_idle_after_s=0.1)
    adm.admit("pbx", "127.0.0.1", 0.0)
    adm.started("pbx")
    adm.admit("idle", "127.0.0.1", 0.0)
    assert adm.admit("new", "127.0.0.1", 1.0) == (True, "idle")


def test_young_connections_are_not_evicted_the_newcomer_is_refused():
    """In a burst every pending connection is young: the PBX's own one (accepted a moment ago,
    its environment on the way) must not be the one thrown out; the newcomer is refused."""
    adm = Admission(max_pending=100, max_per_peer=2, evict_idle_after_s=0.1)
    adm.admit("pbx", "127.0.0.1", 0.00)
    adm.admit("flood-1", "127.0.0.1", 0.01)
    assert adm.admit("flood-2", "127.0.0.1", 0.02) == (False, None)
    assert adm.of_peer("127.0.0.1") == 2


def test_one_peers_flood_does_not_take_another_peers_place():
    adm = Admission(max_pending=3, max_per_peer=2, evict_idle_after_s=0.1)
    adm.admit("x1", "10.0.0.9", 0.0)
    adm.admit("x2", "10.0.0.9", 0.0)
    assert adm.admit("x3", "10.0.0.9", 0.05) == (False, None)  # its own limit
    assert adm.admit("pbx", "10.0.0.2", 0.06) == (True, None)
    assert adm.admit("pbx2", "10.0.0.2", 0.5) == (True, "x1"), "the total is full: the oldest idle goes"


def test_done_frees_the_place():
    adm = Admission(max_pending=1, max_per_peer=1, evict_idle_after_s=10)
    adm.admit("a", "p", 0.0)
    adm.done("a")
    assert adm.admit("b", "p", 0.0) == (True, None) and len(adm) == 1


def test_limits_must_make_sense():
    with pytest.raises(ValueError):
        Admission(max_pending=0)


def test_the_rate_limiter_counts_what_it_suppresses():
    limiter = RateLimiter(burst=2, window_s=10.0)
    assert [limiter.allow(t)[0] for t in (0, 1, 2, 3)] == [True, True, False, False]
    assert limiter.allow(10.5) == (True, 2), "the next one written says how many were not"
    assert limiter.total_suppressed == 2
