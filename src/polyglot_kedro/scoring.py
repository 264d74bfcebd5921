"""Task scorers: XQuAD (post-processing, EM, token F1), X-CSQA letters, XNLI.

XQuAD follows the paper's post-processing, then SQuAD-style metrics:

* post-processing (``postprocess_xquad``): strip a repeated question at the
  start of the answer, cut at the first line break or after 50 characters,
  whichever comes first, and drop the closing quote of the forced prefix
  ``... the answer to the question is "`` (the answer ends at the first
  closing quote; ASCII and typographic quotes).
* normalisation (``normalize_answer``): SQuAD v1.1's ``normalize_answer``
  (lower case, punctuation removed, English articles ``a|an|the`` removed,
  whitespace collapsed), with two multilingual changes: punctuation is every
  Unicode punctuation character (SQuAD removes ASCII only, so ``«»``, ``，``
  or ``。`` would survive), and NFKC folding (full-width forms).
* tokens (``answer_tokens``): SQuAD splits on whitespace, which makes a whole
  Chinese answer one token, so F1 degenerates to EM. Here every character of a
  script written without spaces (CJK ideographs, kana, Hangul syllables and
  Thai...) is its own token, runs of other characters split on whitespace --
  the mixed segmentation of the MLQA/CMRC evaluation scripts. The same holds
  for EM: two answers match when their token lists are equal (for spaced
  scripts this is SQuAD's EM on the normalised string).
* EM and F1 against every gold answer, the maximum over golds (SQuAD).
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable

XQUAD_MAX_CHARS = 50
CLOSING_QUOTES = "\"”“»«„」』"
XCSQA_LETTERS = "ABCDE"

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
# Scripts written without spaces between words: one character = one token.
_NO_SPACE_SCRIPT = (
    r"\u2e80-\u2fdf\u3005-\u3007\u3021-\u3029\u3040-\u30ff\u3100-\u312f\u31a0-\u31ff"
    r"\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002fa1f"
    r"\u0e00-\u0e7f\u0e80-\u0eff\u1000-\u109f\u1780-\u17ff"
)
_TOKEN = re.compile(rf"[{_NO_SPACE_SCRIPT}]|[^\s{_NO_SPACE_SCRIPT}]+")


def _is_punct(ch: str) -> bool:
    return ch in string.punctuation or unicodedata.category(ch).startswith("P")


def normalize_answer(text: str) -> str:
    """SQuAD normalisation, extended to Unicode punctuation (module doc)."""
    text = unicodedata.normalize("NFKC", str(text)).lower()
    text = "".join(" " if _is_punct(ch) else ch for ch in text)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def answer_tokens(text: str) -> list[str]:
    """Normalised tokens: whitespace words, single characters for CJK/Thai scripts."""
    return _TOKEN.findall(normalize_answer(text))


def exact_match(prediction: str, gold: str) -> float:
    """1.0 when the normalised token lists are equal, else 0.0."""
    return float(answer_tokens(prediction) == answer_tokens(gold))


def token_f1(prediction: str, gold: str) -> float:
    """SQuAD token F1 on ``answer_tokens`` (0.0 when either side is empty, 1.0 when both are)."""
    pred, ref = answer_tokens(prediction), answer_tokens(gold)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def max_over_golds(metric, prediction: str, golds: Iterable[str]) -> float:
    """SQuAD's ``metric_max_over_ground_truths``.

    Raises:
        ValueError: no gold answer (the item cannot be scored).
    """
    golds = list(golds)
    if not golds:
        raise ValueError("no gold answers")
    return max(metric(prediction, g) for g in golds)


def postprocess_xquad(output: str, question: str | None = None) -> str:
    """The paper's XQuAD answer extraction from a generation.

    Args:
        output: the model's continuation after the forced prefix
            ``Based on the passage, the answer to the question is "``.
        question: the question, stripped when the model repeats it first.

    Returns:
        The answer string (may be empty).
    """
    text = str(output or "").lstrip()
    if question:
        q = question.strip()
        if q and text.startswith(q):
            text = text[len(q) :].lstrip()
    text = text.split("\n", 1)[0][:XQUAD_MAX_CHARS]
    cut = [i for i in (text.find(q) for q in CLOSING_QUOTES) if i != -1]
    if cut:
        text = text[: min(cut)]
    return text.strip()


def score_xquad(output: str, golds: list[str], question: str | None = None) -> dict:
    """Post-process one XQuAD generation and score it.

    Returns:
        ``{"pred", "em", "f1"}`` (EM and F1 in [0, 1], max over golds).
    """
    pred = postprocess_xquad(output, question)
    return {
        "pred": pred,
        "em": max_over_golds(exact_match, pred, golds),
        "f1": max_over_golds(token_f1, pred, golds),
    }


_LEADING_LETTER = re.compile(r"^[\s\"'“”„«»(\[]*([A-E])(?![A-Za-z])")
_ANY_LETTER = re.compile(r"(?<![A-Za-z])([A-E])(?![A-Za-z])")


def extract_xcsqa_letter(output: str) -> str | None:
    """The first option letter A-E in an X-CSQA answer.

    The answer is read after the forced opening quote: a letter at the start
    (``C"``, ``C: hospital``, ``(C)``) wins; otherwise the first standalone
    capital A-E (``The answer is C``). Letters inside words never count.

    Returns:
        The letter, or ``None`` when there is none (the item counts as wrong).
    """
    text = str(output or "")
    m = _LEADING_LETTER.match(text) or _ANY_LETTER.search(text)
    return m.group(1) if m else None


def xnli_correct(pred: object, gold: object) -> float:
    """1.0 when the predicted XNLI label equals the gold label, else 0.0.

    Labels are compared as trimmed lower-case strings, so ``0``/``"0"`` and
    ``"Entailment"``/``"entailment"`` agree.

    Raises:
        ValueError: the gold label is missing (the item cannot be scored).
    """
    if gold is None or (isinstance(gold, float) and gold != gold):
        raise ValueError("missing gold label")
    return float(str(pred).strip().lower() == str(gold).strip().lower())
