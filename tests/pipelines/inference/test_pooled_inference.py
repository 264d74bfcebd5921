"""Inference with the pooled transformers scheduler: rows name it, reruns reuse its partitions, the per-job one does not."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from polyglot_kedro.pipelines.inference import nodes
from polyglot_kedro.pipelines.inference.nodes import build_eval_prompts, generate_outputs


def _spy_on_engines(monkeypatch) -> list[dict]:
    """The keyword arguments of every engine the inference node builds from now on."""
    made: list[dict] = []
    real = nodes.make_engine
    monkeypatch.setattr(nodes, "make_engine", lambda *a, **kw: made.append(kw) or real(*a, **kw))
    return made


def test_inference_records_the_pooled_engine_and_reuses_its_partitions(
    monkeypatch, tiny_model_dir, chat_prompts, xquad_raw, xcsqa_raw, inference_params, models
):
    inference_params.update(engine="transformers", seeds=[0], transformers={"pool_jobs": True, "max_batch_tokens": 4096})
    prompts = build_eval_prompts(chat_prompts, xquad_raw, xcsqa_raw, inference_params)
    first = generate_outputs(tiny_model_dir, prompts, inference_params, "tiny_test", models, mix_name="mono")
    assert (first["engine"] == "transformers-pooled").all()
    made = _spy_on_engines(monkeypatch)
    again = generate_outputs(tiny_model_dir, prompts, inference_params, "tiny_test", models, mix_name="mono")
    assert made == []  # every partition reused: no engine was even built
    # the per-job scheduler does not reuse the pooled one's outputs
    inference_params["transformers"]["pool_jobs"] = False
    per_job = generate_outputs(tiny_model_dir, prompts, inference_params, "tiny_test", models, mix_name="mono")
    assert len(made) == 1 and made[0]["transformers_options"]["pool_jobs"] is False
    assert (per_job["engine"] == "transformers").all()
    pd.testing.assert_frame_equal(first, again)


@pytest.mark.skipif(torch.cuda.is_available(), reason="cpu_dtype applies on CPU only")
def test_bf16_partitions_are_named_and_never_reused_as_fp32(
    monkeypatch, tiny_model_dir, chat_prompts, xquad_raw, xcsqa_raw, inference_params, models
):
    inference_params.update(engine="transformers", seeds=[0],
                            transformers={"pool_jobs": True, "max_batch_tokens": 4096, "cpu_dtype": "bfloat16"})  # fmt: skip
    prompts = build_eval_prompts(chat_prompts, xquad_raw, xcsqa_raw, inference_params)
    bf16 = generate_outputs(tiny_model_dir, prompts, inference_params, "tiny_test", models, mix_name="mono")
    assert (bf16["engine"] == "transformers-pooled-bf16").all()
    made = _spy_on_engines(monkeypatch)
    again = generate_outputs(tiny_model_dir, prompts, inference_params, "tiny_test", models, mix_name="mono")
    assert made == []  # bf16 partitions reused by a bf16 rerun
    pd.testing.assert_frame_equal(bf16, again)
    inference_params["transformers"]["cpu_dtype"] = "float32"
    fp32 = generate_outputs(tiny_model_dir, prompts, inference_params, "tiny_test", models, mix_name="mono")
    assert len(made) == 1 and made[0]["transformers_options"]["cpu_dtype"] == "float32"
    assert (fp32["engine"] == "transformers-pooled").all()
    # auto on a CPU without bf16 instructions is fp32: the fp32 partitions are reused, nothing is built
    monkeypatch.setattr("polyglot_kedro.modeling.cpu_has_native_bf16", lambda *a, **kw: False)
    inference_params["transformers"]["cpu_dtype"] = "auto"
    auto = generate_outputs(tiny_model_dir, prompts, inference_params, "tiny_test", models, mix_name="mono")
    assert len(made) == 1
    pd.testing.assert_frame_equal(fp32, auto)


def test_cpu_dtype_other_than_fp32_needs_the_pooled_loop(inference_params):
    inference_params.update(transformers={"pool_jobs": False, "cpu_dtype": "bfloat16"})
    with pytest.raises(ValueError, match="cpu_dtype: bfloat16 needs pool_jobs: true"):
        nodes.InferenceParams.model_validate(inference_params)
    inference_params.update(transformers={"pool_jobs": True, "cpu_dtype": "bf16"})
    with pytest.raises(ValueError, match="cpu_dtype"):
        nodes.InferenceParams.model_validate(inference_params)
