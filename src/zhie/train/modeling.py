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

    def head_config(self) -> dict:
        """The constructor arguments beyond encoder and labels that rebuild this model (saved with a run)."""
        return {}


def reverse_within(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each row's first ``lengths[b]`` positions reversed, padding left where it is (B, T, D); its own
    inverse. Built from arange/where/gather so it exports to ONNX."""
    T = x.shape[1]
    t = torch.arange(T, device=x.device).unsqueeze(0)
    idx = torch.where(t < lengths.unsqueeze(1), lengths.unsqueeze(1) - 1 - t, t)
    return x.gather(1, idx.unsqueeze(-1).expand(-1, -1, x.shape[2]))


class BiLSTM(nn.Module):
    """A bidirectional LSTM over padded rows whose output at a real position never depends on the
    padding (the backward direction reads each row reversed within its own length), so a text gets
    the same emissions alone or in any batch; exports to ONNX without packed sequences."""

    def __init__(self, d_in: int, size: int):
        super().__init__()
        self.fwd = nn.LSTM(d_in, size, batch_first=True)
        self.bwd = nn.LSTM(d_in, size, batch_first=True)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        lengths = mask.sum(1)
        f, _ = self.fwd(x)
        b, _ = self.bwd(reverse_within(x, lengths))
        return torch.cat([f, reverse_within(b, lengths)], dim=-1)


class CharTagger(EncoderWithHead):
    """Emissions for a linear-chain CRF from the encoder's last layer; optionally with lexicon features
    (``lex_dim`` multi-hot columns per character, ``zhie.text.lexicon``) and a BiLSTM of ``lstm`` units per
    direction between the encoder and the emission layer."""

    def __init__(self, bert: nn.Module, labels: list[str], dropout: float = 0.1, lex_dim: int = 0, lstm: int = 0,
                 bigrams: int = 0):
        super().__init__(bert, labels, dropout)
        self.lex_dim, self.lstm_size, self.bigram_rows = lex_dim, lstm, bigrams
        # character bigrams (zhie.text.bigrams): a table of ``bigrams`` rows (row 0, the unknown bigram, stays
        # zero) whose vectors, two per character, are the lex_dim inputs; trained here, shipped as a file, so the
        # exported graph reads the looked-up vectors as any other per-character features
        self.bigram = None
        if bigrams:
            if lex_dim % 2:
                raise ValueError(f"bigram features need an even lex_dim (two vectors a character), not {lex_dim}")
            self.bigram = nn.Embedding(bigrams, lex_dim // 2, padding_idx=0)
            nn.init.normal_(self.bigram.weight, std=0.1)
            with torch.no_grad():
                self.bigram.weight[0].zero_()
        d = bert.config.hidden_size + lex_dim
        self.lstm = BiLSTM(d, lstm) if lstm else None
        if lex_dim or lstm:
            self.head = nn.Linear(2 * lstm if lstm else d, len(labels))
        self.crf = TorchCRF(labels)

    def head_config(self) -> dict:
        return {"lex_dim": self.lex_dim, "lstm": self.lstm_size, **({"bigrams": self.bigram_rows} if self.bigram_rows else {})}

    def emissions(self, h: torch.Tensor, attention_mask: torch.Tensor, lex: torch.Tensor | None = None) -> torch.Tensor:
        """Emissions from encoder states ``h`` (B, T, H) (and lexicon features (B, T, lex_dim), or, for a bigram
        model in training, each character's two bigram rows (B, T, 2) int64)."""
        x = self.dropout(h)
        if self.bigram is not None and not lex.is_floating_point():
            lex = self.dropout(self.bigram(lex).flatten(-2))
        if self.lex_dim:
            x = torch.cat([x, lex.to(x.dtype)], dim=-1)
        if self.lstm is not None:
            x = self.dropout(self.lstm(x, attention_mask))
        return self.head(x)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, lex: torch.Tensor | None = None) -> torch.Tensor:
        """Emissions (B, T, K) for every position, specials included."""
        return self.emissions(self.hidden(input_ids, attention_mask), attention_mask, lex)


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


def run_layers(bert: nn.Module, h: torch.Tensor, mask: torch.Tensor, first: int, last: int) -> torch.Tensor:
    """Encoder layers ``first`` .. ``last - 1`` of a ``transformers`` BERT over hidden states ``h`` (B, T, H)."""
    from transformers.masking_utils import create_bidirectional_mask

    am = create_bidirectional_mask(config=bert.config, inputs_embeds=h, attention_mask=mask)
    for layer in bert.encoder.layer[first:last]:
        h = layer(h, am)
    return h


class SplitSpanExtractor(SpanExtractor):
    """The pointer network with its encoder split, as SiameseUIE does: the first ``split`` layers read the
    prompt (``<s> prompt </s>``) and the text (``<s> text </s>``) apart, the remaining layers read them
    joined. A text window is then encoded once for all the prompts of a schema level, and each prompt
    pays only the upper layers.

    ``forward`` takes P prompts and W texts and scores M (prompt, text) pairs named by ``pair_prompt`` and
    ``pair_text``: pointers (M, T, 2) over the text positions (the text's ``<s>`` and ``</s>`` included)."""

    def __init__(self, bert: nn.Module, labels: list[str] | None = None, dropout: float = 0.1, split: int = 6):
        super().__init__(bert, labels, dropout)
        self.split = split

    def head_config(self) -> dict:
        return {"split": self.split}

    def lower(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return run_layers(self.bert, self.bert.embeddings(input_ids=ids), mask, 0, self.split)

    def forward(self, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, text_ids: torch.Tensor,
                text_mask: torch.Tensor, pair_prompt: torch.Tensor, pair_text: torch.Tensor) -> torch.Tensor:
        hp = self.lower(prompt_ids, prompt_mask).index_select(0, pair_prompt)
        ht = self.lower(text_ids, text_mask).index_select(0, pair_text)
        h = torch.cat([hp, ht], dim=1)
        m = torch.cat([prompt_mask.index_select(0, pair_prompt), text_mask.index_select(0, pair_text)], dim=1)
        h = run_layers(self.bert, h, m, self.split, self.bert.config.num_hidden_layers)
        return self.head(self.dropout(h[:, prompt_ids.shape[1]:]))


def task_model(kind: str, bert: nn.Module, labels: list[str], head_config: dict | None = None) -> EncoderWithHead:
    """The torch model of a task ('ner', 'sentiment', 'extract') over ``bert``, shaped by ``head_config`` (what
    ``head_config()`` returned when it was saved): a run and a model folder are rebuilt the same way."""
    head_config = dict(head_config or {})
    if kind == "extract" and head_config.get("split"):
        return SplitSpanExtractor(bert, labels, **head_config)
    return {"ner": CharTagger, "sentiment": SeqClassifier, "extract": SpanExtractor}[kind](bert, labels, **head_config)
