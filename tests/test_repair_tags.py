"""The decoder's span mends (``repair_tags``): hand-tagged sentences, and validity on random tags."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marsad.model.decoding import repair_tags
from marsad.model.gazetteer import Gazetteer
from marsad.model.tags import iob2_errors
from marsad.model.text import tokenize

LABELS = ["O", "B-ACTOR", "I-ACTOR", "B-LOCATION", "I-LOCATION", "B-CASUALTY", "I-CASUALTY"]


def _repair(text: str, tags: list[str], gazetteer=None) -> list[str]:
    words = [t.text for t in tokenize(text)]
    assert len(words) == len(tags)
    ids = np.array([LABELS.index(t) for t in tags])
    return [LABELS[i] for i in repair_tags(ids, words, LABELS, gazetteer)]


def test_a_nisba_adjective_tagged_o_joins_the_actor():
    assert _repair("أعلنت الحكومة الإيرانية أمس", ["O", "B-ACTOR", "O", "O"]) == ["O", "B-ACTOR", "I-ACTOR", "O"]
    # with diacritics and tatweel the word is matched as normalised
    assert _repair("أعلنت الحكومة الإيرانيّـة أمس", ["O", "B-ACTOR", "O", "O"]) == ["O", "B-ACTOR", "I-ACTOR", "O"]


def test_a_nisba_adjective_that_began_its_own_actor_joins_the_first():
    tags = _repair("المتحدث باسم الخارجية الأميركية شون", ["O", "O", "B-ACTOR", "B-ACTOR", "O"])
    assert tags == ["O", "O", "B-ACTOR", "I-ACTOR", "O"]


def test_a_chain_of_adjectives_joins_and_other_words_do_not():
    tags = _repair("وزارة الدفاع السورية الروسية اليوم", ["B-ACTOR", "I-ACTOR", "O", "O", "O"])
    assert tags == ["B-ACTOR", "I-ACTOR", "I-ACTOR", "I-ACTOR", "O"]
    # not after a place, not an indefinite adjective, not a short word like الذي
    assert _repair("في لبنان الجنوبي", ["O", "B-LOCATION", "O"]) == ["O", "B-LOCATION", "O"]
    assert _repair("الحرس إيرانية", ["B-ACTOR", "O"]) == ["B-ACTOR", "O"]
    assert _repair("الجيش الذي", ["B-ACTOR", "O"]) == ["B-ACTOR", "O"]
    # an evaluative adjective stays outside, as the spec says (ميليشيا الحوثي الإرهابية -> ميليشيا الحوثي)
    assert _repair("ميليشيا الحوثي الإرهابية", ["B-ACTOR", "I-ACTOR", "O"]) == ["B-ACTOR", "I-ACTOR", "O"]
    assert _repair("حركة حماس النازية", ["B-ACTOR", "I-ACTOR", "O"]) == ["B-ACTOR", "I-ACTOR", "O"]


def test_adjacent_casualty_spans_join_unless_coordinated():
    tags = _repair("مقتل أكثر من 560 شخصا", ["O", "B-CASUALTY", "I-CASUALTY", "B-CASUALTY", "I-CASUALTY"])
    assert tags == ["O", "B-CASUALTY", "I-CASUALTY", "I-CASUALTY", "I-CASUALTY"]
    coordinated = ["O", "B-CASUALTY", "B-CASUALTY", "I-CASUALTY"]
    assert _repair("مقتل جندي وثلاثة مسلحين", coordinated) == coordinated


B, I, O = "B-ACTOR", "I-ACTOR", "O"
BL, IL, BC, IC = "B-LOCATION", "I-LOCATION", "B-CASUALTY", "I-CASUALTY"
# (text, tags, mended tags): the lone-head, head-before, continent, no-nisba and empty-span mends
CASES = {
    "a following ACTOR joins a lone head": ("باسم لمنظمة حماس أمس", [O, B, B, O], [O, B, I, O]),
    "a lone head is no place": ("قطاع النفط", [BL, O], [O, O]),
    "a lone direction with a proclitic": ("في وجنوب حمص", [O, BL, BL], [O, O, BL]),
    "a head that begins a longer place stays": ("جنوب حمص", [BL, IL], [BL, IL]),
    "across a quote mark": ("لحركة «الجهاد الإسلامي»", [B, O, B, I, O], [B, I, I, I, O]),
    "one O word, then the nisba mend": ("قالت وزارة الدفاع الإسرائيلية إن", [O, B, O, O, O], [O, B, I, I, O]),
    "an indefinite adjective, as the spec's مسلحين دروز": ("قوات إيرانية", [B, O], [B, I]),
    "an O name after a quote mark": ('لواء "عتتسيوني', [B, O, O], [B, I, I]),
    "وحدة is a head": ("وحدة يحال", [B, O], [B, I]),
    "خلايا is a head": ("خلايا داعش", [B, B], [B, I]),
    "not a function word": ("دخلت قوات إلى المدينة", [O, B, O, O], [O, B, O, O]),
    "not a number": ("قوات 17 ألف", [B, O, O], [B, O, O]),
    "not a place": ("مسلحي غزة", [B, BL], [B, BL]),
    "not after a head that has its name": ("حركة حماس الشرطة", [B, I, B], [B, I, B]),
    "a definite noun is no head": ("الجيش يقصف", [B, O], [B, O]),
    "an O head before an ACTOR joins it": ("قتل مقاتلي حماس", [O, O, B], [O, B, I]),
    "an O head before a longer ACTOR": ("جنود جيش الدفاع", [O, B, I], [B, I, I]),
    "قصف is no head": ("قصف الجيش", [O, B], [O, B]),
    "a sea takes its adjective": ("في الخليج العربي", [O, BL, O], [O, BL, IL]),
    "after a proclitic, inside a longer place": ("والمحيط الهندي", [BL, O], [BL, IL]),
    "not an indefinite word": ("البحر هائج", [BL, O], [BL, O]),
    "not after another place": ("غزة الجديدة", [BL, O], [BL, O]),
    "a direction before a continent": ("في بشرق أفريقيا", [O, O, BL], [O, BL, IL]),
    "غرب آسيا": ("غرب آسيا", [O, BL], [BL, IL]),
    "not before a country": ("في شمال سوريا", [O, O, BL], [O, O, BL]),
    # the data keeps a nisba outside حماس, إسرائيل, حزب الله and طهران (29 of 30)
    "no nisba after ب": ("القوات بالمدفعية", [B, O], [B, O]),
    "no nisba after لل": ("الجيش للصحفيين", [B, O], [B, O]),
    "no nisba after حماس": ("حركة حماس الفلسطينية", [B, I, O], [B, I, O]),
    "no nisba after إسرائيل": ("وإسرائيل الأمريكية", [B, B], [B, B]),
    "no nisba after حزب الله": ("حزب الله اللبناني", [B, I, O], [B, I, O]),
    "a nisba after another name": ("كوريا الشمالية", [B, O], [B, I]),
    "function words alone": ("ذهب الى بيروت و", [O, BL, BL, BC], [O, O, BL, O]),
    "an approximator alone": ("وأكثر من 20", [BC, IC, O], [O, O, O]),
    "a unit's number joins it": ("الكتيبة 202 في", [B, O, O], [B, I, O]),
    "not another ACTOR's number": ("الشرطة 19", [B, O], [B, O]),
    "a definite number joins a CASUALTY": ("لمقتل المراقبين الأربعة", [O, BC, O], [O, BC, IC]),
    "not after an ACTOR": ("الجنود الأربعة", [B, O], [B, O]),
    "a partitive with its noun stays": ("قتل أحد الجنود", [O, BC, IC], [O, BC, IC]),
}


@pytest.mark.parametrize("text, tags, expected", CASES.values(), ids=CASES.keys())
def test_head_continent_nisba_and_empty_span_mends(text, tags, expected):
    assert _repair(text, tags) == expected


PLACES = Gazetteer(["إسرائيل", "إيران", "روسيا", "بايدن", "ايدن", "حمص", "البحر الميت", "ساو باولو", "دير الزور"])  # Baydan, Aydın: towns
# (text, tags, mended tags) with a gazetteer: a one-word place ACTOR after في / إلى / شعب / ب is a place
PLACE_CASES = {
    "after في": ("الحرب في إسرائيل", [O, O, B], [O, O, BL]),
    "after إلى, spelt الى": ("وصل الى روسيا", [O, O, B], [O, O, BL]),
    "after شعب": ("شعب إسرائيل", [O, B], [O, BL]),
    "after على": ("هجوم على إسرائيل", [O, O, B], [O, O, BL]),
    "after دولة": ("دولة إسرائيل", [O, B], [O, BL]),
    "after a ب proclitic": ("اجتماع بإيران", [O, B], [O, BL]),
    "after ب, first word": ("بإيران", [B], [BL]),
    "a place after بين is a party": ("الحرب بين إسرائيل وحماس", [O, O, BL, B], [O, O, B, B]),
    "not a longer place after بين": ("بين حمص الجديدة", [O, BL, IL], [O, BL, IL]),
    "after وب": ("وبإيران", [B], [BL]),
    "the state acting stays an ACTOR": ("قصفت إسرائيل", [O, B], [O, B]),
    "not a name with ب of its own": ("قال بايدن", [O, B], [O, B]),
    "not a longer ACTOR": ("في إيران الرسمية", [O, B, I], [O, B, I]),
    "not a name off the list": ("في حماس", [O, B], [O, B]),
    "a name tagged O is left alone": ("في حمص", [O, O], [O, O]),
    "a place cut inside a longer name": ("قرب دير الزور", [O, BL, O], [O, BL, IL]),
    "two places inside one name": ("في ساو باولو", [O, BL, BL], [O, BL, IL]),
    "after a proclitic": ("وبدير الزور", [O, BL], [BL, IL]),
    "not a name tagged O": ("البحر الميت", [O, O], [O, O]),
    "not a name with an ACTOR in it": ("دير الزور", [BL, B], [BL, B]),
    "not inside a longer place": ("ريف دير الزور", [BL, IL, O], [BL, IL, O]),
    "a name tagged O after a generic head": ("مدينة حمص", [O, O], [O, BL]),
    "after a head with a proclitic": ("بمدينة حمص", [O, O], [O, BL]),
    "a longer name tagged O after في": ("في ساو باولو", [O, O, O], [O, BL, IL]),
    "not a longer name after من": ("من ساو باولو", [O, O, O], [O, O, O]),
    "not a name whose next word is tagged": ("مدينة حمص القديمة", [O, O, BL], [O, O, BL]),
}


@pytest.mark.parametrize("text, tags, expected", PLACE_CASES.values(), ids=PLACE_CASES.keys())
def test_a_place_actor_after_a_place_preposition_becomes_a_place(text, tags, expected):
    assert _repair(text, tags, PLACES) == expected
    assert _repair(text, tags) == tags  # no gazetteer, no mend


def test_a_label_set_without_the_labels_is_left_alone():
    labels = ["O", "B-PER", "I-PER"]
    tags = np.array([1, 0, 1])
    assert repair_tags(tags.copy(), ["الحكومة", "الإيرانية", "أحمد"], labels).tolist() == [1, 0, 1]


WORDS = ["الحكومة", "الإيرانية", "أكثر", "من", "560", "وثلاثة", "في", "حمص", "الأميركي", "قتلى", "لحركة", "«", "حماس", "شرق",
         "أفريقيا", "بإيران", "شعب"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(LABELS)), min_size=1, max_size=12))
def test_repaired_tags_stay_valid_iob2(pairs):
    words = [w for w, _ in pairs]
    tags = [t for _, t in pairs]
    # make the input valid IOB2 first: an I- after a different type or O becomes B-
    for k, t in enumerate(tags):
        if t.startswith("I-") and (k == 0 or tags[k - 1][2:] != t[2:]):
            tags[k] = "B-" + t[2:]
    out = [LABELS[i] for i in repair_tags(np.array([LABELS.index(t) for t in tags]), words, LABELS, PLACES)]
    assert not iob2_errors(out)
