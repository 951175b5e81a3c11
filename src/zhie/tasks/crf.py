"""Linear-chain CRF decoding in numpy: constrained Viterbi and forward-backward marginals.

Both run vectorised over a padded batch (B, T, K); the only Python loop is over time steps.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

NEG = -1e4


def bio_constraints(labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(allowed[K, K] from→to, allowed_start[K]) for BIO: I-X only after B-X or I-X."""
    K = len(labels)
    allowed = np.ones((K, K), dtype=bool)
    start = np.ones(K, dtype=bool)
    for j, lab in enumerate(labels):
        if lab.startswith("I-"):
            t = lab[2:]
            start[j] = False
            for i, prev in enumerate(labels):
                allowed[i, j] = prev in (f"B-{t}", f"I-{t}")
    return allowed, start


def _parts(label: str) -> tuple[str, str]:
    """(prefix, type) of a tag: B/I/E/S (M read as I) with a type, else ("O", "") (O itself, and labels
    such as UER's [PAD] that are no entity tag)."""
    p, sep, t = label.partition("-")
    if not sep or not t or p.upper() not in ("B", "I", "M", "E", "S"):
        return "O", ""
    p = p.upper()
    return ("I" if p == "M" else p), t


def tag_type(label: str) -> str:
    """The entity type of a tag, "" for O and for labels that are no entity tag."""
    return _parts(label)[1]


def bioes_constraints(labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(allowed[K, K] from→to, allowed_start[K], allowed_end[K]) for BIOES / BMES: I-X and E-X only after
    B-X or I-X; B, S and O only after O, E or S; a path starts outside an entity and ends outside one."""
    K = len(labels)
    parts = [_parts(lab) for lab in labels]
    allowed = np.zeros((K, K), dtype=bool)
    for i, (pi, ti) in enumerate(parts):
        for j, (pj, tj) in enumerate(parts):
            if pj in ("I", "E"):
                allowed[i, j] = pi in ("B", "I") and ti == tj
            else:
                allowed[i, j] = pi not in ("B", "I")
    start = np.array([p not in ("I", "E") for p, _ in parts])
    end = np.array([p not in ("B", "I") for p, _ in parts])
    return allowed, start, end


def scheme_of(labels: Sequence[str]) -> str:
    """``bioes`` when any tag is E-, S- or M-, else ``bio``."""
    return "bioes" if any(_parts(lab)[0] in ("E", "S") or lab[:2].upper() == "M-" for lab in labels) else "bio"


class CRF:
    """Viterbi and marginals under a linear-chain CRF.

    ``constrain`` (default): transitions the tag scheme does not allow are forbidden on top of the
    model's own scores; False keeps the model's own scores as they are (an imported CRF answers as
    its original does; the chunker still makes well-formed entities)."""

    def __init__(self, labels: Sequence[str], transitions, start, end, scheme: str = "bio", constrain: bool = True):
        self.labels = list(labels)
        K = len(self.labels)
        if scheme == "bio":
            allowed, allowed_start = bio_constraints(self.labels)
            allowed_end = np.ones(K, dtype=bool)
        elif scheme == "bioes":
            allowed, allowed_start, allowed_end = bioes_constraints(self.labels)
        else:
            raise ValueError(f"tag scheme {scheme!r}: expected 'bio' or 'bioes'")
        if not constrain:
            allowed, allowed_start, allowed_end = np.ones((K, K), bool), np.ones(K, bool), np.ones(K, bool)
        self.trans = np.where(allowed, np.asarray(transitions, dtype=np.float32), NEG).astype(np.float32)
        self.start = np.where(allowed_start, np.asarray(start, dtype=np.float32), NEG).astype(np.float32)
        self.end = np.where(allowed_end, np.asarray(end, dtype=np.float32), NEG).astype(np.float32)

    @classmethod
    def uniform(cls, labels: Sequence[str], scheme: str = "bio") -> "CRF":
        """No learned transitions (a softmax tagger): Viterbi over log-probabilities, restricted to the
        transitions the scheme allows."""
        K = len(labels)
        return cls(labels, np.zeros((K, K)), np.zeros(K), np.zeros(K), scheme=scheme)

    def viterbi(self, em: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Best tag path for each row; positions past a row's length are 0."""
        B, T, K = em.shape
        out = np.zeros((B, T), dtype=np.int64)
        if T == 0:
            return out
        score = self.start[None, :] + em[:, 0]
        back = np.zeros((B, T, K), dtype=np.int64)
        lengths = np.asarray(lengths)
        for t in range(1, T):
            cand = score[:, :, None] + self.trans[None]  # B, from, to
            best = cand.argmax(axis=1)
            new = np.take_along_axis(cand, best[:, None, :], axis=1)[:, 0] + em[:, t]
            live = (t < lengths)[:, None]
            score = np.where(live, new, score)
            back[:, t] = best
        score = score + self.end[None]
        last = score.argmax(axis=1)
        # backtrack all rows at once; each row starts from its own last position
        rows = np.arange(B)
        cur = last.copy()
        for t in range(T - 1, -1, -1):
            if t < T - 1:
                prev = back[rows, t + 1, cur]
                cur = np.where(t < lengths - 1, prev, cur)
            cur = np.where(t == lengths - 1, last, cur)
            out[:, t] = np.where(t < lengths, cur, 0)
        return out

    def marginals(self, em: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """P(tag at t = k | sentence) for each row, by forward-backward in log space."""
        B, T, K = em.shape
        if T == 0:
            return np.zeros((B, T, K), dtype=np.float32)
        lengths = np.asarray(lengths)
        trans = self.trans.astype(np.float64)
        em = em.astype(np.float64)
        alpha = np.empty((B, T, K))
        alpha[:, 0] = self.start[None] + em[:, 0]
        for t in range(1, T):
            a = _lse(alpha[:, t - 1][:, :, None] + trans[None], axis=1) + em[:, t]
            alpha[:, t] = np.where((t < lengths)[:, None], a, alpha[:, t - 1])
        beta = np.empty((B, T, K))
        beta[:, T - 1] = self.end[None]
        # rows shorter than T: beta at their last real step must be the end scores
        for t in range(T - 2, -1, -1):
            b = _lse(trans[None] + (em[:, t + 1] + beta[:, t + 1])[:, None, :], axis=2)
            is_last = (t == lengths - 1)[:, None]
            beta[:, t] = np.where(is_last, self.end[None], b)
        logz = _lse(alpha[np.arange(B), np.maximum(lengths - 1, 0)] + self.end[None], axis=1)
        post = np.exp(alpha + beta - logz[:, None, None])
        mask = np.arange(T)[None, :] < lengths[:, None]
        return (post * mask[:, :, None]).astype(np.float32)


def _lse(x: np.ndarray, axis: int) -> np.ndarray:
    m = x.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))).squeeze(axis)
