"""A one-node SLURM cluster on this machine (Debian's slurmctld/slurmd/munge), for tests and the benchmark.

    python tests/cluster/local_slurm.py start   # idempotent; prints why when it cannot
    python tests/cluster/local_slurm.py stop    # stops only the daemons that `start` launched

The configuration is the one checked in ../shared/ENVIRONMENT.md (SLURM 22.05):
munge auth, cons_tres with CR_Core_Memory, no cgroups, no accounting. Needs
root (the daemons run as root and ``SlurmUser=root``). ``start`` writes
``/run/polyglot-slurm.started`` listing the daemons it started, so ``stop``
never touches a SLURM it did not start.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]
STARTED = Path("/run/polyglot-slurm.started")
CONF = Path("/etc/slurm/slurm.conf")
PIDS = {"munged": Path("/run/munge/munged.pid"), "slurmctld": Path("/run/slurmctld.pid"),
        "slurmd": Path("/run/slurmd.pid")}  # fmt: skip


def slurm_conf(host: str, cpus: int, memory_mb: int = 8000) -> str:
    """The slurm.conf of a one-node cluster named ``local`` with partition ``cpu``."""
    return f"""# Written by polyglot_kedro tests/cluster/local_slurm.py (one-node test cluster)
ClusterName=local
SlurmctldHost={host}
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
SlurmUser=root
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile={PIDS['slurmctld']}
SlurmdPidFile={PIDS['slurmd']}
SlurmctldLogFile=/var/log/slurmctld.log
SlurmdLogFile=/var/log/slurmd.log
# finished jobs stay visible to scontrol/squeue for 2 hours (no accounting here; the
# tests read a grid's states after the whole grid, which can take long on 2 loaded cores)
MinJobAge=7200
SchedulerParameters=defer_batch
NodeName={host} CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName=cpu Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def _alive(pidfile: Path) -> bool:
    try:
        os.kill(int(pidfile.read_text().split()[0]), 0)
        return True
    except (OSError, ValueError):
        return False


def is_up(timeout: float = 2.0) -> bool:
    """Whether ``sinfo`` answers and the node accepts jobs."""
    if not shutil.which("sinfo"):
        return False
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False
    states = out.stdout.split()
    return out.returncode == 0 and any(s.rstrip("*~#$@") in ("idle", "mix", "alloc", "comp") for s in states)


def start(wait_s: float = 60) -> str | None:
    """Start munge, slurmctld and slurmd when absent. Returns None when up, else the reason it is not."""
    if is_up():
        return None
    if os.geteuid() != 0:
        return "not root: cannot start a local SLURM (slurmctld/slurmd must run as root here)"
    if not all(shutil.which(b) for b in ("slurmctld", "slurmd", "munged", "sbatch")):
        if not shutil.which("apt-get"):
            return "SLURM is not installed and apt-get is absent"
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        proc = subprocess.run(["apt-get", "install", "-y", "-qq", *PACKAGES], capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            upd = subprocess.run(["apt-get", "update", "-qq"], capture_output=True, text=True, env=env)
            proc = subprocess.run(["apt-get", "install", "-y", "-qq", *PACKAGES], capture_output=True, text=True,
                                  env=env) if upd.returncode == 0 else upd  # fmt: skip
        if proc.returncode != 0:
            return f"apt-get install {' '.join(PACKAGES)} failed: {(proc.stderr or proc.stdout).strip()[-300:]}"
    started: list[str] = []
    key = Path("/etc/munge/munge.key")
    if not key.is_file():
        key.parent.mkdir(parents=True, exist_ok=True)
        key.write_bytes(os.urandom(1024))
        shutil.chown(key, "munge", "munge")
        key.chmod(0o400)
    if not _alive(PIDS["munged"]):
        for d in ("/run/munge", "/var/log/munge", "/var/lib/munge"):
            Path(d).mkdir(parents=True, exist_ok=True)
            shutil.chown(d, "munge", "munge")
        subprocess.run(["runuser", "-u", "munge", "--", "munged", "--force"], check=False)
        started.append("munged")
    host = socket.gethostname().split(".")[0]
    if not CONF.is_file() or "polyglot_kedro" in CONF.read_text():
        CONF.parent.mkdir(parents=True, exist_ok=True)
        CONF.write_text(slurm_conf(host, os.cpu_count() or 1))
    for d in ("/var/spool/slurmctld", "/var/spool/slurmd"):
        Path(d).mkdir(parents=True, exist_ok=True)
    for daemon in ("slurmctld", "slurmd"):
        if not _alive(PIDS[daemon]):
            proc = subprocess.run([daemon], capture_output=True, text=True)
            if proc.returncode != 0:
                return f"{daemon} failed to start: {(proc.stderr or proc.stdout).strip()[-300:]}"
            started.append(daemon)
    if started:
        old = STARTED.read_text().split() if STARTED.is_file() else []
        STARTED.write_text(" ".join(dict.fromkeys(old + started)))
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if is_up():
            return None
        time.sleep(1)
    return f"SLURM started but sinfo shows no usable node after {wait_s:.0f}s (see /var/log/slurmctld.log)"


def stop() -> list[str]:
    """Stop the daemons that :func:`start` launched (by their pid files); returns their names."""
    if not STARTED.is_file():
        return []
    names = STARTED.read_text().split()
    for name in reversed(names):
        pidfile = PIDS.get(name)
        if pidfile and _alive(pidfile):
            os.kill(int(pidfile.read_text().split()[0]), 15)
    STARTED.unlink()
    return names


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else "start"
    if cmd == "start":
        why = start()
        print("local SLURM is up" if why is None else f"local SLURM not available: {why}")
    elif cmd == "stop":
        print("stopped: " + (", ".join(stop()) or "nothing (this script started no daemon)"))
    else:
        sys.exit(f"usage: {sys.argv[0]} start|stop")
