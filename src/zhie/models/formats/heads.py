"""The torch modules zhie exports from a converted BERT encoder: the graph I/O of docs/model-folder.md.

Imports torch at module level: import this only while converting (the ``train`` extra).
"""

from __future__ import annotations

import torch
from torch import nn


def encode(encoder: nn.Module, input_ids, attention_mask):
    """The encoder with token types (and ERNIE's task types) 0, made from the input's own shape: ERNIE's
    default ``torch.zeros(input_shape)`` would be traced as a constant of the dummy input's shape."""
    zeros = torch.zeros_like(input_ids)
    kw = {"task_type_ids": zeros} if getattr(encoder.config, "use_task_id", False) else {}
    return encoder(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=zeros, **kw)


class TokenScores(nn.Module):
    """(input_ids, attention_mask) -> emissions (batch, seq, labels): encoder, then a linear layer per token.
    Token types (and ERNIE's task types) are 0 inside the graph."""

    def __init__(self, encoder: nn.Module, weight: torch.Tensor, bias: torch.Tensor | None):
        super().__init__()
        self.encoder = encoder
        self.linear = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
        with torch.no_grad():
            self.linear.weight.copy_(weight)
            if bias is not None:
                self.linear.bias.copy_(bias)

    def forward(self, input_ids, attention_mask):
        h = encode(self.encoder, input_ids, attention_mask).last_hidden_state
        return self.linear(h)


class SequenceScores(nn.Module):
    """(input_ids, attention_mask) -> logits (batch, labels): the pooler's tanh(dense(h[CLS])), then the classifier."""

    def __init__(self, encoder: nn.Module, weight: torch.Tensor, bias: torch.Tensor | None):
        super().__init__()
        self.encoder = encoder
        self.classifier = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
        with torch.no_grad():
            self.classifier.weight.copy_(weight)
            if bias is not None:
                self.classifier.bias.copy_(bias)

    def forward(self, input_ids, attention_mask):
        return self.classifier(encode(self.encoder, input_ids, attention_mask).pooler_output)


def dummy_inputs(specials: dict, vocab_size: int) -> tuple:
    """Two framed rows, the second padded: what the export traces."""
    a, b, c = (x % vocab_size for x in (vocab_size // 2, vocab_size // 2 + 1, vocab_size // 2 + 2))
    cls, sep, pad = specials["cls"], specials["sep"], specials["pad"]
    ids = torch.tensor([[cls, a, b, c, sep], [cls, a, b, sep, pad]], dtype=torch.long)
    return ids, (torch.arange(5)[None, :] < torch.tensor([[5], [4]])).long()


def io_spec(task: str) -> tuple[list[str], str, dict]:
    """(input names, output name, dynamic axes) of a NER or sentiment graph."""
    names = ["input_ids", "attention_mask"]
    out = "emissions" if task == "ner" else "logits"
    axes = {n: {0: "batch", 1: "seq"} for n in names}
    axes[out] = {0: "batch", 1: "seq"} if task == "ner" else {0: "batch"}
    return names, out, axes
