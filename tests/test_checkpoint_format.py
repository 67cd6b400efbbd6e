"""Checkpoints that run no code: round trips of every family, and hostile files that must do nothing."""

import io
import json
import math
import pickle
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from sklearn.cluster import MiniBatchKMeans
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.naive_bayes import GaussianNB, MultinomialNB
from sklearn.neural_network import MLPClassifier

import fedplugin
from fedplugin import checkpoint as ckpt
from fedplugin.adapters import adapter_for
from fedplugin.checkpoint import load_checkpoint, save_checkpoint
from fedplugin.checkpoint_format import DOCUMENT
from fedplugin.history import Round
from fedplugin.store import GlobalModel

RNG = np.random.default_rng(0)
X = np.abs(RNG.normal(size=(60, 4)))
Y = (X[:, 0] > X[:, 1]).astype(int)


def history():
    return [
        Round(
            round=i, trigger="count", samples=10, total_samples=10 * i, blocks=1, retrained_blocks=0,
            handed_back_blocks=0, n_workers=2, workers=("tcp://a:1", "tcp://b:2"), excluded_workers=("tcp://b:2",),
            seconds=0.25 * i, bytes_up=8, bytes_down=16, version=i,
            metrics={"online_score": 0.5 + i / 10, "f32": np.float32(0.1)},
        )
        for i in (1, 2)
    ]


def trained_model(estimator, classes=(0, 1)):
    """A GlobalModel as a round would store it: the family's parameters and training state."""
    adapter = adapter_for(estimator)
    classes = None if classes is None else np.asarray(classes)
    model = adapter.initialize(estimator, X.shape[1], classes)
    if classes is not None:
        model.partial_fit(X, Y, classes=classes)
    else:
        model.partial_fit(*((X,) if isinstance(estimator, MiniBatchKMeans) else (X, Y.astype(float))))
    extra = {"state": adapter.get_state(model)}
    return GlobalModel(
        3, adapter.get_params(model), X.shape[1], classes, rounds=2, extra=extra, estimator=type(estimator).__name__
    )


def same_params(a, b):
    """Estimator parameters equal, nested estimators and NaN included."""
    if hasattr(a, "get_params"):
        return type(a) is type(b) and same_params(a.get_params(deep=False), b.get_params(deep=False))
    if isinstance(a, dict):
        return type(b) is dict and a.keys() == b.keys() and all(same_params(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same_params, a, b))
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return type(a) is type(b) and a == b


FAMILIES = {
    "sgd": lambda: SGDClassifier(alpha=1e-3, class_weight={0: 1.0, 1: 2.0}, random_state=3),
    "mlp": lambda: MLPClassifier(hidden_layer_sizes=(5, 3), random_state=0, max_iter=5),
    "gaussian-nb": lambda: GaussianNB(priors=np.array([0.4, 0.6])),
    "multinomial-nb": lambda: MultinomialNB(alpha=0.5),
    "kmeans": lambda: MiniBatchKMeans(n_clusters=3, init=np.eye(3, 4), n_init=1, random_state=0),
    "candidate-set": lambda: fedplugin.CandidateSet([SGDClassifier(alpha=a, random_state=0) for a in (1e-4, 1e-2)]),
}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_round_trips_exactly(tmp_path, family):
    estimator = FAMILIES[family]()
    model = trained_model(estimator, classes=None if family == "kmeans" else (0, 1))
    path = save_checkpoint(tmp_path / "ckpt", model, history(), estimator, name=family)
    assert {p.suffix for p in path.iterdir()} == {".json", ".npz"}
    loaded = load_checkpoint(path)
    g = loaded.global_model
    assert g.params.keys() == model.params.keys()
    for key, value in model.params.items():
        assert g.params[key].dtype == value.dtype and np.array_equal(g.params[key], value), key
    assert (g.version, g.rounds, g.n_features, g.estimator) == (3, 2, 4, model.estimator)
    assert g.extra == model.extra and all(type(v) is type(model.extra["state"][k]) for k, v in g.extra["state"].items())
    assert (g.classes is None) == (model.classes is None)
    if model.classes is not None:
        assert g.classes.dtype == model.classes.dtype and np.array_equal(g.classes, model.classes)
    assert loaded.history == history()
    assert type(loaded.history[0].metrics["f32"]) is np.float32 and type(loaded.history[0].workers) is tuple
    assert same_params(loaded.estimator, estimator) and loaded.estimator is not estimator


def test_federated_search_and_its_grid_round_trip(tmp_path):
    search = fedplugin.FederatedSearch(SGDClassifier(), fedplugin.passive_aggressive_grid(C=[0.1, 1.0]), epochs=2)
    path = save_checkpoint(tmp_path / "ckpt", trained_model(SGDClassifier()), [], search)
    assert same_params(load_checkpoint(path).estimator, search)


def test_server_optimizer_state_and_odd_values_round_trip(tmp_path):
    model = trained_model(SGDRegressor(), classes=None)
    slots = {k: RNG.normal(size=np.shape(v)).astype(np.float32) for k, v in model.params.items()}
    model.extra = {
        "server": {"rule": "FedAdam", "m": slots, "v": {k: v * 2 for k, v in slots.items()}},
        "state": {"t_": 61.0},
        "odd": {
            1: "int keys", "tuple": (1, (2.5, None)), "nan": float("nan"), "int64": np.int64(7),
            "dtype": np.float32, "looks like a tag": {"__array__": "x"}, "a/b": np.arange(3),
        },
        "a": {"b": np.arange(4)},  # the same member path as extra["odd"]["a/b"] would suggest
    }
    model.classes = np.array(["no", "yes"], dtype=object)
    loaded = load_checkpoint(save_checkpoint(tmp_path / "ckpt", model, [], SGDRegressor())).global_model
    server = loaded.extra["server"]
    assert server["rule"] == "FedAdam" and server["m"].keys() == slots.keys()
    for key, value in slots.items():
        assert server["m"][key].dtype == np.float32 and np.array_equal(server["m"][key], value)
        assert np.array_equal(server["v"][key], value * 2)
    odd = loaded.extra["odd"]
    assert odd[1] == "int keys" and odd["tuple"] == (1, (2.5, None)) and math.isnan(odd["nan"])
    assert type(odd["int64"]) is np.int64 and odd["dtype"] is np.float32
    assert odd["looks like a tag"] == {"__array__": "x"}
    assert np.array_equal(odd["a/b"], np.arange(3)) and np.array_equal(loaded.extra["a"]["b"], np.arange(4))
    assert loaded.classes.dtype == object and loaded.classes.tolist() == ["no", "yes"]


def test_what_json_and_arrays_cannot_hold_is_refused_at_save_naming_it(tmp_path):
    estimator = SGDClassifier(random_state=np.random.RandomState(0))
    with pytest.raises(TypeError, match=r"estimator/params/random_state holds a RandomState.*format='pickle'"):
        save_checkpoint(tmp_path / "ckpt", trained_model(SGDClassifier()), [], estimator)
    scored = fedplugin.CandidateSet([SGDClassifier()], scoring=lambda est, X, y: 0.0)
    with pytest.raises(TypeError, match=r"estimator/params/scoring holds a callable"):
        save_checkpoint(tmp_path / "ckpt", trained_model(SGDClassifier()), [], scored)
    with pytest.raises(TypeError, match=r"global_model/extra/b holds a numpy bytes_ scalar.*format='pickle'"):
        save_checkpoint(tmp_path / "ckpt", GlobalModel(0, {}, 1, extra={"b": np.bytes_(b"x")}), [], SGDClassifier())
    mixed = trained_model(SGDClassifier())
    mixed.classes = np.array([0, "a"], dtype=object)
    with pytest.raises(TypeError, match=r"global_model/classes is an object array holding \['int', 'str'\]"):
        save_checkpoint(tmp_path / "ckpt", mixed, [], SGDClassifier())
    assert list(tmp_path.iterdir()) == [], "nothing is left behind"
    with pytest.raises(ValueError, match=r"format='json' is not supported; expected one of \['npz', 'pickle'\]"):
        save_checkpoint(tmp_path / "ckpt", mixed, [], SGDClassifier(), format="json")


def test_the_pickle_format_stores_anything_and_loads_only_when_trusted(tmp_path):
    estimator = SGDClassifier(random_state=np.random.RandomState(0))
    path = save_checkpoint(tmp_path / "ckpt", trained_model(SGDClassifier()), history(), estimator, format="pickle")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["format_version"] == 1 and manifest["state_file"].endswith(".joblib")
    with pytest.raises(ValueError, match=r"format version 1 checkpoint.*runs whatever code.*trusted=True"):
        load_checkpoint(path)
    loaded = load_checkpoint(path, trusted=True)
    assert loaded.history == history() and isinstance(loaded.estimator.random_state, np.random.RandomState)
    # saving again in the default format replaces the pickle
    save_checkpoint(path, loaded.global_model, loaded.history, SGDClassifier())
    assert load_checkpoint(path).history == history()
    assert [p.suffix for p in path.iterdir() if p.name.startswith("state-")] == [".npz"]


def test_feature_names_round_trip_and_older_checkpoints_without_them_load(tmp_path):
    model = trained_model(SGDClassifier())
    model.feature_names = np.array(["a", "b", "c", "d"], dtype=object)
    path = save_checkpoint(tmp_path / "ckpt", model, [], SGDClassifier())
    names = load_checkpoint(path).global_model.feature_names
    assert names.dtype == object and names.tolist() == ["a", "b", "c", "d"]
    members = _members(path)  # as a fedplugin that kept no names wrote it
    document = json.loads(members.pop(DOCUMENT))
    del document["global_model"]["feature_names"]
    members = {name: data for name, data in members.items() if "feature_names" not in name}
    _replace_state(path, _zip({**members, DOCUMENT: json.dumps(document)}))
    assert load_checkpoint(path).global_model.feature_names is None


# ------------------------------------------------------------------ hostile files
class Hostile:
    """Unpickling it creates the file ``marker``: stands for any code an attacker chooses."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _manifest(path):
    return json.loads((path / "manifest.json").read_text())


def _replace_state(path, payload, **manifest_changes):
    """Write ``payload`` as the state file and give the manifest a matching checksum, as an attacker would."""
    manifest = _manifest(path)
    state = path / manifest["state_file"]
    state.write_bytes(payload)
    manifest.update(sha256=ckpt._sha256(state), **manifest_changes)
    (path / "manifest.json").write_text(json.dumps(manifest))


def _members(path):
    with zipfile.ZipFile(path / _manifest(path)["state_file"]) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _zip(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture
def saved(tmp_path):
    return save_checkpoint(tmp_path / "ckpt", trained_model(SGDClassifier()), history(), SGDClassifier())


def test_a_hostile_pickle_checkpoint_runs_nothing_unless_trusted(tmp_path, saved):
    marker = tmp_path / "pwned"
    _replace_state(saved, pickle.dumps({"global_model": Hostile(marker)}), format_version=1)
    with pytest.raises(ValueError, match=r"is a pickle, and loading it runs whatever code"):
        load_checkpoint(saved)
    with pytest.raises(ValueError, match=r"trusted=True"):
        fedplugin.Coordinator.resume(None, None, saved)  # refused before any cluster is touched
    assert not marker.exists()
    with pytest.raises(ValueError):  # the test's file is truly hostile: trusting it runs its code
        load_checkpoint(saved, trusted=True)
    assert marker.exists()


def test_a_pickle_posing_as_format_2_is_not_unpickled(tmp_path, saved):
    marker = tmp_path / "pwned"
    _replace_state(saved, pickle.dumps(Hostile(marker)))
    with pytest.raises(ValueError, match=r"cannot be read as an \.npz archive"):
        load_checkpoint(saved, trusted=True)  # trusted or not, format 2 never unpickles
    assert not marker.exists()


def test_an_object_array_in_the_npz_is_refused(tmp_path, saved):
    marker = tmp_path / "pwned"
    members = _members(saved)
    evil = io.BytesIO()
    np.save(evil, np.array([Hostile(marker)], dtype=object), allow_pickle=True)
    members["global_model/params/coef_.npy"] = evil.getvalue()
    _replace_state(saved, _zip(members))
    with pytest.raises(ValueError, match=r"holds an object array under 'global_model/params/coef_'.*refused"):
        load_checkpoint(saved)
    assert not marker.exists()


def test_a_tampered_npz_fails_its_checksum(saved):
    members = _members(saved)
    members["global_model/params/coef_.npy"] = members["global_model/params/coef_.npy"][:-8] + bytes(8)
    state = saved / _manifest(saved)["state_file"]
    state.write_bytes(_zip(members))  # edited after the save; the manifest is left alone
    with pytest.raises(ValueError, match=rf"{state} is corrupted or was altered: its SHA-256 is"):
        load_checkpoint(saved)


def _with_estimator(path, module, qualname, params=None):
    members = _members(path)
    document = json.loads(members[DOCUMENT])
    document["estimator"] = {"__estimator__": {"module": module, "qualname": qualname, "params": params or {}}}
    members[DOCUMENT] = json.dumps(document).encode()
    _replace_state(path, _zip(members), estimator_class=f"{module}.{qualname}")


def test_an_estimator_class_outside_sklearn_and_fedplugin_is_neither_imported_nor_called(
    tmp_path, saved, monkeypatch
):
    marker = tmp_path / "pwned"
    _with_estimator(saved, "os", "system", {"command": f"touch {marker}"})
    with pytest.raises(ValueError, match=r"os\.system is not a scikit-learn or fedplugin class; load with trusted=True"):
        load_checkpoint(saved)
    assert not marker.exists()

    (tmp_path / "evil_module_fp.py").write_text(f"open({str(marker)!r}, 'w').close()\nclass Evil:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    _with_estimator(saved, "evil_module_fp", "Evil")
    with pytest.raises(ValueError, match=r"evil_module_fp\.Evil is not a scikit-learn or fedplugin class"):
        load_checkpoint(saved)
    assert not marker.exists() and "evil_module_fp" not in sys.modules, "the module was not even imported"


@pytest.mark.parametrize(
    "module, qualname, message",
    [
        ("sklearn.utils", "Bunch", r"sklearn\.utils\.Bunch is not a scikit-learn or fedplugin estimator class"),
        ("sklearn.utils._bunch", "Bunch", r"is not a scikit-learn or fedplugin estimator class"),
        ("sklearn.base", "clone", r"sklearn\.base\.clone is a function, not a class"),
        ("sklearn.tests.test_base", "MyEstimator", r"is not a scikit-learn or fedplugin class"),
        ("sklearn", "__class__", r"is not the import path of a class"),
        ("sklearn..base", "BaseEstimator", r"is not the import path of a class"),
        ("sklearn.linear_model", "NoSuchModel", r"cannot be found"),
    ],
)
def test_only_estimator_classes_defined_in_sklearn_or_fedplugin_are_rebuilt(saved, module, qualname, message):
    _with_estimator(saved, module, qualname)
    with pytest.raises(ValueError, match=message):
        load_checkpoint(saved)


def test_a_trusted_checkpoint_may_name_any_estimator_class(tmp_path, saved, monkeypatch):
    (tmp_path / "own_module_fp.py").write_text("class Own:\n    def __init__(self, k=1):\n        self.k = k\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "own_module_fp", raising=False)
    _with_estimator(saved, "own_module_fp", "Own", {"k": 5})
    with pytest.raises(ValueError, match=r"own_module_fp\.Own is not a scikit-learn or fedplugin class"):
        load_checkpoint(saved)
    assert load_checkpoint(saved, trusted=True).estimator.k == 5


def test_a_coordinator_with_a_checkpoint_refuses_an_estimator_it_could_not_save(shared_client, unique_name, tmp_path):
    from fedplugin import Coordinator, FederatedModelPlugin

    plugin = FederatedModelPlugin(SGDClassifier(random_state=np.random.RandomState(0)), classes=[0, 1], name=unique_name)
    shared_client.register_plugin(plugin)
    with pytest.raises(TypeError, match=r"estimator/params/random_state holds a RandomState.*format='pickle'"):
        Coordinator(shared_client, plugin, checkpoint=tmp_path / "ckpt")
    Coordinator(shared_client, plugin).close()  # without a checkpoint nothing is saved: fine
