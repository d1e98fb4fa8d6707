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


def test_words_and_names_by_hand_count():
    lex = Lexicon.from_records(RECORDS)
    # words: those seen outside entities, with the labels they were ever inside
    plain = frozenset()
    assert lex.words == {
        "قصف": plain, "مدينة": plain, "تحت": plain, "السماء": plain, "وصل": plain, "إلى": plain,
        "ونشر": plain, "القصف": plain, "صافية": plain, "فوق": plain,
        "صور": frozenset({"LOCATION"}),  # Tyre once, "pictures" once
    }
    assert lex.rules_out("السماء", "LOCATION") and lex.rules_out("السماء", "ACTOR")
    assert not lex.rules_out("صور", "LOCATION") and lex.rules_out("صور", "ACTOR")
    assert not lex.rules_out("دمشق", "LOCATION") and not lex.rules_out("حمص", "ACTOR")  # never seen, never outside
    # names: entity strings whose every occurrence is that whole entity (not صور: once outside)
    assert lex.names == {("الجيش",): "ACTOR", ("حمص",): "LOCATION"}


def test_a_name_is_kept_only_if_every_occurrence_is_that_whole_entity():
    lex = Lexicon.from_records([
        _record("قصفت قوات النظام حي صور باهر", ("قوات النظام", "ACTOR"), ("صور باهر", "LOCATION")),
        _record("انسحب النظام من صور باهر", ("النظام", "ACTOR"), ("صور باهر", "LOCATION")),
        _record("دخلت قوات الأمن", ("قوات الأمن", "ACTOR")),
        _record("اجتماع قوات الأمن", ),
    ])
    # النظام: once whole, once inside a longer entity; قوات الأمن: once outside; صور باهر: whole twice
    assert lex.names == {("قوات", "النظام"): "ACTOR", ("صور", "باهر"): "LOCATION"}
    assert lex.matches(["في", "صور", "باهر", "و", "قوات", "النظام"]) == [(1, 3, "LOCATION"), (4, 6, "ACTOR")]
    assert lex.matches(["صور"]) == []  # a name's first word alone, at the end, is no match


def test_save_load_and_copy(tmp_path):
    import copy

    lex = Lexicon.from_records(RECORDS)
    lex.save(tmp_path)
    loaded = Lexicon.load(tmp_path)
    assert loaded.words == lex.words and loaded.names == lex.names
    assert copy.deepcopy({"lexicon": lex})["lexicon"] is lex  # read-only: a copied model shares it


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


def test_the_decoder_makes_each_name_one_whole_entity():
    lex = Lexicon.from_records(RECORDS + [_record("قصف حي صور باهر", ("صور باهر", "LOCATION"))])
    # names left outside become entities (one word or more)
    assert _repair("دخل الجيش حمص أمس", ["O", "O", "O", "O"], lex) == ["O", "B-ACTOR", "B-LOCATION", "O"]
    assert _repair("في صور باهر", ["O", "O", "O"], lex) == ["O", "B-LOCATION", "I-LOCATION"]
    # a name cut by the tagger gets all of it; beside a span it stays a span of its own
    assert _repair("في صور باهر", ["O", "O", "B-LOCATION"], lex) == ["O", "B-LOCATION", "I-LOCATION"]
    assert _repair("قصف حمص الجيش", ["O", "B-LOCATION", "O"], lex) == ["O", "B-LOCATION", "B-ACTOR"]
    # not where the tagger gave it another label or a span crosses its edges
    assert _repair("في صور باهر", ["O", "O", "B-ACTOR"], lex) == ["O", "O", "B-ACTOR"]
    # (صور as an ACTOR is ruled out first: the training text has it outside and never an ACTOR)
    assert _repair("في صور باهر", ["O", "B-ACTOR", "O"], lex) == ["O", "B-LOCATION", "I-LOCATION"]
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
    built = Lexicon.from_records(records)
    assert (saved.words, saved.names) == (built.words, built.names) and len(saved) > 10 and saved.names
    ex = Extractor.from_pretrained(tmp_path / "out", device="cpu")
    assert ex.settings.lexicon and ex.decoder.lexicon.names == saved.names
    # whatever the two-epoch model tags, no one-word entity is a word its training text ruled out,
    # and every name of the training text that no other entity overlaps is one whole entity
    for rec in ex.extract([r["text"] for r in records]):
        for e in rec["entities"]:
            if len(tokenize(e["text"])) == 1:
                assert not saved.rules_out(normalize_word(e["text"]), e["label"]), e
        tokens = tokenize(rec["text"])
        spans = {(e["start"], e["end"], e["label"]) for e in rec["entities"]}
        for i, j, label in saved.matches([normalize_word(t.text) for t in tokens]):
            s, e = tokens[i].start, tokens[j - 1].end
            if not any(a < e and s < b and lab != label or a < s < b or a < e < b for a, b, lab in spans):
                assert (s, e, label) in spans, (rec["text"][s:e], label)
    for bad in ("{not json", '{"words": {"x": 1}, "names": []}', "[]", '{"words": {}}'):
        (tmp_path / "out" / LEXICON_NAME).write_text(bad, encoding="utf-8")
        with pytest.raises(ModelLoadError, match="lexicon.json is corrupted"):
            Extractor.from_pretrained(tmp_path / "out", device="cpu")
    (tmp_path / "out" / LEXICON_NAME).unlink()
    with pytest.raises(ModelLoadError, match="lexicon.json is missing"):
        Extractor.from_pretrained(tmp_path / "out", device="cpu")
