"""Training-side mechanics of the Lightning module that a full run would not show directly."""

import torch

from nlu.config import ModelConfig
from nlu.model import build_model
from nlu.training.module import NLUModule
from nlu.vocab import build_vocabs


def make_module(**kwargs) -> NLUModule:
    vocabs = build_vocabs([["fly", "to", "boston"]], [["O", "O", "B-city"]], ["a", "b"])
    torch.manual_seed(0)
    model = build_model(ModelConfig(word_dim=4, char_dim=0, hidden_dim=3), vocabs)
    return NLUModule(model, vocabs.tags.itos, vocabs.intents.itos, **kwargs)


def params(module: NLUModule) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.model.parameters()]


def test_ema_is_swapped_in_for_validation_and_out_for_training():
    module = make_module(ema_decay=0.5)
    start = params(module)
    module.on_train_batch_end(None, None, 0)  # EMA starts as a copy
    with torch.no_grad():
        for p in module.model.parameters():
            p.add_(1.0)
    module.on_train_batch_end(None, None, 1)  # EMA = halfway between start and start + 1
    trained = params(module)
    module.on_validation_epoch_start()
    for p, s in zip(params(module), start):
        torch.testing.assert_close(p, s + 0.5)
    module.on_train_epoch_start()
    for p, t in zip(params(module), trained):
        torch.testing.assert_close(p, t)


def test_without_ema_nothing_is_swapped():
    module = make_module()
    before = params(module)
    module.on_train_batch_end(None, None, 0)
    module.on_validation_epoch_start()
    for p, b in zip(params(module), before):
        torch.testing.assert_close(p, b)


def test_gradient_stats_match_torch_clipping():
    from nlu.training.module import gradient_stats

    torch.manual_seed(0)
    grads = [torch.randn(3, 4), torch.randn(5)]
    norm, clipped = gradient_stats(grads, clip=None)
    # Oracle: clip_grad_norm_ returns the total norm before clipping.
    params = [torch.nn.Parameter(torch.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    expected = torch.nn.utils.clip_grad_norm_(params, max_norm=1e9)
    torch.testing.assert_close(norm, expected)
    assert clipped == 0.0
    assert gradient_stats(grads, clip=float(norm) * 0.99)[1] == 1.0
    assert gradient_stats(grads, clip=float(norm) * 1.01)[1] == 0.0
    largest = max(float(g.abs().max()) for g in grads)
    assert gradient_stats(grads, clip=largest * 0.99, algorithm="value")[1] == 1.0
    assert gradient_stats(grads, clip=largest * 1.01, algorithm="value")[1] == 0.0
    assert gradient_stats([], clip=1.0)[0] == 0.0


def test_rare_word_probs_follow_alpha_over_alpha_plus_count():
    from nlu.training.module import rare_word_probs

    assert rare_word_probs([0, 0, 1, 3], 0.0) is None
    torch.testing.assert_close(
        rare_word_probs([0, 0, 1, 3], 1.0), torch.tensor([0.0, 0.0, 0.5, 0.25])
    )


def test_training_step_hides_words_by_their_probability_and_never_padding():
    from nlu.features import collate, featurize
    from nlu.tokenizer import Tokenizer
    from nlu.vocab import PAD_ID, UNK_ID

    module = make_module()
    vocabs = build_vocabs([["fly", "to", "boston"]], [["O", "O", "B-city"]], ["a", "b"])
    boston = vocabs.words.index("boston")
    probs = torch.zeros(len(vocabs.words))
    probs[boston] = 1.0
    probs[PAD_ID] = 1.0  # must still never touch padding
    module.unk_probs = probs
    seen = []
    module._common_step = lambda batch, stage: seen.append(batch.word_ids.clone())
    tok = Tokenizer()
    for _ in range(5):
        batch = collate(
            [
                featurize(["fly", "to", "boston"], vocabs, tok, ["O", "O", "B-city"], "a"),
                featurize(["fly", "boston"], vocabs, tok, ["O", "B-city"], "b"),
            ]
        )
        module.training_step(batch, 0)
    for word_ids in seen:
        assert word_ids.tolist() == [
            [vocabs.words.index("fly"), vocabs.words.index("to"), UNK_ID],
            [vocabs.words.index("fly"), UNK_ID, PAD_ID],
        ]


def test_unk_probs_fold_in_word_dropout_and_follow_the_module():
    module = make_module(word_dropout=0.25, unk_probs=torch.tensor([0.0, 0.0, 0.5, 0.9]))
    torch.testing.assert_close(module.unk_probs, torch.tensor([0.25, 0.25, 0.75, 1.0]))
    assert "unk_probs" in dict(module.named_buffers())  # moved by .to(device) with the model
    assert "unk_probs" not in module.state_dict()
    assert make_module(word_dropout=0.25).unk_probs is None
