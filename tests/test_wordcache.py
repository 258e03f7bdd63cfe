"""The Parser's word cache gives the embedding the model computes, once per spelling."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from nlu.config import load_config
from nlu.features import collate, featurize
from nlu.inference.torch_engine import embedder
from nlu.inference.wordcache import WordCache
from nlu.model import build_model
from nlu.tokenizer import Tokenizer
from nlu.vocab import build_vocabs

SENTENCES = [
    ["Fly", "to", "Boston", "?"],
    ["boston", "to", "zanzibar"],  # "zanzibar" is unknown: its own characters, the UNK vector
    [],
    ["to"],
]


def make_embedding(char_encoder: str = "cnn", word_hash_dim: int = 6):
    vocabs = build_vocabs(
        [["fly", "to", "boston"], ["to", "denver"]],
        [["O", "O", "B-city"], ["O", "B-city"]],
        ["flight", "flight"],
    )
    config = load_config(
        None,
        [
            "model.word_dim=8",
            "model.char_dim=5",
            "model.char_filters=4",
            f"model.char_encoder={char_encoder}",
            "model.char_hidden=3",
            f"model.word_hash_dim={word_hash_dim}",
            "model.word_hash_buckets=50",
            "model.hidden_dim=4",
        ],
    )
    torch.manual_seed(0)
    model = build_model(config.model, vocabs).freeze()
    return model.embedding, vocabs, Tokenizer(lowercase=True)


def cache_of(embedding, vocabs, tokenizer, **kwargs):
    compute = embedder(embedding, vocabs, tokenizer)
    return WordCache(compute, embedding.output_dim, tokenizer, **kwargs)


def reference(embedding, vocabs, tokenizer, sentences):
    """The embedding computed the training way: featurize, collate, the whole module."""
    batch = collate([featurize(s, vocabs, tokenizer) for s in sentences])
    with torch.no_grad():
        return embedding(batch.word_ids, batch.char_ids).numpy(), batch.mask.numpy()


@pytest.mark.parametrize("char_encoder", ["cnn", "lstm"])
def test_cached_rows_equal_the_model_embedding(char_encoder):
    embedding, vocabs, tokenizer = make_embedding(char_encoder)
    cache = cache_of(embedding, vocabs, tokenizer)
    expected, expected_mask = reference(embedding, vocabs, tokenizer, SENTENCES)
    for _ in range(2):  # filled on the first call, read on the second
        got, mask = cache.embed(SENTENCES)
        assert np.array_equal(mask, expected_mask) and got.dtype == np.float32
        # Padding and the empty sentence are zero rows in both.
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert len(cache) == len({w.lower() for s in SENTENCES for w in s})


def test_each_spelling_is_computed_once(monkeypatch):
    embedding, vocabs, tokenizer = make_embedding()
    cache = cache_of(embedding, vocabs, tokenizer)
    computed = []
    compute = cache.compute
    monkeypatch.setattr(cache, "compute", lambda words: computed.append(words) or compute(words))
    cache.embed([["fly", "to", "boston"], ["FLY", "to"]])
    cache.embed([["to", "boston", "denver"]])
    assert computed == [["fly", "to", "boston"], ["denver"]]


def test_a_full_cache_still_embeds_new_words_correctly():
    embedding, vocabs, tokenizer = make_embedding()
    cache = cache_of(embedding, vocabs, tokenizer, budget_bytes=3 * embedding.output_dim * 4)
    assert cache.max_words == 2
    got, _ = cache.embed(SENTENCES)
    expected, _ = reference(embedding, vocabs, tokenizer, SENTENCES)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert len(cache) == 2
    again, _ = cache.embed(SENTENCES)
    np.testing.assert_allclose(again, expected, rtol=1e-5, atol=1e-6)


def test_threads_filling_the_cache_get_the_right_rows():
    embedding, vocabs, tokenizer = make_embedding()
    cache = cache_of(embedding, vocabs, tokenizer)
    # 200 distinct spellings over 40 calls from 4 threads: the table grows past its first
    # capacity (64 rows) while other threads read it.
    sentences = [[f"w{i}x{j}" for j in range(5)] + ["to"] for i in range(40)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda s: cache.embed([s])[0], sentences))
    for sentence, got in zip(sentences, results):
        expected, _ = reference(embedding, vocabs, tokenizer, [sentence])
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert len(cache) == 201
