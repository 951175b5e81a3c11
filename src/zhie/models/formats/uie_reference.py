"""The original pointer-network architectures rebuilt in torch, for the import's parity check.

Written apart from the exported modules (``uie_modules``) and loaded from the checkpoint's *own* keys (strict),
so a wrong key map, token type, position or mask in the export shows up as a difference here.

- :class:`UieReference` is ``HUSTAI/uie_pytorch:model.py::UIE``: ``self.encoder`` an ERNIE model (transformers'
  ``ErnieModel``, the same code as uie_pytorch's ``ernie.py``, task-type embeddings included), ``linear_start``,
  ``linear_end``; its forward returns the logits before the sigmoid.
- :class:`SiameseUieReference` is ``modelscope:models/nlp/bert/siamese_uie.py::SiameseUieModel``: ``plm`` a
  ``BertModel`` whose last six layers move into ``crossattention`` (a ``BertEncoder``), ``head_clsf``,
  ``tail_clsf``, with ``get_plm_sequence_output`` / ``get_cross_attention_output`` / ``fast_inference`` as
  there; its forward runs every (hint, text) pair the way ``SiameseUiePipeline`` runs a one-window text:
  the text unpadded, the hint as tokenised, one pair at a time.

Imports torch at module level (the ``train`` extra).
"""

from __future__ import annotations

from copy import deepcopy

import torch
from torch import nn


class UieReference(nn.Module):
    def __init__(self, config, task_id: int = 0):
        from transformers import ErnieModel

        super().__init__()
        config = deepcopy(config)
        config._attn_implementation = "eager"
        self.encoder = ErnieModel(config)  # add_pooling_layer=True, as uie_pytorch builds it
        self.linear_start = nn.Linear(config.hidden_size, 1)
        self.linear_end = nn.Linear(config.hidden_size, 1)
        self.sigmoid = nn.Sigmoid()
        self.task_id = int(task_id)  # Paddle's ErnieEmbeddings: task_type_ids = ones * task_id

    def forward(self, input_ids, attention_mask, token_type_ids):
        kw = {}
        if getattr(self.encoder.config, "use_task_id", False) and self.task_id:
            kw["task_type_ids"] = torch.full_like(input_ids, self.task_id)
        out = self.encoder(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask, **kw)
        seq = out[0]
        start_logits = torch.squeeze(self.linear_start(seq), -1)
        end_logits = torch.squeeze(self.linear_end(seq), -1)
        return torch.stack([start_logits, end_logits], dim=-1)

    def probs(self, input_ids, attention_mask, token_type_ids):
        """(start_prob, end_prob) as uie_pytorch's UIE returns them."""
        logits = self.forward(input_ids, attention_mask, token_type_ids)
        return self.sigmoid(logits[..., 0]), self.sigmoid(logits[..., 1])


class SiameseUieReference(nn.Module):
    def __init__(self, config):
        from transformers import BertModel

        super().__init__()
        self.config = deepcopy(config)
        self.config._attn_implementation = "eager"
        self.plm = BertModel(self.config, add_pooling_layer=True)
        self.dropout = nn.Dropout(self.config.hidden_dropout_prob)
        self.head_clsf = nn.Linear(self.config.hidden_size, 1)
        self.tail_clsf = nn.Linear(self.config.hidden_size, 1)
        self.set_crossattention_layer()

    def set_crossattention_layer(self, num_hidden_layers: int = 6):
        from transformers.models.bert.modeling_bert import BertEncoder

        crossattention_config = deepcopy(self.config)
        crossattention_config.num_hidden_layers = num_hidden_layers
        self.config.num_hidden_layers -= num_hidden_layers
        self.crossattention = BertEncoder(crossattention_config)
        self.crossattention.layer = self.plm.encoder.layer[self.config.num_hidden_layers:]
        self.plm.encoder.layer = self.plm.encoder.layer[: self.config.num_hidden_layers]

    @staticmethod
    def get_extended_attention_mask(attention_mask, dtype=torch.float32):
        """transformers' ``ModuleUtilsMixin.get_extended_attention_mask`` for an encoder (2-D mask)."""
        extended = attention_mask[:, None, None, :].to(dtype)
        return (1.0 - extended) * torch.finfo(dtype).min

    def get_cross_attention_output(self, hidden_states, attention_mask, encoder_hidden_states, encoder_attention_mask):
        cat_hidden_states = torch.cat([hidden_states, encoder_hidden_states], dim=1)
        cat_attention_mask = torch.cat([attention_mask, encoder_attention_mask], dim=1)
        cat_attention_mask = self.get_extended_attention_mask(cat_attention_mask)
        return self.crossattention(hidden_states=cat_hidden_states, attention_mask=cat_attention_mask)[0][
            :, : hidden_states.size()[1], :]

    def get_plm_sequence_output(self, input_ids, attention_mask, position_ids=None, is_hint=False):
        token_type_ids = torch.ones_like(attention_mask) if is_hint else None
        return self.plm(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                        position_ids=position_ids)[0]

    def fast_inference(self, sequence_output, attention_masks, hint_ids, cross_attention_masks):
        position_ids = torch.arange(hint_ids.size(1)).expand((1, -1)) + sequence_output.size(1)
        hint_sequence_output = self.get_plm_sequence_output(hint_ids, cross_attention_masks, position_ids, is_hint=True)
        sequence_output = self.get_cross_attention_output(sequence_output, attention_masks, hint_sequence_output,
                                                          cross_attention_masks)
        head_logits = self.head_clsf(sequence_output).squeeze(-1)
        tail_logits = self.tail_clsf(sequence_output).squeeze(-1)
        head_probs = head_logits + (1 - attention_masks) * -10000
        tail_probs = tail_logits + (1 - attention_masks) * -10000
        return head_probs, tail_probs

    def forward(self, prompt_ids, prompt_mask, text_ids, text_mask, pair_prompt, pair_text):
        """The graph's inputs, answered one pair at a time as the pipeline does; padding -10000."""
        out = torch.full((pair_prompt.shape[0], text_ids.shape[1], 2), -10000.0)
        for r in range(pair_prompt.shape[0]):
            t, p = int(pair_text[r]), int(pair_prompt[r])
            n = int(text_mask[t].sum())
            ids, am = text_ids[t : t + 1, :n], text_mask[t : t + 1, :n]
            seq = self.get_plm_sequence_output(ids, am)
            head, tail = self.fast_inference(seq, am, prompt_ids[p : p + 1], prompt_mask[p : p + 1])
            out[r, :n, 0] = head[0]
            out[r, :n, 1] = tail[0]
        return out
