"""scripts/demo_results.py: the README's demo tables come from a committed results bundle, and --check says when not.

The synthetic bundle is written by the reporting stage's own nodes (aggregate,
compare, plateau, dose-response, ``results_bundle``) on hand-made scores, so it
has the real bundle's format.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from polyglot_kedro.pipelines.reporting.bundle import results_bundle
from polyglot_kedro.pipelines.reporting.inputs import combine_scores
from polyglot_kedro.pipelines.reporting.plateau import dose_response, plateau_table
from polyglot_kedro.pipelines.reporting.statistics import aggregate_scores, compare_mixes

REPO_ROOT = Path(__file__).resolve().parents[1]
MIXES = {"base": {"kind": "untuned"}, "mono": {"kind": "mono"}, "multi2": {"kind": "multi", "n_languages": 2},
         "multi3": {"kind": "multi", "n_languages": 3}}  # fmt: skip
GROUPS = {"high": ["en", "de", "es"], "mid": ["bg"]}
LANGS = ["es", "bg", "en", "de"]  # not in figure order: the script orders them
# P(reply in the prompt's language) per mix and language; multi2/3 clearly better than mono in es.
RATES = {"base": 0.6, "mono": 0.5, "multi2": 0.9, "multi3": 0.95}
REPORTING = {"n_boot": 200, "seed": 1, "test_resamples": 200, "comparisons": [["base", "mono"], ["mono", "multi2"],
             ["mono", "multi3"], ["multi2", "multi3"]]}  # fmt: skip
RUN_INFO = {"git_commit": "0123abcd", "git_dirty": False, "env": "demo", "params_sha256": "e" * 64,
            "save_version": "2026-12-01T14.00.00.000Z", "load_versions": {}, "kedro_version": "1.7.0",
            "python": "3.11.7"}  # fmt: skip


def _load_script():
    spec = importlib.util.spec_from_file_location("demo_results", REPO_ROOT / "scripts" / "demo_results.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["demo_results"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


demo_results = _load_script()


def _scores(mix: str, rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for lang in LANGS:
        rate = RATES[mix] if lang == "es" else 0.7
        for seed in (0, 42, 723):
            for item in range(12):
                base = {"model": "smollm2_135m", "mix": mix, "task": "chat", "lang": lang, "prompt_setting": "native",
                        "seed": seed, "item_id": f"p{item:02d}", "invalid_reason": "", "judge": None}
                rows.append({**base, "metric": "io_lang_agreement", "score": float(rng.random() < rate), "valid": True})
                rows.append({**base, "metric": "helpfulness", "score": float(rng.integers(1, 7)), "valid": True,
                             "judge": "smollm2_135m"})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def bundle_files() -> dict[str, str]:
    rng = np.random.default_rng(7)
    scores = combine_scores(mixes=MIXES, **{mix: _scores(mix, rng) for mix in MIXES})
    aggregates = aggregate_scores(scores, REPORTING)
    significance = compare_mixes(scores, MIXES, REPORTING)
    plateau = plateau_table(scores, MIXES, GROUPS, REPORTING)
    dose = dose_response(scores, MIXES, GROUPS, REPORTING)
    numbers = aggregates.assign(figure="fig1_io_lang_agreement", error_bars="ci")
    return results_bundle(aggregates, significance, plateau, dose, numbers, scores, RUN_INFO, REPORTING)


def _write_bundle(files: dict[str, str], folder: Path) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def project(tmp_path, bundle_files) -> Path:
    """A tmp root with a committed bundle and the two files, each with an empty marker pair."""
    _write_bundle(bundle_files, tmp_path / "docs" / "results" / "2026-12-01-demo")
    (tmp_path / "README.md").write_text(f"# Title\n\nBefore.\n\n{demo_results.BEGIN}\n{demo_results.END}\n\nAfter.\n")
    (tmp_path / "docs" / "REPLICATION.md").write_text(f"## Confirmation run\n\n{demo_results.BEGIN}\n"
                                                      f"{demo_results.END}\n")
    return tmp_path


def _block(text: str) -> str:
    return text.split(demo_results.BEGIN)[1].split(demo_results.END)[0]


def test_render_writes_the_bundle_s_numbers_and_cites_it(project, bundle_files, capsys):
    assert demo_results.main(["--check"], root=project) == 1  # empty markers: out of sync
    assert demo_results.main([], root=project) == 0
    readme = (project / "README.md").read_text()
    assert readme.startswith("# Title\n\nBefore.") and readme.endswith("\n\nAfter.\n")
    block = _block(readme)
    assert block == _block((project / "docs" / "REPLICATION.md").read_text())
    assert "`docs/results/2026-12-01-demo/`" in block and "`0123abcd`" in block
    agg = pd.read_csv(project / "docs/results/2026-12-01-demo/aggregates.csv")
    cell = agg[(agg["metric"] == "io_lang_agreement") & (agg["mix"] == "multi2") & (agg["lang"] == "es")].iloc[0]
    es_row = next(line for line in block.splitlines() if line.startswith("| es |"))
    assert f"{cell['mean']:.2f} [{cell['ci_low']:.2f}, {cell['ci_high']:.2f}] (n {cell['n_prompts']})" in es_row
    # languages in the paper's figure order, mixes in the comparisons' order
    lines = block.splitlines()
    header = lines.index("| lang | base | mono | multi2 | multi3 |")
    assert [line.split("|")[1].strip() for line in lines[header + 2 : header + 6]] == ["en", "de", "es", "bg"]
    # the comparisons: every mono -> other row, with its family and the adjusted p-value
    cmp_ = pd.read_csv(project / "docs/results/2026-12-01-demo/comparisons.csv")
    mono = cmp_[(cmp_["metric"] == "io_lang_agreement") & (cmp_["mix_a"] == "mono")]
    assert len(re.findall(r"^\| \w+ \| mono -> multi[23] \|", block, flags=re.M)) == len(mono) == 8
    es2 = mono[(mono["lang"] == "es") & (mono["mix_b"] == "multi2")].iloc[0]
    line = next(l for l in block.splitlines() if l.startswith("| es | mono -> multi2 |"))
    assert f"{es2['diff']:+.2f}" in line and demo_results._p(es2["p_adjusted"]) in line
    assert f"`{es2['family']}`, {es2['family_size']} tests, holm" in block
    assert "| io_lang_agreement | high (group) |" in block and "| helpfulness | es |" in block
    assert demo_results.main(["--check"], root=project) == 0
    assert "in sync" in capsys.readouterr().out


def test_check_catches_a_hand_edited_number(project):
    assert demo_results.main([], root=project) == 0
    readme = project / "README.md"
    text = readme.read_text()
    es_row = next(line for line in text.splitlines() if line.startswith("| es |"))
    number = re.search(r"\d\.\d\d", es_row).group(0)
    edited = es_row.replace(number, "0.99" if number != "0.99" else "0.98", 1)
    readme.write_text(text.replace(es_row, edited))
    assert demo_results.main(["--check"], root=project) == 1
    assert demo_results.main([], root=project) == 0  # rewriting restores it
    assert readme.read_text() == text


def test_a_bundle_edited_after_the_run_is_refused(project, capsys):
    agg = project / "docs/results/2026-12-01-demo/aggregates.csv"
    agg.write_text(agg.read_text().replace("0.", "0.9", 1))
    assert demo_results.main([], root=project) == 1
    assert "aggregates.csv does not match its sha256" in capsys.readouterr().err


def test_a_file_without_its_marker_pair_is_an_error(project, capsys):
    (project / "README.md").write_text("# no markers\n")
    assert demo_results.main(["--check"], root=project) == 1
    assert "README.md: needs exactly one" in capsys.readouterr().err


def test_committed_demo_bundles_match_readme_and_replication():
    """The README's and REPLICATION's demo tables are the newest committed bundle's (skips before the first)."""
    bundles = sorted((REPO_ROOT / "docs" / "results").glob("*-demo"))
    if not bundles:
        pytest.skip("no docs/results/*-demo bundle committed yet")
    for folder in bundles:  # every committed bundle is intact
        demo_results.load_bundle(folder)
    assert demo_results.main(["--check"]) == 0


def test_verdict_names_unseen_languages_by_the_adjusted_test():
    cmp_ = pd.DataFrame({
        "task": "chat", "metric": "io_lang_agreement", "mix_a": "mono",
        "mix_b": ["multi2"] * 4 + ["multi3"] * 4,
        "lang": ["es", "ru", "de", "hi"] * 2,
        "diff": [0.3, 0.2, -0.2, 0.01, 0.3, 0.25, 0.1, -0.3],
        "significant": [True, True, True, False, True, True, False, True],
    })  # fmt: skip
    bundle = demo_results.Bundle("b", {}, pd.DataFrame({"mix": ["mono", "multi2", "multi3"]}), cmp_, pd.DataFrame())
    trained = {"mono": ["en"], "multi2": ["en", "es"], "multi3": ["en", "es", "ru"]}
    lines = demo_results.verdict_lines(bundle, "io_lang_agreement", "mono", ["en", "es", "ru", "de", "hi"], trained)
    multi2 = next(x for x in lines if x.startswith("- **multi2**"))
    multi3 = next(x for x in lines if x.startswith("- **multi3**"))
    # es is multi2's own language: left out; ru up, de down, hi not significant
    assert "on the 3 languages" in multi2 and "significantly on ru;" in multi2 and "lowered it significantly on de;" in multi2
    assert multi2.endswith("no significant difference on hi.")
    assert "on the 2 languages" in multi3 and "raised io_lang_agreement significantly on none;" in multi3
    assert "lowered it significantly on hi;" in multi3 and multi3.endswith("no significant difference on de.")
    assert demo_results.verdict_lines(bundle, "io_lang_agreement", "mono", ["en"], None) == []


def test_trained_languages_follow_the_mixing_rule():
    trained = demo_results.trained_languages("demo")
    assert trained is not None and trained["mono"] == ["en"]
    assert trained["multi2"] == ["en", "es"] and trained["multi3"] == ["en", "es", "ru"]


def _paper_csv(path: Path, langs: list[str], drop: tuple[str, str] | None = None) -> dict[tuple[str, str], float]:
    """A paper file in the committed one's format; value = a distinct number per (lang, mix)."""
    values = {(lang, mix): round(0.1 + 0.2 * i + 0.01 * j, 4) for j, lang in enumerate(langs)
              for i, mix in enumerate(("mono", "multi2", "multi3", "multi6"))}  # fmt: skip
    rows = [{"model": f"llama_2_7b_hf_ml{mix[-1] if mix != 'mono' else 1}_merged", "mix": mix, "lang": lang,
             "io_agreement": v, "n_items": 2415, "seeds": 3} for (lang, mix), v in values.items() if (lang, mix) != drop]  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)
    return values


def test_the_paper_s_numbers_stand_next_to_the_run_s(project):
    values = _paper_csv(project / demo_results.PAPER, [*LANGS, "sv"])
    assert demo_results.main([], root=project) == 0
    block = _block((project / "README.md").read_text())
    assert f"`{demo_results.PAPER.as_posix()}`" in block and "805 prompts x 3 seeds" in block
    lines = block.splitlines()
    header = lines.index("| lang | mono (this run) | multi2 (this run) | multi3 (this run) | mono (paper) "
                         "| multi2 (paper) | multi3 (paper) |")  # mixes of both; multi6 is the paper's only
    rows = lines[header + 2 : header + 6]
    assert [r.split("|")[1].strip() for r in rows] == ["en", "de", "es", "bg"]  # the run's languages (no sv)
    agg = pd.read_csv(project / "docs/results/2026-12-01-demo/aggregates.csv")
    agg = agg[(agg["metric"] == "io_lang_agreement") & (agg["task"] == "chat")]
    for row in rows:
        lang = row.split("|")[1].strip()
        mean = {m: agg[(agg["lang"] == lang) & (agg["mix"] == m)]["mean"].iloc[0] for m in ("mono", "multi2", "multi3")}
        expected = [f"{mean[m]:.2f}" for m in ("mono", "multi2", "multi3")]
        expected += [f"{values[(lang, m)]:.2f}" for m in ("mono", "multi2", "multi3")]
        assert [c.strip() for c in row.split("|")[2:-1]] == expected
    # another metric has no paper numbers: no table
    assert demo_results.main(["--metric", "helpfulness", "--files", "README.md"], root=project) == 0
    assert "Next to the paper" not in (project / "README.md").read_text()


def test_a_paper_file_without_a_cell_of_the_run_is_refused(project, capsys):
    _paper_csv(project / demo_results.PAPER, LANGS, drop=("bg", "multi2"))
    assert demo_results.main([], root=project) == 1
    assert "no multi2 row for bg (the run has it)" in capsys.readouterr().err


def test_the_plain_line_against_the_paper_counts_the_unseen_languages(project):
    _paper_csv(project / demo_results.PAPER, LANGS)
    bundle = demo_results.load_bundle(project / "docs/results/2026-12-01-demo", project)
    trained = {"mono": ["en"], "multi2": ["en", "es"], "multi3": ["en", "es", "bg"]}
    block = demo_results.render_block(bundle, languages=["en", "de", "es", "bg"], trained=trained,
                                      paper=demo_results.PAPER, root=project)  # fmt: skip
    cmp_ = pd.read_csv(project / "docs/results/2026-12-01-demo/comparisons.csv")
    cmp_ = cmp_[(cmp_["metric"] == "io_lang_agreement") & (cmp_["mix_a"] == "mono") & cmp_["significant"]
                & (cmp_["diff"] > 0)]  # fmt: skip
    for mix, unseen in (("multi2", ["de", "bg"]), ("multi3", ["de"])):
        sig = [lang for lang in unseen if lang in set(cmp_[cmp_["mix_b"] == mix]["lang"])]
        # the paper file's multi2 (multi3) is mono + 0.20 (+ 0.40) in every language
        step = {"multi2": "+0.20", "multi3": "+0.40"}[mix]
        assert (f"- **{mix}** vs mono on the {len(unseen)} languages here it was not tuned on ({', '.join(unseen)}): "
                f"the paper's {mix} is higher on {len(unseen)} of them ({step} to {step}); this run's is "
                f"significantly higher on {len(sig)} ({', '.join(sig) if sig else 'none'}).") in block
