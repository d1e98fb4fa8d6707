"""Model features: ``featurize`` and ``collate`` against hand-computed numbers, and proof that
training and inference build the same features (``marsad.model.encoding`` for both)."""

from __future__ import annotations

import copy

import pytest
import torch

from conftest import overfit_records
from marsad.model import Extractor
from marsad.model.configuration import MarsadSettings
from marsad.model.encoding import MAX_PAIR_DISTANCE, Window, candidate_pairs, pairs_by_window
from marsad.training.data import collate, featurize

# a WordPiece vocabulary small enough to encode by hand: "مدنيين" is two pieces, مدني + ##ين
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]",
         "قتل", "ثلاثة", "مدني", "##ين", "في", "قصف", "على", "حلب", ".", "الجيش", "سيطر"]  # ids 4-14
PAD, CLS, SEP = 0, 2, 3
# bio_labels: O, B-ACTOR, I-ACTOR, B-LOCATION, I-LOCATION, B-CASUALTY, I-CASUALTY
O, B_ACT, B_LOC, B_CAS, I_CAS = 0, 1, 3, 5, 6
ACTOR, LOCATION, CASUALTY = 0, 1, 2  # entity type indices
NONE, CONTROLS, CASUALTY_IN = 0, 1, 4  # relation label indices
X = -100  # not a labelled position

# words: قتل ثلاثة مدنيين في قصف على حلب .
# (CASUALTY "ثلاثة مدنيين" = words 1-2, LOCATION "حلب" = word 6)
KILLED = {"text": "قتل ثلاثة مدنيين في قصف على حلب.", "entities": [
    {"start": 4, "end": 16, "label": "CASUALTY"}, {"start": 28, "end": 31, "label": "LOCATION"}],
    "relations": [{"head": 0, "tail": 1, "label": "CASUALTY_IN"}]}
# words: سيطر الجيش على حلب .   (ACTOR word 1, LOCATION word 3; no relation annotated)
CONTROL = {"text": "سيطر الجيش على حلب.", "entities": [
    {"start": 5, "end": 10, "label": "ACTOR"}, {"start": 15, "end": 18, "label": "LOCATION"}], "relations": []}


@pytest.fixture(scope="module")
def hand_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece({w: i for i, w in enumerate(VOCAB)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
                                   pad_token="[PAD]")


def test_featurize_by_hand(hand_tokenizer):
    got = featurize([KILLED, CONTROL], hand_tokenizer, MarsadSettings())
    assert got["input_ids"] == [[CLS, 4, 5, 6, 7, 8, 9, 10, 11, 12, SEP], [CLS, 14, 13, 10, 11, 12, SEP]]
    assert got["word_index"] == [[1, 2, 3, 5, 6, 7, 8, 9], [1, 2, 3, 4, 5]]
    assert got["token_type_ids"] == [[0] * 11, [0] * 7]
    assert got["labels"] == [[X, O, B_CAS, I_CAS, X, O, O, O, B_LOC, O, X],  # ##ين is not labelled
                             [X, O, B_ACT, O, B_LOC, O, X]]
    # (head start, head end, tail start, tail end, head type, tail type) in words; LOCATION ->
    # CASUALTY and LOCATION -> ACTOR are no relation's types, so they are not candidates
    assert got["pairs"] == [[[1, 3, 6, 7, CASUALTY, LOCATION]], [[1, 2, 3, 4, ACTOR, LOCATION]]]
    assert got["pair_labels"] == [[CASUALTY_IN], [NONE]]


def test_featurize_windows_a_long_sentence(hand_tokenizer):
    """max_length 8 leaves 6 sub-words a window: words 0-4 (6 pieces), then words 3-7 (stride 2);
    the CASUALTY-LOCATION pair spans words 1-6, which no window holds, so it is left out."""
    got = featurize([KILLED], hand_tokenizer, MarsadSettings(max_length=8, stride=2))
    assert got["input_ids"] == [[CLS, 4, 5, 6, 7, 8, 9, SEP], [CLS, 8, 9, 10, 11, 12, SEP]]
    assert got["word_index"] == [[1, 2, 3, 5, 6], [1, 2, 3, 4, 5]]
    assert got["labels"] == [[X, O, B_CAS, I_CAS, X, O, O, X], [X, O, O, O, B_LOC, O, X]]
    assert got["pairs"] == [[], []] and got["pair_labels"] == [[], []]


def test_featurize_caps_pair_distance(hand_tokenizer):
    """An ACTOR and two LOCATIONs 120 and 150 words after it: only the first is a candidate."""
    words = ["الجيش"] + ["في"] * 119 + ["حلب"] + ["في"] * 29 + ["حلب", "."]
    text = " ".join(words)
    starts = [sum(len(w) + 1 for w in words[:i]) for i in range(len(words))]
    ents = [{"start": starts[i], "end": starts[i] + len(words[i]), "label": label}
            for i, label in [(0, "ACTOR"), (120, "LOCATION"), (150, "LOCATION")]]
    rels = [{"head": 0, "tail": 1, "label": "CONTROLS"}, {"head": 0, "tail": 2, "label": "CONTROLS"}]
    got = featurize([{"text": text, "entities": ents, "relations": rels}], hand_tokenizer, MarsadSettings(max_length=512))
    assert MAX_PAIR_DISTANCE == 120
    assert got["pairs"] == [[[0, 1, 120, 121, ACTOR, LOCATION]]] and got["pair_labels"] == [[CONTROLS]]


def test_candidate_pairs_and_their_windows_by_hand():
    ents = [(1, 2, ACTOR), (3, 4, LOCATION), (6, 7, LOCATION), (6, 8, CASUALTY)]
    allowed = {(ACTOR, LOCATION), (CASUALTY, LOCATION), (CASUALTY, ACTOR)}
    assert candidate_pairs(ents, allowed) == [(0, 1), (0, 2), (3, 0), (3, 1), (3, 2)]
    assert candidate_pairs(ents, allowed, max_distance=4) == [(0, 1), (3, 1), (3, 2)]
    windows = [Window(0, 0, 5, [], []), Window(0, 3, 8, [], [])]
    # (0,1) spans words 1-3: window 0; (3,1) and (3,2): window 1; (0,2) and (3,0) fit none
    assert pairs_by_window(windows, ents, candidate_pairs(ents, allowed)) == [[(0, 1)], [(3, 1), (3, 2)]]


def test_collate_by_hand(hand_tokenizer):
    rows = featurize([CONTROL, KILLED], hand_tokenizer, MarsadSettings())
    batch = collate([{k: v[i] for k, v in rows.items()} for i in range(2)], pad_id=PAD)
    assert batch["input_ids"].tolist() == [[CLS, 14, 13, 10, 11, 12, SEP, PAD, PAD, PAD, PAD],
                                           [CLS, 4, 5, 6, 7, 8, 9, 10, 11, 12, SEP]]
    assert batch["attention_mask"].tolist() == [[1] * 7 + [0] * 4, [1] * 11]
    assert batch["token_type_ids"].tolist() == [[0] * 11, [0] * 11]
    assert batch["labels"].tolist() == [[X, O, B_ACT, O, B_LOC, O, X, X, X, X, X],
                                        [X, O, B_CAS, I_CAS, X, O, O, O, B_LOC, O, X]]
    assert batch["word_index"].tolist() == [[1, 2, 3, 4, 5, -1, -1, -1], [1, 2, 3, 5, 6, 7, 8, 9]]
    # each pair gets its row in front
    assert batch["pairs"].tolist() == [[0, 1, 2, 3, 4, ACTOR, LOCATION], [1, 1, 3, 6, 7, CASUALTY, LOCATION]]
    assert batch["pair_labels"].tolist() == [NONE, CASUALTY_IN]
    assert all(t.dtype == torch.long for t in batch.values())
    empty = collate([{**{k: v[0] for k, v in rows.items()}, "pairs": [], "pair_labels": []}])
    assert empty["pairs"].shape == (0, 7) and empty["pair_labels"].shape == (0,)


@pytest.fixture
def spied(extractor):
    """An Extractor on a private copy of the model that records what enters the model: each
    window's ``(input ids, word index, token types)`` and each relation pair."""
    model = copy.deepcopy(extractor.model)
    ex = Extractor(model, extractor.tokenizer, device="cpu", precision="fp32")
    seen: dict = {"windows": [], "pairs": []}
    encode, gather, relation_logits = ex.backend.encode, model.gather_words, model.relation_logits

    def spy_encode(ids, mask, types):
        seen["batch"] = (ids, mask, types)
        return encode(ids, mask, types)

    def spy_gather(hidden, word_index):
        ids, mask, types = seen.pop("batch")
        for r, n in enumerate(mask.sum(1).tolist()):
            words = word_index[r][word_index[r] > 0]  # padded with 0; a word's position is >= 1
            seen["windows"].append((ids[r, :n].tolist(), words.tolist(), types[r, :n].tolist()))
        return gather(hidden, word_index)

    def spy_relation_logits(words, pairs):
        seen["pairs"] += pairs[:, 1:].tolist()  # without the row
        return relation_logits(words, pairs)

    ex.backend.encode = spy_encode
    model.gather_words = spy_gather
    model.relation_logits = spy_relation_logits
    return ex, seen


def test_training_and_inference_features_are_identical(spied):
    """For each training sentence, the rows ``featurize`` builds are the windows the Extractor
    runs (input ids, word index, token types) and the training pairs are the pairs it scores
    for the same (gold) entities; also for a sentence cut into several windows."""
    ex, seen = spied
    for record in overfit_records():
        seen["windows"].clear()
        seen["pairs"].clear()
        train = featurize([record], ex.tokenizer, ex.settings, ex.gazetteer)
        ex.predict_relations([record["text"]], [record["entities"]])
        assert sorted(seen["windows"]) == sorted(zip(train["input_ids"], train["word_index"], train["token_type_ids"]))
        assert seen["pairs"] and sorted(seen["pairs"]) == sorted(p for ps in train["pairs"] for p in ps)
    long = {"text": " ، ".join(r["text"].rstrip(".") for r in overfit_records()[:3]), "entities": [], "relations": []}
    ex.settings.max_length = 40  # the private model's settings
    seen["windows"].clear()
    train = featurize([long], ex.tokenizer, ex.settings, ex.gazetteer)
    ex.extract(long["text"])
    assert len(train["input_ids"]) > 2
    assert sorted(seen["windows"]) == sorted(zip(train["input_ids"], train["word_index"], train["token_type_ids"]))


def test_inference_caps_pair_distance(spied):
    """A long run-on sentence (several windows) with given entities: pairs more than
    MAX_PAIR_DISTANCE words apart never reach the relation head, as in training."""
    ex, seen = spied
    words = ["الجيش"] + ["في"] * 119 + ["حلب"] + ["في"] * 29 + ["حلب"]
    text = " ".join(words)
    starts = [sum(len(w) + 1 for w in words[:i]) for i in range(len(words))]
    ents = [{"start": starts[i], "end": starts[i] + len(words[i]), "label": label}
            for i, label in [(0, "ACTOR"), (120, "LOCATION"), (150, "LOCATION")]]
    ex.predict_relations([text], [ents])
    assert len(seen["windows"]) > 1
    assert seen["pairs"] == [[0, 1, 120, 121, ACTOR, LOCATION]]
