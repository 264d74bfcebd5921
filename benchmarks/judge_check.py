"""Can the judge tell a response from a wrong one? A control for Figure 2.

Takes the language-matched chat items of a finished run (the newest version
of ``data/07_model_output/chat_judgments/<mix>.parquet`` with judged rows), and asks the judge
endpoint of an environment (default: the demo's in-process SmolLM2 judge,
with its json_schema) about two pairs per item: the instruction with its own
response, and the same instruction with the response to another item of the
same language (a wrong answer). A judge with any signal scores the own
responses higher. Prints the verdict distributions, the mean scores and the
share of items whose own response scored higher / lower / the same.

Not part of ``make bench`` (it needs a finished ``make demo``):

    .venv/bin/python benchmarks/judge_check.py [--env demo] [--mix multi3] [--json out.json]

Verdicts are cached like every judge request (``cache_dir`` of the endpoint).
"""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pandas as pd  # noqa: E402
from common import figure, with_figures  # noqa: E402

from polyglot_kedro.judge import parse_verdict, render_judge_messages  # noqa: E402
from polyglot_kedro.llm import ChatRequest, build_client  # noqa: E402
from polyglot_kedro.pipelines.judging.nodes import JudgingParams, _endpoint  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def judge_config(env: str) -> dict:
    """The judge endpoint of ``env`` as a run resolves it, with the forced request settings."""
    from kedro.config import OmegaConfigLoader

    from polyglot_kedro.settings import CONFIG_LOADER_ARGS

    params = OmegaConfigLoader(conf_source=str(ROOT / "conf"), env=env, **CONFIG_LOADER_ARGS)["parameters"]
    chat = JudgingParams.model_validate(params["judging"]).chat
    return _endpoint(params["llm_endpoints"], chat.endpoint, chat.request.model_dump())


def latest_judgments(mix: str) -> tuple[str, pd.DataFrame]:
    """The newest version of ``{mix}.chat_judgments`` that has rows (a run with the judge off writes none)."""
    folder = ROOT / "data" / "07_model_output" / "chat_judgments" / f"{mix}.parquet"
    versions = sorted((p for p in folder.iterdir() if p.is_dir()), reverse=True) if folder.is_dir() else []
    for version in versions:
        frame = pd.read_parquet(version / f"{mix}.parquet")
        if len(frame):
            return version.name, frame
    raise SystemExit(f"no judged items under {folder}: run `make demo` (judge on) first")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="demo")
    ap.add_argument("--mix", default="multi3")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    version, items = latest_judgments(args.mix)
    items = items[items["lang_match"]].sort_values(["lang", "seed", "item_id"]).reset_index(drop=True)
    own, other = [], []
    for _, g in items.groupby("lang", sort=True):
        rows = g.to_dict("records")
        if len(rows) < 2:
            continue
        for i, r in enumerate(rows):
            wrong = rows[(i + 1) % len(rows)]["response"]  # another item's answer, same language
            own.append(ChatRequest(f"own/{i}/{r['lang']}", render_judge_messages(r["instruction"], r["response"])))
            other.append(ChatRequest(f"other/{i}/{r['lang']}", render_judge_messages(r["instruction"], wrong)))
    cfg = judge_config(args.env)
    client = build_client(cfg, stage="judge_check", inprocess_model_path=str(ROOT / "data" / "06_models" / "base_model"))
    results = client.run(own + other, desc="judge check")
    scores = [parse_verdict(r.text).raw_score if r.ok else None for r in results]
    s_own = pd.Series(scores[: len(own)], dtype=float)
    s_other = pd.Series(scores[len(own) :], dtype=float)
    both = s_own.notna() & s_other.notna()
    n = int(both.sum())
    higher = float((s_own[both] > s_other[both]).mean()) if n else float("nan")
    lower = float((s_own[both] < s_other[both]).mean()) if n else float("nan")
    note = f"{args.env} judge {cfg.get('model')} ({cfg.get('backend')}), {len(own)} language-matched items of {args.mix} (version {version})"
    figures = [
        figure("judge_check", "mean score, own response", float(s_own.mean()), "points (1-6)", note=note),
        figure("judge_check", "mean score, another item's response", float(s_other.mean()), "points (1-6)", note=note),
        figure("judge_check", "share own scored higher", higher, "fraction", note=f"{n} pairs with two valid verdicts"),
        figure("judge_check", "share own scored lower", lower, "fraction", note=f"{n} pairs with two valid verdicts"),
        figure("judge_check", "invalid verdicts", int(s_own.isna().sum() + s_other.isna().sum()), "count",
               note=f"of {len(scores)}"),
    ]  # fmt: skip
    print(f"{note}\nown:   {dict(sorted(Counter(s_own.dropna().astype(int)).items()))}")
    print(f"other: {dict(sorted(Counter(s_other.dropna().astype(int)).items()))}")
    for f in figures:
        print(f"{f['figure']}: {f['value']} {f['unit']}")
    if args.json:
        args.json.write_text(json.dumps(with_figures({"env": args.env, "mix": args.mix}, figures), indent=2))


if __name__ == "__main__":  # vLLM spawns processes: the guard is required
    main()
