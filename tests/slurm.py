"""A one-node SLURM cluster for the tests, from Debian's packages, with job accounting that ``sacct`` answers.

submitit asks ``sacct`` for the state of its jobs, and ``sacct`` only answers through slurmdbd, which
stores into MariaDB (``jobcomp/filetxt`` is read by ``sacct -c`` only; ``accounting_storage/none`` makes
``sacct`` fail with "Slurm accounting storage is disabled"). So the fixture starts, all as root, with
every file in a temporary folder and every port picked free: MariaDB (TCP on 127.0.0.1), munged (its own
socket and key), slurmdbd, slurmctld and slurmd. The node is this host (short name, its CPUs and memory
as ``slurmd -C`` reports them); processes are tracked by ``proctrack/linuxproc`` and not bound
(``task/none``), so no cgroups are needed. A requeued job waits ``cred_expire`` seconds before it starts
again (SLURM's default: 120), here 10.

Packages: ``apt-get install -y slurmctld slurmd slurm-client munge slurmdbd mariadb-server``.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PACKAGES = "slurmctld slurmd slurm-client munge slurmdbd mariadb-server"
BINARIES = ("munged", "mungekey", "slurmctld", "slurmd", "slurmdbd", "sbatch", "sacct", "sacctmgr", "scontrol",
            "squeue", "mariadb-install-db", "mariadbd", "mariadb")
PARTITION = "debug"
MAX_ARRAY_SIZE = 3
GPU_FILES = ("/dev/null", "/dev/zero")  # stand-ins for two GPUs' device files (the node has no GPU)
DB_USER, DB_PASS, DB_NAME = "slurm", "slurm", "slurm_acct_db"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class SlurmCluster:
    folder: Path
    node: str
    env: dict[str, str]  # os.environ + SLURM_CONF: give it to every process that talks to this cluster
    startup_seconds: float = 0.0
    daemons: list[tuple[str, subprocess.Popen]] = field(default_factory=list)

    def run(self, *cmd: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, check=check, timeout=timeout)

    def logs(self) -> str:
        """The tail of every daemon's log, for failure messages."""
        parts = []
        for log in sorted(self.folder.glob("*.log")):
            parts.append(f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:]))
        return "\n".join(parts)

    def _start(self, name: str, cmd: Sequence[str]) -> subprocess.Popen:
        out = (self.folder / f"{name}.log").open("ab")
        proc = subprocess.Popen(cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.daemons.append((name, proc))
        return proc

    def _wait(self, what: str, ready, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            for name, proc in self.daemons:
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with status {proc.returncode} while waiting for {what}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.1)

    def start(self) -> None:
        t0 = time.monotonic()
        d = self.folder
        for sub in ("db", "munge", "state", "spool"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        (d / "munge").chmod(0o700)

        # MariaDB for slurmdbd: a private data dir, TCP on a free port of 127.0.0.1, a user for slurmdbd
        db_port, db_socket = _free_port(), d / "db" / "mysql.sock"
        subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={d / 'db' / 'data'}", "--user=root",
                        "--skip-test-db", "--auth-root-authentication-method=socket"],
                       check=True, capture_output=True, timeout=120)
        self._start("mariadb", ["mariadbd", "--no-defaults", f"--datadir={d / 'db' / 'data'}", f"--socket={db_socket}",
                                f"--port={db_port}", "--bind-address=127.0.0.1", "--user=root",
                                f"--pid-file={d / 'db' / 'mariadb.pid'}", "--skip-log-error"])
        grant = (f"CREATE USER IF NOT EXISTS '{DB_USER}'@'127.0.0.1' IDENTIFIED BY '{DB_PASS}'; "
                 f"GRANT ALL ON {DB_NAME}.* TO '{DB_USER}'@'127.0.0.1';")
        self._wait("MariaDB", lambda: subprocess.run(
            ["mariadb", "--no-defaults", f"--socket={db_socket}", "-u", "root", "-e", grant],
            capture_output=True, timeout=60).returncode == 0)

        # munged with its own key and socket, named in both configs
        key, munge_socket = d / "munge" / "munge.key", d / "munge" / "munge.socket"
        subprocess.run(["mungekey", "--create", f"--keyfile={key}"], check=True, capture_output=True, timeout=60)
        self._start("munged", ["munged", "--foreground", "--force", f"--socket={munge_socket}", f"--key-file={key}",
                               f"--pid-file={d / 'munge' / 'munged.pid'}", f"--seed-file={d / 'munge' / 'munged.seed'}",
                               f"--log-file={d / 'munge' / 'munged.log'}"])
        self._wait("munged", munge_socket.exists)

        dbd_port = _free_port()
        auth = f"socket={munge_socket}"
        (d / "slurmdbd.conf").write_text("\n".join([
            "AuthType=auth/munge", f"AuthInfo={auth}", "DbdHost=localhost", "DbdAddr=127.0.0.1", f"DbdPort={dbd_port}",
            "SlurmUser=root", f"PidFile={d / 'slurmdbd.pid'}", "StorageType=accounting_storage/mysql",
            "StorageHost=127.0.0.1", f"StoragePort={db_port}", f"StorageUser={DB_USER}", f"StoragePass={DB_PASS}",
            f"StorageLoc={DB_NAME}", ""]))
        (d / "slurmdbd.conf").chmod(0o600)  # slurmdbd refuses a config others can read (it holds a password)
        hardware = self.run("slurmd", "-C").stdout.splitlines()[0]  # NodeName=<host> CPUs=... RealMemory=...
        (d / "plugstack.conf").write_text("")
        (d / "gres.conf").write_text(f"AutoDetect=off\nNodeName={self.node} Name=gpu File={','.join(GPU_FILES)}\n")
        (d / "slurm.conf").write_text("\n".join([
            "ClusterName=sparsenlptest", f"SlurmctldHost={self.node}(127.0.0.1)",
            f"SlurmctldPort={_free_port()}", f"SlurmdPort={_free_port()}", "SlurmUser=root", "SlurmdUser=root",
            "AuthType=auth/munge", "CredType=cred/munge", f"AuthInfo={auth},cred_expire=10",
            f"StateSaveLocation={d / 'state'}", f"SlurmdSpoolDir={d / 'spool'}",
            f"SlurmctldPidFile={d / 'slurmctld.pid'}", f"SlurmdPidFile={d / 'slurmd.pid'}",
            f"PlugStackConfig={d / 'plugstack.conf'}",
            "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core", "MpiDefault=none", "JobAcctGatherType=jobacct_gather/none",
            # clients authenticate to slurmdbd through the munge socket named here
            "AccountingStorageType=accounting_storage/slurmdbd", "AccountingStorageHost=127.0.0.1",
            f"AccountingStoragePort={dbd_port}", f"AccountingStoragePass={munge_socket}",
            "ReturnToService=2", "KillWait=2",
            # small, so that a study's launcher must split its jobs into several arrays, as on clusters with
            # SLURM's default of 1001 and a study of 3,567 jobs
            f"MaxArraySize={MAX_ARRAY_SIZE}",
            # GPUs that SLURM hands out per job (GPU_FILES), so that a job's GPU request is granted and
            # accounted as on a GPU node
            "GresTypes=gpu", "AccountingStorageTRES=gres/gpu",
            f"{hardware} Gres=gpu:{len(GPU_FILES)} NodeAddr=127.0.0.1 State=UNKNOWN",
            f"PartitionName={PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP", ""]))

        self._start("slurmdbd", ["slurmdbd", "-D"])
        self._wait("slurmdbd", lambda: self.run("sacctmgr", "-n", "list", "cluster", check=False,
                                                timeout=30).returncode == 0)
        self._start("slurmctld", ["slurmctld", "-D", "-i"])
        self._start("slurmd", ["slurmd", "-D", "-N", self.node])
        self._wait("the node to be idle", lambda: self.run("sinfo", "-h", "-o", "%t", check=False,
                                                           timeout=30).stdout.strip() == "idle")
        self._wait("sacct", lambda: self.run("sacct", "-n", check=False, timeout=30).returncode == 0)
        self.startup_seconds = time.monotonic() - t0

    def stop(self) -> None:
        """Cancel what is left of the tests' jobs, then stop the daemons, newest first."""
        if any(name == "slurmctld" and proc.poll() is None for name, proc in self.daemons):
            self.run("scancel", f"--partition={PARTITION}", check=False)
            deadline = time.monotonic() + 30
            while self.run("squeue", "-h", check=False).stdout.strip() and time.monotonic() < deadline:
                time.sleep(0.5)
        for name, proc in reversed(self.daemons):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def start_cluster(folder: Path) -> SlurmCluster:
    """Start a cluster in ``folder`` (stopped again if it fails to come up)."""
    node = socket.gethostname().split(".")[0]
    cluster = SlurmCluster(folder, node, {**os.environ, "SLURM_CONF": str(folder / "slurm.conf")})
    try:
        cluster.start()
    except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
        logs = cluster.logs()
        cluster.stop()
        raise RuntimeError(f"{exc}\n{logs}") from exc
    return cluster


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory) -> Iterator[SlurmCluster]:
    """One cluster for the whole test run. Skips (saying why) only where SLURM cannot be started: not root, or the
    Debian packages missing; a cluster that is installed but fails to start fails the tests."""
    if os.geteuid() != 0:
        pytest.skip("the SLURM daemons (munged, slurmdbd, slurmctld, slurmd) need root; CI runs the tests as root")
    missing = [b for b in BINARIES if shutil.which(b) is None]
    if missing:
        pytest.skip(f"SLURM is not installed ({', '.join(missing)} missing): apt-get install -y {PACKAGES}")
    try:
        cluster = start_cluster(tmp_path_factory.mktemp("slurm"))
    except RuntimeError as exc:
        pytest.fail(f"SLURM is installed but did not start: {exc}")
    print(f"\none-node SLURM cluster up in {cluster.startup_seconds:.1f} s ({cluster.folder})")
    yield cluster
    cluster.stop()
