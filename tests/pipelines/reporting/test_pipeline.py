"""The reporting pipeline end to end with SequentialRunner (XNLI missing)."""

from __future__ import annotations

import base64
import hashlib
import functools
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from PIL import Image

from polyglot_kedro.config import mix_specs
from polyglot_kedro.pipelines.reporting import create_pipeline

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def run_report(tmp_path, scores_by_mix, mixes, reporting_params, data_mixing_params, language_groups, mix_summary,
               language_distribution, usage, run_info):
    def run(judging: dict | None = None, judge_noise: dict[str, pd.DataFrame] | None = None):
        """``judging``: ``params:judging`` (default: judge noise off); ``judge_noise``: ``{mix}.judge_noise`` frames."""
        out = tmp_path / "08_reporting"
        # the project's own catalog entries, written under tmp_path (unversioned, to read them back by name)
        entries = yaml.safe_load((REPO / "conf/base/catalog_reporting.yml").read_text())
        for entry in entries.values():
            entry.pop("versioned", None)
            for key in ("filepath", "path"):
                if key in entry:
                    entry[key] = entry[key].replace("data/08_reporting", str(out))
        catalog = DataCatalog.from_config(entries)
        datasets = {
            "translation_usage": MemoryDataset(usage("translation", 0.5)),
            "mix_summary": MemoryDataset(mix_summary),
            "language_distribution": MemoryDataset(language_distribution),
            "params:mixes": MemoryDataset(mixes),
            "params:reporting": MemoryDataset(reporting_params),
            "params:data_mixing": MemoryDataset(data_mixing_params),
            "params:language_groups": MemoryDataset(language_groups),
            "params:model": MemoryDataset("tiny_llama"),
            "params:models": MemoryDataset({"tiny_llama": {"notes": "Random-weight Llama; its outputs are noise."}}),
            "run_info": MemoryDataset(run_info),
            "params:judging": MemoryDataset(judging or {}),
            "report_figure_manifest": MemoryDataset(copy_mode="assign"),
        }
        for mix, df in scores_by_mix.items():
            datasets[f"{mix}.scores"] = MemoryDataset(df)
            datasets[f"{mix}.judging_usage"] = MemoryDataset(usage("judging", 0.25))
            datasets[f"{mix}.training_metrics"] = MemoryDataset({"loss": [2.0, 1.0], "tokens": 100})
            datasets[f"{mix}.judge_noise"] = MemoryDataset((judge_noise or {}).get(mix, pd.DataFrame()))
        for name, dataset in datasets.items():
            catalog[name] = dataset
        SequentialRunner().run(create_pipeline(mix_specs(mixes)), catalog)
        return out

    return run


@pytest.fixture(scope="module")
def _reports() -> dict:
    return {}


@pytest.fixture
def default_report(run_report, _reports) -> Path:
    """``run_report()`` (judge noise off), run once for this module's tests that only read its files.

    Its inputs are the conftest's fixed builders (seeded), the same for every
    test; the tests write only into their own ``tmp_path``.
    """
    if "out" not in _reports:
        _reports["out"] = run_report()
    return _reports["out"]


def test_pipeline_writes_report_with_missing_task_noted(default_report):
    out = default_report
    html = (out / "report.html").read_text()
    figures = sorted(p.name for p in (out / "figures").iterdir())
    assert figures == ["fig1_io_lang_agreement.png", "fig2_helpfulness.png", "fig3_xquad.png", "fig4_xcsqa.png",
                       "fig8_dose_response.png"]
    for name in figures:
        assert Image.open(out / "figures" / name).size[0] > 100
    assert "tiny_llama: Random-weight Llama; its outputs are noise." in html  # the registry's notes
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 5
    for b64 in images:
        Image.open(io.BytesIO(base64.b64decode(b64))).verify()
    assert "Fig. 5 (XNLI) skipped: no valid &#x27;xnli_acc&#x27; scores" in html
    assert "Fig. 5 (XNLI) skipped" in (out / "tables.md").read_text()
    agg = pd.read_csv(out / "aggregates.csv")
    assert set(agg["task"]) == {"chat", "xquad", "xcsqa"}
    numbers = pd.read_csv(out / "figure_numbers.csv")
    assert set(numbers["figure"]) == {f[:-4] for f in figures} - {"fig8_dose_response"}
    costs = pd.read_csv(out / "costs.csv")
    assert costs.loc[costs["mix"] == "TOTAL", "cost_usd"].iloc[0] == pytest.approx(1.25)
    sig = pd.read_csv(out / "significance.csv")
    es = sig[(sig["metric"] == "helpfulness") & (sig["lang"] == "es") & (sig["mix_a"] == "mono")].iloc[0]
    assert es["significant"]
    tm = pd.read_csv(out / "training_metrics.csv")
    assert list(tm["mix"]) == ["mono", "multi2", "multi3"] and set(tm["loss.last"]) == {1.0}
    plateau = pd.read_csv(out / "plateau.csv")
    assert {"language", "group"} == set(plateau["scope"]) and "How many finetuning languages" in html
    # the results bundle: the same numbers plus a manifest naming the run and every file's hash
    bundle = out / "bundle"
    assert sorted(p.name for p in bundle.iterdir()) == ["aggregates.csv", "comparisons.csv", "dose_response.csv",
                                                        "figures", "manifest.json", "plateau.csv"]
    assert sorted(p.name for p in (bundle / "figures").iterdir()) == [f[:-4] + ".csv" for f in figures]
    assert sorted(p.name for p in (out / "figures_svg").iterdir()) == [f[:-4] + ".svg" for f in figures]
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["run"]["git_commit"] == "0123abc" and manifest["statistics"]["ci_unit"] == "prompt_cluster"
    for name, meta in manifest["files"].items():
        assert hashlib.sha256((bundle / name).read_bytes()).hexdigest() == meta["sha256"], name
    pd.testing.assert_frame_equal(pd.read_csv(bundle / "aggregates.csv"), agg)


def test_pipeline_wiring():
    mixes = mix_specs({"mono": {"kind": "mono"}, "base": {"kind": "untuned"}})
    pipe = create_pipeline(mixes)
    # each mix's dataset is a named (keyword) input kedro-viz shows; nothing bound behind Kedro's back
    assert not any(isinstance(n.func, functools.partial) for n in pipe.nodes)
    combine = next(n for n in pipe.nodes if n.name == "combine_scores")
    assert set(combine.inputs) == {"report_paper_results", "params:mixes", "base.scores", "mono.scores"}
    assert {"run_info", "params:reporting"} <= pipe.inputs()
    assert "base.training_metrics" not in pipe.inputs() and "mono.training_metrics" in pipe.inputs()
    assert {"base.scores", "mono.scores", "translation_usage"} <= pipe.inputs()
    assert "translation_usage" not in create_pipeline(mixes, with_translation_usage=False).inputs()
    assert {"report_html", "report_figures", "report_tables_md"} <= pipe.outputs()
    assert len(create_pipeline(None).nodes) == 0
    with pytest.raises(ValueError, match="reserved"):
        create_pipeline(mix_specs({"paper_results": {"kind": "mono"}}))


SCRIPT = REPO / "scripts" / "screenshot_report.py"
CHROMIUM = "/usr/bin/chromium"


def _run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300, check=False)


def test_report_images_decode(default_report, tmp_path):
    out = default_report
    res = _run_script(str(out / "report.html"), "--no-browser", "--json", str(tmp_path / "check.json"))
    assert res.returncode == 0, res.stdout + res.stderr
    summary = json.loads((tmp_path / "check.json").read_text())
    assert summary["images"] == 5 and summary["images_decoded"] == 5
    broken = tmp_path / "broken.html"
    broken.write_text('<html><body><img src="data:image/png;base64,AAAA"></body></html>')
    assert _run_script(str(broken), "--no-browser").returncode == 1


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="headless Chromium (Debian package chromium) not installed")
def test_report_renders_in_headless_chromium(default_report, tmp_path):
    out = default_report
    shot = tmp_path / "shot.png"
    res = _run_script(str(out / "report.html"), "--chromium", CHROMIUM, "--screenshot", str(shot),
                      "--json", str(tmp_path / "check.json"))
    summary = json.loads((tmp_path / "check.json").read_text())
    assert res.returncode == 0, json.dumps(summary.get("browser"), indent=1)
    assert summary["browser"]["rendered"] == 5 and shot.exists()
    # at 1300 px the page does not run off the right edge (wide tables scroll in their own box)
    assert summary["browser"]["layout_width"] == 1300 and not summary["browser"]["horizontal_overflow"]
    assert summary["browser"]["scroll_width"] <= summary["browser"]["client_width"]
    # and the check can fail: a page with a 3000 px wide element overflows
    wide = tmp_path / "wide.html"
    wide.write_text((out / "report.html").read_text().replace("</body>", '<div style="width:3000px">x</div></body>'))
    res = _run_script(str(wide), "--chromium", CHROMIUM, "--screenshot", str(tmp_path / "w.png"),
                      "--json", str(tmp_path / "wide.json"))
    assert res.returncode == 1 and json.loads((tmp_path / "wide.json").read_text())["browser"]["horizontal_overflow"]
