"""Tests for zhie.tasks.crf: constrained Viterbi and marginals against brute force over BIO paths."""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zhie.tasks.crf import CRF, bio_constraints

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
K = len(LABELS)
SETTINGS = settings(max_examples=80, deadline=None)


def is_allowed(path) -> bool:
    prev = None
    for k in path:
        lab = LABELS[k]
        if lab.startswith("I-"):
            if prev is None or LABELS[prev] not in (f"B-{lab[2:]}", f"I-{lab[2:]}"):
                return False
        prev = k
    return True


@lru_cache(maxsize=None)
def allowed_paths(n: int) -> np.ndarray:
    paths = [p for p in itertools.product(range(K), repeat=n) if is_allowed(p)]
    return np.asarray(paths, dtype=np.int64).reshape(len(paths), n)


def path_scores(params, em_row: np.ndarray, paths: np.ndarray) -> np.ndarray:
    """Unconstrained score of each path with the raw (float32-rounded) parameters, in float64."""
    trans, start, end = (np.asarray(x, dtype=np.float32).astype(np.float64) for x in params)
    em = em_row.astype(np.float64)
    n = paths.shape[1]
    s = start[paths[:, 0]] + end[paths[:, -1]] + em[np.arange(n), paths].sum(axis=1)
    if n > 1:
        s += trans[paths[:, :-1], paths[:, 1:]].sum(axis=1)
    return s


def brute_marginals(params, em_row: np.ndarray, n: int) -> np.ndarray:
    paths = allowed_paths(n)
    s = path_scores(params, em_row, paths)
    w = np.exp(s - s.max())
    w /= w.sum()
    out = np.zeros((n, K))
    for t in range(n):
        np.add.at(out[t], paths[:, t], w)
    return out


@st.composite
def problems(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    lengths = draw(st.lists(st.integers(1, 5), min_size=1, max_size=4))
    extra_pad = draw(st.integers(0, 2))
    scale = draw(st.sampled_from([0.5, 1.0, 3.0]))
    rng = np.random.default_rng(seed)
    params = (rng.normal(0, scale, (K, K)), rng.normal(0, scale, K), rng.normal(0, scale, K))
    B, T = len(lengths), max(lengths) + extra_pad
    em = rng.normal(0, scale, (B, T, K)).astype(np.float32)
    for b, n in enumerate(lengths):  # garbage in the padding must not matter
        em[b, n:] = rng.normal(0, 30, (T - n, K))
    return params, em, np.asarray(lengths)


def test_crf_bio_constraints_table():
    allowed, start = bio_constraints(LABELS)
    assert start.tolist() == [not lab.startswith("I-") for lab in LABELS]
    for i, a in enumerate(LABELS):
        for j, b in enumerate(LABELS):
            want = not b.startswith("I-") or a in (f"B-{b[2:]}", b)
            assert allowed[i, j] == want, (a, b)
    assert allowed.sum() == K * K - 3 * (K - 2)  # each I-X may follow only B-X and I-X


@SETTINGS
@given(problems())
def test_crf_viterbi_equals_brute_force_over_allowed_paths(prob):
    params, em, lengths = prob
    crf = CRF(LABELS, *params)
    out = crf.viterbi(em, lengths)
    assert out.shape == em.shape[:2]
    for b, n in enumerate(lengths):
        path = out[b, :n]
        assert is_allowed(path.tolist()), [LABELS[k] for k in path]
        assert (out[b, n:] == 0).all(), "padded positions must be 0"
        paths = allowed_paths(n)
        scores = path_scores(params, em[b], paths)
        best = scores.max()
        mine = path_scores(params, em[b], path[None])[0]
        # the returned path is optimal (float32 arithmetic inside: tiny tolerance) ...
        assert mine >= best - 1e-4
        # ... and is the argmax itself whenever the optimum is not a near-tie
        top2 = np.sort(scores)[-2:] if len(scores) > 1 else np.array([-np.inf, best])
        if top2[1] - top2[0] > 1e-3:
            assert path.tolist() == paths[scores.argmax()].tolist()


@SETTINGS
@given(problems())
def test_crf_padding_does_not_change_results(prob):
    params, em, lengths = prob
    crf = CRF(LABELS, *params)
    path = crf.viterbi(em, lengths)
    marg = crf.marginals(em, lengths)
    for b, n in enumerate(lengths):
        alone = em[b : b + 1, :n]
        assert path[b, :n].tolist() == crf.viterbi(alone, np.array([n]))[0].tolist()
        np.testing.assert_allclose(marg[b, :n], crf.marginals(alone, np.array([n]))[0], rtol=1e-5, atol=1e-7)


@SETTINGS
@given(problems())
def test_crf_marginals_equal_brute_force(prob):
    params, em, lengths = prob
    crf = CRF(LABELS, *params)
    marg = crf.marginals(em, lengths)
    assert marg.shape == em.shape
    assert np.isfinite(marg).all()
    for b, n in enumerate(lengths):
        np.testing.assert_allclose(marg[b, :n].sum(axis=1), 1.0, rtol=1e-4)
        np.testing.assert_allclose(marg[b, :n], brute_marginals(params, em[b], n), rtol=1e-4, atol=1e-7)
        assert (marg[b, n:] == 0).all(), "padded positions must be 0"
        # an I- tag is impossible at the start and after O
        i_tags = [k for k, lab in enumerate(LABELS) if lab.startswith("I-")]
        assert (marg[b, 0, i_tags] == 0).all()


@SETTINGS
@given(problems())
def test_crf_viterbi_path_is_a_mode_of_the_marginals_chain(prob):
    """The Viterbi path only uses tags with non-zero marginal probability."""
    params, em, lengths = prob
    crf = CRF(LABELS, *params)
    path, marg = crf.viterbi(em, lengths), crf.marginals(em, lengths)
    for b, n in enumerate(lengths):
        p = marg[b, np.arange(n), path[b, :n]]
        assert (p > 0).all()


def test_crf_constraints_win_over_strong_emissions():
    rng = np.random.default_rng(0)
    crf = CRF(LABELS, rng.normal(size=(K, K)), rng.normal(size=K), rng.normal(size=K))
    em = np.zeros((2, 4, K), dtype=np.float32)
    i_per, b_loc = LABELS.index("I-PER"), LABELS.index("B-LOC")
    em[0, :, i_per] = 500.0  # the model shouts I-PER everywhere: it cannot start an entity
    em[1, 0, b_loc] = 500.0
    em[1, 1, i_per] = 500.0  # B-LOC then I-PER is not a path
    path = crf.viterbi(em, np.array([4, 2]))
    for b, n in enumerate([4, 2]):
        assert is_allowed(path[b, :n].tolist()), [LABELS[k] for k in path[b, :n]]
    assert path[0, 0] != i_per
    assert path[1, 0] == b_loc and path[1, 1] != i_per
    marg = crf.marginals(em, np.array([4, 2]))
    assert marg[0, 0, i_per] == 0
    # B-LOC at 0 and I-PER at 1 never co-occur, however strongly both are wanted
    assert marg[1, 0, b_loc] + marg[1, 1, i_per] <= 1 + 1e-6
    assert marg[1, 0, b_loc] == pytest.approx(1 - marg[1, 1, i_per], abs=1e-5)


def test_crf_empty_rows_and_empty_batch():
    crf = CRF(LABELS, np.zeros((K, K)), np.zeros(K), np.zeros(K))
    em = np.ones((2, 3, K), dtype=np.float32)
    path = crf.viterbi(em, np.array([0, 3]))
    marg = crf.marginals(em, np.array([0, 3]))
    assert (path[0] == 0).all() and (marg[0] == 0).all()
    np.testing.assert_allclose(marg[1].sum(axis=1), 1.0, rtol=1e-5)
    assert crf.viterbi(np.zeros((2, 0, K), np.float32), np.array([0, 0])).shape == (2, 0)
    assert crf.marginals(np.zeros((2, 0, K), np.float32), np.array([0, 0])).shape == (2, 0, K)


def test_crf_uniform_scores_give_uniform_allowed_marginals():
    crf = CRF(LABELS, np.zeros((K, K)), np.zeros(K), np.zeros(K))
    m = crf.marginals(np.zeros((1, 1, K), np.float32), np.array([1]))[0, 0]
    # length 1: the four tags that may start a sentence share the mass equally
    want = np.array([0.0 if lab.startswith("I-") else 0.25 for lab in LABELS])
    np.testing.assert_allclose(m, want, rtol=1e-5)
