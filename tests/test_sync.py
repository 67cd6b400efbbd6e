"""Synchronization policies: construction errors and decisions."""

import numpy as np
import pytest

from fedplugin.sync import AnyOf, DriftThreshold, EveryNBatches, EverySeconds, LocalStats, SyncPolicy, as_policy


def stats(**kw):
    base = dict(blocks=1, samples=100, seconds=0.1, drift=0.0, reference_norm=1.0)
    base.update(kw)
    return LocalStats(**base)


def test_every_n_batches():
    assert EveryNBatches(50).blocks_per_round(2) == 50
    assert EveryNBatches(50).check(stats(blocks=10_000)) is None
    for bad in (0, -1, 2.5, True, "5"):
        with pytest.raises(ValueError, match="must be an int >= 1"):
            EveryNBatches(bad)


def test_every_seconds():
    assert EverySeconds(1.0).check(stats(seconds=0.5)) is None
    assert EverySeconds(1.0).check(stats(seconds=1.0)) == "time"
    with pytest.raises(ValueError, match="t=0 must be"):
        EverySeconds(0)


def test_drift_threshold_absolute_and_relative():
    assert DriftThreshold(2.0).check(stats(drift=1.0)) is None
    assert DriftThreshold(2.0).check(stats(drift=3.0)) == "drift"
    rel = DriftThreshold(relative=0.1)
    assert rel.check(stats(drift=0.5, reference_norm=10.0)) is None
    assert rel.check(stats(drift=1.5, reference_norm=10.0)) == "drift"
    with pytest.raises(ValueError, match="exactly one"):
        DriftThreshold(1.0, relative=0.1)
    with pytest.raises(ValueError, match="exactly one"):
        DriftThreshold(relative=0.1, target_blocks=8)


def test_any_of_combines():
    policy = AnyOf(EveryNBatches(40), EverySeconds(5), EveryNBatches(20))
    assert policy.blocks_per_round(4) == 20
    assert policy.check(stats(seconds=6)) == "time"
    assert AnyOf(EverySeconds(5)).blocks_per_round(2) is None
    assert AnyOf(DriftThreshold(1.0)).needs_drift


def test_custom_policy():
    class EveryThousandSamples(SyncPolicy):
        def check(self, stats):
            return "samples" if stats.samples >= 1000 else None

    assert EveryThousandSamples().check(stats(samples=1200)) == "samples"


def test_as_policy():
    assert as_policy(None).n == 50
    assert as_policy(7).n == 7
    with pytest.raises(TypeError, match="not a synchronization policy"):
        as_policy("often")
    with pytest.raises(TypeError, match="is a class"):
        as_policy(EveryNBatches)


def test_drift_threshold_without_arguments_calibrates_itself():
    assert DriftThreshold().target_blocks == 32 and DriftThreshold().threshold is None
    assert repr(DriftThreshold()) == "DriftThreshold(target_blocks=32)"
    assert repr(DriftThreshold(relative=0.1)) == "DriftThreshold(relative=0.1)"
    for bad in (0, -3, 2.5, True, "16"):
        with pytest.raises(ValueError, match="target_blocks=.* must be an int >= 1"):
            DriftThreshold(target_blocks=bad)


def run_worker(policy, steps, drifts, memory):
    """Feed ``policy`` one block at a time like a worker; a round resets the block count.

    Returns the (1-based) blocks at which the policy fired and its triggers.
    """
    fired, since_sync = [], 0
    for block, (step, drift) in enumerate(zip(steps, drifts, strict=True), start=1):
        since_sync += 1
        stats = LocalStats(
            blocks=since_sync, samples=0, seconds=0.0, drift=drift, step=step,
            blocks_since_sync=since_sync, memory=memory,
        )
        trigger = policy.check(stats)
        if trigger is not None:
            fired.append((block, trigger))
            since_sync = 0
    return fired


def stationary_walk(rng, n_blocks, scale):
    """Parameters fluctuating around a fixed optimum: each block's position is fresh noise."""
    positions = rng.normal(scale=scale, size=(n_blocks + 1, 20))
    steps = np.sum(np.diff(positions, axis=0) ** 2, axis=1)
    drifts = np.sum(positions[1:] ** 2, axis=1)
    return steps, drifts


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3], ids=["small", "unit", "large"])
@pytest.mark.parametrize("target", [4, 16, 32])
def test_calibrated_stationary_stream_ends_a_round_every_target_blocks(scale, target):
    rng = np.random.default_rng(0)
    steps, drifts = stationary_walk(rng, 160, scale)
    fired = run_worker(DriftThreshold(target_blocks=target), steps, drifts, {})
    assert [block for block, _ in fired] == list(range(target, 161, target)), "whatever the scale of the parameters"
    assert {trigger for _, trigger in fired} == {"count"}, "noise never passes for drift"


def test_calibrated_random_walk_ends_a_round_about_every_drift_factor_blocks():
    # Independent steps: the drift since the last round grows like the number of blocks.
    rng = np.random.default_rng(1)
    policy, memory = DriftThreshold(target_blocks=16), {}
    fired, position, since_sync = [], np.zeros(20), 0
    for block in range(1, 321):
        step = rng.normal(size=20) / np.sqrt(20)
        position += step
        since_sync += 1
        stats = LocalStats(since_sync, 0, 0.0, drift=position @ position, step=step @ step,
                           blocks_since_sync=since_sync, memory=memory)
        if policy.check(stats) is not None:
            fired.append(block)
            position[:], since_sync = 0.0, 0
    lengths = np.diff([0, *fired])
    assert 0.6 * DriftThreshold.drift_factor <= lengths.mean() <= 1.5 * DriftThreshold.drift_factor, lengths


def test_calibrated_sudden_jump_fires_at_once():
    rng = np.random.default_rng(2)
    steps, drifts = stationary_walk(rng, 40, 1.0)
    memory = {}
    policy = DriftThreshold()
    run_worker(policy, steps, drifts, memory)  # calibrated on 40 stationary blocks
    typical = float(np.median(steps))
    # a concept change: the next block moves the model ~ 3.5 typical steps at once
    jump = LocalStats(1, 0, 0.0, drift=12 * typical, step=12 * typical, blocks_since_sync=1, memory=memory)
    assert policy.check(jump) == "drift"
    # ... and so does a steady pull that adds a typical step each block in one direction
    memory_pull = {}
    run_worker(policy, steps, drifts, memory_pull)
    fired = run_worker(policy, [typical] * 16, [(k * np.sqrt(typical)) ** 2 for k in range(1, 17)], memory_pull)
    block, trigger = fired[0]
    assert trigger == "drift" and 2 <= block <= 4, "after about sqrt(drift_factor) blocks, long before the count"


def test_calibrated_waits_for_its_warmup_and_keeps_one_memory_per_target():
    policy, memory = DriftThreshold(), {}
    huge = dict(samples=0, seconds=0.0, drift=1e9, step=1.0, memory=memory)
    assert [policy.check(LocalStats(blocks=k, blocks_since_sync=k, **huge)) for k in (1, 2, 3, 4)] == [None] * 4
    assert policy.check(LocalStats(blocks=5, blocks_since_sync=5, **huge)) == "drift"
    DriftThreshold(target_blocks=8).check(LocalStats(blocks=1, blocks_since_sync=1, **huge))
    assert sorted(memory) == ["DriftThreshold(target_blocks=32)", "DriftThreshold(target_blocks=8)"]
    assert len(memory["DriftThreshold(target_blocks=32)"]) == 5


def test_calibrated_memory_is_bounded():
    policy, memory = DriftThreshold(target_blocks=2), {}
    for k in range(1, 100):
        policy.check(LocalStats(blocks=k, samples=0, seconds=0.0, step=1.0, memory=memory))
    assert len(memory["DriftThreshold(target_blocks=2)"]) == DriftThreshold.window
