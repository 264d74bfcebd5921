"""The reporting parameters and catalog entries of conf/ validate and build."""

from __future__ import annotations

import pytest
import yaml
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog

from polyglot_kedro.config import mix_specs
from polyglot_kedro.pipelines.reporting import create_pipeline
from polyglot_kedro.pipelines.reporting.params import ReportingParams


def test_conf_parameters_validate(repo_root):
    loader = OmegaConfigLoader(str(repo_root / "conf"), base_env="base", default_run_env="local")
    params = loader["parameters"]["reporting"]  # resolves ${globals:sources}
    p = ReportingParams.model_validate(params)
    assert p.sources["guanaco"].endswith(".jsonl")
    assert p.n_boot == 1000 and p.error_bars == "ci" and p.paper_results is None and p.ci_unit == "prompt_cluster"
    assert p.plateau.delta_for("helpfulness") == 0.25 and p.plateau.delta_for("xnli_acc") == 0.05
    with pytest.raises(ValueError, match="n_bot"):
        ReportingParams.model_validate({**params, "n_bot": 10})
    catalog = yaml.safe_load((repo_root / "conf/base/catalog_reporting.yml").read_text())
    bundle = catalog.pop("report_bundle")  # the latest run's bundle, one folder (not versioned)
    in_memory = {name for name, entry in catalog.items() if entry["type"] == "MemoryDataset"}
    assert in_memory == {"report_scores", "report_paper_results", "report_figure_manifest"}  # declared for their layer
    for name in in_memory:
        catalog.pop(name)
    assert bundle["path"] == "data/08_reporting/bundle"
    assert all(entry.get("versioned") for entry in catalog.values())
    assert all(entry["filepath"].startswith("data/08_reporting/") for entry in catalog.values())
    catalog["report_bundle"] = bundle
    DataCatalog.from_config(catalog)  # every entry builds (types and arguments exist)
    outputs = create_pipeline(mix_specs({"mono": {"kind": "mono"}})).all_outputs()
    in_memory = {"report_scores", "report_figure_manifest", "report_paper_results"}
    persisted = {o for o in outputs if o not in in_memory}
    assert persisted <= set(catalog), sorted(persisted - set(catalog))
