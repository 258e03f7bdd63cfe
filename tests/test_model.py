import pytest
import torch

from nlu.config import ModelConfig
from nlu.features import collate, featurize
from nlu.model import build_model
from nlu.tokenizer import Tokenizer
from nlu.vocab import build_vocabs

SENTENCES = [
    ["fly", "to", "boston"],
    ["show", "me", "flights", "from", "new", "york", "today"],
    ["hi"],
]


def make(tag_head: str = "crf", pooling: str = "max", num_layers: int = 1, **extra):
    vocabs = build_vocabs(SENTENCES, [["O", "B-x", "I-x"]], ["a", "b"])
    cfg = ModelConfig(
        word_dim=8,
        char_dim=4,
        char_filters=6,
        hidden_dim=5,
        tag_head=tag_head,
        intent_pooling=pooling,
        num_layers=num_layers,
        **extra,
    )
    torch.manual_seed(0)
    return build_model(cfg, vocabs).eval(), vocabs


@pytest.mark.parametrize("tag_head", ["crf", "softmax"])
@pytest.mark.parametrize("pooling", ["max", "mean", "last", "attention"])
def test_padding_never_changes_a_sentence(tag_head, pooling):
    model, vocabs = make(tag_head, pooling, num_layers=2)
    assert_alone_equals_batched(model, vocabs, 0, atol=1e-6)


def assert_alone_equals_batched(model, vocabs, i: int, atol: float) -> None:
    """Sentence i scores the same alone and padded in a batch with the others."""
    tok = Tokenizer()
    alone = model.forward_batch(collate([featurize(SENTENCES[i], vocabs, tok)]))
    batch = model.forward_batch(collate([featurize(s, vocabs, tok) for s in SENTENCES]))
    n = len(SENTENCES[i])
    torch.testing.assert_close(batch.tag_scores[i, :n], alone.tag_scores[0], atol=atol, rtol=0)
    torch.testing.assert_close(batch.intent_logits[i], alone.intent_logits[0], atol=atol, rtol=0)


@pytest.mark.parametrize(
    "extra",
    [{"attention_heads": 2}, {"slot_intent_dim": 3}, {"attention_heads": 1, "slot_intent_dim": 4}],
)
def test_attention_and_intent_context_keep_padding_out(extra):
    model, vocabs = make("crf", "attention", **extra)
    assert_alone_equals_batched(model, vocabs, 1, atol=1e-5)


@pytest.mark.parametrize("pooling", ["max", "mean", "attention"])
@pytest.mark.parametrize("extra", [{}, {"attention_heads": 1, "slot_intent_dim": 3}])
def test_attention_branch_joins_the_states_and_keeps_padding_out(pooling, extra):
    model, vocabs = make("crf", pooling, attention_branch_dim=6, **extra)
    assert model.intent_head.proj.in_features == 2 * 5 + 6  # BiLSTM states + the branch
    assert_padding_free_and_trained(model, vocabs)
    assert model.branch.proj.weight.grad.abs().sum() > 0  # the losses train the branch


def assert_padding_free_and_trained(model, vocabs) -> None:
    """Every sentence scores the same alone and batched; then one backward pass of the joint
    loss, whose gradients the caller inspects."""
    for i in range(len(SENTENCES)):
        assert_alone_equals_batched(model, vocabs, i, atol=1e-5)
    batch = collate([featurize(s, vocabs, Tokenizer(), ["O"] * len(s), "a") for s in SENTENCES])
    model.train()
    out = model.forward_batch(batch)
    model.loss(out, batch.tag_ids, batch.intent_ids).total.backward()


@pytest.mark.parametrize("part", ["attention_branch_dim", "interaction_dim"])
def test_parts_beside_the_encoder_refuse_last_pooling_by_name(part):
    with pytest.raises(ValueError, match=f"model.{part}: expected an intent_pooling"):
        make("crf", "last", **{part: 4})


@pytest.mark.parametrize(
    "extra",
    [{"interaction_dim": 6}, {"label_attention": True},
     {"interaction_dim": 4, "label_attention": True, "slot_intent_dim": 3, "word_shape_dim": 2,
      "intent_level": "token"}],
)  # fmt: skip
def test_label_attention_and_co_interaction_keep_padding_out_and_train(extra):
    model, vocabs = make("crf", "max", **extra)
    assert_padding_free_and_trained(model, vocabs)
    trained = [model.label_attention, model.interaction]
    for part in filter(None, trained):  # the losses reach every label embedding
        for name, p in part.named_parameters():
            if name.endswith("labels"):
                assert p.grad.abs().sum() > 0, name
    if model.interaction is not None:
        assert model.intent_head.proj.in_features == extra["interaction_dim"]


@pytest.mark.parametrize("vote", ["average", "vote"])
@pytest.mark.parametrize("context", [0, 3])
def test_token_level_intents_keep_padding_out(vote, context):
    model, vocabs = make(intent_level="token", token_intent_vote=vote, slot_intent_dim=context)
    for i in range(len(SENTENCES)):
        assert_alone_equals_batched(model, vocabs, i, atol=1e-5)


def test_token_level_intent_is_the_tokens_average_or_vote():
    from nlu.modules.heads import IntentHead

    head = IntentHead(4, 3, level="token", vote="average")
    tokens = torch.tensor([[[5.0, 0, 0], [5.0, 0, 0], [0, 0, 20.0], [0, 30.0, 0]]])  # (1, 4, 3)
    mask = torch.tensor([[True, True, True, False]])  # the last token is padding
    average = head._combine(tokens, mask)
    torch.testing.assert_close(average, tokens[:, :3].log_softmax(-1).mean(dim=1))
    assert average.argmax().item() == 2  # one confident token outweighs two milder ones
    head.vote = "vote"
    voted = head._combine(tokens, mask)
    assert voted.argmax().item() == 0  # two votes against one
    assert float(voted.exp().sum()) == pytest.approx(1.0)  # still a distribution
    with pytest.raises(ValueError, match=r"model.token_intent_vote: expected one of"):
        IntentHead(4, 3, level="token", vote="majority")


def test_token_level_intent_loss_trains_every_real_token():
    model, vocabs = make(intent_level="token")
    batch = collate([featurize(s, vocabs, Tokenizer(), ["O"] * len(s), "b") for s in SENTENCES])
    out = model.forward_batch(batch)
    assert out.token_intent_logits.shape == (3, 7, len(vocabs.intents))
    real = out.token_intent_logits[batch.mask]  # (tokens, num_intents)
    expected = torch.nn.functional.cross_entropy(real, torch.full((len(real),), 1))
    losses = model.loss(out, batch.tag_ids, batch.intent_ids)
    torch.testing.assert_close(losses.intent, expected)


def test_intent_context_feeds_the_tag_scores():
    model, vocabs = make(slot_intent_dim=3)
    batch = collate([featurize(SENTENCES[0], vocabs, Tokenizer())])
    before = model.forward_batch(batch)
    with torch.no_grad():
        model.intent_head.proj.bias[0] += 10.0  # move the intent distribution only
    after = model.forward_batch(batch)
    assert not torch.allclose(before.tag_scores, after.tag_scores)
    batch_tags = collate([featurize(SENTENCES[0], vocabs, Tokenizer(), ["O"] * 3, "a")])
    out = model.forward_batch(batch_tags)
    model.loss(out, batch_tags.tag_ids, batch_tags.intent_ids).slot.backward()
    # The slot loss trains the intent head too, through the context.
    assert model.intent_head.proj.weight.grad.abs().sum() > 0


def test_joint_loss_is_slot_plus_weighted_intent():
    model, vocabs = make()
    batch = collate([featurize(s, vocabs, Tokenizer(), ["O"] * len(s), "a") for s in SENTENCES])
    out = model.forward_batch(batch)
    losses = model.loss(out, batch.tag_ids, batch.intent_ids)
    assert losses.total.item() == pytest.approx(
        (losses.slot + model.intent_weight * losses.intent).item()
    )
    losses.total.backward()
    assert all(p.grad is not None for p in model.encoder.parameters())


def test_unseen_intent_and_tags_do_not_crash():
    model, vocabs = make()
    batch = collate([featurize(["fly"], vocabs, Tokenizer(), ["B-never"], "never_seen")])
    out = model.forward_batch(batch)
    losses = model.loss(out, batch.tag_ids, batch.intent_ids)
    assert losses.intent.item() == 0.0 and torch.isfinite(losses.slot).item()


def test_unpadded_batches_skip_packing_with_the_same_result():
    model, vocabs = make(num_layers=2)
    tok = Tokenizer()
    batch = collate([featurize(s, vocabs, tok) for s in [SENTENCES[0], ["to", "boston", "fly"]]])
    embedded = model.embedding(batch.word_ids, batch.char_ids)
    fast = model.encoder(embedded, batch.mask)
    padded_mask = torch.cat([batch.mask, torch.zeros(2, 1, dtype=torch.bool)], dim=1)
    padded = torch.cat([embedded, torch.zeros(2, 1, embedded.shape[2])], dim=1)
    packed = model.encoder(padded, padded_mask)[:, :3]
    torch.testing.assert_close(fast, packed, atol=1e-6, rtol=0)


@pytest.mark.parametrize("tag_head", ["crf", "softmax"])
def test_constrained_decoding_never_breaks_bio(tag_head):
    import itertools

    from nlu.tags import repair

    vocabs = build_vocabs(SENTENCES, [["O", "B-x", "I-x", "B-y", "I-y"]], ["a"])
    cfg = ModelConfig(
        word_dim=8, char_dim=0, hidden_dim=5, tag_head=tag_head, constrained_decoding=True
    )
    torch.manual_seed(3)
    model = build_model(cfg, vocabs).eval()
    with torch.no_grad():
        for p in model.tag_head.proj.parameters():
            torch.nn.init.normal_(p, std=3.0)  # scores strong enough to want I- after O
        batch = collate([featurize(s, vocabs, Tokenizer()) for s in SENTENCES])
        out = model.forward_batch(batch)
        names = vocabs.tags.itos
        for path in model.decode(out):
            tags = [names[k] for k in path]
            assert repair(tags)[1] == 0, tags
        if tag_head == "softmax":  # Viterbi over log-probs = best allowed path by brute force
            log_probs = out.tag_scores[2, :1].log_softmax(-1)  # "hi": one token
            allowed = [k for k, t in enumerate(names) if not t.startswith("I-")]
            best = max(allowed, key=lambda k: float(log_probs[0, k]))
            assert model.decode(out)[2] == [best]
            short = out.tag_scores[0, :3].log_softmax(-1)
            candidates = [
                p
                for p in itertools.product(range(len(names)), repeat=3)
                if repair([names[k] for k in p])[1] == 0
            ]
            top = max(candidates, key=lambda p: sum(float(short[t, k]) for t, k in enumerate(p)))
            assert list(top) == model.tag_head.kbest(out.tag_scores[0, :3], 1)[0][0]


def test_locked_dropout_drops_the_same_units_at_every_step():
    from nlu.modules.dropout import LockedDropout

    dropout = LockedDropout(0.5).train()
    torch.manual_seed(0)
    out = dropout(torch.ones(3, 6, 10))
    dropped = out == 0  # (B, T, D)
    assert dropped.any() and (dropped == dropped[:, :1]).all()
    assert set(out.unique().tolist()) <= {0.0, 2.0}
    assert torch.equal(dropout.eval()(torch.ones(2, 2, 2)), torch.ones(2, 2, 2))


def test_dropout_drops_a_p_share_and_keeps_the_mean():
    from nlu.modules.dropout import Dropout

    dropout = Dropout(0.3).train()
    torch.manual_seed(0)
    x = torch.ones(200, 50, 20, requires_grad=True)
    out = dropout(x)
    assert abs(float((out == 0).float().mean()) - 0.3) < 0.01
    assert out.unique().tolist() == [0.0, pytest.approx(1 / 0.7)]
    out.sum().backward()  # the gradient reaches the kept elements, scaled, and no others
    assert torch.equal(x.grad, out.detach())
    assert torch.equal(dropout.eval()(x), x)
    with pytest.raises(ValueError, match=r"model.dropout: expected a value in \[0, 1\)"):
        Dropout(1.0)


def test_intent_parts_score_each_label_from_its_parts():
    from nlu.modules.heads import IntentParts

    labels = ["a", "b#c", "a#b", "c"]
    parts = IntentParts(labels)
    assert parts.parts == ["a", "b", "c"]
    logits = torch.randn(5, 3) * 3
    scores = parts(logits)  # (5, 4)
    p = torch.sigmoid(logits)
    for i, label in enumerate(labels):
        inside = set(label.split("#"))
        expected = sum(
            torch.log(p[:, k]) if part in inside else torch.log(1 - p[:, k])
            for k, part in enumerate(parts.parts)
        )
        torch.testing.assert_close(scores[:, i], expected)


def test_intent_parts_head_keeps_one_logit_per_label():
    vocabs = build_vocabs(SENTENCES, [["O", "B-x", "I-x"]], ["a", "a#b", "b"])
    cfg = ModelConfig(word_dim=8, char_dim=4, char_filters=4, hidden_dim=8, intent_parts=True)
    model = build_model(cfg, vocabs)
    assert model.intent_head.proj.out_features == 2  # the parts a and b
    batch = collate([featurize(s, vocabs, Tokenizer()) for s in SENTENCES])
    output = model.forward_batch(batch)
    assert output.intent_logits.shape == (3, 3)  # the labels a, a#b and b
    losses = model.loss(output, torch.zeros_like(batch.word_ids), torch.tensor([0, 1, 2]))
    losses.total.backward()
    assert model.intent_head.proj.weight.grad.abs().sum() > 0


def test_intent_label_smoothing_spreads_the_target():
    model, vocabs = make(intent_label_smoothing=0.2)
    batch = collate([featurize(s, vocabs, Tokenizer(), ["O"] * len(s), "a") for s in SENTENCES])
    out = model.forward_batch(batch)
    log_probs = out.intent_logits.log_softmax(dim=-1)  # (B, 2 intents)
    gold = -log_probs[torch.arange(len(SENTENCES)), batch.intent_ids]
    uniform = -log_probs.mean(dim=-1)
    expected = (0.8 * gold + 0.2 * uniform).mean()
    got = model.loss(out, batch.tag_ids, batch.intent_ids).intent
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
    assert got.item() != pytest.approx(gold.mean().item(), rel=1e-3)


def test_intent_label_smoothing_out_of_range_is_refused():
    with pytest.raises(
        ValueError, match=r"model.intent_label_smoothing: expected a value in \[0, 1\)"
    ):
        make(intent_label_smoothing=1.0)
