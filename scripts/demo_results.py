"""Write the demo's result tables into README.md and docs/REPLICATION.md from a committed results bundle.

Usage:
    python scripts/demo_results.py [BUNDLE] [--check] [--files README.md docs/REPLICATION.md]

``BUNDLE`` is a copy of a run's ``data/08_reporting/bundle/`` (written by the
reporting stage's ``results_bundle`` node) committed as
``docs/results/<date>-demo/``; by default the newest such folder. The tables
(IO language agreement per language x mix with the prompt-level CI and n; the
paired comparisons of one mix, by default mono, with every other, with the
family-adjusted p-value, the family, the p-value floor and the minimum
detectable difference; the paper's own numbers for the same metric next to
the run's, from ``docs/results/paper-llama2-7b/io_agreement.csv``, where it
exists; the plateau table) replace whatever stands between
``<!-- demo-results:begin -->`` and ``<!-- demo-results:end -->`` in each
file, and cite the bundle's path and the run's git commit, so every number in
those files can be traced to a file in the repository.

Before rendering, every file the manifest lists is checked against its
sha256: a bundle edited by hand is refused.

``--check`` writes nothing and exits 1 when a file differs from what the
bundle gives (or has no marker pair), 0 when all are in sync.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
BEGIN = "<!-- demo-results:begin -->"
END = "<!-- demo-results:end -->"
DEFAULT_FILES = ("README.md", "docs/REPLICATION.md")
TABLES = ("aggregates.csv", "comparisons.csv", "plateau.csv")
PAPER = Path("docs/results/paper-llama2-7b/io_agreement.csv")  # the paper's Figure 1 values (see its README)
PAPER_METRIC = "io_lang_agreement"  # what the paper file holds


class BundleError(ValueError):
    """The bundle is missing, incomplete, or does not match its manifest."""


@dataclass(frozen=True)
class Bundle:
    """One results bundle: where it lies (as cited) and its tables."""

    path: str  # as cited in the tables: relative to the repository root where possible
    manifest: dict[str, Any]
    aggregates: pd.DataFrame
    comparisons: pd.DataFrame
    plateau: pd.DataFrame
    run_time: dict[str, Any] | None = None  # run_time.json beside the bundle (scripts/timed_run.py), if copied


def _cite(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def load_bundle(path: Path, root: Path = REPO_ROOT) -> Bundle:
    """Read a bundle folder after checking every file the manifest lists against its sha256.

    Raises:
        BundleError: no manifest, a listed file missing or changed, or a table the tables need absent.
    """
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        raise BundleError(f"{path}: no manifest.json (not a results bundle)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BundleError(f"{manifest_path}: invalid JSON ({exc.msg} at line {exc.lineno})") from exc
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise BundleError(f"{manifest_path}: no 'files' listing")
    for name, meta in sorted(files.items()):
        file = path / name
        if not file.is_file():
            raise BundleError(f"{path}: {name} is listed in manifest.json but missing")
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
        if digest != meta.get("sha256"):
            raise BundleError(f"{path}: {name} does not match its sha256 in manifest.json (edited after the run?)")
    tables = {}
    for name in TABLES:
        if name not in files:
            raise BundleError(f"{path}: manifest.json lists no {name}")
        text = (path / name).read_text(encoding="utf-8")
        tables[name] = pd.read_csv(io.StringIO(text)) if text.strip() else pd.DataFrame()
    run_time = None
    if (path / "run_time.json").is_file():  # written by make demo's timer, not by the run: not in the manifest
        try:
            run_time = json.loads((path / "run_time.json").read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise BundleError(f"{path / 'run_time.json'}: invalid JSON ({exc.msg} at line {exc.lineno})") from exc
    return Bundle(_cite(path, root), manifest, tables["aggregates.csv"], tables["comparisons.csv"],
                  tables["plateau.csv"], run_time)


def newest_bundle(root: Path = REPO_ROOT) -> Path | None:
    """The newest ``docs/results/<date>-demo/`` (names sort by date), or None."""
    found = sorted(p for p in (root / "docs" / "results").glob("*-demo") if (p / "manifest.json").is_file())
    return found[-1] if found else None


def language_order(root: Path = REPO_ROOT) -> list[str]:
    """The paper's figure order of languages (``language_groups`` in the project's conf/base/parameters.yml)."""
    params = yaml.safe_load((root / "conf" / "base" / "parameters.yml").read_text(encoding="utf-8")) or {}
    return [str(lang) for group in (params.get("language_groups") or {}).values() for lang in group]


def _ordered(values, order: list[str]) -> list[str]:
    values = [str(v) for v in pd.unique(pd.Series(values).astype(str))]
    known = [v for v in order if v in values]
    return known + sorted(v for v in values if v not in order)


def mix_order(bundle: Bundle) -> list[str]:
    """Mixes in the order the comparisons first name them (base, mono, multi2, ...), then the rest."""
    order: list[str] = []
    for a, b in zip(bundle.comparisons.get("mix_a", []), bundle.comparisons.get("mix_b", [])):
        order += [m for m in (str(a), str(b)) if m not in order]
    return _ordered(bundle.aggregates["mix"], order)


def _num(x: Any, digits: int = 2) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{float(x):.{digits}f}"


def _ci(low: Any, high: Any) -> str:
    return f"[{_num(low)}, {_num(high)}]"


def _signed(x: Any) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{float(x):+.2f}"


def _p(x: Any) -> str:
    """A p-value with enough digits to compare with its floor."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    x = float(x)
    return f"{x:.3f}" if x >= 0.001 else f"{x:.1e}"


def _source_line(bundle: Bundle) -> str:
    run = bundle.manifest.get("run", {})
    commit = run.get("git_commit") or "unknown"
    dirty = " with uncommitted changes" if run.get("git_dirty") else ""
    params = str(run.get("params_sha256") or "")[:12]
    line = (f"Source: `{bundle.path}/` (run of commit `{commit}`{dirty}, env `{run.get('env')}`, "
            f"parameters sha256 `{params}...`, save version `{run.get('save_version')}`); "
            f"written by `scripts/demo_results.py`, checked by `--check`.")
    t = bundle.run_time
    if t:
        line += (f" Wall time of `{t.get('command')}`: {float(t['wall_s']) / 60:.1f} min on {t.get('cpus')} CPUs "
                 f"(1-minute load average {t.get('loadavg_1min_start')} at the start, "
                 f"{t.get('loadavg_1min_end')} at the end; exit status {t.get('exit_status')}; "
                 f"`{bundle.path}/run_time.json`).")
    return line


def _chat(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The chat rows of one metric."""
    return df[(df["task"] == "chat") & (df["metric"] == metric)]


def _against(comparisons: pd.DataFrame, metric: str, baseline: str) -> pd.DataFrame:
    """The chat comparisons of one metric that start from ``baseline``."""
    return comparisons[(comparisons["task"] == "chat") & (comparisons["metric"] == metric)
                       & (comparisons["mix_a"] == baseline)]  # fmt: skip


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "|".join(":--" for _ in header) + "|",
            *["| " + " | ".join(r) + " |" for r in rows]]


def agreement_table(bundle: Bundle, metric: str, languages: list[str]) -> list[str]:
    """Per language x mix: mean [CI] (n prompts), the CI of the bundle's ``ci_unit``."""
    agg = bundle.aggregates
    agg = _chat(agg, metric)
    if agg.empty:
        raise BundleError(f"{bundle.path}/aggregates.csv: no chat rows for metric {metric!r}")
    if agg["model"].nunique() > 1:
        raise BundleError(f"{bundle.path}/aggregates.csv: several models {sorted(agg['model'].unique())}; "
                          "the demo tables show one")
    mixes = [m for m in mix_order(bundle) if m in set(agg["mix"].astype(str))]
    cells = {(str(r.lang), str(r.mix)): r for r in agg.itertuples(index=False)}
    rows = []
    for lang in _ordered(agg["lang"], languages):
        row = [lang]
        for mix in mixes:
            r = cells.get((lang, mix))
            row.append("" if r is None else f"{_num(r.mean)} {_ci(r.ci_low, r.ci_high)} (n {int(r.n_prompts)})")
        rows.append(row)
    stats = bundle.manifest.get("statistics", {})
    seeds = sorted({int(s) for s in agg["n_seeds"]})
    level = stats.get("ci_level", 0.95)
    caption = (f"{metric} ({agg['model'].iloc[0]}), mean over prompts x seeds, [{level:.0%} CI: bootstrap over "
               f"prompts, unit `{stats.get('ci_unit')}`, {stats.get('n_boot')} resamples], n = prompts, each with "
               f"{' or '.join(map(str, seeds))} seed(s):")
    return [caption, "", *_table(["lang", *mixes], rows)]


def comparison_table(bundle: Bundle, metric: str, baseline: str, languages: list[str]) -> list[str]:
    """Paired differences of ``baseline`` vs every other mix, with the family's adjusted p-value."""
    cmp_ = bundle.comparisons
    if cmp_.empty:
        return [f"No paired comparisons in `{bundle.path}/comparisons.csv`."]
    cmp_ = _against(cmp_, metric, baseline)
    if cmp_.empty:
        return [f"No comparison of {baseline} with another mix for {metric} in `{bundle.path}/comparisons.csv`."]
    others = [m for m in mix_order(bundle) if m in set(cmp_["mix_b"].astype(str))]
    by_key = {(str(r.lang), str(r.mix_b)): r for r in cmp_.itertuples(index=False)}
    rows = []
    for lang in _ordered(cmp_["lang"], languages):
        for mix in others:
            r = by_key.get((lang, mix))
            if r is None:
                continue
            rows.append([lang, f"{baseline} -> {mix}", f"{_signed(r.diff)} {_ci(r.ci_low, r.ci_high)}",
                         _p(r.p_value), _p(r.p_adjusted), "yes" if bool(r.significant) else "no", _p(r.p_floor),
                         _num(r.mde), str(int(r.n_prompts))])
    families = sorted({(str(r.family), int(r.family_size), str(r.correction)) for r in cmp_.itertuples(index=False)})
    fam = "; ".join(f"`{f}`, {size} tests, {corr}" for f, size, corr in families)
    stats = bundle.manifest.get("statistics", {})
    tests = sorted(set(cmp_["test"].astype(str)))
    caption = (f"{baseline} vs each other mix, {metric}: difference of prompt means (later minus {baseline}) "
               f"[{stats.get('ci_level', 0.95):.0%} bootstrap CI over prompts]; paired sign-flip permutation test "
               f"({', '.join(tests)}) on the prompt's mean over its seeds; p adjusted over the family {fam}; "
               f"significant at alpha {stats.get('alpha')} after adjustment; p floor = the smallest p-value "
               f"the test could give; MDE = the smallest difference it would detect (power 0.8).")
    header = ["lang", "comparison", "diff [CI]", "p", "p adj.", "significant", "p floor", "MDE", "prompts"]
    return [caption, "", *_table(header, rows)]


def paper_lines(bundle: Bundle, metric: str, baseline: str, languages: list[str], paper: Path | None,
                root: Path = REPO_ROOT, trained: dict[str, list[str]] | None = None) -> list[str]:
    """The run's means next to the paper's for the mixes both have (``baseline`` first), per language of the run,
    and, with ``trained``, one plain line per multi mix: the paper's change over ``baseline`` on the run's
    languages the mix was not tuned on, and where this run's change was significant.

    Empty where ``paper`` is None or absent, or ``metric`` is not the one the paper file holds.

    Raises:
        BundleError: the paper file lacks a column, or a value is missing for a language and mix of the run.
    """
    if paper is None or metric != PAPER_METRIC:
        return []
    file = paper if paper.is_absolute() else root / paper
    if not file.is_file():
        return []
    ref = pd.read_csv(file, dtype={"lang": str, "mix": str})
    missing = {"model", "mix", "lang", "io_agreement", "n_items", "seeds"} - set(ref.columns)
    if missing:
        raise BundleError(f"{file}: no column(s) {', '.join(sorted(missing))}")
    agg = bundle.aggregates
    agg = _chat(agg, metric)
    mixes = [m for m in mix_order(bundle) if m in set(ref["mix"]) and m in set(agg["mix"].astype(str))]
    if baseline not in mixes:
        return []
    mixes = [baseline, *[m for m in mixes if m != baseline]]
    ours = {(str(r.lang), str(r.mix)): r.mean for r in agg.itertuples(index=False)}
    theirs = {(str(r.lang), str(r.mix)): r.io_agreement for r in ref.itertuples(index=False)}
    rows = []
    for lang in _ordered(agg["lang"], languages):
        if (lang, baseline) not in ours:
            continue
        for mix in mixes:
            if (lang, mix) not in theirs:
                raise BundleError(f"{file}: no {mix} row for {lang} (the run has it)")
        rows.append([lang, *[_num(ours.get((lang, m))) for m in mixes], *[_num(theirs[(lang, m)]) for m in mixes]])
    models = sorted(ref[ref["mix"].isin(mixes)]["model"].astype(str).unique())
    items = sorted({(int(r.n_items), int(r.seeds)) for r in ref[ref["mix"].isin(mixes)].itertuples(index=False)})
    size = "; ".join(f"{n // k} prompts x {k} seeds" for n, k in items)
    model = agg["model"].iloc[0] if len(agg) else "?"
    caption = (f"Next to the paper: the same {metric} of the paper's Llama 2 7b models ({', '.join(models)}; mean "
               f"over its seeds, {size} per cell, AlpacaEval prompts, OpenLID), read from its released evaluation "
               f"files: `{_cite(file, root)}` (see the README beside it). This run: {model}, its own prompts and "
               f"LID (fastText lid.176). Model, prompts, detector and tuning scale differ, so compare the shape "
               f"(does a multi mix raise agreement over {baseline} on the languages it was not tuned on?), not "
               f"the levels; the comparisons above say which of this run's differences are significant.")
    header = ["lang", *[f"{m} (this run)" for m in mixes], *[f"{m} (paper)" for m in mixes]]
    shown = [r[0] for r in rows]
    against = _against(bundle.comparisons, metric, baseline) if not bundle.comparisons.empty else None
    plain = []
    for mix in mixes[1:]:
        seen = (trained or {}).get(mix)
        if seen is None or against is None:
            continue
        unseen = [lang for lang in shown if lang not in seen]
        if not unseen:
            continue
        diffs = [theirs[(lang, mix)] - theirs[(lang, baseline)] for lang in unseen]
        ups = [lang for lang, d in zip(unseen, diffs) if d > 0]
        sub = against[(against["mix_b"].astype(str) == mix) & against["lang"].astype(str).isin(unseen)]
        sig_up = _ordered(sub.loc[sub["significant"].astype(bool) & (sub["diff"] > 0), "lang"], languages)
        plain.append(f"- **{mix}** vs {baseline} on the {len(unseen)} languages here it was not tuned on "
                     f"({', '.join(unseen)}): the paper's {mix} is higher on {len(ups)} of them "
                     f"({_signed(min(diffs))} to {_signed(max(diffs))}); this run's is significantly higher on "
                     f"{len(sig_up)} ({', '.join(sig_up) if sig_up else 'none'}).")
    if plain:
        plain = ["", "In plain words, against the paper (generated from the two tables):", "", *plain]
    return [caption, "", *_table(header, rows), *plain]


def plateau_lines(bundle: Bundle, languages: list[str], first_metric: str) -> list[str]:
    """The plateau (non-inferiority) table: per metric (``first_metric`` first), language and resource group."""
    pl = bundle.plateau
    if pl.empty:
        return [f"No plateau rows in `{bundle.path}/plateau.csv` (the ladder has fewer than two mixes)."]
    pl = pl[pl["task"] == "chat"]
    rows = []
    for metric in _ordered(pl["metric"], [first_metric]):
        sub = pl[pl["metric"] == metric]
        for scope in ("language", "group"):
            part = sub[sub["scope"] == scope]
            order = languages if scope == "language" else []
            for target in _ordered(part["target"], order):
                r = part[part["target"].astype(str) == target].iloc[0]
                rows.append([metric, f"{target}" if scope == "language" else f"{target} (group)", str(r["answer"]),
                             _num(r["delta"]), str(int(r["n_prompts"])), str(r["decisions"])])
    alpha = pl["alpha"].iloc[0] if len(pl) else None
    caption = (f"How many finetuning languages are enough: the smallest Multi-*i* not worse than every larger "
               f"mix by more than delta (one-sided {1 - float(alpha):.0%} bound over prompts); "
               "\"undecided\" where the intervals are too wide.")
    return [caption, "", *_table(["metric", "target", "answer", "delta", "prompts", "decisions"], rows)]


def trained_languages(env: str | None, root: Path = REPO_ROOT) -> dict[str, list[str]] | None:
    """Per mix, the languages of its finetuning data (base language + what multi-i swaps in), from the
    run's environment's parameters (the rule data mixing builds the mixes with); None where unreadable."""
    try:
        from polyglot_kedro.config import mix_specs
        from polyglot_kedro.project_config import load_parameters

        params = load_parameters(root / "conf", env)
        mixing = params["data_mixing"]["mixing"]
        return {name: [str(mixing["base_language"]), *spec.added_languages(list(mixing["language_order"]), name)]
                for name, spec in mix_specs(params["mixes"]).items() if spec.kind in {"mono", "multi"}}
    except Exception:  # noqa: BLE001 - a tmp root without conf/, or another project layout: no verdict line
        return None


def verdict_lines(bundle: Bundle, metric: str, baseline: str, languages: list[str],
                  trained: dict[str, list[str]] | None) -> list[str]:
    """In plain words, from the comparisons: did each multi mix raise ``metric`` over ``baseline`` on the
    languages it was not finetuned on (significant after the family's adjustment)?"""
    cmp_ = bundle.comparisons
    if cmp_.empty or trained is None:
        return []
    cmp_ = _against(cmp_, metric, baseline)
    lines = []
    for mix in mix_order(bundle):
        seen = trained.get(mix)
        rows = cmp_[cmp_["mix_b"].astype(str) == mix]
        if mix == baseline or seen is None or rows.empty or len(seen) <= len(trained.get(baseline, [])):
            continue
        unseen = rows[~rows["lang"].astype(str).isin(seen)]
        sig = unseen["significant"].astype(bool)
        up = _ordered(unseen.loc[sig & (unseen["diff"] > 0), "lang"], languages)
        down = _ordered(unseen.loc[sig & (unseen["diff"] < 0), "lang"], languages)
        rest = _ordered(unseen.loc[~sig, "lang"], languages)
        lines.append(f"- **{mix}** (finetuned on {', '.join(seen)}) vs {baseline}, on the {len(unseen)} languages "
                     f"it was not finetuned on: raised {metric} significantly on "
                     f"{', '.join(up) if up else 'none'}; lowered it significantly on {', '.join(down) if down else 'none'}; "
                     f"no significant difference on {', '.join(rest) if rest else 'none'}.")
    if not lines:
        return []
    return ["In plain words (generated from the comparisons above; significant = family-adjusted p below alpha):",
            "", *lines]


def render_block(bundle: Bundle, *, metric: str = "io_lang_agreement", baseline: str = "mono",
                 languages: list[str] | None = None, trained: dict[str, list[str]] | None = None,
                 paper: Path | None = None, root: Path = REPO_ROOT) -> str:
    """The text between the markers (without them), ending in a newline."""
    languages = language_order() if languages is None else languages
    verdict = verdict_lines(bundle, metric, baseline, languages, trained)
    beside = paper_lines(bundle, metric, baseline, languages, paper, root, trained)
    lines = [_source_line(bundle), "", *agreement_table(bundle, metric, languages), "",
             *comparison_table(bundle, metric, baseline, languages), "", *(verdict + [""] if verdict else []),
             *(beside + [""] if beside else []), *plateau_lines(bundle, languages, metric)]
    return "\n".join(lines) + "\n"


def replace_block(text: str, block: str, name: str) -> str:
    """``text`` with the part between the one marker pair replaced by ``block``.

    Raises:
        BundleError: the file has no marker pair, more than one, or an end before its begin.
    """
    n_begin, n_end = text.count(BEGIN), text.count(END)
    if n_begin != 1 or n_end != 1:
        raise BundleError(f"{name}: needs exactly one {BEGIN} ... {END} pair (found {n_begin} begin, {n_end} end)")
    head, rest = text.split(BEGIN)
    middle, tail = rest.split(END)
    if END in head:
        raise BundleError(f"{name}: {END} comes before {BEGIN}")
    return f"{head}{BEGIN}\n{block}{END}{tail}"


def main(argv: list[str] | None = None, root: Path = REPO_ROOT) -> int:
    """Render (or ``--check``) the demo tables; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("bundle", nargs="?", type=Path, help="bundle folder (default: newest docs/results/*-demo/)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a file differs from the bundle")
    parser.add_argument("--files", nargs="+", default=list(DEFAULT_FILES), help="files with the marker pair")
    parser.add_argument("--metric", default="io_lang_agreement")
    parser.add_argument("--baseline", default="mono", help="mix compared with every other")
    parser.add_argument("--paper", type=Path, default=PAPER,
                        help=f"the paper's values of {PAPER_METRIC} (default: {PAPER}; skipped where absent)")
    args = parser.parse_args(argv)
    path = args.bundle if args.bundle is not None else newest_bundle(root)
    if path is None:
        print(f"no results bundle under {root / 'docs' / 'results'} (*-demo/ with manifest.json)", file=sys.stderr)
        return 2
    try:
        bundle = load_bundle(path if path.is_absolute() else root / path, root)
        trained = trained_languages(bundle.manifest.get("run", {}).get("env"), root)
        block = render_block(bundle, metric=args.metric, baseline=args.baseline, languages=language_order(),
                             trained=trained, paper=args.paper, root=root)  # fmt: skip
        stale = []
        for name in args.files:
            file = root / name
            text = file.read_text(encoding="utf-8")
            new = replace_block(text, block, name)
            if new == text:
                continue
            if args.check:
                stale.append(name)
            else:
                file.write_text(new, encoding="utf-8")
                print(f"{name}: demo tables written from {bundle.path}")
    except (BundleError, OSError) as exc:
        print(f"demo_results: {exc}", file=sys.stderr)
        return 1
    if stale:
        print(f"out of sync with {bundle.path}: {', '.join(stale)} (run scripts/demo_results.py to rewrite)",
              file=sys.stderr)
        return 1
    if args.check:
        print(f"in sync with {bundle.path}: {', '.join(args.files)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
