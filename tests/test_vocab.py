from nlu.vocab import PAD, UNK, Vocab, Vocabs, build_vocabs


def test_min_count_and_unknown_words():
    vocab = Vocab.build(["a", "a", "b", "c", "c", "c"], min_count=2)
    assert vocab.itos == [PAD, UNK, "c", "a"]
    assert vocab.lookup(["c", "b", "zzz"]) == [2, 1, 1]


def test_label_vocab_has_no_specials_and_rejects_unknown():
    vocab = Vocab(["O", "B-x"], specials=False)
    assert vocab.index("B-x") == 1
    try:
        vocab.index("B-y")
    except KeyError:
        pass
    else:
        raise AssertionError("unknown label must raise")


def test_build_vocabs_puts_o_first_and_round_trips_json():
    vocabs = build_vocabs([["fly", "to", "boston"]], [["O", "O", "B-city"]], ["flight"])
    assert vocabs.tags.itos == ["O", "B-city"]
    assert vocabs.chars.index("b") > 1
    again = Vocabs.from_json(vocabs.to_json())
    assert again.words.itos == vocabs.words.itos and again.intents.itos == ["flight"]
