"""The training text's lexicon (``model/lexicon.py``): built by hand-checked counts, saved with the
model, and used by the decoder to drop one-word entities the training text rules out."""

import numpy as np
import pytest

from marsad.model.decoding import repair_tags
from marsad.model.lexicon import LEXICON_NAME, Lexicon
from marsad.model.text import normalize_word, tokenize


def _record(text: str, *spans: tuple[str, str]) -> dict:
    """A record of ``text`` whose entities are the first occurrence of each ``(string, label)``."""
    ents = []
    for s, label in spans:
        i = text.index(s)
        ents.append({"start": i, "end": i + len(s), "label": label, "text": s})
    return {"text": text, "entities": ents, "relations": []}


RECORDS = [
    _record("قصف الجيش مدينة حمص تحت السماء", ("الجيش", "ACTOR"), ("حمص", "LOCATION")),
    _record("وصل الجيش إلى صور ونشر صور القصف", ("الجيش", "ACTOR"), ("صور", "LOCATION")),
    _record("السماء صافية فوق حمص", ("حمص", "LOCATION")),
]


def test_entries_by_hand_count():
    lex = Lexicon.from_records(RECORDS)
    # hand count: (seen outside, seen inside an entity of two words or more, labels it was inside)
    plain = (True, False, frozenset())
    assert lex.entries == {
        "قصف": plain, "مدينة": plain, "تحت": plain, "السماء": plain, "وصل": plain, "إلى": plain,
        "ونشر": plain, "القصف": plain, "صافية": plain, "فوق": plain,
        "صور": (True, False, frozenset({"LOCATION"})),  # Tyre once, "pictures" once
        "الجيش": (False, False, frozenset({"ACTOR"})),
        "حمص": (False, False, frozenset({"LOCATION"})),
    }
    assert lex.rules_out("السماء", "LOCATION") and lex.rules_out("السماء", "ACTOR")
    assert not lex.rules_out("صور", "LOCATION") and lex.rules_out("صور", "ACTOR")
    assert not lex.rules_out("دمشق", "LOCATION") and not lex.rules_out("حمص", "ACTOR")  # never seen, never outside
    assert lex.always("حمص") == "LOCATION" and lex.always("الجيش") == "ACTOR"
    assert lex.always("صور") is None and lex.always("السماء") is None and lex.always("دمشق") is None


def test_a_word_inside_a_longer_entity_is_never_always_one():
    lex = Lexicon.from_records([_record("قصفت قوات النظام حمص", ("قوات النظام", "ACTOR"), ("حمص", "LOCATION")),
                                _record("انسحب النظام", ("النظام", "ACTOR"))])
    assert lex.entries["النظام"] == (False, True, frozenset({"ACTOR"})) and lex.always("النظام") is None
    assert lex.entries["قوات"] == (False, True, frozenset({"ACTOR"})) and lex.always("حمص") == "LOCATION"


def test_save_and_load(tmp_path):
    lex = Lexicon.from_records(RECORDS)
    lex.save(tmp_path)
    lines = (tmp_path / LEXICON_NAME).read_text(encoding="utf-8").splitlines()
    assert "صور\to\tLOCATION" in lines and "السماء\to\t" in lines and "حمص\t\tLOCATION" in lines
    assert Lexicon.load(tmp_path).entries == lex.entries


LABELS = ["O", "B-ACTOR", "I-ACTOR", "B-LOCATION", "I-LOCATION", "B-CASUALTY", "I-CASUALTY"]


def _repair(text: str, tags: list[str], lexicon) -> list[str]:
    words = [t.text for t in tokenize(text)]
    ids = np.array([LABELS.index(t) for t in tags])
    return [LABELS[i] for i in repair_tags(ids, words, LABELS, None, lexicon)]


def test_the_decoder_drops_a_one_word_entity_the_lexicon_rules_out():
    lex = Lexicon.from_records(RECORDS)
    # السماء as a place: seen outside, never a place -> dropped; صور as a place was seen -> kept
    assert _repair("قصف على السماء وصور", ["O", "O", "B-LOCATION", "B-LOCATION"], lex) == ["O", "O", "O", "B-LOCATION"]
    # صور as an ACTOR was never seen -> dropped; an unseen word is left to the model
    assert _repair("هاجمت صور دمشق", ["O", "B-ACTOR", "B-ACTOR"], lex) == ["O", "O", "B-ACTOR"]
    # only one-word spans: a longer one is kept whatever its words, and so is every tag without a lexicon
    assert _repair("تحت السماء", ["B-LOCATION", "I-LOCATION"], lex) == ["B-LOCATION", "I-LOCATION"]
    assert _repair("قصف على السماء", ["O", "O", "B-LOCATION"], None) == ["O", "O", "B-LOCATION"]
    # words are matched as normalised: diacritics and tatweel do not hide one
    assert _repair("السمـاءُ", ["B-LOCATION"], lex) == ["O"]


def test_the_decoder_tags_a_word_the_training_text_always_has_as_one_entity():
    lex = Lexicon.from_records(RECORDS)
    # حمص and الجيش were only ever whole one-word entities: tagged where the model left them outside
    assert _repair("دخل الجيش حمص أمس", ["O", "O", "O", "O"], lex) == ["O", "B-ACTOR", "B-LOCATION", "O"]
    # beside a span it stays a span of its own (valid IOB2); a word tagged already is not touched
    assert _repair("قصف حمص الجيش", ["O", "B-LOCATION", "O"], lex) == ["O", "B-LOCATION", "B-ACTOR"]
    assert _repair("ريف حمص", ["B-LOCATION", "I-LOCATION"], lex) == ["B-LOCATION", "I-LOCATION"]
    # a label the model lacks is never tagged
    labels = ["O", "B-ACTOR", "I-ACTOR"]
    words = [t.text for t in tokenize("قصف حمص")]
    assert repair_tags(np.array([0, 0]), words, labels, None, lex).tolist() == [0, 0]


def test_a_model_trained_with_a_lexicon_carries_it(tmp_path):
    from conftest import overfit_records, tiny_config
    from marsad.model import Extractor
    from marsad.model.modeling import ModelLoadError
    from marsad.training.trainer import train

    records = overfit_records()[:3]
    (tmp_path / "run").mkdir()
    config = tiny_config(tmp_path / "run", records, train__epochs=2, model__lexicon=True)
    train(config, tmp_path / "out", log=lambda *a, **k: None)
    saved = Lexicon.load(tmp_path / "out")
    assert saved.entries == Lexicon.from_records(records).entries and len(saved) > 10
    ex = Extractor.from_pretrained(tmp_path / "out", device="cpu")
    assert ex.settings.lexicon and ex.decoder.lexicon.entries == saved.entries
    # whatever the two-epoch model tags, no one-word entity is a word its training text ruled out,
    # and every word the training text always has as one entity is one
    for rec in ex.extract([r["text"] for r in records]):
        for e in rec["entities"]:
            if len(tokenize(e["text"])) == 1:
                assert not saved.rules_out(normalize_word(e["text"]), e["label"]), e
        spans = {(e["start"], e["end"]): e["label"] for e in rec["entities"]}
        for t in tokenize(rec["text"]):
            label = saved.always(normalize_word(t.text))
            if label is not None and not any(s < t.end and t.start < e for s, e in spans):
                raise AssertionError(f"{t.text} is always a {label} in the training text, and left outside")
    (tmp_path / "out" / LEXICON_NAME).unlink()
    with pytest.raises(ModelLoadError, match="lexicon.txt is missing"):
        Extractor.from_pretrained(tmp_path / "out", device="cpu")
