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


# --------------------------------------------------------------------------- models by name

SHA = "0123456789abcdef0123456789abcdef01234567"


class _FakeOpenLID:
    """Stands in for an OpenLID / GlotLID fastText model: their label style."""

    LABELS = {"繁體": "__label__zho_Hant", "简体": "__label__zho_Hans", "Hallo": "__label__deu_Latn",
              "namaste": "__label__hin_Latn", "Bokmål": "__label__nob_Latn", "안녕": "__label__kor_Hang"}

    def predict(self, line, k=1):
        assert "\n" not in line and isinstance(line, str)
        label = next((lab for key, lab in self.LABELS.items() if key in line), "__label__eng_Latn")
        return (label,), [0.93]


@pytest.fixture
def fake_hub(monkeypatch):
    """``hf_hub_download`` returning the bundled lid.176 copy, recording each call."""
    import polyglot_kedro.lid as lid_module

    calls = []

    def download(**kwargs):
        calls.append(kwargs)
        return default_model_path()

    monkeypatch.setattr(lid_module, "hf_hub_download", download)
    return calls


@pytest.mark.parametrize("repo_id", ["laurievb/OpenLID", "laurievb/OpenLID-v2", "cis-lmu/glotlid"])
def test_hub_model_by_id_is_fetched_once_at_the_pinned_revision(fake_hub, repo_id):
    lid = LanguageIdentifier(repo_id, revision=SHA)
    assert fake_hub == [], "building the object fetches nothing"
    assert lid.predict(CLEAR["de"]).lang == "de"
    lid.predict(CLEAR["fr"])
    assert fake_hub == [{"repo_id": repo_id, "filename": "model.bin", "revision": SHA, "cache_dir": None}]
    assert lid.model_path == default_model_path()


def test_hub_model_needs_a_revision_and_a_known_file(fake_hub, tmp_path):
    with pytest.raises(ValueError, match="pin 'revision'"):
        LanguageIdentifier("laurievb/OpenLID")
    with pytest.raises(ValueError, match="set 'filename'.*cis-lmu/glotlid"):
        LanguageIdentifier("someone/other-lid", revision=SHA)
    lid = LanguageIdentifier("someone/other-lid", revision=SHA, filename="lid.ftz", cache_dir=str(tmp_path))
    lid.predict("hello there")
    assert fake_hub[-1] == {"repo_id": "someone/other-lid", "filename": "lid.ftz", "revision": SHA,
                            "cache_dir": str(tmp_path)}
    with pytest.raises(ValueError, match="local path: 'revision' applies to Hub ids only"):
        LanguageIdentifier(default_model_path(), revision=SHA)
    assert fake_hub[-1]["filename"] == "lid.ftz"  # the local path fetched nothing


def test_hub_model_read_from_the_hf_cache_offline(tmp_path, monkeypatch):
    # The real hf_hub_download: a file cached at a pinned commit is found
    # without the network (HF_HUB_OFFLINE=1 in the suite).
    import shutil

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snapshot = tmp_path / "models--laurievb--OpenLID" / "snapshots" / SHA
    snapshot.mkdir(parents=True)
    shutil.copy(default_model_path(), snapshot / "model.bin")
    lid = LanguageIdentifier.from_config({"model_path": "laurievb/OpenLID", "revision": SHA, "cache_dir": str(tmp_path)})
    assert lid.predict(CLEAR["sv"]).lang == "sv"
    assert lid.model_path == str(snapshot / "model.bin")
    # Not cached (another commit) and offline: a clear error, not a hang.
    missing = LanguageIdentifier("laurievb/OpenLID", revision="f" * 40, cache_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="not in the Hugging Face cache"):
        missing.predict("hello")


def test_unpinned_revision_warns_with_the_resolved_commit(monkeypatch, tmp_path, caplog):
    import shutil

    import polyglot_kedro.lid as lid_module

    snapshot = tmp_path / "snapshots" / SHA
    snapshot.mkdir(parents=True)
    shutil.copy(default_model_path(), snapshot / "model.bin")
    monkeypatch.setattr(lid_module, "hf_hub_download", lambda **kw: str(snapshot / "model.bin"))
    with caplog.at_level("WARNING", logger="polyglot_kedro.lid"):
        LanguageIdentifier("cis-lmu/glotlid", revision="main").predict("hello")
    assert f"resolved to {SHA}" in caplog.text


@pytest.mark.parametrize(
    ("text", "iso639_1", "full_label"),
    [
        ("繁體中文的回答", "zh-Hant", "zho_Hant"), ("简体中文", "zh", "zho_Hans"), ("Hallo Welt", "de", "deu_Latn"),
        ("namaste dosto", "hi-Latn", "hin_Latn"), ("Bokmål tekst", "no", "nob_Latn"), ("안녕하세요", "ko", "kor_Hang"),
        ("plain English", "en", "eng_Latn"),
    ],
)
def test_openlid_labels_map_to_our_codes(monkeypatch, fake_hub, text, iso639_1, full_label):
    import polyglot_kedro.lid as lid_module

    monkeypatch.setattr(lid_module.fasttext, "load_model", lambda path: _FakeOpenLID())
    by_code = LanguageIdentifier("laurievb/OpenLID", revision=SHA)
    by_label = LanguageIdentifier.from_config({"model_path": "laurievb/OpenLID", "revision": SHA, "label_mode": "full_label"})
    assert by_code.predict(text) == (iso639_1, f"__label__{full_label}", 0.93)
    assert by_label.predict(text).lang == full_label
    assert by_label.predict_many([text])["lid_label"].tolist() == [f"__label__{full_label}"]


@pytest.mark.parametrize(
    ("label", "code"),
    [
        ("zho_Hant", "zh-Hant"), ("yue_Hant", "zh-Hant"), ("cmn_Hani", "zh"), ("zho_Hani", "zh"), ("cmn_Hans", "zh"),
        ("hin_Latn", "hi-Latn"), ("srp_Latn", "sr-Latn"), ("srp_Cyrl", "sr"), ("ell_Latn", "el-Latn"),
        ("kor_Hang", "ko"), ("jpn_Jpan", "ja"), ("arb_Arab", "ar"), ("swh_Latn", "sw"), ("ekk_Latn", "et"),
        ("lvs_Latn", "lv"), ("pes_Arab", "fa"), ("zsm_Latn", "ms"), ("als_Latn", "sq"), ("azj_Latn", "az"),
        ("und_Latn", "und"), ("__label__zh", "zh"), ("__label__iw", "he"), ("__label__yue", "zh"),
    ],
)
def test_normalize_label_keeps_the_script_where_it_matters(label, code):
    assert normalize_label(label) == code


def test_full_label_mode_and_bad_settings():
    assert normalize_label("__label__deu_Latn", "full_label") == "deu_Latn"
    assert normalize_label("__label__de", "full_label") == "de"
    with pytest.raises(ValueError, match="label mode must be one of"):
        normalize_label("__label__de", "iso639_3")
    with pytest.raises(ValueError, match="label_mode"):
        LanguageIdentifier(label_mode="iso")
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="model"):
        LanguageIdentifier.from_config({"model": "x.bin"})  # the key is model_path, as in the YAML
    with pytest.raises(FileNotFoundError, match="no/such/lid.bin"):
        LanguageIdentifier("no/such/lid.bin").predict("hi")
