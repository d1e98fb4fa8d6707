"""Place-name gazetteer features."""

from conftest import SHARED
from marsad.model.gazetteer import Gazetteer
from marsad.model.text import tokenize


def words(text):
    return [t.text for t in tokenize(text)]


def test_flags_with_clitics_and_multiword_names():
    g = Gazetteer(["حلب", "دير الزور", "الرقة", "أم روابة"])
    w = words("قصف بحلب ودير الزور وللرقة وام روابة وحمص")
    assert g.flags(w) == [0, 1, 1, 1, 1, 1, 1, 0]


def test_matches_are_the_spans_of_the_flags():
    g = Gazetteer(["حلب", "دير الزور", "الرقة"])
    w = words("قصف بحلب ودير الزور الرقة وحمص")
    assert g.matches(w) == [(1, 2), (2, 4), (4, 5)]  # adjacent names stay apart
    assert g.flags(w) == [0, 1, 1, 1, 1, 0]


def test_save_and_load(tmp_path):
    g = Gazetteer(["حلب", "دير الزور"])
    g.save(tmp_path)
    assert Gazetteer.load(tmp_path).names == g.names


def test_from_world_cities_csv():
    path = SHARED / "data" / "world_cities_ar" / "world-cities.csv"
    if not path.exists():
        import pytest

        pytest.skip(f"{path} is not there (../shared beside the repository)")
    g = Gazetteer.from_csv(path)
    assert len(g) > 5000
    assert g.flags(words("في كابل والولايات المتحدة")) == [0, 1, 1, 1]


def test_model_trained_with_a_gazetteer_carries_it(tmp_path):
    import pytest

    from conftest import overfit_records, tiny_config
    from marsad.model import Extractor
    from marsad.model.modeling import ModelLoadError
    from marsad.training.trainer import train

    csv = tmp_path / "cities.csv"
    csv.write_text("CountryNameAr,CountryNameEn,CityNameAr,CityNameEn,Population\nسوريا,Syria,حمص,Homs,1\nسوريا,Syria,مدينة تلبيسة,Talbiseh,1\n", encoding="utf-8")
    (tmp_path / "run").mkdir()
    config = tiny_config(tmp_path / "run", overfit_records()[:3], train__epochs=2, model__gazetteer=str(csv))
    train(config, tmp_path / "out", log=lambda *a, **k: None)
    assert (tmp_path / "out" / "gazetteer.txt").read_text(encoding="utf-8").split("\n")[:3] == ["تلبيسة", "حمص", "سوريا"]
    ex = Extractor.from_pretrained(tmp_path / "out", device="cpu")
    assert ex.gazetteer is not None and len(ex.gazetteer) == 3
    text = "قصف على حمص وتلبيسة"
    assert ex.gazetteer.flags(words(text)) == [0, 0, 1, 1]
    [with_flags] = ex.extract(text)
    assert with_flags["text"] == text
    assert all(text[e["start"]:e["end"]] == e["text"] for e in with_flags["entities"])
    (tmp_path / "out" / "gazetteer.txt").unlink()
    with pytest.raises(ModelLoadError, match="gazetteer.txt is missing"):
        Extractor.from_pretrained(tmp_path / "out", device="cpu")



def test_common_words_are_not_folded_into_place_names():
    from marsad.model.gazetteer import Gazetteer

    gaz = Gazetteer(["رييس", "إدلب"])  # a city of the world-cities list, and one with a hamza
    assert gaz.flags(["حذر", "رئيس", "الحكومة", "في", "ادلب"]) == [0, 0, 0, 0, 1]



def test_longest_name_wins_and_the_word_cache_can_be_cleared():
    from marsad.model.gazetteer import Gazetteer

    gaz = Gazetteer(["دير", "دير الزور", "دير الزور الجديدة", "حلب"])
    words = ["قصف", "بدير", "الزور", "الجديدة", "ودير", "البلح", "وحلب"]
    assert gaz.flags(words) == [0, 1, 1, 1, 1, 0, 1]
    assert gaz._starts  # the words' name-starting forms are remembered...
    gaz.clear_cache()
    assert not gaz._starts and gaz.flags(words) == [0, 1, 1, 1, 1, 0, 1]  # ...and relearnt
