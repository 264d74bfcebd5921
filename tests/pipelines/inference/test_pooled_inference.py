"""Inference with the pooled transformers scheduler: rows name it, reruns reuse its partitions, the per-job one does not."""

from __future__ import annotations

import pandas as pd

from polyglot_kedro.pipelines.inference import nodes
from polyglot_kedro.pipelines.inference.nodes import build_eval_prompts, generate_outputs


def test_inference_records_the_pooled_engine_and_reuses_its_partitions(
    monkeypatch, tiny_model_dir, chat_prompts, xquad_raw, xcsqa_raw, inference_params, models
):
    inference_params.update(engine="transformers", seeds=[0], transformers={"pool_jobs": True, "max_batch_tokens": 4096})
    prompts = build_eval_prompts(chat_prompts, xquad_raw, xcsqa_raw, inference_params)
    first = generate_outputs(tiny_model_dir, prompts, inference_params, "tiny_test", models, mix_name="mono")
    assert (first["engine"] == "transformers-pooled").all()
    made = []
    real = nodes.make_engine
    monkeypatch.setattr(nodes, "make_engine", lambda *a, **kw: made.append(kw) or real(*a, **kw))
    again = generate_outputs(tiny_model_dir, prompts, inference_params, "tiny_test", models, mix_name="mono")
    assert made == []  # every partition reused: no engine was even built
    # the per-job scheduler does not reuse the pooled one's outputs
    inference_params["transformers"]["pool_jobs"] = False
    per_job = generate_outputs(tiny_model_dir, prompts, inference_params, "tiny_test", models, mix_name="mono")
    assert len(made) == 1 and made[0]["transformers_options"]["pool_jobs"] is False
    assert (per_job["engine"] == "transformers").all()
    pd.testing.assert_frame_equal(first, again)
