"""The fidelity list of ``--env paper``: one YAML file, rendered into docs/FIDELITY.md and checked by a test.

``conf/paper/fidelity.yml`` lists every setting where the paper's text, its
released code and this project's environments meet: what each says, the
conf/paper value, the switch to the other reading, and why. This module reads
that list, resolves an environment's configuration the way a run does
(``OmegaConfigLoader`` with soft-merged parameters, as ``settings.py``), and
renders the tables of docs/FIDELITY.md. ``tests/test_fidelity.py`` checks
both the values and the rendered tables, so the list, the document and the
configuration cannot drift apart.

Regenerate the document after editing the list::

    python -m polyglot_kedro.fidelity
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field

from polyglot_kedro.config import StrictModel

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LIST_FILE = PROJECT_ROOT / "conf" / "paper" / "fidelity.yml"
DOC_FILE = PROJECT_ROOT / "docs" / "FIDELITY.md"
BEGIN, END = "<!-- fidelity:begin (generated from conf/paper/fidelity.yml) -->", "<!-- fidelity:end -->"


class _Missing:
    """Not set (distinct from a YAML null); survives pydantic's copies of defaults."""

    def __repr__(self) -> str:
        return "<not set>"

    def __copy__(self) -> "_Missing":
        return self

    def __deepcopy__(self, memo: dict) -> "_Missing":
        return self


_MISSING = _Missing()


class Entry(StrictModel):
    """One setting of the fidelity list (fields described in conf/paper/fidelity.yml)."""

    topic: str
    key: str | None
    text: str
    code: str
    paper: Any
    base: Any = _MISSING
    demo: Any = _MISSING
    switch: str | None
    why: str
    status: Literal["done", "divergence", "pending"]

    def has(self, env: str) -> bool:
        """Whether the entry states a value for ``env`` (``paper`` always does)."""
        return env == "paper" or getattr(self, env) is not _MISSING


class FidelityList(StrictModel):
    entries: list[Entry] = Field(min_length=1)


def load_entries(path: str | Path = LIST_FILE) -> list[Entry]:
    """Read and validate the fidelity list.

    Raises:
        ValueError: a malformed entry (its index and topic named) or a topic listed twice.
    """
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    try:
        entries = FidelityList.model_validate(raw).entries
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    topics = [e.topic for e in entries]
    dupes = sorted({t for t in topics if topics.count(t) > 1})
    if dupes:
        raise ValueError(f"{path}: topics listed twice: {dupes}")
    return entries


def resolve_config(env: str, conf_source: str | Path = PROJECT_ROOT / "conf") -> dict[str, Any]:
    """The parameters and globals a ``kedro run --env <env>`` resolves (``local`` = conf/base only).

    Returns:
        ``{"parameters": ..., "globals": ...}`` as plain containers.
    """
    from kedro.config import OmegaConfigLoader

    from polyglot_kedro.settings import CONFIG_LOADER_ARGS

    loader = OmegaConfigLoader(
        conf_source=str(conf_source),
        base_env=CONFIG_LOADER_ARGS["base_env"],
        default_run_env=CONFIG_LOADER_ARGS["default_run_env"],
        env=env,
        merge_strategy=dict(CONFIG_LOADER_ARGS["merge_strategy"]),
    )
    return {"parameters": dict(loader["parameters"]), "globals": dict(loader["globals"])}


def lookup(config: dict[str, Any], key: str) -> Any:
    """The value at ``key`` (dotted; ``globals:`` prefix for globals), or ``_MISSING``."""
    section, _, path = key.rpartition(":")
    node: Any = config["globals" if section == "globals" else "parameters"]
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def missing() -> object:
    """The sentinel :func:`lookup` returns for a key that is not set."""
    return _MISSING


def mismatches(entries: list[Entry], configs: dict[str, dict[str, Any]]) -> list[str]:
    """Every disagreement between the list and the resolved environments.

    ``configs`` maps ``paper``, ``base`` and ``demo`` to :func:`resolve_config`
    results. A keyed entry must exist in conf/paper with the listed value;
    conf/base must equal the listed ``base`` (or, unstated, the conf/paper
    value) and conf/demo the listed ``demo`` (or, unstated, the base value),
    so an undeclared difference is a mismatch too. A key not set reads as null.

    Returns:
        One message per disagreement, naming the environment, key and values.
    """
    out = []
    for e in entries:
        if e.key is None:
            continue
        if lookup(configs["paper"], e.key) is _MISSING:
            out.append(f"{e.topic}: {e.key!r} is not set in conf/paper")
            continue
        expected = {"paper": e.paper}
        expected["base"] = e.base if e.has("base") else e.paper
        expected["demo"] = e.demo if e.has("demo") else expected["base"]
        for env in ("paper", "base", "demo"):
            got = lookup(configs[env], e.key)
            got = None if got is _MISSING else got
            if got != expected[env]:
                stated = "listed" if e.has(env) else "not listed, so expected as " + ("conf/paper" if env == "base" else "conf/base")
                out.append(f"{e.topic}: conf/{env} {e.key} = {got!r}, {stated}: {expected[env]!r}")
    return out


# --------------------------------------------------------------------------- rendering


def _value(value: Any) -> str:
    if value is _MISSING:
        return ""
    if isinstance(value, str):
        return f"`{value}`"
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000, sort_keys=False).strip()
    text = text.removesuffix("...").strip()  # yaml ends bare scalars with a document marker
    return f"`{text}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_tables(entries: list[Entry]) -> str:
    """The generated part of docs/FIDELITY.md: the full table, then base/demo differences."""
    lines = [
        "| Setting | Paper text | Released code (file @ commit) | conf/paper | Switch | Status | Why |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in entries:
        key = f"<br>`{e.key}`" if e.key else ""
        lines.append("| " + " | ".join(_cell(c) for c in (
            f"{e.topic}{key}", e.text, e.code, _value(e.paper) if e.key else str(e.paper), e.switch or "—",
            e.status, e.why,
        )) + " |")  # fmt: skip
    lines += [
        "",
        "### Where the embedded default (conf/base) and the demo (conf/demo) differ",
        "",
        "| Setting | conf/paper | conf/base | conf/demo |",
        "|---|---|---|---|",
    ]
    for e in entries:
        if e.key and (e.has("base") or e.has("demo")):
            base = _value(e.base) if e.has("base") else "as conf/paper"
            demo = _value(e.demo) if e.has("demo") else "as conf/base"
            lines.append("| " + " | ".join(_cell(c) for c in (f"{e.topic}<br>`{e.key}`", _value(e.paper), base, demo))
                         + " |")  # fmt: skip
    return "\n".join(lines) + "\n"


def generated_block(doc: str) -> str:
    """The text between the generation markers of docs/FIDELITY.md.

    Raises:
        ValueError: the markers are missing.
    """
    start, end = doc.find(BEGIN), doc.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{DOC_FILE} lacks the markers {BEGIN!r} ... {END!r}")
    return doc[start + len(BEGIN) : end].strip("\n") + "\n"


def write_doc(doc_file: Path = DOC_FILE, list_file: Path = LIST_FILE) -> None:
    """Replace the generated block of ``doc_file`` with the tables of ``list_file``."""
    doc = doc_file.read_text(encoding="utf-8")
    generated_block(doc)  # fail on missing markers before writing
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    doc_file.write_text(f"{head}{BEGIN}\n{render_tables(load_entries(list_file))}{END}{tail}", encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover - a maintenance command
    write_doc()
    print(f"wrote {DOC_FILE}", file=sys.stderr)
