"""Embedding options: pretrained vectors, character BiLSTM, word hash, one-hot, and their mixes."""

import itertools
import json
import re

import pytest
import torch
import torch.nn.functional as F

from nlu import archive
from nlu.config import ExperimentConfig, ModelConfig, load_config
from nlu.features import collate, featurize
from nlu.model import build_model
from nlu.modules.embedding import (
    CharLSTM,
    TokenEmbedding,
    WordHash,
    WordShape,
    trigram_buckets,
)
from nlu.modules.vectors import read_vectors
from nlu.parser import Parser
from nlu.tokenizer import Tokenizer
from nlu.vocab import Vocab, build_vocabs
from tests.conftest import TINY_OVERRIDES

SENTENCES = [["fly", "to", "boston"], ["show", "me", "flights", "from", "denver"], ["hi"]]
TAGS = [["O", "O", "B-city"], ["O", "O", "O", "O", "B-city"], ["O"]]
INTENTS = ["flight", "flight", "greet"]


def make_vocabs():
    return build_vocabs(SENTENCES, TAGS, INTENTS)


def make_batch(vocabs):
    tok = Tokenizer()
    return collate([featurize(s, vocabs, tok, t, i) for s, t, i in zip(SENTENCES, TAGS, INTENTS)])


def char_ids(words, vocabs):
    """(1, len(words), L) character ids of words, as the model sees them."""
    return collate([featurize(words, vocabs, Tokenizer())]).char_ids


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


# ----- pretrained vectors -----

GLOVE = "the 0.5 0.5 0.5\nboston 1 2 3\nparis 9 9 9\nDenver 4 5 6\n"


@pytest.mark.parametrize("header", ["", "4 3\n"], ids=["glove", "word2vec"])
def test_vectors_keep_only_the_vocabulary_rows(tmp_path, header):
    vocab = Vocab(["boston", "denver", "london"])  # <pad>, <unk>, boston, denver, london
    got = read_vectors(write(tmp_path / "v.txt", header + GLOVE), vocab, 3)
    assert got.vectors.shape == (5, 3)  # the vocabulary's rows, not the file's 4
    assert got.found.tolist() == [False, False, True, True, False]
    assert (got.num_found, got.num_words) == (2, 4)
    assert got.vectors[2].tolist() == [1, 2, 3]
    assert got.vectors[3].tolist() == [4, 5, 6]  # "Denver" for "denver": case ignored
    assert got.vectors[4].abs().sum() == 0


def test_an_exact_match_beats_an_earlier_case_insensitive_one(tmp_path):
    text = "BOSTON 1 1\nboston 2 2\nParis 3 3\nPARIS 4 4\nDallas 5 5\n"
    vocab = Vocab(["boston", "paris", "Dallas"])
    got = read_vectors(write(tmp_path / "v.txt", text), vocab, 2)
    assert got.vectors[2:].tolist() == [[2, 2], [3, 3], [5, 5]]  # first of either kind wins


def test_rows_outside_the_vocabulary_are_not_parsed(tmp_path):
    text = "unrelated x y\nboston 1 2\n"
    got = read_vectors(write(tmp_path / "v.txt", text), Vocab(["boston"]), 2)
    assert got.vectors[2].tolist() == [1, 2]


@pytest.mark.parametrize(
    "text, error",
    [
        ("boston 1 2 3\ndenver 4 5\n", ":2: expected 3 values, found 2"),
        ("5 3\nboston 1 2\n", ":2: expected 3 values, found 2"),  # the header said 3
        ("10 4\nboston 1 2 3\n", ":1: expected 3 values per word, found 4 in the word2vec"),
        ("boston 1 2\n", ":1: expected 3 values, found 2"),  # the model's word_dim is 3
        ("paris 1 2 3\nboston 1 x 3\n", ":2: expected a finite number, found 'x'"),
        ("boston 1 nan 3\n", ":1: expected a finite number, found 'nan'"),
        ("", ": expected word vectors, found an empty file"),
        ("1 3\n", ": expected word vectors, found an empty file"),
    ],
)
def test_vector_file_errors_name_file_and_line(tmp_path, text, error):
    path = write(tmp_path / "v.txt", text)
    with pytest.raises(ValueError, match=re.escape(f"{path}{error}")):
        read_vectors(path, Vocab(["boston", "denver"]), 3)


def test_missing_vector_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.txt: vector file not found"):
        read_vectors(tmp_path / "nope.txt", Vocab(["boston"]), 3)


def pretrained_model(tmp_path, freeze):
    vocabs = make_vocabs()
    path = write(tmp_path / "v.txt", "boston 1 2 3 4\nFLIGHTS 5 6 7 8\nunrelated 0 0 0 0\n")
    cfg = ModelConfig(word_dim=4, char_dim=0, hidden_dim=5, pretrained_vectors=str(path))
    torch.manual_seed(0)
    model = build_model(cfg, vocabs)
    model.embedding.load_pretrained(read_vectors(path, vocabs.words, 4), freeze=freeze)
    return model, vocabs


@pytest.mark.parametrize("freeze", [True, False])
def test_frozen_vectors_survive_an_optimizer_step_with_weight_decay(tmp_path, freeze):
    from nlu.training.module import NLUModule

    model, vocabs = pretrained_model(tmp_path, freeze)
    words = model.embedding.words.weight
    boston, flights = vocabs.words.stoi["boston"], vocabs.words.stoi["flights"]
    assert words[boston].tolist() == [1, 2, 3, 4] and words[flights].tolist() == [5, 6, 7, 8]
    before = words.detach().clone()
    module = NLUModule(model, vocabs.tags.itos, vocabs.intents.itos, weight_decay=0.1)
    optimizer = module.configure_optimizers()  # the optimizer training uses
    batch = make_batch(vocabs)
    model.train()
    model.loss(model.forward_batch(batch), batch.tag_ids, batch.intent_ids).total.backward()
    optimizer.step()
    assert torch.equal(words.detach(), before) == freeze
    assert not torch.equal(model.encoder.rnn.weight_ih_l0, before)  # the rest still trains


def test_pretrained_vectors_need_a_word_embedding(tmp_path):
    path = write(tmp_path / "v.txt", "boston 1 2\n")
    vocab = Vocab(["boston"])
    one_hot = TokenEmbedding(len(vocab), word_dim=2, word_input="one_hot")
    with pytest.raises(
        ValueError, match="v.txt: expected a word embedding .* word_input='one_hot'"
    ):
        one_hot.load_pretrained(read_vectors(path, vocab, 2))
    wrong = TokenEmbedding(len(vocab), word_dim=3)
    with pytest.raises(ValueError, match=r"expected vectors of shape \(3, 3\), found \(3, 2\)"):
        wrong.load_pretrained(read_vectors(path, vocab, 2))


def test_training_checks_the_pretrained_options_before_reading(tmp_path):
    from nlu.training.train import _load_pretrained

    vocabs = make_vocabs()
    cfg = ModelConfig(word_input="one_hot", pretrained_vectors=str(tmp_path / "never_read.txt"))
    with pytest.raises(ValueError, match="expected word_input 'embedding' and word_dim > 0"):
        _load_pretrained(build_model(cfg, vocabs), cfg, vocabs)
    cfg = ModelConfig(freeze_pretrained=True)
    with pytest.raises(ValueError, match="expected a model.pretrained_vectors file, found none"):
        _load_pretrained(build_model(cfg, vocabs), cfg, vocabs)


# ----- character BiLSTM -----


def test_char_lstm_final_states_ignore_padding():
    vocabs = make_vocabs()
    torch.manual_seed(0)
    chars = CharLSTM(len(vocabs.chars), 4, 3).eval()
    with torch.no_grad():
        alone = chars(char_ids(["hi"], vocabs))[0, 0]  # L = 2
        crowded = chars(char_ids(["flights", "hi", "boston"], vocabs))[0, 1]  # L = 7
        # Oracle: the LSTM run on the word's own two characters, with no padding at all.
        ids = torch.tensor([vocabs.chars.lookup("hi")])
        states, _ = chars.lstm(chars.embedding(ids))  # (1, 2, 2 * 3)
    torch.testing.assert_close(crowded, alone, atol=1e-6, rtol=0)
    torch.testing.assert_close(alone, torch.cat([states[0, -1, :3], states[0, 0, 3:]]))
    assert chars(torch.zeros(2, 3, 4, dtype=torch.long)).abs().sum() == 0  # only padding


# ----- word hash -----


def test_trigram_buckets_are_pinned_and_one_per_character():
    # Saved word-hash models depend on these exact buckets: a change must be deliberate.
    ids = torch.tensor([[[2, 3, 4, 0], [5, 0, 0, 0], [0, 0, 0, 0]]])  # "abc", "d", padding
    assert trigram_buckets(ids, 2**14).tolist() == [
        [[1162, 1411, 10012, 0], [2896, 0, 0, 0], [0, 0, 0, 0]]
    ]
    assert 1 + (5 * 1_000_003) % 2**14 == 2896  # "#d#" = (0, 5, 0) by hand
    assert trigram_buckets(ids, 7).max() <= 7


def test_word_hash_reads_unseen_words_from_their_trigrams():
    vocabs = make_vocabs()
    torch.manual_seed(0)
    word_hash = WordHash(2**14, 64)
    words = ["boston", "bostn", "boston", "denver", "qqq"]
    assert vocabs.words.lookup(["bostn"]) == [1]  # unknown to the word vocabulary
    with torch.no_grad():
        vectors = word_hash(char_ids(words, vocabs))[0]  # (5, 64)
    assert (vectors.norm(dim=-1) > 0).all()
    assert torch.equal(vectors[0], vectors[2]) and not torch.equal(vectors[0], vectors[1])
    # "boston" and "bostn" share #bo, bos and ost.
    buckets = trigram_buckets(char_ids(["boston", "bostn"], vocabs), 2**14)[0]
    assert buckets[0, :3].tolist() == buckets[1, :3].tolist()
    similar = F.cosine_similarity(vectors[0], vectors[1], dim=0)
    assert similar > 0.4 > F.cosine_similarity(vectors[0], vectors[3], dim=0).abs()


# ----- word shape -----


def test_word_shapes_collapse_runs_of_character_classes():
    vocab = Vocab.build(list("abcdefghijklmnopqrstuvwxyzABC0123456789:'&-.吴"))
    shape = WordShape(vocab.itos, 3)
    words = ["boston", "6:30", "1215", "i'd", "r&b", "Abc", "a1b2c3", "吴", "qq", "7:45"]
    ids = torch.tensor([[vocab.lookup(w) + [0] * (6 - len(w)) for w in words] + [[0] * 6]])
    codes = shape.codes(ids)[0].tolist()
    lower, upper, digit, other, symbol = 1, 2, 3, 4, 5
    assert codes[0] == lower == codes[8]  # any run of lower-case letters
    assert codes[1] == digit + 6 * symbol + 36 * digit == codes[9]  # d:d
    assert codes[2] == digit
    assert codes[3] == lower + 6 * symbol + 36 * lower == codes[4]  # x'x and x&x
    assert codes[5] == upper + 6 * lower
    assert codes[6] == lower + 6 * digit + 36 * lower + 216 * digit + 6**4  # and more runs
    assert codes[7] == other
    assert codes[10] == 0  # padding
    with torch.no_grad():
        vectors = shape(ids)[0]
    assert vectors[10].abs().sum() == 0 and torch.equal(vectors[1], vectors[9])


# ----- one-hot -----


def test_one_hot_feeds_the_encoder_exactly_one_hot_vectors():
    vocabs = make_vocabs()
    cfg = ModelConfig(word_input="one_hot", char_dim=0, hidden_dim=5)
    model = build_model(cfg, vocabs).eval()
    assert model.embedding.output_dim == len(vocabs.words) == model.encoder.rnn.input_size
    assert list(model.embedding.parameters()) == []  # no identity matrix among the weights
    seen = {}
    model.encoder.register_forward_hook(lambda m, args, out: seen.update(x=args[0]))
    batch = collate([featurize(s, vocabs, Tokenizer()) for s in [["fly", "boston"], ["bostn"]]])
    model.forward_batch(batch)
    expected = F.one_hot(batch.word_ids, len(vocabs.words)).float() * batch.mask[..., None]
    assert torch.equal(seen["x"], expected)
    assert seen["x"][1, 0, 1] == 1  # the unknown word is the UNK vector


# ----- every combination -----

WORDS = {"embedding": {"word_dim": 6}, "one_hot": {"word_input": "one_hot"}, "off": {"word_dim": 0}}
CHARS = {"cnn": {"char_dim": 4}, "lstm": {"char_dim": 4, "char_encoder": "lstm"}, "off": {}}
HASH = {"hash": {"word_hash_dim": 5, "word_hash_buckets": 64}, "off": {}}
COMBINATIONS = [
    combo for combo in itertools.product(WORDS, CHARS, HASH) if combo != ("off", "off", "off")
]


@pytest.mark.parametrize("words, chars, hashed", COMBINATIONS)
def test_every_combination_trains(words, chars, hashed):
    vocabs = make_vocabs()
    options = {"char_dim": 0, **WORDS[words], **CHARS[chars], **HASH[hashed]}
    cfg = ModelConfig(hidden_dim=5, dropout=0.0, **options)
    torch.manual_seed(0)
    model = build_model(cfg, vocabs)
    batch = make_batch(vocabs)
    embedded = model.embedding(batch.word_ids, batch.char_ids)
    assert embedded.shape == (3, 5, model.embedding.output_dim)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
    for _ in range(3):
        optimizer.zero_grad()
        loss = model.loss(model.forward_batch(batch), batch.tag_ids, batch.intent_ids).total
        loss.backward()
        assert torch.isfinite(loss)
        for name, param in model.embedding.named_parameters():
            assert param.grad is not None and param.grad.abs().sum() > 0, name
        optimizer.step()


def test_no_token_features_is_an_error():
    with pytest.raises(ValueError, match="expected at least one token feature"):
        build_model(ModelConfig(word_dim=0, char_dim=0), make_vocabs())


def test_config_lists_the_valid_char_encoders():
    with pytest.raises(
        ValueError, match=r"model\.char_encoder: expected one of 'cnn', 'lstm', found 'gru'"
    ):
        load_config(None, ["model.char_encoder=gru"])


# ----- saved models -----

TEXTS = ["fly to boston", "flights from bostn to denvr", "", "Hi"]


def test_archive_round_trip_without_the_vector_file(tmp_path):
    vocabs = make_vocabs()
    vectors = write(tmp_path / "v.txt", "2 6\nboston 1 2 3 4 5 6\nhi 1 1 1 1 1 1\n")
    overrides = [
        "model.word_dim=6",
        "model.char_dim=4",
        "model.char_encoder=lstm",
        "model.char_hidden=3",
        "model.word_hash_dim=5",
        "model.word_hash_buckets=128",
        "model.hidden_dim=5",
        f"model.pretrained_vectors={vectors}",
        "model.freeze_pretrained=true",
    ]
    config: ExperimentConfig = load_config(None, overrides)
    torch.manual_seed(0)
    model = build_model(config.model, vocabs)
    model.embedding.load_pretrained(read_vectors(vectors, vocabs.words, 6), freeze=True)
    parser = Parser(model, vocabs, config)
    saved = archive.save(tmp_path / "model", config, vocabs, model)
    vectors.unlink()  # loading reads weights from model.safetensors, never the vector file
    again = Parser.load(saved)
    assert [p.to_dict() for p in again.parse_batch(TEXTS)] == [
        p.to_dict() for p in parser.parse_batch(TEXTS)
    ]
    weights = again.model.embedding.words.weight
    assert weights[vocabs.words.stoi["boston"]].tolist() == [1, 2, 3, 4, 5, 6]


@pytest.mark.slow
def test_training_loads_frozen_vectors_and_exports_them(tmp_path, tiny_dir):
    from nlu.data.seqio import read_seqio
    from nlu.eval.evaluate import evaluate
    from nlu.training.train import train

    vectors = write(tmp_path / "v.txt", "Boston 1 2 3 4 5 6 7 8\nlondon 8 7 6 5 4 3 2 1\n")
    overrides = [
        *TINY_OVERRIDES,
        "model.word_dim=8",
        "model.char_encoder=lstm",
        "model.word_hash_dim=8",
        "model.word_hash_buckets=256",
        f"model.pretrained_vectors={vectors}",
        "model.freeze_pretrained=true",
        "train.max_epochs=3",
        f"runs_dir={tmp_path / 'runs'}",
    ]
    result = train(load_config(None, overrides))
    vectors.unlink()
    info = json.loads((result.model_dir / "info.json").read_text())
    assert info["pretrained_vectors"]["words_found"] == 2
    parser = Parser.load(result.model_dir, backend="torch")
    words = parser.model.embedding.words.weight
    assert words[parser.vocabs.words.stoi["boston"]].tolist() == [1, 2, 3, 4, 5, 6, 7, 8]
    assert words[parser.vocabs.words.stoi["london"]].tolist() == [8, 7, 6, 5, 4, 3, 2, 1]
    from nlu.eval.metrics import known_words

    known = known_words(e.tokens for e in read_seqio(tiny_dir / "train"))
    dev = evaluate(parser, read_seqio(tiny_dir / "valid"), known=known)
    assert dev.summary() == result.reports["dev"].summary()  # the model training scored
