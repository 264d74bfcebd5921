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

``--env paper`` reads conf/paper over conf/base; ``--set key=value`` (OmegaConf
dot-list) overrides single parameters, e.g. ``model=llama2_7b``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
from pathlib import Path

import pandas as pd
from kedro.config import OmegaConfigLoader
from omegaconf import OmegaConf

from polyglot_kedro.pipelines.finetuning.nodes import train_lora


def load_parameters(conf_source: str, env: str, overrides: list[str]) -> dict:
    """The project's parameters for ``env`` with dot-list overrides applied."""
    loader = OmegaConfigLoader(conf_source=conf_source, base_env="base", default_run_env="local", env=env)
    params = OmegaConf.create(loader["parameters"])
    if overrides:
        params = OmegaConf.merge(params, OmegaConf.from_dotlist(overrides))
    return OmegaConf.to_container(params, resolve=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-mix", required=True, help="Parquet file with columns id, text")
    parser.add_argument("--base-model", required=True, help="prepared base model folder")
    parser.add_argument("--mix", required=True, help="mix name (checkpoint folder and metrics)")
    parser.add_argument("--adapter-out", required=True, help="where the main process copies the adapter")
    parser.add_argument("--metrics-out", help="training metrics JSON (main process)")
    parser.add_argument("--conf-source", default="conf")
    parser.add_argument("--env", default="local")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="parameter overrides")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s rank" + os.environ.get("RANK", "0")
                        + " %(levelname)s %(message)s")

    params = load_parameters(args.conf_source, args.env, args.set)
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
