"""bptt.torch.tbptt: TBPTT(k1, k2) against autograd on the full graph with stop-gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given
from hypothesis import strategies as st
from torch_helpers import F64, TOL, RecordingSGD, finite_difference, max_rel, randn, rel

from bptt.torch import (
    CELLS,
    NonFiniteError,
    SequenceRegressor,
    detach_state,
    evaluate_stream,
    record_hidden,
    tbptt_schedule,
    train_tbptt,
)

mse = F.mse_loss


def _model(cell="rnn", fused=True, seed=0, H=3):
    return SequenceRegressor(
        2, H, 2, readout="all", cell=cell, fused=fused, seed=seed, dtype=F64, device="cpu"
    )


def _stream(B, T, seed=0):
    return randn(B, T, 2, seed=seed), randn(B, T, 2, seed=seed + 1)


def _initial_state(model, B, seed=5):
    state = model.init_state(B)
    if isinstance(state, tuple):
        return tuple(randn(B, s.shape[1], seed=seed + i) for i, s in enumerate(state))
    return randn(B, state.shape[1], seed=seed)


# ---------------------------------------------------------------------------- schedule
@given(T=st.integers(1, 40), k1=st.integers(1, 12), k2=st.integers(1, 12))
def test_schedule_owns_every_loss_once_and_windows_have_k2_steps(T, k1, k2):
    schedule = tbptt_schedule(T, k1, k2)
    assert len(schedule) == math.ceil(T / k1)
    assert [u.loss_start for u in schedule] == [0] + [u.end for u in schedule[:-1]]
    assert schedule[-1].end == T
    for u in schedule:
        assert u.end - u.loss_start == min(k1, T - u.loss_start)
        # the window never reaches further back than k2 - k1 steps before the first loss
        assert u.window_start == max(u.end - k2, u.loss_start - max(k2 - k1, 0), 0)
        if u.end - u.loss_start == k1:  # a full update: exactly the last k2 steps
            assert u.end - u.window_start == min(k2, u.end)
    for u in tbptt_schedule(T, k1, k2, anchor="end"):
        assert u.end - u.window_start == min(k2, u.end)
    if k1 == k2:  # the chunked scheme: every window is its own chunk, the ragged one included
        assert all(u.window_start == u.loss_start for u in schedule)


def test_schedule_examples_and_errors():
    assert tbptt_schedule(10, 4, 4) == [(0, 4, 0), (4, 8, 4), (8, 10, 8)]
    assert tbptt_schedule(10, 4, 4, anchor="end") == [(0, 4, 0), (4, 8, 4), (8, 10, 6)]
    assert tbptt_schedule(7, 2, 5) == [(0, 2, 0), (2, 4, 0), (4, 6, 1), (6, 7, 3)]
    assert tbptt_schedule(7, 2, 5, anchor="end") == [(0, 2, 0), (2, 4, 0), (4, 6, 1), (6, 7, 2)]
    assert tbptt_schedule(5, 9, 1) == [(0, 5, 4)]
    with pytest.raises(ValueError, match=r"anchor: expected one of \['losses', 'end'\], got 'x'"):
        tbptt_schedule(5, 2, 2, anchor="x")
    with pytest.raises(ValueError, match="k1: expected an integer >= 1, got 0"):
        tbptt_schedule(5, 0, 1)
    with pytest.raises(ValueError, match="k2: expected an integer >= 1, got -2"):
        tbptt_schedule(5, 1, -2)
    with pytest.raises(TypeError, match="k1"):
        tbptt_schedule(5, 2.5, 1)


# -------------------------------------------------------------- the reference: full graph
def _reference_update_grads(model, x, y, k1, k2, state0):
    """Per update: one step-by-step forward over the whole prefix 0..end with autograd, the
    state entering the window detached and earlier outputs detached; dL_n/dtheta."""
    params = list(model.parameters())
    grads = []
    for update in tbptt_schedule(x.shape[1], k1, k2):
        h, outputs = state0, []
        for t in range(update.end):
            if t == update.window_start:
                h = detach_state(h)
            out, h = model(x[:, t : t + 1], h)
            if t >= update.loss_start:
                outputs.append(out if t >= update.window_start else out.detach())
        loss = mse(torch.cat(outputs, dim=1), y[:, update.loss_start : update.end])
        grads.append(list(torch.autograd.grad(loss, params, allow_unused=True)))
        grads[-1] = [torch.zeros_like(p) if g is None else g for g, p in zip(grads[-1], params)]
    return grads


@example(cell="lstm", fused=False, B=2, T=9, k1=2, k2=5, seed=1)  # k2 > k1, T % k1 != 0
@example(cell="gru", fused=True, B=2, T=9, k1=4, k2=2, seed=2)  # k2 < k1
@example(cell="rnn", fused=False, B=1, T=7, k1=3, k2=3, seed=3)  # chunked, short last chunk
@given(
    cell=st.sampled_from(CELLS),
    fused=st.booleans(),
    B=st.integers(1, 2),
    T=st.integers(1, 9),
    k1=st.integers(1, 5),
    k2=st.integers(1, 7),
    seed=st.integers(0, 99),
)
def test_every_update_gradient_equals_the_stop_gradient_reference(cell, fused, B, T, k1, k2, seed):
    model = _model(cell, fused, seed)
    x, y = _stream(B, T, seed)
    state0 = _initial_state(model, B, seed)
    optimizer = RecordingSGD(model.parameters(), lr=0.0)
    history = train_tbptt(
        model, x, y, k1=k1, k2=k2, optimizer=optimizer, loss_fn=mse, state=state0, progress=False
    )
    expected = _reference_update_grads(model, x, y, k1, k2, state0)
    assert len(optimizer.grads) == len(expected) == history.n_updates
    for got, want in zip(optimizer.grads, expected):
        assert max_rel(got, want) <= TOL


def _reference_training(model, x, y, k1, k2, lr):
    """The documented rule with parameter updates: each update's forward runs step by step
    with the current parameters from the state the previous update's forward computed."""
    params = list(model.parameters())
    previous, losses = {0: None}, []
    for update in tbptt_schedule(x.shape[1], k1, k2):
        start = min(update.window_start, update.loss_start)
        h, outputs = previous[start], []
        states = {start: h}
        for t in range(start, update.end):
            if t == update.window_start:
                h = detach_state(h)
            with torch.set_grad_enabled(t >= update.window_start):
                out, h = model(x[:, t : t + 1], h)
            states[t + 1] = detach_state(h)
            if t >= update.loss_start:
                outputs.append(out)
        loss = mse(torch.cat(outputs, dim=1), y[:, update.loss_start : update.end])
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p -= lr * g
        previous, losses = states, losses + [float(loss.detach())]
    return losses


@pytest.mark.parametrize(("T", "k1", "k2"), [(13, 4, 4), (13, 3, 7), (13, 5, 2), (9, 9, 9)])
@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_training_with_updates_follows_the_documented_rule(T, k1, k2, cell):
    ours, reference = _model(cell, seed=1), _model(cell, seed=1)
    x, y = _stream(2, T, seed=3)
    history = train_tbptt(
        ours,
        x,
        y,
        k1=k1,
        k2=k2,
        loss_fn=mse,
        progress=False,
        optimizer=torch.optim.SGD(ours.parameters(), lr=0.3),
    )
    losses = _reference_training(reference, x, y, k1, k2, lr=0.3)
    assert rel(torch.tensor(history.loss), torch.tensor(losses)) <= TOL
    assert max_rel(list(ours.parameters()), list(reference.parameters())) <= TOL


def _hand_written_chunked_loop(model, x, y, k, lr):
    """The loop every user writes: detach, forward one chunk, backward, step; last chunk short."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    state, losses = None, []
    for t in range(0, x.shape[1], k):
        state = detach_state(state)
        output, state = model(x[:, t : t + k], state)
        loss = mse(output, y[:, t : t + k])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses, detach_state(state)


@pytest.mark.parametrize(("T", "k"), [(24, 5), (13, 4), (7, 3), (10, 5)])
@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_k1_equal_k2_is_exactly_the_hand_written_chunked_loop(T, k, cell):
    ours, reference = _model(cell, seed=2), _model(cell, seed=2)
    x, y = _stream(2, T, seed=4)
    history = train_tbptt(ours, x, y, k1=k, k2=k, loss_fn=mse, progress=False,
                          optimizer=torch.optim.SGD(ours.parameters(), lr=0.3))
    losses, state = _hand_written_chunked_loop(reference, x, y, k, lr=0.3)
    assert history.loss == losses  # bit for bit: the same operations in the same order
    for a, b in zip(ours.parameters(), reference.parameters()):
        assert torch.equal(a, b)
    final = history.final_state if isinstance(state, tuple) else (history.final_state,)
    for a, b in zip(final, state if isinstance(state, tuple) else (state,)):
        assert torch.equal(a, b)


def test_anchor_end_reaches_into_the_previous_chunk_and_differs():
    """The other scheme, kept by name: on T = 24, k = 5 its last window re-runs step 20."""
    ours, reference = _model("rnn", seed=2), _model("rnn", seed=2)
    x, y = _stream(2, 24, seed=4)
    train_tbptt(ours, x, y, k1=5, k2=5, loss_fn=mse, progress=False, anchor="end",
                optimizer=torch.optim.SGD(ours.parameters(), lr=0.3))
    _hand_written_chunked_loop(reference, x, y, 5, lr=0.3)
    assert max_rel(list(ours.parameters()), list(reference.parameters())) > 1e-4


def test_k1_equal_k2_equal_T_is_full_bptt():
    model = _model("gru")
    x, y = _stream(3, 9)
    optimizer = RecordingSGD(model.parameters())
    train_tbptt(model, x, y, k1=9, k2=9, optimizer=optimizer, loss_fn=mse, progress=False)
    full = torch.autograd.grad(mse(model(x)[0], y), list(model.parameters()))
    assert len(optimizer.grads) == 1
    assert max_rel(optimizer.grads[0], list(full)) <= TOL


def test_truncated_gradient_matches_finite_differences_of_its_definition():
    """Update 2 of TBPTT(5, 3) on T = 10: the loss of steps 5..9 with the states up to step 7
    computed by frozen parameters - its centred differences equal the recorded gradient."""
    model = _model("rnn", seed=4)
    x, y = _stream(2, 10, seed=2)
    optimizer = RecordingSGD(model.parameters())
    train_tbptt(model, x, y, k1=5, k2=3, optimizer=optimizer, loss_fn=mse, progress=False)
    with torch.no_grad():
        frozen_out, h7 = model(x[:, :7])

    def loss_of_window_parameters():
        out, _ = model(x[:, 7:], h7)
        return mse(torch.cat([frozen_out[:, 5:7], out], dim=1), y[:, 5:])

    for index, param in enumerate(model.parameters()):
        fd = finite_difference(loss_of_window_parameters, param)
        assert rel(optimizer.grads[1][index], fd) <= 1e-7


# ------------------------------------------------------------------ monitoring, clipping
def test_history_records_norms_and_continues_the_stream():
    model = _model("lstm")
    x, y = _stream(2, 12)
    history = train_tbptt(
        model,
        x,
        y,
        k1=5,
        k2=5,
        optimizer=RecordingSGD(model.parameters()),
        loss_fn=mse,
        progress=False,
    )
    assert history.n_updates == 3 and history.steps == [(0, 5), (5, 10), (10, 12)]
    assert set(history.param_grad_norms) == {n for n, _ in model.named_parameters()}
    for i, norm in enumerate(history.grad_norm):
        per_param = [values[i] for values in history.param_grad_norms.values()]
        assert norm == pytest.approx(math.sqrt(sum(v * v for v in per_param)), rel=1e-12)
    assert all(rate > 0 for rate in history.tokens_per_s) and history.mean_tokens_per_s > 0
    assert history.clip_count == history.value_clip_count == 0
    with torch.no_grad():
        _, final = model(x)
    assert max_rel(list(history.final_state), list(final)) <= TOL


def test_clip_norm_rescales_to_exactly_the_threshold():
    model = _model()
    x, y = _stream(2, 12)
    optimizer = RecordingSGD(model.parameters())
    history = train_tbptt(
        model, x, y, k1=4, k2=4, optimizer=optimizer, loss_fn=mse, clip_norm=1e-3, progress=False
    )
    assert history.clip_count == 3 and all(history.clipped)
    for grads, raw in zip(optimizer.grads, history.grad_norm):
        assert raw > 1e-3
        assert math.sqrt(sum(float(g.norm()) ** 2 for g in grads)) == pytest.approx(1e-3, rel=1e-12)
    loose = train_tbptt(
        model,
        x,
        y,
        k1=4,
        k2=4,
        optimizer=RecordingSGD(model.parameters()),
        loss_fn=mse,
        clip_norm=1e6,
        progress=False,
    )
    assert loose.clip_count == 0


def test_clip_value_clamps_and_counts_entries():
    model = _model()
    x, y = _stream(2, 8)
    raw = RecordingSGD(model.parameters())
    train_tbptt(model, x, y, k1=4, k2=4, optimizer=raw, loss_fn=mse, progress=False)
    clipped = RecordingSGD(model.parameters())
    history = train_tbptt(
        model,
        x,
        y,
        k1=4,
        k2=4,
        optimizer=clipped,
        loss_fn=mse,
        clip_value=0.05,
        clip_norm=0.1,
        progress=False,
    )
    for n, (before, after) in enumerate(zip(raw.grads, clipped.grads)):
        assert history.values_clipped[n] == sum(int((g.abs() > 0.05).sum()) for g in before)
        value_clipped = [g.clamp(-0.05, 0.05) for g in before]
        norm = math.sqrt(sum(float(g.norm()) ** 2 for g in value_clipped))
        scale = min(1.0, 0.1 / norm)
        assert max_rel(after, [g * scale for g in value_clipped]) <= 1e-12
    assert history.value_clip_count == sum(1 for m in history.values_clipped if m > 0) > 0


def test_hidden_gradient_norms_per_window_step():
    model = _model("gru", fused=False)
    x, y = _stream(2, 10)
    history = train_tbptt(
        model,
        x,
        y,
        k1=10,
        k2=10,
        optimizer=RecordingSGD(model.parameters()),
        loss_fn=mse,
        track_hidden=True,
        progress=False,
    )
    with record_hidden(model) as record:
        mse(model(x)[0], y).backward()
    assert rel(history.hidden_grad_norms[0], record.grad_norms()) <= TOL
    chunked = train_tbptt(
        model,
        x,
        y,
        k1=4,
        k2=3,
        optimizer=RecordingSGD(model.parameters()),
        loss_fn=mse,
        track_hidden=True,
        progress=False,
    )
    # windows 2-4, 6-8 and the short last update's own steps 9-10 (it never reaches back)
    assert [len(n) for n in chunked.hidden_grad_norms] == [3, 3, 2]
    assert all(bool((n > 0).all()) for n in chunked.hidden_grad_norms)
    assert model.rnn.recorder is None
    model.rnn.fused = True
    with pytest.raises(ValueError, match="model: its RecurrentLayer is fused"):
        train_tbptt(
            model,
            x,
            y,
            k1=4,
            k2=4,
            optimizer=RecordingSGD(model.parameters()),
            loss_fn=mse,
            track_hidden=True,
            progress=False,
        )


def test_nan_stops_training_naming_update_loss_norm_and_remedies():
    model = _model()
    x, y = _stream(2, 20)
    x[:, 11] = float("nan")
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    with pytest.raises(NonFiniteError) as error:
        train_tbptt(model, x, y, k1=5, k2=5, optimizer=optimizer, loss_fn=mse, progress=False)
    message = str(error.value)
    for part in (
        "update 3",
        "time steps 10..14",
        "loss = nan",
        "gradient norm = nan",
        "clip_norm",
        "learning rate (now 0)",
    ):
        assert part in message
    assert all(torch.equal(p, q) for p, q in zip(before, model.parameters()))


def test_inf_gradient_is_caught_too():
    model = _model()
    x, y = _stream(1, 4)
    y[0, 3, 0] = float("inf")
    with pytest.raises(NonFiniteError, match="update 1 .*loss = inf"):
        train_tbptt(
            model,
            x,
            y,
            k1=4,
            k2=4,
            loss_fn=mse,
            progress=False,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        )


def test_same_seed_same_history():
    runs = []
    for _ in range(2):
        model = _model("lstm", seed=8)
        x, y = _stream(2, 15, seed=8)
        history = train_tbptt(
            model,
            x,
            y,
            k1=4,
            k2=6,
            loss_fn=mse,
            progress=False,
            optimizer=torch.optim.Adam(model.parameters(), lr=0.01),
        )
        runs.append((history.loss, history.grad_norm))
    assert runs[0] == runs[1]


def test_progress_bar_follows_the_environment(monkeypatch, capsys):
    model = _model()
    x, y = _stream(1, 6)
    args = {"k1": 2, "k2": 2, "loss_fn": mse, "optimizer": RecordingSGD(model.parameters())}
    monkeypatch.setenv("BPTT_PROGRESS", "1")
    train_tbptt(model, x, y, **args)
    assert "TBPTT(2, 2)" in capsys.readouterr().err
    train_tbptt(model, x, y, progress=False, **args)
    monkeypatch.setenv("BPTT_PROGRESS", "0")
    train_tbptt(model, x, y, **args)
    assert capsys.readouterr().err == ""


def test_evaluate_stream_is_the_stream_mean_whatever_the_chunk():
    model = _model("lstm")
    x, y = _stream(2, 11)
    state0 = _initial_state(model, 2)
    with torch.no_grad():
        out, final = model(x, state0)
    for chunk in (1, 3, 11, 50):
        loss, state = evaluate_stream(model, x, y, loss_fn=mse, chunk=chunk, state=state0)
        assert loss == pytest.approx(float(mse(out, y)), rel=1e-12)
        assert max_rel(list(state), list(final)) <= TOL


# ---------------------------------------------------------------------------- bad input
class _NoState(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(2, 2, dtype=F64)

    def forward(self, x, state=None):
        return self.linear(x)


def test_bad_arguments_name_the_argument():
    model = _model()
    x, y = _stream(2, 6)
    sgd = RecordingSGD(model.parameters())
    base = {"k1": 2, "k2": 2, "optimizer": sgd, "loss_fn": mse, "progress": False}
    cases = [
        ({"k1": 0}, ValueError, "k1: expected an integer >= 1"),
        ({"k2": 0}, ValueError, "k2: expected an integer >= 1"),
        ({"optimizer": "sgd"}, TypeError, "optimizer: expected a torch.optim.Optimizer"),
        ({"loss_fn": None}, TypeError, "loss_fn: expected a callable"),
        ({"loss_fn": lambda o, t: (o - t) ** 2}, ValueError, "loss_fn: expected a scalar"),
        ({"clip_norm": 0.0}, ValueError, "clip_norm"),
        ({"clip_value": -1}, ValueError, "clip_value"),
        (
            {"state": torch.zeros(3, 3, dtype=F64)},
            ValueError,
            r"state: expected shape \(B, H\) = \(2, 3\), got \(3, 3\)",
        ),
    ]
    for change, error, message in cases:
        with pytest.raises(error, match=message):
            train_tbptt(model, x, y, **{**base, **change})
    with pytest.raises(ValueError, match=r"y: expected the batch and time sizes of x"):
        train_tbptt(model, x, y[:1], **base)
    with pytest.raises(ValueError, match=r"y: expected the batch and time sizes of x"):
        train_tbptt(model, x, y[:, :5], **base)
    with pytest.raises(ValueError, match="x: expected a tensor on the model's device"):
        train_tbptt(model, x.to("meta"), y.to("meta"), **base)
    with pytest.raises(TypeError, match="model: expected a torch.nn.Module"):
        train_tbptt(lambda x, s: (x, s), x, y, **base)
    stateless = _NoState()
    with pytest.raises(TypeError, match=r"model: expected model\(x, state\) to return a pair"):
        train_tbptt(stateless, x, y, **{**base, "optimizer": RecordingSGD(stateless.parameters())})


def test_loss_credit_and_credit_map_follow_the_schedule():
    from bptt.torch import credit_map, loss_credit

    assert loss_credit(10, 4, 4) == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]
    assert loss_credit(8, 2, 5)[4:] == [3, 4, 3, 4]
    table = credit_map(6, 3, 3)
    assert table[4] == [False, False, False, True, True, False]
    assert all(table[s][s] for s in range(6))


# ------------------------------------------------------------------------------ one host sync
@pytest.mark.parametrize("cell,fused,dtype", [("lstm", True, torch.float32), ("rnn", False, F64),
                                              ("gru", False, torch.float32)])
def test_one_sync_norms_are_bit_for_bit_the_monitors(cell, fused, dtype):
    from bptt.torch import tbptt as module
    from bptt.torch.monitor import grad_norms

    model = SequenceRegressor(3, 5, 2, readout="all", cell=cell, fused=fused, dtype=dtype,
                              device="cpu")
    x, y = randn(2, 7, 3, seed=0).to(dtype), randn(2, 7, 2, seed=1).to(dtype)
    loss = F.mse_loss(model(x)[0], y)
    loss.backward()
    named = list(model.named_parameters())
    named[0][1].grad = None  # a parameter without a gradient counts as 0
    fast = module._loss_and_norms(loss, named)
    assert fast == (float(loss.detach()), *grad_norms(named))


def test_train_tbptt_history_is_unchanged_by_the_one_sync_path(monkeypatch):
    """The trainer's numbers are those of the per-parameter norms and float(loss) it used
    before (other chapters' stored outputs depend on them): bit for bit."""
    from bptt.torch import tbptt as module
    from bptt.torch.monitor import grad_norms

    def old(loss, named):
        norm, per_param = grad_norms(named)
        return float(loss.detach()), norm, per_param

    runs = []
    for patch in (False, True):
        if patch:
            monkeypatch.setattr(module, "_loss_and_norms", old)
        model = SequenceRegressor(3, 6, 1, readout="all", cell="lstm", fused=True, seed=3,
                                  device="cpu")
        x, y = randn(4, 50, 3, seed=5).float(), randn(4, 50, 1, seed=6).float()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        history = train_tbptt(model, x, y, k1=7, k2=9, optimizer=optimizer,
                              loss_fn=F.mse_loss, clip_norm=0.05, progress=False)
        runs.append((history.loss, history.grad_norm, history.param_grad_norms,
                     history.clipped, [p.detach().clone() for p in model.parameters()]))
    (*a, pa), (*b, pb) = runs
    assert a == b
    assert all(torch.equal(p, q) for p, q in zip(pa, pb))
