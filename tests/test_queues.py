"""Block queues: blocks stay home; only an idle worker steals, and only half a queue."""

from collections import deque

from fedplugin.queues import rebalance, shares_of, take


def queues_of(**lengths):
    start = 0
    queues = {}
    for worker, n in lengths.items():
        queues[worker] = deque((0, i) for i in range(start, start + n))
        start += n
    return queues


def test_a_worker_takes_only_its_own_blocks_while_it_has_some():
    queues = queues_of(a=8, b=8)
    assert take(queues, "a", 64) == [(0, i) for i in range(8)]
    assert len(queues["b"]) == 8, "the first worker launched must not empty the others' queues"


def test_an_idle_worker_steals_half_of_the_longest_queue_in_order():
    queues = queues_of(a=0, b=10)
    assert take(queues, "a", 64) == [(0, i) for i in range(5, 10)]
    assert take(queues, "a", 2) == [(0, 3), (0, 4)]
    assert list(queues["b"]) == [(0, 0), (0, 1), (0, 2)]
    queues = queues_of(a=0, b=1)
    assert take(queues, "a", 64) == [(0, 0)], "a last block is stolen whole"
    assert take(queues, "a", 64) == []


def test_shares_split_the_budget_and_what_remains():
    assert shares_of(50, ["a", "b"], 1000) == {"a": 25, "b": 25}
    assert shares_of(5, ["a", "b"], 1000) == {"a": 3, "b": 2}
    assert shares_of(50, ["a", "b"], 7) == {"a": 4, "b": 3}
    assert shares_of(None, ["a"], 7) == {"a": float("inf")}


def test_rebalance_hands_departed_workers_blocks_to_the_others():
    queues = queues_of(a=2, b=4)
    rebalance(queues, ["a", "c"])
    assert "b" not in queues
    assert sorted(queues["a"] + queues["c"]) == [(0, i) for i in range(6)]
