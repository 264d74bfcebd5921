"""Child process of the training kill test: ``train_lora`` that stalls right after a checkpoint.

    python train_child.py CONFIG.json

After the checkpoint of step ``pause_at`` is written it touches ``marker`` and
sleeps, so the parent can SIGKILL it at that point.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pandas as pd
from transformers import TrainerCallback

from polyglot_kedro.pipelines.finetuning.nodes import train_lora


class StallAfterSave(TrainerCallback):
    def __init__(self, step: int, marker: str):
        self.step = step
        self.marker = Path(marker)

    def on_save(self, args, state, control, **kwargs):  # runs after the checkpoint folder is complete
        if state.global_step == self.step:
            self.marker.touch()
            time.sleep(600)


if __name__ == "__main__":
    cfg = json.loads(Path(sys.argv[1]).read_text())
    train_lora(pd.read_parquet(cfg["mix"]), cfg["base"], "tiny_llama", cfg["registry"], cfg["params"], mix_name="m",
               callbacks=[StallAfterSave(cfg["pause_at"], cfg["marker"])])
