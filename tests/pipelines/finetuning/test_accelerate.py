"""Two-process data-parallel training through ``accelerate launch`` (gloo, CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]


def test_accelerate_ddp_cpu_two_processes(train_mix, base_model, models_registry, tmp_path):
    mix_file = tmp_path / "mono.parquet"
    train_mix.to_parquet(mix_file)
    accelerate = Path(sys.executable).parent / "accelerate"
    sets = [
        "model=tiny_llama",
        f"models={json.dumps(models_registry)}",
        "finetuning.max_steps=3",
        "finetuning.save_steps=3",
        "finetuning.max_length=64",
        "finetuning.effective_batch_size=4",
        "finetuning.per_device_batch_size=1",
        f"finetuning.work_dir={tmp_path}/ckpt/{{model}}/{{mix}}",
    ]
    cmd = [
        str(accelerate), "launch", "--config_file", str(REPO / "conf/accelerate/ddp_cpu.yaml"),
        "--main_process_port", "0",
        str(REPO / "scripts/train_accelerate.py"),
        "--train-mix", str(mix_file), "--base-model", base_model, "--mix", "mono",
        "--adapter-out", str(tmp_path / "adapter"), "--metrics-out", str(tmp_path / "metrics.json"),
        "--conf-source", str(REPO / "conf"), "--env", "base", "--set", *sets,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    adapters = list(tmp_path.rglob("adapter_config.json"))
    # One adapter from the main process (plus the checkpoint's copy), not one per rank.
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    assert len([a for a in adapters if "checkpoint-" not in str(a)]) == 2  # work-dir adapter + copied one
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["config"]["world_size"] == 2
    assert metrics["config"]["trainer_world_size"] == 2  # a real process group, not two lone trainers
    assert metrics["config"]["gradient_accumulation_steps"] == 2
    assert metrics["global_step"] == 3
    assert yaml.safe_load((REPO / "conf/accelerate/ddp_cpu.yaml").read_text())["num_processes"] == 2
