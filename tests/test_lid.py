"""fastText language identification (polyglot_kedro.lid)."""

from __future__ import annotations

import pytest

from polyglot_kedro.lid import LanguageIdentifier, default_model_path, normalize_label, one_line

CLEAR = {
    "en": "The weather is lovely today, so we are going for a long walk in the park.",
    "de": "Das Wetter ist heute wunderschön, deshalb machen wir einen langen Spaziergang im Park.",
    "fr": "Il fait très beau aujourd'hui, alors nous allons faire une longue promenade dans le parc.",
    "es": "Hoy hace muy buen tiempo, así que vamos a dar un largo paseo por el parque.",
    "ru": "Сегодня прекрасная погода, поэтому мы пойдём на долгую прогулку в парк.",
    "zh": "今天天气很好，所以我们要去公园散步很长时间。",
    "it": "Oggi il tempo è bellissimo, quindi faremo una lunga passeggiata nel parco.",
    "pt": "Hoje o tempo está ótimo, então vamos fazer um longo passeio no parque.",
    "sv": "Vädret är underbart i dag, så vi ska ta en lång promenad i parken.",
    "bg": "Времето днес е прекрасно, затова ще направим дълга разходка в парка.",
    "el": "Ο καιρός είναι υπέροχος σήμερα, γι' αυτό θα κάνουμε μια μεγάλη βόλτα στο πάρκο.",
    "hi": "आज मौसम बहुत सुहाना है, इसलिए हम पार्क में लंबी सैर करने जा रहे हैं।",
    "ja": "今日はとても良い天気なので、公園を長く散歩するつもりです。",
    "pl": "Dzisiaj jest piękna pogoda, więc idziemy na długi spacer po parku.",
}


@pytest.fixture(scope="module")
def lid() -> LanguageIdentifier:
    return LanguageIdentifier()


@pytest.mark.parametrize("lang", sorted(CLEAR))
def test_clear_cases(lid, lang):
    result = lid.predict(CLEAR[lang])
    assert result.lang == lang
    assert result.label == f"__label__{lang}"
    assert result.confidence >= 0.8


def test_topk_probabilities_are_real_for_single_strings(lid):
    # fasttext-wheel under NumPy 2 gives every rank the top-1 probability.
    for text in ("Bon dia, com estàs? Avui fa sol.", CLEAR["de"], "ok"):
        top = lid.predict_topk(text, k=5)
        assert len(top) == 5
        probs = [r.confidence for r in top]
        assert sum(probs) <= 1.0 + 1e-4
        assert probs == sorted(probs, reverse=True)
        assert probs[0] != probs[1]
        assert len({r.label for r in top}) == 5
        assert top[0] == lid.predict(text)


def test_newlines_are_flattened(lid):
    text = CLEAR["de"].replace(" ", "\n", 3)
    assert one_line(text) == CLEAR["de"]
    assert lid.predict(text) == lid.predict(CLEAR["de"])


def test_predict_many(lid):
    frame = lid.predict_many([CLEAR["en"], CLEAR["ru"], "a\nb"])
    assert list(frame.columns) == ["lang", "lid_label", "lid_confidence"]
    assert frame["lang"].tolist()[:2] == ["en", "ru"]
    assert frame["lid_confidence"].between(0, 1).all()
    assert lid.predict_many([]).empty


def test_model_is_cached_per_object(lid):
    assert lid.model is lid.model
    assert LanguageIdentifier().model is not lid.model
    assert lid.model_path == default_model_path()


def test_missing_model_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.bin"):
        LanguageIdentifier(str(tmp_path / "nope.bin")).predict("hello")
    with pytest.raises(ValueError, match="k must be >= 1"):
        LanguageIdentifier().predict_topk("hello", k=0)


@pytest.mark.parametrize(
    ("label", "code"),
    [
        ("__label__de", "de"), ("__label__deu_Latn", "de"), ("cmn_Hans", "zh"), ("zho_Hans", "zh"),
        ("__label__nob_Latn", "no"), ("nno_Latn", "no"), ("__label__nb", "no"), ("__label__nn", "no"),
        ("ell_Grek", "el"), ("isl_Latn", "is"), ("bul_Cyrl", "bg"), ("hin_Deva", "hi"), ("cat_Latn", "ca"),
        ("swe_Latn", "sv"), ("spa_Latn", "es"), ("rus_Cyrl", "ru"), ("fra_Latn", "fr"), ("eng_Latn", "en"),
        ("ita_Latn", "it"), ("por_Latn", "pt"), ("nld_Latn", "nl"), ("pol_Latn", "pl"),
        ("__label__ast_Latn", "ast"), ("__label__ceb", "ceb"),
    ],
)
def test_normalize_label(label, code):
    assert normalize_label(label) == code


def test_max_chars_classifies_the_prefix(lid):
    text = " ".join([CLEAR["de"], *[CLEAR["en"]] * 4])
    prefix = LanguageIdentifier(max_chars=len(CLEAR["de"]))
    assert prefix.predict(text) == lid.predict(CLEAR["de"])
    assert lid.predict(text).lang == "en"
    with pytest.raises(ValueError, match="max_chars"):
        LanguageIdentifier(max_chars=0)
