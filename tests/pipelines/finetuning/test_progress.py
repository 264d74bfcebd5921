"""Training progress (issue 18): transformers' own bar on a terminal, per-step log lines in CI."""

from __future__ import annotations

import sys

import pytest
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from polyglot_kedro.config import resolve_model
from polyglot_kedro.pipelines.finetuning.nodes import build_trainer
from polyglot_kedro.pipelines.finetuning.params import FinetuningParams


@pytest.mark.parametrize("tty", [True, False])
def test_progress_bar_on_a_terminal_log_lines_otherwise(tty, monkeypatch, train_mix, base_model, models_registry,
                                                        finetuning_params, tmp_path):  # fmt: skip
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty)
    params = FinetuningParams.model_validate(finetuning_params)
    trainer, _ = build_trainer(train_mix, base_model, resolve_model(models_registry, "tiny_llama"), params, tmp_path)
    kinds = {type(cb) for cb in trainer.callback_handler.callbacks}
    assert trainer.args.disable_tqdm is (not tty)
    # on a terminal the progress bar; in a log, a line per logging step (PrinterCallback)
    assert (ProgressCallback in kinds, PrinterCallback in kinds) == (tty, not tty)
