"""The checks of exercises ex18 (the character-model challenge), ex19 (RTRL and UORO), ex20 (the
checkpointing DP) and ex21 (the parallel scan) are not vacuous: solutions score full marks at two
seeds, stubs score zero, the package's own implementations agree with the checks, the checks'
independent references agree with the package, and typical wrong answers lose the part with
their specific hint."""

from __future__ import annotations

import math

import numpy as np
import pytest
from grading_helpers import (
    answer,
    assert_two_wrong_answers_per_part,
    graded_functions,
    wrong_answer_result,
    wrong_id,
)

from bptt import checkpoint_dp, ngram, rtrl, tasks, uoro
from bptt import scan as package_scan
from bptt.grading import run_checks
from bptt.grading.exercises import ex18_char_lm_challenge as ex18
from bptt.grading.exercises import ex19_online_gradients as ex19
from bptt.grading.exercises import ex20_optimal_checkpointing as ex20
from bptt.grading.exercises import ex21_parallel_scan as ex21
from bptt.grading.selfcheck import SELF_CHECK_SEED

EXERCISES = ("ex18", "ex19", "ex20", "ex21")
CHEAP = ("ex19", "ex20", "ex21")  # ex18's solution trains a model: graded once, in its own test


def _points(exercise: str, functions: dict, seed: int = SELF_CHECK_SEED) -> dict:
    return {
        r.part: (r.points, r.max_points, r.reason)
        for r in run_checks(exercise, functions, seed=seed)
    }


# ----------------------------------------------------------------------------- references


def test_the_package_uoro_step_scores_full_marks():
    def uoro_update(s_tilde, theta_tilde, J, F, nu):
        return uoro.uoro_step(s_tilde, theta_tilde, s_tilde @ J.T, nu @ F, nu)

    results = _points("ex19", {"uoro_update": uoro_update})
    assert results["uoro_update"][0] == 4, results


def test_the_check_rtrl_agrees_with_the_package():
    case = ex19._rtrl_inputs(5)
    package = rtrl.gradients(
        case["x"], case["h0"], case["W_xh"], case["W_hh"], case["b"], case["dh"]
    )
    ours, autograd = ex19._rtrl(case), ex19._autograd(case)
    for key in ex19.KEYS:
        np.testing.assert_allclose(ours[key], package[key], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(autograd[key], package[key], rtol=1e-10, atol=1e-12)


def test_exhaustive_search_agrees_with_the_recursion_of_the_package():
    """The check's brute force and the chapter's DP are independent; they agree on every entry."""
    solved = checkpoint_dp.table(ex20.MAX_BRUTE_STEPS, 4)
    for t in range(1, ex20.MAX_BRUTE_STEPS + 1):
        for m in range(1, 5):
            assert ex20.brute_force_forward_steps(t, m) == solved.cost[t, m], (t, m)


def test_the_package_scores_full_marks():
    functions = {"dp_table": lambda T, m: checkpoint_dp.table(T, m).cost}
    results = _points("ex20", functions)
    assert results["dp_table"][0] == 5, results


@pytest.mark.parametrize("seed", range(6))
def test_every_typical_mistake_is_wrong_on_the_cases_the_check_draws(seed):
    """No hint's variant coincides with the right table on the drawn sizes (else it is never seen)."""
    for case in ex20._cases(seed):
        right = ex20._expected(case)[:, 1:]
        for change, hint in ex20.VARIANTS:
            assert not np.array_equal(
                ex20._recursion(case["T"], case["m"], **change)[:, 1:], right
            ), hint


def test_the_package_combine_scores_full_marks():
    results = _points("ex21", {"combine": package_scan.combine})
    assert results["combine"][0] == 2, results


def test_the_check_loop_agrees_with_the_package_scan():
    rng = np.random.default_rng(3)
    case = ex21._recurrence(rng, 37)
    h, count = package_scan.scan(case["lam"], case["u"], case["h0"], method="hillis-steele")
    np.testing.assert_allclose(ex21._sequential(case["lam"], case["u"], case["h0"]), h, rtol=1e-12)
    assert count.rounds == ex21._rounds(37) == 6


# ----------------------------------------------------------------------------- wrong answers
# Each factory takes the solution's namespace (or None) and returns a wrong version of one function.


def _train(predict):
    return lambda ns: lambda seed: predict


def _constant(make):
    """predict returning make(V) at every position of every stream."""
    V = len(tasks.char_corpus(max_chars=ex18.MAX_CHARS, seed=0).vocab)
    return lambda streams: np.broadcast_to(make(V), streams.shape + (V,))


def _ngram_predict(order):
    """predict by an n-gram's full distributions (counting, which the rules exclude; a control)."""
    corpus = tasks.char_corpus(max_chars=ex18.MAX_CHARS, seed=0)
    V = len(corpus.vocab)
    model = ngram.fit(corpus.train, V, order)

    def predict(streams):
        out = np.full(streams.shape + (V,), -np.log(V))
        for s, row in enumerate(streams):
            keys, positions = model._context_keys(row, len(row))  # every context, every next id
            p = model._probabilities(
                [np.repeat(k, V) for k in keys],
                np.tile(np.arange(V), len(row) - 1),
                np.repeat(positions, V),
            )
            out[s, :-1] = np.log(p.reshape(len(row) - 1, V))
        return out

    return predict


def _rtrl_step(**change):
    """A wrong RTRL step: the solution's recursion with one switch of the check's thrown."""

    def factory(ns):
        def rtrl_step(S, x_t, h_prev, h_t, W_hh):
            eye = np.eye(W_hh.shape[0])
            W = W_hh.T if change.get("transposed") else W_hh
            immediate = {
                "W_xh": np.einsum("ij,nk->nijk", eye, x_t),
                "W_hh": np.einsum("ij,nk->nijk", eye, h_t if change.get("current") else h_prev),
                "b": np.broadcast_to(eye, S["b"].shape),
            }
            slope = np.ones_like(h_t) if change.get("no_slope") else 1.0 - h_t**2
            new = {}
            for key, sensitivity in S.items():
                past = (
                    0.0 if change.get("no_carry") else np.einsum("ij,nj...->ni...", W, sensitivity)
                )
                factor = slope.reshape(slope.shape + (1,) * (sensitivity.ndim - 2))
                if change.get("slope_on_immediate"):
                    new[key] = past + factor * immediate[key]
                else:
                    new[key] = factor * (past + immediate[key])
            return new

        return rtrl_step

    return factory


def _uoro(change):
    """uoro_update with rho_0, rho_1 and the two new terms as ``change`` makes them."""

    def factory(ns):
        def uoro_update(s_tilde, theta_tilde, J, F, nu):
            J_s, nu_F = s_tilde @ J.T, nu @ F
            rho_0 = np.sqrt(np.linalg.norm(theta_tilde, axis=1) / np.linalg.norm(J_s, axis=1))[
                :, None
            ]
            rho_1 = np.sqrt(np.linalg.norm(nu_F, axis=1) / np.linalg.norm(nu, axis=1))[:, None]
            return change(s_tilde, theta_tilde, J, F, nu, J_s, nu_F, rho_0, rho_1)

        return uoro_update

    return factory


def _dp(**change):
    return lambda ns: lambda T, m: ex20._recursion(T, m, **change)


def _combine(make):
    return lambda ns: make


def _loop_scan(ns):
    def scan(lam, u, h0, combine):
        lam_t, u_t, states = lam[:, 0], u[:, 0] + lam[:, 0] * h0, [u[:, 0] + lam[:, 0] * h0]
        for t in range(1, lam.shape[1]):
            lam_t, u_t = combine(lam_t, u_t, lam[:, t], u[:, t])
            states.append(u_t)
        return np.stack(states, axis=1)

    return scan


def _loop_beside_the_rounds(ns):
    """The loop computes the states; ceil(log2 T) calls of combine on one step each only count."""

    def scan(lam, u, h0, combine):
        h, prev = np.empty_like(u), h0
        for t in range(lam.shape[1]):
            prev = lam[:, t] * prev + u[:, t]
            h[:, t] = prev
        for _ in range(math.ceil(math.log2(lam.shape[1])) if lam.shape[1] > 1 else 0):
            combine(lam[:, :1], u[:, :1], lam[:, :1], u[:, :1])
        return h

    return scan


def _scan_with(change):
    """The solution's scan with its inputs or its combine changed."""

    def factory(ns):
        return lambda lam, u, h0, combine: change(ns["scan"], lam, u, h0, combine)

    return factory


def _backward_with(change):
    def factory(ns):
        def scan_backward(dh, lam, h, h0, combine):
            right = ns["scan_backward"](dh, lam, h, h0, combine)
            return change(right, dh, lam, h, h0)

        return scan_backward

    return factory


def _h_prev(h, h0):
    return np.concatenate([h0[:, None], h[:, :-1]], axis=1)


def _same_step_coefficient(ns):
    def scan_backward(dh, lam, h, h0, combine):
        flip = lambda a: a[:, ::-1].copy()
        bar = flip(ns["scan"](flip(lam), flip(dh), np.zeros_like(h0), combine))
        return {"lam": bar * _h_prev(h, h0), "u": bar, "h0": lam[:, 0] * bar[:, 0]}

    return scan_backward


def _backward_by_loop(ns):
    def scan_backward(dh, lam, h, h0, combine):
        bar, out = np.zeros_like(h0), np.zeros_like(dh)
        for t in reversed(range(dh.shape[1])):
            bar = dh[:, t] + (lam[:, t + 1] * bar if t + 1 < dh.shape[1] else 0.0)
            out[:, t] = bar
        return {"lam": out * _h_prev(h, h0), "u": out, "h0": lam[:, 0] * out[:, 0]}

    return scan_backward


WRONG = [
    # ex18
    (
        "ex18",
        "challenge",
        _train(_constant(lambda V: np.full(V, -np.log(V)))),
        "points start below",
    ),
    ("ex18", "challenge", _train(_constant(lambda V: np.zeros(V))), "not logits or probabilities"),
    (
        "ex18",
        "challenge",
        _train(_constant(lambda V: np.full(V, 1 / V))),
        "not logits or probabilities",
    ),
    ("ex18", "challenge", _train(lambda streams: np.zeros(streams.shape)), "expected (8, 3750, V)"),
    ("ex18", "challenge", _train(_constant(lambda V: np.full(V, np.nan))), "NaN"),
    ("ex18", "challenge", lambda ns: lambda seed: 1.0, "should return a function"),
    ("ex18", "q1", answer("q1", 35), "not right"),  # every loss credited with the whole chunk
    ("ex18", "q1", answer("q1", 17.5), "not right"),
    ("ex18", "q2", answer("q2", 35 / 100), "not right"),  # the inverse ratio
    ("ex18", "q2", answer("q2", 65), "not right"),  # the difference of the lengths
    # ex19
    ("ex19", "rtrl_step", _rtrl_step(no_slope=True), "tanh derivative is missing"),
    ("ex19", "rtrl_step", _rtrl_step(slope_on_immediate=True), "multiplies the whole bracket"),
    ("ex19", "rtrl_step", _rtrl_step(no_carry=True), "forgets the past"),
    ("ex19", "rtrl_step", _rtrl_step(transposed=True), "not W_hh^T S_{t-1}"),
    ("ex19", "rtrl_step", _rtrl_step(current=True), "not h_{t, k}"),
    (
        "ex19",
        "rtrl_step",
        lambda ns: lambda S, *a: {k: v[:, 0] for k, v in ns["rtrl_step"](S, *a).items()},
        "has shape",
    ),
    (
        "ex19",
        "uoro_update",
        _uoro(lambda s, th, J, F, nu, Js, nuF, r0, r1: (r0 * Js + r1 * nu, th * r0 + nuF / r1)),
        "divided by rho_0",
    ),
    (
        "ex19",
        "uoro_update",
        _uoro(lambda s, th, J, F, nu, Js, nuF, r0, r1: (r0 * Js + r1 * nu, th / r0 + nuF)),
        "divided by rho_1",
    ),
    (
        "ex19",
        "uoro_update",
        _uoro(
            lambda s, th, J, F, nu, Js, nuF, r0, r1: (r0 * (s @ J) + r1 * nu, th / r0 + nuF / r1)
        ),
        "not J^T s_tilde",
    ),
    (
        "ex19",
        "uoro_update",
        _uoro(lambda s, th, J, F, nu, Js, nuF, r0, r1: (r0 * Js, th / r0)),
        "is missing",
    ),
    ("ex19", "q1", answer("q1", 64**4), "not right"),
    ("ex19", "q1", answer("q1", 2 * 64**2 + 64 * 3), "not right"),  # a backward step of BPTT
    # ex20
    ("ex20", "dp_table", _dp(single_step=0), "C(1, m) is 1, not 0"),
    ("ex20", "dp_table", _dp(fewer_slots=0), "one slot fewer"),
    ("ex20", "dp_table", _dp(reach=False), "costs y forward steps"),
    ("ex20", "dp_table", _dp(stored_whole=True), "internal-state model"),
    ("ex20", "dp_table", _dp(one_slot=lambda t: t * (t - 1) // 2), "with one slot"),
    ("ex20", "dp_table", lambda ns: lambda T, m: ns["dp_table"](T, m)[:-1], "shape"),
    (
        "ex20",
        "dp_table",
        lambda ns: lambda T, m: np.minimum(ns["dp_table"](T, m), 2 * np.arange(T + 1)[:, None]),
        "below the exhaustive search",
    ),
    ("ex20", "q1", answer("q1", 1.0), "too low"),  # full BPTT's cost, as if memory were free
    ("ex20", "q1", answer("q1", 30.0), "too high"),
    ("ex20", "q2", answer("q2", 2.0), "too low"),
    ("ex20", "q2", answer("q2", 100.0), "too high"),
    # ex21
    ("ex21", "combine", _combine(lambda l1, u1, l2, u2: (l1 * l2, l1 * u2 + u1)), "wrong order"),
    (
        "ex21",
        "combine",
        _combine(lambda l1, u1, l2, u2: (l1 * l2, u1 + u2)),
        "multiply it by lam_2",
    ),
    ("ex21", "combine", _combine(lambda l1, u1, l2, u2: (l1 + l2, l2 * u1 + u2)), "do not add"),
    ("ex21", "scan", _loop_scan, "that is the loop"),
    ("ex21", "scan", _loop_beside_the_rounds, "not on whole arrays"),
    ("ex21", "scan", _scan_with(lambda f, lam, u, h0, c: f(lam, u, 0 * h0, c)), "h_0 is missing"),
    (
        "ex21",
        "scan",
        _scan_with(
            lambda f, lam, u, h0, c: np.concatenate([h0[:, None], f(lam, u, h0, c)[:, :-1]], axis=1)
        ),
        "shifted by one step",
    ),
    (
        "ex21",
        "scan",
        _scan_with(lambda f, lam, u, h0, c: f(lam, u, h0, lambda a, b, x, y: c(x, y, a, b))),
        "arguments are swapped",
    ),
    (
        "ex21",
        "scan",
        _scan_with(lambda f, lam, u, h0, c: ex21._sequential(lam, u, h0)),
        "combine was called 0 times",
    ),
    (
        "ex21",
        "scan_backward",
        _backward_with(lambda r, dh, lam, h, h0: {**r, "lam": r["u"] * h}),
        "not with h_t",
    ),
    ("ex21", "scan_backward", _same_step_coefficient, "one step off"),
    (
        "ex21",
        "scan_backward",
        _backward_with(lambda r, dh, lam, h, h0: {**r, "h0": r["u"][:, 0]}),
        "bar h_0 = lam_1 * bar h_1",
    ),
    (
        "ex21",
        "scan_backward",
        _backward_with(
            lambda r, dh, lam, h, h0: {
                "lam": dh * _h_prev(h, h0),
                "u": dh,
                "h0": lam[:, 0] * dh[:, 0],
            }
        ),
        "only the loss at step t",
    ),
]


@pytest.mark.parametrize("case", WRONG, ids=[wrong_id(c) for c in WRONG])
def test_typical_wrong_answer_loses_the_part(namespaces, case):
    result = wrong_answer_result(namespaces, case, with_solution=case[0] in CHEAP)
    assert result.points == 0, result
    assert case[3] in result.reason, result.reason


def test_every_part_has_two_wrong_answers():
    assert_two_wrong_answers_per_part(EXERCISES, WRONG)


def test_a_prediction_of_the_right_order_earns_half_the_point():
    """1.333 is the paper's headline ratio (the internal-state model), 2.2 times too low here."""
    points, most, reason = _points("ex20", {"answers": lambda: {"q1": 4 / 3}})["q1"]
    assert (points, most) == (0.5, 1) and "too low" in reason


def test_a_scan_with_two_sweeps_earns_half_the_part(namespaces):
    """Blelloch's work-efficient scan has the right states in about 2 log2 T rounds: half marks."""
    solution = namespaces("solutions", "ex21")

    def two_sweeps(lam, u, h0, combine):
        h = solution["scan"](lam, u, h0, combine)
        for _ in range(ex21._rounds(lam.shape[1])):  # the rounds of a second sweep
            combine(lam[:, :1], u[:, :1], lam[:, :1], u[:, :1])
        return h

    points, most, reason = _points("ex21", {"scan": two_sweeps})["scan"]
    assert (points, most) == (2, 4) and "a single sweep needs only" in reason


def test_a_backward_loop_earns_half_the_part(namespaces):
    points, most, reason = _points("ex21", {"scan_backward": _backward_by_loop(None)})[
        "scan_backward"
    ]
    assert (points, most) == (2, 4) and "compute it with your scan" in reason


@pytest.mark.parametrize(
    "change",
    [
        lambda s, th, J, F, nu, Js, nuF, r0, r1: (Js + nu, th + nuF),  # no rescaling
        lambda s, th, J, F, nu, Js, nuF, r0, r1: (
            r0 * Js + r1.mean() * nu,
            th / r0 + nuF / r1.mean(),
        ),  # one rho_1 for all rows
    ],
    ids=["no-rescaling", "shared-rho_1"],
)
def test_an_unbiased_update_without_the_balancing_earns_half_the_part(change):
    points, most, reason = _points("ex19", {"uoro_update": _uoro(change)(None)})["uoro_update"]
    assert (points, most) == (2, 4) and "unbiased, but not the chapter's" in reason


# ----------------------------------------------------------------------------- ex18's challenge


@pytest.mark.slow
def test_the_solution_of_the_challenge_scores_full_marks(namespaces):
    """Trains the solution's model (about 15 s of CPU) and scores it on the held-out streams."""
    results = _points("ex18", graded_functions(namespaces("solutions", "ex18"), "ex18"))
    assert {part: r for part, r in results.items() if r[0] != r[1]} == {}


@pytest.mark.negative_control
def test_the_targets_are_the_n_grams_counting_beats_the_trigram_only():
    """The 4-gram's own distributions beat the trigram's line (half marks) but not its own line;
    the trigram's earn nothing: the targets are the opponents, strictly."""
    half = _points("ex18", {"train": _train(_ngram_predict(4))(None)})["challenge"]
    assert half[:2] == (3, 6) and "full marks need less than the 4-gram's" in half[2], half
    zero = _points("ex18", {"train": _train(_ngram_predict(3))(None)})["challenge"]
    assert zero[0] == 0 and "points start below the trigram's" in zero[2], zero


def test_the_targets_are_the_capstone_opponents():
    bars = ex18.opponents()
    assert 2.3 < bars[4] < 2.5 and 2.9 < bars[3] < 3.0, bars


def test_training_over_the_cpu_budget_loses_the_challenge(monkeypatch):
    monkeypatch.setattr(ex18, "CPU_BUDGET_S", 0.01)

    def train(seed):
        M = np.random.default_rng(seed).normal(size=(200, 200))
        for _ in range(40):
            M = np.tanh(M @ M / 200)
        return _constant(lambda V: np.full(V, -np.log(V)))

    points, _, reason = _points("ex18", {"train": train})["challenge"]
    assert points == 0 and "over the budget" in reason
