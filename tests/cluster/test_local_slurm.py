"""The local SLURM helper says why it cannot start instead of failing, so the SLURM tests skip with that reason."""

from __future__ import annotations

from . import local_slurm


def test_start_as_non_root_returns_the_reason_without_touching_anything(monkeypatch):
    monkeypatch.setattr(local_slurm, "is_up", lambda timeout=2.0: False)
    monkeypatch.setattr(local_slurm.os, "geteuid", lambda: 1000)
    calls = []
    monkeypatch.setattr(local_slurm.subprocess, "run", lambda *a, **k: calls.append(a))
    why = local_slurm.start()
    assert why is not None and "not root" in why
    assert calls == []  # no apt-get, no daemon


def test_start_without_packages_or_apt_returns_the_reason(monkeypatch):
    monkeypatch.setattr(local_slurm, "is_up", lambda timeout=2.0: False)
    monkeypatch.setattr(local_slurm.os, "geteuid", lambda: 0)
    monkeypatch.setattr(local_slurm.shutil, "which", lambda name: None)
    why = local_slurm.start()
    assert why is not None and "apt-get is absent" in why


def test_slurm_conf_is_the_one_node_cluster_of_the_environment_notes():
    conf = local_slurm.slurm_conf("node1", 2)
    assert "SlurmctldHost=node1" in conf and "NodeName=node1 CPUs=2 RealMemory=8000" in conf
    assert "MpiDefault=none" in conf and "CgroupPlugin" not in conf  # 22.05 pitfalls (../shared/ENVIRONMENT.md)
