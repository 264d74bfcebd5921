"""Train one mix's LoRA adapter outside Kedro, for ``accelerate launch`` (data parallel).

Kedro runs nodes in one process; for DDP/FSDP every process must run the same
training code. This script calls the finetuning node's own function
(``train_lora``) on a Parquet ``train_mix``, with the project's parameters, so
both paths share every default. Only the main process writes the adapter and
the metrics.

    accelerate launch --config_file conf/accelerate/ddp_cpu.yaml scripts/train_accelerate.py \
        --train-mix data/05_model_input/train_mix/mono.parquet \
        --base-model data/06_models/base_model --mix mono \
        --adapter-out data/06_models/adapters_ddp/mono --metrics-out data/08_reporting/mono_ddp.json \
        --set finetuning.max_steps=100

``--env paper`` reads conf/paper over conf/base (default: ``KEDRO_ENV``, else
``local``); ``--set key=value`` (OmegaConf dot-list) overrides single
parameters, e.g. ``model=llama2_7b``, as ``kedro run --params`` does. The
parameters are read by ``polyglot_kedro.project_config``: the loader, soft
merge and override path of ``kedro run`` itself.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
from pathlib import Path

import pandas as pd

from polyglot_kedro import project_config
from polyglot_kedro.pipelines.finetuning.nodes import train_lora


def load_parameters(conf_source: str, env: str | None, overrides: list[str]) -> dict:
    """The parameters ``kedro run --env <env> --params <overrides>`` resolves (``project_config``)."""
    return project_config.load_parameters(conf_source, env, overrides)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-mix", required=True, help="Parquet file with columns id, text")
    parser.add_argument("--base-model", required=True, help="prepared base model folder")
    parser.add_argument("--mix", required=True, help="mix name (checkpoint folder and metrics)")
    parser.add_argument("--adapter-out", required=True, help="where the main process copies the adapter")
    parser.add_argument("--metrics-out", help="training metrics JSON (main process)")
    parser.add_argument("--conf-source", default="conf")
    parser.add_argument("--env", default=None, help="Kedro environment (default: KEDRO_ENV, else local)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="parameter overrides")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s rank" + os.environ.get("RANK", "0")
                        + " %(levelname)s %(message)s")

    env = project_config.resolve_env(args.env, argv=[])  # --env, else KEDRO_ENV, else local: Kedro's order
    params = load_parameters(args.conf_source, env, args.set)
    logging.getLogger(__name__).info("env %s, finetuning parameters: %s", env, json.dumps(params["finetuning"], default=str))
    train_mix = pd.read_parquet(args.train_mix)
    adapter, metrics = train_lora(train_mix, args.base_model, params["model"], params["models"],
                                  params["finetuning"], mix_name=args.mix)
    if int(os.environ.get("RANK", "0")) == 0:
        out = Path(args.adapter_out)
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(adapter, out)
        if args.metrics_out:
            Path(args.metrics_out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.metrics_out).write_text(json.dumps(metrics, indent=2))
        logging.getLogger(__name__).info("Adapter saved to %s", out)


if __name__ == "__main__":
    main()
