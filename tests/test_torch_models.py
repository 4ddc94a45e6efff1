"""bptt.torch.models: fused and explicit forms agree, cell equations, inits, validation."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch_helpers import F64, TOL, finite_difference, max_rel, randn, rel

from bptt.torch import CELLS, CharLM, RecurrentLayer, SequenceRegressor


def _state(cell, B, H, seed):
    if cell == "lstm":
        return (
            randn(B, H, seed=seed, requires_grad=True),
            randn(B, H, seed=seed + 1, requires_grad=True),
        )
    return randn(B, H, seed=seed, requires_grad=True)


def _flat(state):
    if state is None:
        return []
    return list(state) if isinstance(state, tuple) else [state]


def _run(layer, x, state, fused):
    """Outputs, final state and the gradients of a fixed scalar wrt params, x and state."""
    layer.fused = fused
    out, new = layer(x, state)
    loss = (out * out.detach().cos()).sum() + sum((s**2).sum() for s in _flat(new))
    inputs = [*layer.parameters(), x, *_flat(state)]
    return out, _flat(new), torch.autograd.grad(loss, inputs)


@given(
    cell=st.sampled_from(CELLS),
    B=st.integers(1, 3),
    T=st.integers(1, 6),
    D=st.integers(1, 4),
    H=st.integers(1, 5),
    seed=st.integers(0, 1000),
    init=st.sampled_from(["default", "orthogonal"]),
)
def test_fused_and_explicit_forms_agree_in_float64(cell, B, T, D, H, seed, init):
    layer = RecurrentLayer(cell, D, H, init=init, seed=seed, dtype=F64, device="cpu")
    x = randn(B, T, D, seed=seed, requires_grad=True)
    state = _state(cell, B, H, seed + 7)
    out_f, new_f, grads_f = _run(layer, x, state, fused=True)
    out_e, new_e, grads_e = _run(layer, x, state, fused=False)
    assert out_f.shape == out_e.shape == (B, T, H)
    assert rel(out_f, out_e) <= TOL
    assert max_rel(new_f, new_e) <= TOL
    assert max_rel(list(grads_f), list(grads_e)) <= TOL


@given(B=st.integers(1, 3), T=st.integers(1, 6), H=st.integers(1, 5), seed=st.integers(0, 99))
def test_irnn_relu_forms_agree(B, T, H, seed):
    layer = RecurrentLayer("rnn", 2, H, init="identity", seed=seed, dtype=F64, device="cpu")
    assert layer.nonlinearity == "relu"
    x = randn(B, T, 2, seed=seed, requires_grad=True)
    out_f, _, grads_f = _run(layer, x, None, fused=True)
    out_e, _, grads_e = _run(layer, x, None, fused=False)
    assert rel(out_f, out_e) <= TOL
    assert max_rel(list(grads_f), list(grads_e)) <= TOL


def _scalar_loss(layer, x):
    out, state = layer(x)
    h = _flat(state)[0]
    return out.sin().sum() + (h * h).sum()


@pytest.mark.parametrize("cell", CELLS)
def test_explicit_gradient_matches_finite_differences(cell):
    layer = RecurrentLayer(cell, 2, 3, fused=False, seed=3, dtype=F64, device="cpu")
    x = randn(2, 4, 2, seed=1)
    for param in (layer.core.weight_hh_l0, layer.core.bias_ih_l0):
        (grad,) = torch.autograd.grad(_scalar_loss(layer, x), param)
        assert rel(grad, finite_difference(lambda: _scalar_loss(layer, x), param)) <= 1e-7


def test_layer_norm_cell_follows_its_equation_and_gradient():
    layer = RecurrentLayer(
        "rnn", 2, 4, layer_norm=True, fused=False, seed=2, dtype=F64, device="cpu"
    )
    with torch.no_grad():
        layer.norm.weight.copy_(randn(4, seed=5))
        layer.norm.bias.copy_(randn(4, seed=6))
    x, h0 = randn(3, 2, 2, seed=1), randn(3, 4, seed=2)
    out, _ = layer(x, h0)
    core = layer.core
    h = h0
    for t in range(2):
        pre = (
            x[:, t] @ core.weight_ih_l0.T
            + core.bias_ih_l0
            + h @ core.weight_hh_l0.T
            + core.bias_hh_l0
        )
        h = torch.tanh(F.layer_norm(pre, (4,), layer.norm.weight, layer.norm.bias, 1e-5))
        assert rel(out[:, t], h) <= 1e-14
    param = layer.core.weight_hh_l0
    (grad,) = torch.autograd.grad(_scalar_loss(layer, x), param)
    assert rel(grad, finite_difference(lambda: _scalar_loss(layer, x), param)) <= 1e-7
    with pytest.raises(ValueError, match="fused"):
        layer.fused = True


def test_initialisations():
    H = 6
    ortho = RecurrentLayer("lstm", 3, H, init="orthogonal", dtype=F64, device="cpu")
    for block in ortho.core.weight_hh_l0.detach().split(H):
        assert torch.allclose(block.T @ block, torch.eye(H, dtype=F64), atol=1e-12)
    assert not ortho.core.bias_ih_l0.any() and not ortho.core.bias_hh_l0.any()
    irnn = RecurrentLayer("rnn", 3, H, init="identity", device="cpu")
    assert torch.equal(irnn.core.weight_hh_l0.detach(), torch.eye(H))
    assert 0 < irnn.core.weight_ih_l0.detach().std() < 3e-3
    default = RecurrentLayer("gru", 3, H, device="cpu")
    assert all(p.detach().abs().max() <= 1 / math.sqrt(H) for p in default.parameters())
    forget = RecurrentLayer("lstm", 3, H, forget_bias=-3.0, device="cpu")
    assert torch.equal(forget.core.bias_ih_l0.detach()[H : 2 * H], torch.full((H,), -3.0))
    assert not forget.core.bias_hh_l0.detach()[H : 2 * H].any()


def test_seed_makes_weights_reproducible():
    a, b, c = (CharLM(11, 8, seed=s, device="cpu") for s in (4, 4, 5))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.rnn.core.weight_hh_l0, c.rnn.core.weight_hh_l0)
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    d = SequenceRegressor(2, 5, seed=g1, device="cpu")
    e = SequenceRegressor(2, 5, seed=g2, device="cpu")
    assert all(torch.equal(p, q) for p, q in zip(d.parameters(), e.parameters()))


@pytest.mark.parametrize("cell", CELLS)
def test_init_state_shapes(cell):
    layer = RecurrentLayer(cell, 2, 5, device="cpu")
    state = layer.init_state(3)
    for part in _flat(state):
        assert part.shape == (3, 5) and not part.any()
    out, new = layer(torch.zeros(3, 4, 2), state)
    assert out.shape == (3, 4, 5)
    assert [p.shape for p in _flat(new)] == [p.shape for p in _flat(state)]


@pytest.mark.parametrize("fused", [True, False])
def test_char_lm_shapes_and_forms(fused):
    model = CharLM(13, 7, embedding_dim=4, cell="gru", fused=fused, dtype=F64, device="cpu")
    tokens = torch.randint(0, 13, (2, 5), generator=torch.Generator().manual_seed(0))
    logits, state = model(tokens)
    assert logits.shape == (2, 5, 13) and state.shape == (2, 7)
    model.rnn.fused = not fused
    other, _ = model(tokens)
    assert rel(logits, other) <= TOL


def test_char_lm_sample_is_reproducible():
    model = CharLM(9, 8, device="cpu")
    prefix = torch.tensor([1, 2, 3])
    first = model.sample(prefix, 20, generator=torch.Generator().manual_seed(1))
    again = model.sample(prefix, 20, generator=torch.Generator().manual_seed(1))
    assert first.shape == (23,) and torch.equal(first, again)
    assert torch.equal(first[:3], prefix) and int(first.max()) < 9
    cold = model.sample(prefix, 20, temperature=1e-3)
    # at a tiny temperature sampling is greedy: each id is the argmax of the logits
    logits, _ = model(cold[:-1].view(1, -1))
    assert torch.equal(logits[0, 2:].argmax(-1), cold[3:])


def test_sequence_regressor_readouts():
    x = torch.zeros(4, 6, 3)
    last = SequenceRegressor(3, 5, 2, device="cpu")
    every = SequenceRegressor(3, 5, 2, readout="all", device="cpu")
    assert last(x)[0].shape == (4, 2)
    assert every(x)[0].shape == (4, 6, 2)
    assert torch.allclose(every(x)[0][:, -1], last(x)[0])


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"cell": "elman"}, ValueError, "cell"),
        ({"init": "xavier"}, ValueError, "init"),
        ({"hidden_size": 0}, ValueError, "hidden_size"),
        ({"input_size": 2.0}, TypeError, "input_size"),
        ({"cell": "lstm", "init": "identity"}, ValueError, "init"),
        ({"cell": "gru", "nonlinearity": "relu"}, ValueError, "nonlinearity"),
        ({"cell": "lstm", "layer_norm": True}, ValueError, "layer_norm"),
        ({"cell": "gru", "forget_bias": 1.0}, ValueError, "forget_bias"),
        ({"cell": "lstm", "forget_bias": "high"}, TypeError, "forget_bias"),
        ({"nonlinearity": "sigmoid"}, ValueError, "nonlinearity"),
        ({"layer_norm": True}, ValueError, "fused"),
        ({"seed": "seven"}, TypeError, "seed"),
        ({"device": "tpu"}, ValueError, "device"),
    ],
)
def test_bad_layer_arguments_name_the_argument(kwargs, error, name):
    args = {"cell": "rnn", "input_size": 2, "hidden_size": 3, "device": "cpu", **kwargs}
    with pytest.raises(error, match=name):
        RecurrentLayer(args.pop("cell"), args.pop("input_size"), args.pop("hidden_size"), **args)


def test_bad_inputs_and_states_name_the_argument():
    rnn = RecurrentLayer("rnn", 2, 3, device="cpu")
    lstm = RecurrentLayer("lstm", 2, 3, device="cpu")
    x = torch.zeros(4, 5, 2)
    with pytest.raises(ValueError, match=r"x: expected shape \(B, T, D\) with D = 2.*\(4, 5\)"):
        rnn(torch.zeros(4, 5))
    with pytest.raises(ValueError, match="x: .*D = 2.*got \\(4, 5, 3\\)"):
        rnn(torch.zeros(4, 5, 3))
    with pytest.raises(ValueError, match="x: .*T >= 1"):
        rnn(torch.zeros(4, 0, 2))
    with pytest.raises(ValueError, match="x: expected dtype torch.float32"):
        rnn(x.double())
    with pytest.raises(TypeError, match="x: expected a tensor"):
        rnn([[0.0, 1.0]])
    with pytest.raises(
        ValueError, match=r"state: expected shape \(B, H\) = \(4, 3\), got \(3, 3\)"
    ):
        rnn(x, torch.zeros(3, 3))
    with pytest.raises(ValueError, match="state: expected shape"):
        rnn(x, torch.zeros(1, 4, 3))  # torch.nn.RNN's (layers, B, H) layout is not ours
    with pytest.raises(TypeError, match=r"state: an LSTM state is a pair \(h, c\)"):
        lstm(x, torch.zeros(4, 3))
    with pytest.raises(ValueError, match="state: expected shape"):
        lstm(x, (torch.zeros(4, 3), torch.zeros(4, 2)))
    with pytest.raises(ValueError, match="state: expected dtype"):
        rnn(x, torch.zeros(4, 3, dtype=F64))
    with pytest.raises(TypeError, match="fused: expected a bool"):
        rnn.fused = 1
    model = CharLM(5, 3, device="cpu")
    with pytest.raises(ValueError, match="tokens: expected integer ids"):
        model(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"tokens: expected ids in \[0, 5\).*got ids in \[0, 7\]"):
        model(torch.tensor([[0, 7, 1]]))  # beyond the vocabulary: not torch's raw IndexError
    with pytest.raises(ValueError, match=r"tokens: expected ids in \[0, 5\).*got ids in \[-1, 2\]"):
        model(torch.tensor([[-1, 2]]))
    with pytest.raises(ValueError, match=r"tokens: expected ids in \[0, 5\)"):
        model.sample(torch.tensor([9]), 3)
    with pytest.raises(ValueError, match="prefix"):
        model.sample(torch.tensor([], dtype=torch.long), 3)
    with pytest.raises(ValueError, match="length"):
        model.sample(torch.tensor([1]), -1)
    with pytest.raises(ValueError, match="temperature"):
        model.sample(torch.tensor([1]), 3, temperature=0.0)
    with pytest.raises(ValueError, match="readout"):
        SequenceRegressor(2, 3, readout="mean", device="cpu")


def test_capstone_configs_are_copies_and_unknown_scales_are_refused():
    from bptt.torch import CAPSTONE_CONFIGS, capstone_config

    small = capstone_config("small")
    small["hidden"] = -1
    assert CAPSTONE_CONFIGS["small"]["hidden"] > 0, "capstone_config returns a copy"
    assert capstone_config("full")["hidden"] > capstone_config("small")["hidden"]
    with pytest.raises(ValueError, match="unknown capstone scale 'huge'.*BPTT_SCALE"):
        capstone_config("huge")


def test_token_cross_entropy_names_the_logits_when_they_are_not_three_dimensional():
    from bptt.torch import token_cross_entropy

    targets = torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match=r"logits: expected a tensor of shape \(B, T, V\).*\(4, 8\)"):
        token_cross_entropy(torch.zeros(4, 8), targets)  # (N, V) logits, as F.cross_entropy takes
    with pytest.raises(ValueError, match=r"targets: expected shape \(B, T\) = \(2, 3\)"):
        token_cross_entropy(torch.zeros(2, 3, 5), torch.zeros(2, 4, dtype=torch.long))


def test_capstone_learning_rate_falls_linearly_from_lr_to_lr_final():
    from bptt.torch import capstone_config, capstone_lr

    config = capstone_config("small")
    rates = [capstone_lr(config, r) for r in range(config["rounds"])]
    assert rates[0] == pytest.approx(config["lr"]) and rates[-1] == pytest.approx(config["lr_final"])
    assert all(a > b for a, b in itertools.pairwise(rates))
    with pytest.raises(ValueError, match="round_"):
        capstone_lr(config, config["rounds"])


TINY_CAPSTONE = {"hidden": 16, "embedding": 8, "batch": 4, "rounds": 3, "updates_per_round": 2,
                 "max_chars": 6_000}


def _tiny_capstone():
    from bptt import tasks
    from bptt.torch import capstone_config

    config = capstone_config("small")
    config.update(TINY_CAPSTONE)
    return config, tasks.char_corpus(max_chars=config["max_chars"], seed=0)


def test_train_capstone_records_every_round_and_repeats_itself_for_a_seed():
    from bptt.torch import CAPSTONE_CHUNK, batchify, capstone_model, next_token_pairs, stream_bpc
    from bptt.torch.capstone import train_capstone

    config, corpus = _tiny_capstone()
    run = train_capstone(config, corpus, seed=3, valid_streams=2, device="cpu")
    assert run.updates == [0, 2, 4, 6] and len(run.grad_norm) == len(run.clipped) == 6
    assert len(run.valid_bpc) == len(run.train_bpc) == 4 and math.isnan(run.train_bpc[0])
    x_valid, y_valid = next_token_pairs(batchify(corpus.valid, 2, device="cpu"))
    untrained = capstone_model(config, len(corpus.vocab), seed=3, device="cpu")
    assert run.valid_bpc[0] == pytest.approx(stream_bpc(untrained, x_valid, y_valid), abs=1e-12)
    assert run.final_bpc == pytest.approx(stream_bpc(run.model, x_valid, y_valid), abs=1e-12)
    assert run.final_bpc < run.valid_bpc[0]
    again = train_capstone(config, corpus, seed=3, valid_streams=2, device="cpu")
    assert again.valid_bpc == run.valid_bpc
    other = train_capstone(config, corpus, seed=4, valid_streams=2, device="cpu")
    assert other.final_bpc != run.final_bpc
    too_long = dict(config, updates_per_round=corpus.train.size // (4 * CAPSTONE_CHUNK) + 1)
    with pytest.raises(ValueError, match="corpus: its training text gives streams"):
        train_capstone(too_long, corpus, device="cpu")


def test_stream_bpc_and_token_bits_agree_and_restore_the_mode():
    # two paths: stream_bpc runs chunks of 256 steps through evaluate_stream; token_bits runs
    # one pass and keeps every step
    from bptt.torch import batchify, capstone_model, next_token_pairs, stream_bpc, token_bits

    config, corpus = _tiny_capstone()
    model = capstone_model(config, len(corpus.vocab), seed=0, device="cpu")
    x, y = next_token_pairs(batchify(corpus.valid, 2, device="cpu"))
    assert x.shape[1] > 256, "the stream spans several evaluation chunks"
    model.train()
    bpc = stream_bpc(model, x, y)
    bits = token_bits(model, x, y)
    assert model.training, "both put the model back in training mode"
    assert bits.shape == x.shape and bool((bits > 0).all())
    assert bpc == pytest.approx(float(bits.mean()), rel=1e-5)
    model.eval()
    stream_bpc(model, x, y)
    token_bits(model, x, y)
    assert not model.training, "and leave a model in eval mode there"


def test_train_capstone_restarts_the_streams_when_an_epoch_ends():
    from bptt.torch import CAPSTONE_CHUNK
    from bptt.torch.capstone import train_capstone

    config, corpus = _tiny_capstone()
    steps = corpus.train.size // config["batch"] - 1
    config["updates_per_round"] = steps // (2 * CAPSTONE_CHUNK)  # two rounds per epoch
    config["rounds"] = 5  # two and a half epochs
    run = train_capstone(config, corpus, seed=0, valid_streams=2, device="cpu")
    assert run.updates == [r * config["updates_per_round"] for r in range(6)]
    assert all(math.isfinite(b) for b in run.valid_bpc) and run.final_bpc < run.valid_bpc[0]


def test_the_seed_table_was_made_with_the_chapter_configuration():
    # The capstone chapter reads benchmarks/results/capstone_seeds.json: a configuration
    # changed without re-running `python -m benchmarks capstone_seeds` fails here.
    import json
    from pathlib import Path

    from bptt.torch import capstone_config
    from bptt.torch.capstone import CAPSTONE_SEEDS

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "capstone_seeds.json"
    record = json.loads(path.read_text())
    assert record["meta"]["config"] == capstone_config("small")
    assert [row[0] for row in record["rows"]] == list(CAPSTONE_SEEDS)
