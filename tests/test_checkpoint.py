"""Checkpoints: round trips, refusal of anything that is not one, and atomic saves."""

import dataclasses
import datetime
import doctest
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sklearn.linear_model import SGDClassifier, SGDRegressor

import fedplugin
from fedplugin import checkpoint as ckpt
from fedplugin.checkpoint import FORMAT_NAME, FORMAT_VERSION, load_checkpoint, save_checkpoint
from fedplugin.history import Round
from fedplugin.store import GlobalModel


def make_model(version=7, seed=0):
    rng = np.random.default_rng(seed)
    return GlobalModel(
        version=version,
        params={"coef_": rng.normal(size=(3, 5)), "intercept_": rng.normal(size=3)},
        n_features=5,
        classes=np.array(["a", "b", "c"]),
        rounds=version - 1,
        extra={"note": "hand-built"},
    )


def make_round(**values):
    """A Round; fields this test does not know about (added later) get 0."""
    for f in dataclasses.fields(Round):
        if f.name not in values and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            values[f.name] = 0
    return Round(**values)


def make_history(n=2):
    rounds, total = [], 0
    for i in range(1, n + 1):
        total += 1000 * i
        rounds.append(
            make_round(
                round=i, trigger="count" if i < n else "final", samples=1000 * i, total_samples=total,
                blocks=i, retrained_blocks=0, n_workers=2, workers=("tcp://a:1", "tcp://b:2"),
                excluded_workers=(), seconds=0.5 * i, bytes_up=100, bytes_down=200, version=i,
                metrics={"accuracy": 0.5 + i / 10},
            )
        )
    return rounds


def state_files(path):
    return sorted(p.name for p in path.iterdir() if p.name.startswith("state-"))


# ------------------------------------------------------------------ round trip
def test_round_trip_keeps_arrays_history_and_estimator(tmp_path):
    model, history = make_model(), make_history(3)
    estimator = SGDClassifier(alpha=1e-3, loss="log_loss", random_state=3)
    path = save_checkpoint(tmp_path / "ckpt", model, history, estimator, name="clf")
    assert path == tmp_path / "ckpt"

    loaded = load_checkpoint(path)
    g = loaded.global_model
    assert (g.version, g.rounds, g.n_features, g.extra) == (7, 6, 5, {"note": "hand-built"})
    assert g.params.keys() == model.params.keys()
    for key, value in model.params.items():
        np.testing.assert_array_equal(g.params[key], value)  # bit for bit, not allclose
        assert g.params[key].dtype == value.dtype
    np.testing.assert_array_equal(g.classes, model.classes)
    assert loaded.history == history
    assert loaded.total_samples == history[-1].total_samples == 6000
    assert type(loaded.estimator) is SGDClassifier
    assert loaded.estimator.get_params() == estimator.get_params()
    assert loaded.name == "clf" and loaded.path == path


def test_manifest_describes_the_checkpoint_without_fedplugin(tmp_path):
    path = save_checkpoint(tmp_path / "ckpt", make_model(), make_history(2), SGDClassifier(), name="clf")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["format"] == FORMAT_NAME == "fedplugin-checkpoint"
    assert manifest["format_version"] == FORMAT_VERSION == 2
    assert manifest["fedplugin_version"] == fedplugin.__version__
    assert manifest["plugin_name"] == "clf"
    assert (manifest["version"], manifest["rounds"], manifest["n_features"]) == (7, 6, 5)
    assert manifest["classes"] == ["a", "b", "c"]
    assert manifest["history_rounds"] == 2 and manifest["total_samples"] == 3000
    assert manifest["parameters"] == {"coef_": [3, 5], "intercept_": [3]}
    assert manifest["estimator_class"] == "sklearn.linear_model._stochastic_gradient.SGDClassifier"
    created = datetime.datetime.fromisoformat(manifest["created"])
    assert abs(datetime.datetime.now(datetime.timezone.utc) - created) < datetime.timedelta(minutes=5)
    assert manifest["state_file"] in os.listdir(path)


def test_regressor_without_classes_or_history(tmp_path):
    model = GlobalModel(0, {"coef_": np.arange(4.0), "intercept_": np.zeros(1)}, n_features=4)
    path = save_checkpoint(tmp_path / "reg", model, [], SGDRegressor())
    loaded = load_checkpoint(path)
    assert loaded.global_model.classes is None and loaded.history == [] and loaded.total_samples == 0
    assert json.loads((path / "manifest.json").read_text())["classes"] is None


def test_saving_again_replaces_the_checkpoint_and_its_old_state_file(tmp_path):
    path = tmp_path / "ckpt"
    save_checkpoint(path, make_model(version=1), make_history(1), SGDClassifier())
    first = state_files(path)
    save_checkpoint(path, make_model(version=2, seed=1), make_history(2), SGDClassifier())
    loaded = load_checkpoint(path)
    assert loaded.global_model.version == 2 and len(loaded.history) == 2
    np.testing.assert_array_equal(loaded.global_model.params["coef_"], make_model(2, seed=1).params["coef_"])
    assert len(state_files(path)) == 1 and state_files(path) != first
    assert sorted(os.listdir(path)) == sorted(["manifest.json", *state_files(path)])


def test_an_empty_directory_can_become_a_checkpoint(tmp_path):
    (tmp_path / "empty").mkdir()
    save_checkpoint(tmp_path / "empty", make_model(), [], SGDClassifier())
    assert load_checkpoint(tmp_path / "empty").global_model.version == 7


def test_refuses_to_overwrite_a_directory_that_is_not_a_checkpoint(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "precious.csv").write_text("1,2,3\n")
    with pytest.raises(FileExistsError, match="is not a fedplugin checkpoint"):
        save_checkpoint(tmp_path / "data", make_model(), [], SGDClassifier())
    assert os.listdir(tmp_path / "data") == ["precious.csv"]


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(TypeError, match="is not a GlobalModel"):
        save_checkpoint(tmp_path / "x", {"coef_": np.zeros(2)}, [], SGDClassifier())
    with pytest.raises(TypeError, match=r"history holds \['dict'\]"):
        save_checkpoint(tmp_path / "x", make_model(), [{"round": 1}], SGDClassifier())
    assert not (tmp_path / "x").exists()


# ------------------------------------------------------------- failure modes
def _edit_manifest(path, **changes):
    manifest = json.loads((path / "manifest.json").read_text())
    manifest.update(changes)
    (path / "manifest.json").write_text(json.dumps(manifest))


def _state(path):
    return path / json.loads((path / "manifest.json").read_text())["state_file"]


def _flip_a_byte(path):
    state = _state(path)
    data = bytearray(state.read_bytes())
    data[len(data) // 2] ^= 0xFF
    state.write_bytes(bytes(data))


def _truncate(path):
    state = _state(path)
    state.write_bytes(state.read_bytes()[:50])


def _garbage_with_matching_checksum(path):
    state = _state(path)
    state.write_bytes(b"not a state file at all")
    _edit_manifest(path, sha256=ckpt._sha256(state))


BREAKAGES = {
    "a file, not a directory": (
        lambda p: (__import__("shutil").rmtree(p), p.write_text("hello")), r"it is a file; expected a directory"
    ),
    "no manifest": (lambda p: (p / "manifest.json").unlink(), r"has no manifest.json"),
    "manifest is not JSON": (lambda p: (p / "manifest.json").write_text("{oops"), r"is not valid JSON"),
    "manifest is a JSON list": (
        lambda p: (p / "manifest.json").write_text("[1, 2]"), r"format='list'; expected format='fedplugin-checkpoint'"
    ),
    "wrong format name": (
        lambda p: _edit_manifest(p, format="other-tool"), r"format='other-tool'; expected format='fedplugin-checkpoint'"
    ),
    "future format version": (
        lambda p: _edit_manifest(p, format_version=FORMAT_VERSION + 1),
        rf"format_version={FORMAT_VERSION + 1}.*reads format versions up to {FORMAT_VERSION}: upgrade fedplugin",
    ),
    "format version not an int": (lambda p: _edit_manifest(p, format_version="1"), r"expected an int >= 1"),
    "manifest lacks fields": (lambda p: _edit_manifest(p, sha256=None), r"lacks \['sha256'\]"),
    "state file outside the directory": (
        lambda p: _edit_manifest(p, state_file="../elsewhere.joblib"), r"expected a file name inside"
    ),
    "state file missing": (lambda p: _state(p).unlink(), r"incomplete fedplugin checkpoint.*missing"),
    "state file corrupted": (_flip_a_byte, r"is corrupted or was altered: its SHA-256 is"),
    "state file truncated": (_truncate, r"is corrupted or was altered: its SHA-256 is"),
    "unreadable state with matching checksum": (_garbage_with_matching_checksum, r"cannot be read"),
    "manifest disagrees with the state": (
        lambda p: _edit_manifest(p, version=99), r"manifest says version=99 but the state file holds version=7"
    ),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_anything_but_a_checkpoint_is_refused_with_a_clear_value_error(tmp_path, breakage):
    path = save_checkpoint(tmp_path / "ckpt", make_model(), make_history(), SGDClassifier())
    damage, message = BREAKAGES[breakage]
    damage(path)
    with pytest.raises(ValueError, match=message) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value), "the error names the path"


def test_nothing_at_the_path_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"no checkpoint at {tmp_path / 'nope'}"):
        load_checkpoint(tmp_path / "nope")


# ------------------------------------------------------------------ atomicity
def _fail_after_writing_half(value, f, **kwargs):
    f.write(b"\x80\x04half a pickle")
    raise OSError(28, "No space left on device")


def test_failure_while_writing_state_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "ckpt", make_model(version=1), make_history(1), SGDClassifier())
    before = sorted(os.listdir(path))
    monkeypatch.setattr(ckpt, "_dump", _fail_after_writing_half)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(path, make_model(version=2), make_history(2), SGDClassifier())
    monkeypatch.undo()
    assert sorted(os.listdir(path)) == before, "the half-written state file was removed"
    loaded = load_checkpoint(path)
    assert loaded.global_model.version == 1 and len(loaded.history) == 1


def test_failure_at_the_commit_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "ckpt", make_model(version=1), make_history(1), SGDClassifier())
    before = sorted(os.listdir(path))

    def replace_fails(src, dst):
        raise OSError(5, "I/O error")

    monkeypatch.setattr(ckpt.os, "replace", replace_fails)
    with pytest.raises(OSError, match="I/O error"):
        save_checkpoint(path, make_model(version=2), make_history(2), SGDClassifier())
    monkeypatch.undo()
    assert sorted(os.listdir(path)) == before
    assert load_checkpoint(path).global_model.version == 1


def test_failure_on_a_new_path_leaves_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.setattr(ckpt, "_dump", _fail_after_writing_half)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path / "new", make_model(), [], SGDClassifier())
    assert os.listdir(tmp_path) == [], "neither the checkpoint nor its temporary directory is left"


CRASH = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    from sklearn.linear_model import SGDClassifier
    from fedplugin import checkpoint
    from fedplugin.store import GlobalModel

    def crash(*args):  # the process dies at the commit point: no except, no finally
        os._exit(3)

    model = GlobalModel(2, {"coef_": np.ones((1, 5)), "intercept_": np.ones(1)}, 5, np.array([0, 1]), 1)
    for target in sys.argv[1:]:  # one crashing child per target, sparing an import each
        pid = os.fork()
        if pid == 0:
            checkpoint.os.replace = checkpoint.os.rename = crash
            checkpoint.save_checkpoint(target, model, [], SGDClassifier())
            os._exit(0)
        if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 3:
            sys.exit(f"saving to {target} did not crash at the commit point")
    """
)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_process_killed_mid_save_leaves_the_previous_checkpoint(tmp_path):
    path = save_checkpoint(tmp_path / "ckpt", make_model(version=1), make_history(1), SGDClassifier())
    fresh = tmp_path / "fresh"
    done = subprocess.run([sys.executable, "-c", CRASH, str(path), str(fresh)], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    # the overwrite died after writing its state file: the old manifest still rules
    assert len(state_files(path)) == 2
    assert load_checkpoint(path).global_model.version == 1
    # the first save died before its rename: there is no checkpoint, not half of one
    with pytest.raises(FileNotFoundError):
        load_checkpoint(fresh)
    # the next save clears what the crash left in the checkpoint directory
    save_checkpoint(path, make_model(version=3), [], SGDClassifier())
    assert load_checkpoint(path).global_model.version == 3 and len(state_files(path)) == 1


def test_docstring_examples_run():
    result = doctest.testmod(ckpt, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 5 and result.failed == 0


# ------------------------------------------------- the coordinator's checkpoints
# Coordinator(checkpoint=path) saves after every round, coord.save(path) saves now,
# Coordinator.resume(client, plugin, path) carries on.


@pytest.fixture
def checkpoint_data():
    from sklearn.datasets import make_classification

    from sklearn.preprocessing import StandardScaler

    X, y = make_classification(
        n_samples=12_000, n_features=20, n_informative=5, class_sep=2.0, flip_y=0.01, random_state=0
    )
    return StandardScaler().fit_transform(X), y


def in_process_client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},  # its HTTP server, on loopback, a free port
    )
    return Client(cluster), cluster


def start(client, estimator=None, classes=(0, 1), **kwargs):
    plugin = fedplugin.FederatedModelPlugin(estimator or SGDClassifier(random_state=0), classes=classes, name="clf")
    client.register_plugin(plugin)
    return plugin


def stored_version(client):
    from fedplugin import store

    return store.fetch_info(client, "clf").version


@pytest.mark.timeout(120)
def test_coordinator_checkpoints_every_round_and_resumes_on_a_new_cluster(tmp_path, checkpoint_data):
    X, y = checkpoint_data
    path = tmp_path / "ckpt"
    client, cluster = in_process_client()
    with cluster, client:
        plugin = start(client)
        coord = fedplugin.Coordinator(client, plugin, sync=fedplugin.EveryNBatches(4), block_size=1000, checkpoint=path)
        coord.fit(X[:8000], y[:8000])
        saved = load_checkpoint(path)  # written by the rounds themselves
        assert saved.global_model.version == coord.version and saved.history == coord.history
        np.testing.assert_array_equal(saved.global_model.params["coef_"], coord.global_model().coef_)
        explicit = coord.save(tmp_path / "explicit")
        assert load_checkpoint(explicit).global_model.version == coord.version
        pickled = coord.save(tmp_path / "pickled", format="pickle")
        with pytest.raises(ValueError, match="trusted=True"):
            load_checkpoint(pickled)
        assert load_checkpoint(pickled, trusted=True).history == coord.history
        before = (coord.version, list(coord.history), coord.global_model().coef_.copy())

        # the run goes on without checkpoints; resuming rolls the store and the workers back
        coord.checkpoint = None
        coord.fit(X[8000:], y[8000:])
        assert coord.version > before[0] and stored_version(client) == coord.version
        back = fedplugin.Coordinator.resume(client, plugin, path, sync=fedplugin.EveryNBatches(4), block_size=1000)
        assert back.version == before[0] == stored_version(client)
        assert {s["version"] for s in back.worker_states().values()} == {before[0]}
        back.close()
        coord.close()

    client, cluster = in_process_client()  # a new cluster: the old scheduler's store is gone
    with cluster, client:
        plugin = start(client)
        coord = fedplugin.Coordinator.resume(client, plugin, path, sync=fedplugin.EveryNBatches(4), block_size=1000)
        assert coord.checkpoint == path, "a resumed run keeps checkpointing where it came from"
        assert coord.version == before[0] and coord.history == before[1]
        np.testing.assert_array_equal(coord.global_model().coef_, before[2])
        assert {s["version"] for s in coord.worker_states().values()} == {before[0]}
        coord.fit(X[8000:], y[8000:])
        assert coord.history[len(before[1])].round == before[1][-1].round + 1, "round numbers carry on"
        assert coord.history[-1].total_samples == len(X), "so does the sample count"
        assert load_checkpoint(path).global_model.version == coord.version
        assert coord.score(X, y) > 0.85  # one SGD pass in one process: 0.93
        coord.close()


@pytest.mark.timeout(60)
def test_resume_refuses_a_checkpoint_that_does_not_fit_the_plugin(tmp_path):
    regressor = GlobalModel(0, {"coef_": np.zeros(3), "intercept_": np.zeros(1)}, n_features=3)
    save_checkpoint(tmp_path / "reg", regressor, [], SGDRegressor(), name="clf")
    other_classes = GlobalModel(0, {"coef_": np.zeros((1, 3)), "intercept_": np.zeros(1)}, 3, np.array([1, 2]))
    save_checkpoint(tmp_path / "classes", other_classes, [], SGDClassifier(), name="clf")
    client, cluster = in_process_client()
    with cluster, client:
        plugin = start(client)
        with pytest.raises(ValueError, match="holds a SGDRegressor model.*trains SGDClassifier"):
            fedplugin.Coordinator.resume(client, plugin, tmp_path / "reg")
        with pytest.raises(ValueError, match=r"classes=\[1, 2\].*classes=\[0, 1\]"):
            fedplugin.Coordinator.resume(client, plugin, tmp_path / "classes")
        with pytest.raises(FileNotFoundError):
            fedplugin.Coordinator.resume(client, plugin, tmp_path / "nothing")
        fits = GlobalModel(4, {"coef_": np.ones((1, 3)), "intercept_": np.zeros(1)}, 3, np.array([0, 1]))
        save_checkpoint(tmp_path / "pickled", fits, [], SGDClassifier(), name="clf", format="pickle")
        with pytest.raises(ValueError, match=r"format version 1 checkpoint.*trusted=True"):
            fedplugin.Coordinator.resume(client, plugin, tmp_path / "pickled")
        coord = fedplugin.Coordinator.resume(client, plugin, tmp_path / "pickled", trusted=True, checkpoint=None)
        assert coord.version == 4
        coord.close()


@pytest.mark.timeout(120)
def test_resumed_run_ends_with_the_same_model_as_an_uninterrupted_one(tmp_path, checkpoint_data):
    """Fixed seed and block order: stopping, moving to a new cluster and resuming changes nothing."""
    X, y = checkpoint_data
    # Bitwise reproducibility is the synchronous mode's promise (overlap=False, issue 9).
    settings = dict(sync=fedplugin.EveryNBatches(4), block_size=1000, overlap=False)

    client, cluster = in_process_client()
    with cluster, client:
        coord = fedplugin.Coordinator(client, start(client), **settings)
        coord.fit(X[:8000], y[:8000])
        coord.fit(X[8000:], y[8000:])
        uninterrupted = coord.global_model()
        coord.close()

    client, cluster = in_process_client()
    with cluster, client:
        coord = fedplugin.Coordinator(client, start(client), checkpoint=tmp_path / "ckpt", **settings)
        coord.fit(X[:8000], y[:8000])
        coord.close()

    client, cluster = in_process_client()  # a new cluster, a new coordinator
    with cluster, client:
        coord = fedplugin.Coordinator.resume(client, start(client), tmp_path / "ckpt", **settings)
        coord.fit(X[8000:], y[8000:])
        resumed = coord.global_model()
        coord.close()

    np.testing.assert_allclose(resumed.coef_, uninterrupted.coef_, rtol=1e-12)
    np.testing.assert_allclose(resumed.intercept_, uninterrupted.intercept_, rtol=1e-12)
