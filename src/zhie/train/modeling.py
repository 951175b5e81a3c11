"""Torch modules used for training: the char encoder with a CRF tagging head."""

from __future__ import annotations

import torch
from torch import nn

from ..tasks.crf import NEG, bio_constraints


class TorchCRF(nn.Module):
    """Linear-chain CRF with BIO constraints baked in as fixed -1e4 penalties."""

    def __init__(self, labels: list[str]):
        super().__init__()
        K = len(labels)
        self.transitions = nn.Parameter(torch.zeros(K, K))
        self.start = nn.Parameter(torch.zeros(K))
        self.end = nn.Parameter(torch.zeros(K))
        allowed, allowed_start = bio_constraints(labels)
        self.register_buffer("trans_pen", torch.tensor((~allowed) * NEG, dtype=torch.float32), persistent=False)
        self.register_buffer("start_pen", torch.tensor((~allowed_start) * NEG, dtype=torch.float32), persistent=False)

    def nll(self, em: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood. em (B,T,K), tags (B,T), mask (B,T) bool with mask[:,0] True."""
        B, T, K = em.shape
        trans = self.transitions + self.trans_pen
        start = self.start + self.start_pen
        maskf = mask.float()
        # gold path score
        s = start[tags[:, 0]] + em[:, 0].gather(1, tags[:, :1]).squeeze(1)
        for t in range(1, T):
            step = trans[tags[:, t - 1], tags[:, t]] + em[:, t].gather(1, tags[:, t : t + 1]).squeeze(1)
            s = s + step * maskf[:, t]
        last = tags.gather(1, (mask.sum(1) - 1).unsqueeze(1)).squeeze(1)
        s = s + self.end[last]
        # partition
        alpha = start[None] + em[:, 0]
        for t in range(1, T):
            nxt = torch.logsumexp(alpha.unsqueeze(2) + trans[None], dim=1) + em[:, t]
            alpha = torch.where(mask[:, t : t + 1], nxt, alpha)
        logz = torch.logsumexp(alpha + self.end[None], dim=1)
        return (logz - s).mean()


class EncoderWithHead(nn.Module):
    """The encoder, its labels, dropout and a linear head over the hidden size: what every task model has."""

    def __init__(self, bert: nn.Module, labels: list[str], dropout: float = 0.1):
        super().__init__()
        self.bert = bert
        self.labels = labels
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(bert.config.hidden_size, len(labels))

    def hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


class CharTagger(EncoderWithHead):
    def __init__(self, bert: nn.Module, labels: list[str], dropout: float = 0.1):
        super().__init__(bert, labels, dropout)
        self.crf = TorchCRF(labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Emissions (B, T, K) for every position, specials included."""
        return self.head(self.dropout(self.hidden(input_ids, attention_mask)))


class SeqClassifier(EncoderWithHead):
    """Mean-pooled encoder (as e5 was pretrained) with a linear head: logits (B, C)."""

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        h = self.hidden(input_ids, attention_mask)
        m = attention_mask.unsqueeze(-1).to(h.dtype)
        pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
        return self.head(self.dropout(pooled))


class SpanExtractor(EncoderWithHead):
    """UIE-style pointer network over ``<s> prompt </s> text </s>``: a start and an end logit for
    every position, (B, T, 2); a span is a start paired with the nearest end at or after it."""

    def __init__(self, bert: nn.Module, labels: list[str] | None = None, dropout: float = 0.1):
        super().__init__(bert, list(labels or ["start", "end"]), dropout)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.hidden(input_ids, attention_mask)))
