"""Synchronization policies: construction errors and decisions."""

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
        DriftThreshold()


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
