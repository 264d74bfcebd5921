"""Task scorers: XQuAD (post-processing, the paper's 0/1 match, SQuAD EM/F1), X-CSQA letters, XNLI.

XQuAD answers are first post-processed (``postprocess_xquad``): strip a
repeated question at the start of the answer, cut at the first line break or
after 50 characters, whichever comes first, and end the answer at the first
closing quote of the forced prefix ``... the answer to the question is "``
(ASCII and typographic quotes). Then:

* the paper's score (``match_exact`` / ``match_contained``): the paper counts
  an item correct "if the answer string matches the ground truth after
  minimal postprocessing" (a 0/1 score per item). The released files do not
  contain the rule, so both readings are offered: the post-processed answer
  equals a gold answer (``exact_match``, the literal reading and the default),
  or a gold answer is contained in it (``gold_contained``). Strings are
  compared as they are (after the post-processing's ``strip``): no case or
  punctuation folding, which would no longer be minimal.
* SQuAD v1.1 EM and token F1 (``exact_match``, ``token_f1``), the maximum over
  the gold answers. English (``lang="en"``) is normalised exactly as the
  official SQuAD v1.1 evaluation script's ``normalize_answer`` (lower case,
  ASCII punctuation deleted -- ``711,988`` becomes ``711988``,
  ``multi-cultural`` ``multicultural`` --, articles ``a|an|the`` removed,
  whitespace collapsed) and tokenised on whitespace, as its ``f1_score``.
  Other languages extend the rule where the script cannot cope with them, as
  the MLQA evaluation script does: every Unicode punctuation character is
  deleted (SQuAD deletes ASCII only, so ``«»``, ``，`` or ``。`` would
  survive), NFKC folds full-width forms, and every character of a script
  written without spaces (CJK ideographs, kana, Hangul syllables, Thai...) is
  its own token while runs of other characters split on whitespace -- the
  mixed segmentation of the MLQA/CMRC scripts; without it a whole Chinese
  answer is one token and F1 degenerates to EM. Two answers match (EM) when
  their token lists are equal (for spaced scripts: SQuAD's EM on the
  normalised string).
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Literal

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


_ASCII_PUNCT = frozenset(string.punctuation)
MatchRule = Literal["exact_match", "gold_contained"]
MATCH_RULES: tuple[str, ...] = ("exact_match", "gold_contained")


def _is_punct(ch: str) -> bool:
    return ch in _ASCII_PUNCT or unicodedata.category(ch).startswith("P")


def squad_normalize(text: str) -> str:
    """The official SQuAD v1.1 ``normalize_answer``: lower, delete ASCII punctuation, drop a/an/the, fix whitespace."""
    text = "".join(ch for ch in str(text).lower() if ch not in _ASCII_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def normalize_answer(text: str, lang: str | None = None) -> str:
    """SQuAD normalisation: the official script's for ``en``, its multilingual extension otherwise (module doc)."""
    if lang == "en":
        return squad_normalize(text)
    text = unicodedata.normalize("NFKC", str(text)).lower()
    text = "".join(ch for ch in text if not _is_punct(ch))
    return " ".join(_ARTICLES.sub(" ", text).split())


def answer_tokens(text: str, lang: str | None = None) -> list[str]:
    """Normalised tokens: ``en`` whitespace words (SQuAD); else single characters for CJK/Thai scripts too."""
    if lang == "en":
        return squad_normalize(text).split()
    return _TOKEN.findall(normalize_answer(text, lang))


def exact_match(prediction: str, gold: str, lang: str | None = None) -> float:
    """SQuAD EM: 1.0 when the normalised token lists are equal, else 0.0."""
    return float(answer_tokens(prediction, lang) == answer_tokens(gold, lang))


def token_f1(prediction: str, gold: str, lang: str | None = None) -> float:
    """SQuAD token F1 on ``answer_tokens``, as the official ``f1_score``: 0.0 when no token is shared
    (also when a side is empty after normalisation)."""
    pred, ref = answer_tokens(prediction, lang), answer_tokens(gold, lang)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def max_over_golds(metric: Callable[..., float], prediction: str, golds: Iterable[str], *args) -> float:
    """SQuAD's ``metric_max_over_ground_truths`` (``args`` go to ``metric``, e.g. the language).

    Raises:
        ValueError: no gold answer (the item cannot be scored).
    """
    golds = list(golds)
    if not golds:
        raise ValueError("no gold answers")
    return max(metric(prediction, g, *args) for g in golds)


def paper_match(prediction: str, golds: Iterable[str], rule: str = "exact_match") -> float:
    """The paper's 0/1 XQuAD score of a post-processed answer (module doc).

    Args:
        prediction: the post-processed answer (``postprocess_xquad``).
        golds: the gold answer texts (compared stripped).
        rule: ``exact_match`` (the answer equals a gold answer) or
            ``gold_contained`` (a gold answer occurs in the answer).

    Raises:
        ValueError: an unknown rule, or no non-empty gold answer.
    """
    if rule not in MATCH_RULES:
        raise ValueError(f"unknown XQuAD match rule {rule!r}; expected one of {MATCH_RULES}")
    refs = [g.strip() for g in golds if str(g).strip()]
    if not refs:
        raise ValueError("no gold answers")
    pred = str(prediction).strip()
    return float(any(pred == g for g in refs) if rule == "exact_match" else any(g in pred for g in refs))


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


def score_xquad(
    output: str, golds: list[str], question: str | None = None, lang: str | None = None, rule: str = "exact_match"
) -> dict:
    """Post-process one XQuAD generation and score it.

    Args:
        output: the generation after the forced answer prefix.
        golds: the gold answer texts.
        question: the question (a repetition of it is stripped).
        lang: the data language (``en``: the official SQuAD normalisation).
        rule: the paper's match rule (``paper_match``).

    Returns:
        ``{"pred", "match", "em", "f1"}``: the paper's 0/1 match under
        ``rule``, SQuAD EM and F1 in [0, 1] (max over golds).
    """
    pred = postprocess_xquad(output, question)
    return {
        "pred": pred,
        "match": paper_match(pred, golds, rule),
        "em": max_over_golds(exact_match, pred, golds, lang),
        "f1": max_over_golds(token_f1, pred, golds, lang),
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
