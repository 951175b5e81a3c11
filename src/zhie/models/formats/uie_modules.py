"""The torch modules zhie exports for the pointer-network extractors (docs/model-folder.md, extract rows).

- :class:`JointPointers`: PaddleNLP UIE. ``[CLS] prompt [SEP] text [SEP]`` through an ERNIE encoder, start
  and end logits per token (``linear_start`` / ``linear_end`` before their sigmoid).
- :class:`SplitPointers`: ModelScope SiameseUIE. Texts and prompts through the lower layers apart, every
  (prompt, text) pair through the upper layers together, start and end logits over the text's tokens.

Both call the ``transformers`` embedding and layer modules directly with an additive mask built here, so
what gets traced has no data-dependent branch (no "all ones: drop the mask"). The parity references
(``uie_reference``) run the original architectures' own forward instead. Imports torch at module level:
import this only while converting (the ``train`` extra).
"""

from __future__ import annotations

import torch
from torch import nn

from .uie_common import MASK_BIAS, extended_mask


def _linear(weight: torch.Tensor, bias: torch.Tensor) -> nn.Linear:
    lin = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        lin.weight.copy_(weight)
        lin.bias.copy_(bias)
    return lin


def _positions(ids: torch.Tensor) -> torch.Tensor:
    """0..T-1 per row, traced without a Python-side length."""
    return torch.cumsum(torch.ones_like(ids), dim=1) - 1


class JointPointers(nn.Module):
    """(input_ids, attention_mask, token_type_ids) -> pointers (batch, seq, 2): start, end logits.

    Positions 0..T-1 are inside the graph. ``encoder`` is the BERT that ``bert_keys.build_encoder`` makes of the
    ERNIE checkpoint: ERNIE's task-type row (task 0 for UIE) is folded into its token-type rows."""

    def __init__(self, encoder: nn.Module, start: tuple, end: tuple):
        super().__init__()
        if getattr(encoder.config, "use_task_id", False):
            raise ValueError("JointPointers takes the encoder with the task type folded in (bert_keys.build_encoder)")
        self.embeddings = encoder.embeddings
        self.layers = encoder.encoder.layer
        self.start = _linear(*start)
        self.end = _linear(*end)

    def forward(self, input_ids, attention_mask, token_type_ids):
        h = self.embeddings(input_ids=input_ids, token_type_ids=token_type_ids, position_ids=_positions(input_ids))
        bias = extended_mask(attention_mask)
        for layer in self.layers:
            h = layer(h, bias)
        return torch.cat([self.start(h), self.end(h)], dim=-1)


class SplitPointers(nn.Module):
    """(prompt_ids, prompt_mask, text_ids, text_mask, pair_prompt, pair_text) -> pointers (pairs, text_len, 2).

    SiameseUIE's inference: each text through the lower layers with token type 0 and positions 0..; each
    pair's prompt (hint) through the same lower layers with token type 1 and positions that continue after
    its text's real length; ``[text; hint]`` of each pair through the upper layers under both masks; the
    text positions kept; head and tail logits, padding set to -10000."""

    def __init__(self, bert: nn.Module, split: int, head: tuple, tail: tuple):
        super().__init__()
        self.embeddings = bert.embeddings
        self.lower = bert.encoder.layer[:split]
        self.upper = bert.encoder.layer[split:]
        self.head = _linear(*head)
        self.tail = _linear(*tail)

    def _lower(self, ids, mask, types, positions):
        h = self.embeddings(input_ids=ids, token_type_ids=types, position_ids=positions)
        bias = extended_mask(mask)
        for layer in self.lower:
            h = layer(h, bias)
        return h

    def forward(self, prompt_ids, prompt_mask, text_ids, text_mask, pair_prompt, pair_text):
        text_h = self._lower(text_ids, text_mask, torch.zeros_like(text_ids), _positions(text_ids))
        t_len = text_mask.sum(dim=1)
        hint_ids = prompt_ids.index_select(0, pair_prompt)
        hint_mask = prompt_mask.index_select(0, pair_prompt)
        hint_pos = _positions(hint_ids) + t_len.index_select(0, pair_text)[:, None]
        hint_h = self._lower(hint_ids, hint_mask, torch.ones_like(hint_ids), hint_pos)
        t_mask = text_mask.index_select(0, pair_text)
        h = torch.cat([text_h.index_select(0, pair_text), hint_h], dim=1)
        bias = extended_mask(torch.cat([t_mask, hint_mask], dim=1))
        for layer in self.upper:
            h = layer(h, bias)
        h = h[:, : text_ids.shape[1]]
        logits = torch.cat([self.head(h), self.tail(h)], dim=-1)
        return torch.where(t_mask[:, :, None] > 0, logits, torch.full_like(logits, MASK_BIAS))
