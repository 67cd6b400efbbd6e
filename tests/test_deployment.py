"""Deployment: clusters started with the ``dask`` command line, as people run them.

Each test starts a real ``dask scheduler`` and nanny-managed ``dask worker``
processes on 127.0.0.1 (free ports, no dashboards), connects a plain
``Client`` and tears every process down afterwards, also when the test fails
or times out: each process leads its own process group, which is terminated,
then killed. The processes' logs are printed at teardown, so a failing test
shows them.
"""

from __future__ import annotations

import asyncio
import datetime
import importlib
import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from distributed import Client, WorkerPlugin
from distributed.comm import connect
from distributed.security import Security
from sklearn.datasets import make_classification
from sklearn.linear_model import SGDClassifier
from sklearn.preprocessing import StandardScaler

import fedplugin
from fedplugin import Coordinator, EveryNBatches, FederatedModelPlugin

BIN = Path(sys.executable).parent
DASK = str(BIN / "dask")
START_TIMEOUT = 30

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(not os.path.exists(DASK), reason=f"no dask command line at {DASK}"),
    pytest.mark.skipif(sys.platform == "win32", reason="process groups and sitecustomize tricks are POSIX"),
]

# A sitecustomize that makes ``import fedplugin`` fail, as on a worker whose
# image lacks the package. PYTHONPATH carries it into the processes the nanny spawns.
NO_FEDPLUGIN = '''
import sys

class _NoFedplugin:
    def find_spec(self, name, path=None, target=None):
        if name == "fedplugin" or name.startswith("fedplugin."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NoFedplugin())
'''


class CliCluster:
    """A scheduler and workers started with the ``dask`` command line."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.scheduler_file = directory / "scheduler.json"
        self.security: Security | None = None
        self.tls_args: list[str] = []
        self.procs: dict[str, subprocess.Popen] = {}
        self.clients: list[Client] = []

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.directory / f"{name}.log", "wb")
        try:
            proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self.directory, env=env, start_new_session=True,
            )
        finally:
            log.close()
        self.procs[name] = proc
        return proc

    def start_scheduler(self) -> None:
        protocol = ["--protocol", "tls"] if self.tls_args else []
        # --dashboard-address: the HTTP server (health, metrics) runs without a dashboard too
        self._spawn("scheduler", [
            DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", *protocol, *self.tls_args,
            "--scheduler-file", str(self.scheduler_file),
            "--no-dashboard", "--dashboard-address", "127.0.0.1:0",
        ])

    def start_worker(self, name: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        # the worker waits for the scheduler file, so workers start alongside the scheduler
        return self._spawn(name, [
            DASK, "worker", "--scheduler-file", str(self.scheduler_file), "--host", "127.0.0.1",
            "--nthreads", "1", "--name", name, *self.tls_args,
            "--no-dashboard", "--dashboard-address", "127.0.0.1:0",
            "--local-directory", str(self.directory / "scratch"), "--death-timeout", "30",
        ], env=env)

    def use_tls(self) -> None:
        ca, cert, key = make_certificates(self.directory / "certs")
        self.tls_args = ["--tls-ca-file", str(ca), "--tls-cert", str(cert), "--tls-key", str(key)]
        self.security = Security(
            tls_ca_file=str(ca), tls_client_cert=str(cert), tls_client_key=str(key), require_encryption=True
        )

    def client(self, n_workers: int) -> Client:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            self.check_alive("scheduler")
            try:
                json.loads(self.scheduler_file.read_text())
                break
            except (FileNotFoundError, json.JSONDecodeError):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the scheduler wrote no {self.scheduler_file} in {START_TIMEOUT} s") from None
                time.sleep(0.05)
        client = Client(scheduler_file=str(self.scheduler_file), security=self.security, timeout=START_TIMEOUT)
        self.clients.append(client)
        client.wait_for_workers(n_workers, timeout=START_TIMEOUT)
        return client

    def check_alive(self, name: str) -> None:
        code = self.procs[name].poll()
        if code is not None:
            raise RuntimeError(f"{name} exited with code {code}:\n{self.log_tail(name)}")

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.directory / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def worker_address(self, client: Client, name: str) -> str:
        return next(a for a, w in client.scheduler_info(n_workers=-1)["workers"].items() if w["name"] == name)

    def shutdown(self) -> None:
        for client in self.clients:
            client.close(timeout=5)
        # SIGTERM lets the dask command line shut down cleanly: the workers first,
        # since a worker whose scheduler vanishes while its nanny closes it can
        # hang for the nanny's full 8 s kill timeout.
        workers = [name for name in self.procs if name != "scheduler"]
        for group in (workers, ["scheduler"]):
            group = [name for name in group if name in self.procs]
            for name in group:
                if self.procs[name].poll() is None:
                    self.procs[name].send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 10
            for name in group:
                try:
                    self.procs[name].wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
        for proc in self.procs.values():  # then whatever is left in each group, the nannies' workers too
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()


@pytest.fixture
def cli_cluster(tmp_path):
    cluster = CliCluster(tmp_path)
    try:
        yield cluster
    finally:
        cluster.shutdown()
        for name in cluster.procs:  # shown when the test fails
            print(f"----- {name}.log (last lines)\n{cluster.log_tail(name)}")


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A certificate authority and one certificate it signs for 127.0.0.1, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir()
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fedplugin test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dask-node")]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "node.pem", directory / "node.key"
    paths[0].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    paths[2].chmod(0o600)
    return paths


@pytest.fixture(scope="module")
def data():
    """A well-separated problem: one SGD pass scores ~0.97, chance is 0.5."""
    X, y = make_classification(
        n_samples=24_000, n_features=20, n_informative=5, class_sep=2.0, flip_y=0.01, random_state=0
    )
    X = StandardScaler().fit_transform(X)
    return X[:20_000], y[:20_000], X[20_000:], y[20_000:]


def train_and_check(client: Client, data) -> Coordinator:
    X, y, X_test, y_test = data
    plugin = FederatedModelPlugin(SGDClassifier(random_state=0), classes=[0, 1])
    client.register_plugin(plugin)
    coord = Coordinator(client, plugin, sync=EveryNBatches(4), block_size=1000)
    coord.fit(X, y)
    assert coord.score(X_test, y_test) > 0.9
    assert sum(r.samples for r in coord.history) == len(X)
    assert coord.history[-1].total_samples == len(X)
    assert len(coord.history) >= 3, "several rounds: 20 blocks, a round every 4"
    assert all(r.n_workers == 2 for r in coord.history), "both CLI workers trained in every round"
    return coord


# --------------------------------------------------------------------- plain TCP
def test_command_line_cluster_trains(cli_cluster, data):
    cli_cluster.start_scheduler()
    cli_cluster.start_worker("w0")
    cli_cluster.start_worker("w1")
    client = cli_cluster.client(n_workers=2)
    info = client.scheduler_info(n_workers=-1)
    assert client.scheduler.address.startswith("tcp://127.0.0.1:")
    assert all(w["nanny"] for w in info["workers"].values()), "the CLI workers run under nannies"
    train_and_check(client, data)


# -------------------------------------------------------------------------- TLS
def test_command_line_cluster_trains_over_tls(cli_cluster, data):
    cli_cluster.use_tls()
    cli_cluster.start_scheduler()
    cli_cluster.start_worker("w0")
    cli_cluster.start_worker("w1")
    client = cli_cluster.client(n_workers=2)
    workers = client.scheduler_info(n_workers=-1)["workers"]
    assert client.scheduler.address.startswith("tls://127.0.0.1:")
    assert len(workers) == 2
    assert all(address.startswith("tls://") for address in workers)
    assert all(w["nanny"].startswith("tls://") for w in workers.values())
    train_and_check(client, data)
    # and the scheduler turns away a peer whose certificate our CA did not sign
    stranger = Security.temporary().get_connection_args("client")
    with pytest.raises(OSError, match="TLS certificate does not match"):
        asyncio.run(connect(client.scheduler.address, timeout=5, **stranger))


# ----------------------------------------------- a worker that cannot import it
def start_with_a_worker_lacking_fedplugin(cli_cluster: CliCluster) -> tuple[Client, str, str]:
    blocker = cli_cluster.directory / "no-fedplugin"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(NO_FEDPLUGIN)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", "")]))
    cli_cluster.start_scheduler()
    cli_cluster.start_worker("w0")
    cli_cluster.start_worker("no-fedplugin", env=env)
    client = cli_cluster.client(n_workers=2)
    good = cli_cluster.worker_address(client, "w0")
    bad = cli_cluster.worker_address(client, "no-fedplugin")
    errors = client.run(exec, "import fedplugin", on_error="return")
    assert errors[good] is None and "No module named 'fedplugin'" in str(errors[bad]), "the blocker works"
    return client, good, bad


def test_today_register_plugin_poisons_a_worker_that_cannot_import_fedplugin(cli_cluster):
    """What ``client.register_plugin`` does today (distributed 2026.8; dask/distributed#8694).

    Not what we want: it documents why :func:`fedplugin.register` exists, and
    fails, to be looked at, if distributed changes the behaviour.
    """
    client, good, bad = start_with_a_worker_lacking_fedplugin(cli_cluster)
    with pytest.raises(Exception, match="No module named 'fedplugin'"):
        client.register_plugin(FederatedModelPlugin(SGDClassifier(), classes=[0, 1]))
    # it raised (a bare Exception naming no worker), yet the plugin stays registered:
    # installed on the good worker and kept by the scheduler for every worker that starts
    assert "fedplugin" in client.run(lambda dask_worker: list(dask_worker.plugins))[good]
    assert "fedplugin" in client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.worker_plugins))
    # the bad worker still runs tasks, until it restarts: its nanny cannot start it again and gives up
    assert client.submit(lambda: 1, workers=[bad], pure=False).result(timeout=10) == 1
    pid = client.run(os.getpid, workers=[bad])[bad]
    os.kill(pid, signal.SIGKILL)  # the worker process crashes; its nanny restarts it
    cli_cluster.procs["no-fedplugin"].wait(timeout=30)  # the whole `dask worker` command exits
    assert "ModuleNotFoundError: No module named 'fedplugin'" in cli_cluster.log_tail("no-fedplugin", 400)
    assert list(client.scheduler_info(n_workers=-1)["workers"]) == [good]


def test_register_refuses_clearly_when_a_worker_cannot_import_fedplugin(cli_cluster):
    """The requirement: registration fails with a clear message, not a poisoned cluster."""
    client, good, bad = start_with_a_worker_lacking_fedplugin(cli_cluster)
    plugin = FederatedModelPlugin(SGDClassifier(), classes=[0, 1], name="clf")
    with pytest.raises(RuntimeError, match=r"cannot register plugin 'clf'") as info:
        fedplugin.register(client, plugin)
    message = str(info.value)
    assert isinstance(info.value, ModuleNotFoundError) and info.value.name == "fedplugin", "the real error type"
    assert type(info.value.__cause__) is ModuleNotFoundError
    assert "1 of 2 workers cannot load it" in message
    assert bad in message and good not in message, "names the worker that cannot load it"
    assert "No module named 'fedplugin'" in message, "says why"
    assert "nothing was registered" in message and "install" in message.lower(), "says what state and what to do"
    # nothing registered anywhere ...
    assert "clf" not in client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.worker_plugins))
    assert all("clf" not in names for names in client.run(lambda dask_worker: list(dask_worker.plugins)).values())
    # ... so the worker survives a restart and the cluster stays whole
    assert client.restart_workers([bad], timeout=START_TIMEOUT) == {bad: "OK"}
    client.wait_for_workers(2, timeout=START_TIMEOUT)
    assert cli_cluster.procs["no-fedplugin"].poll() is None
    # and on a healthy cluster the same call simply registers
    client.retire_workers([cli_cluster.worker_address(client, "no-fedplugin")], close_workers=True)
    fedplugin.register(client, plugin)
    assert "clf" in client.run(lambda dask_worker: list(dask_worker.plugins))[good]


def test_register_waits_for_a_first_worker_or_says_there_is_none():
    """A cluster still scaling up: wait for its first worker; none at all: a clear error (issue 9)."""
    import threading

    from distributed import Client, LocalCluster

    plugin = FederatedModelPlugin(SGDClassifier(), classes=[0, 1], name="waits")
    with LocalCluster(n_workers=0, processes=False, dashboard_address=None) as cluster, Client(cluster) as client:
        with pytest.raises(RuntimeError, match="has no workers after timeout=0.5 s; start workers"):
            fedplugin.register(client, plugin, timeout=0.5)
        timer = threading.Timer(0.3, cluster.scale, args=(1,))
        timer.start()
        try:
            answers = fedplugin.register(client, plugin, timeout=30)
        finally:
            timer.join()
        assert len(answers) == 1 and all(a["status"] == "OK" for a in answers.values())


# ------------------------------------------- the type of register's errors (issue 13)
class _UnpicklesOnlyWithAMissingPackage(WorkerPlugin):
    """A plugin whose unpickling needs a package that is installed nowhere."""

    name = "needs-missing-package"

    def __reduce__(self):
        return importlib.import_module, ("fedplugin_test_missing_package",)


class _SetupNeedsAMissingPackage(WorkerPlugin):
    """A plugin that loads everywhere but whose setup imports a package that is not installed."""

    name = "setup-needs-missing-package"

    def setup(self, worker):
        importlib.import_module("fedplugin_test_missing_package")


@pytest.fixture(scope="module")
def threads_client():
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp", dashboard_address=":0") as cluster:
        with Client(cluster) as client:
            yield client


def registered_names(client):
    return client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.worker_plugins))


def test_register_raises_module_not_found_when_a_process_lacks_a_module(threads_client):
    """What the deployment page promises: a ModuleNotFoundError (also the documented RuntimeError)."""
    with pytest.raises(ModuleNotFoundError, match="cannot register plugin 'needs-missing-package'") as info:
        fedplugin.register(threads_client, _UnpicklesOnlyWithAMissingPackage())
    assert isinstance(info.value, RuntimeError) and isinstance(info.value, fedplugin.deploy.MissingModuleError)
    assert info.value.name == "fedplugin_test_missing_package"
    assert type(info.value.__cause__) is ModuleNotFoundError, "the real error is chained, not a bare Exception"
    assert "ModuleNotFoundError: No module named 'fedplugin_test_missing_package'" in str(info.value)
    assert "1 of 1 worker cannot" in str(info.value) and "1 workers" not in str(info.value)
    assert "needs-missing-package" not in registered_names(threads_client)


def test_register_gives_a_failing_setup_its_real_error_type(threads_client):
    with pytest.raises(ModuleNotFoundError, match="its setup failed on a worker") as info:
        fedplugin.register(threads_client, _SetupNeedsAMissingPackage())
    assert isinstance(info.value, RuntimeError)
    assert info.value.name == "fedplugin_test_missing_package"
    assert type(info.value.__cause__) is ModuleNotFoundError
    assert "ModuleNotFoundError: No module named 'fedplugin_test_missing_package'" in str(info.value)
    assert _SetupNeedsAMissingPackage.name not in registered_names(threads_client)


def test_register_turns_distributeds_bare_exception_into_the_real_one(threads_client, monkeypatch):
    """A worker that cannot load the plugin but passed the check (it joined just after it).

    ``client.register_plugin`` then fails with ``Exception("ModuleNotFoundError(...)")``;
    register re-raises it as the ModuleNotFoundError it is.
    """
    plugin = _UnpicklesOnlyWithAMissingPackage()
    with pytest.raises(Exception) as bare:  # what distributed raises
        threads_client.register_plugin(plugin)
    assert type(bare.value) is Exception and str(bare.value).startswith("ModuleNotFoundError(")
    with pytest.raises(KeyError):  # the workers never installed it; the scheduler forgets it all the same
        threads_client.unregister_worker_plugin(plugin.name)
    assert plugin.name not in registered_names(threads_client)

    checks = []
    real_check = fedplugin.deploy._cannot_load
    monkeypatch.setattr(
        fedplugin.deploy, "_cannot_load", lambda *a: checks.append(1) or ({} if len(checks) == 1 else real_check(*a))
    )
    with pytest.raises(ModuleNotFoundError, match="cannot register plugin 'needs-missing-package'") as info:
        fedplugin.register(threads_client, plugin)
    assert len(checks) == 2, "checked, registered, failed, checked again"
    assert isinstance(info.value, RuntimeError)
    assert type(info.value.__cause__) is ModuleNotFoundError
    assert info.value.__cause__.name == "fedplugin_test_missing_package"
    assert plugin.name not in registered_names(threads_client)


@pytest.mark.parametrize(
    "remote, expected",
    [
        (Exception("ModuleNotFoundError(\"No module named 'sklearn'\")"), ModuleNotFoundError("No module named 'sklearn'")),
        (Exception("ValueError('bad', 3)"), ValueError("bad", 3)),
        (Exception("NoSuchError('x')"), Exception("NoSuchError('x')")),  # not a built-in: left as it is
        (Exception("not a repr"), Exception("not a repr")),
        (KeyError("k"), KeyError("k")),  # already typed
    ],
)
def test_real_error(remote, expected):
    real = fedplugin.deploy.real_error(remote)
    assert type(real) is type(expected) and real.args == expected.args
