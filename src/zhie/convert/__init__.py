"""``zhie import``: checkpoints users already have, converted into zhie model folders and checked.

The formats themselves (``zhie.models.formats``) only read a checkpoint and build the original
architecture and its export in torch; they never decode. This layer sits above the task decoders: it
exports, quantises, and checks the written folder as zhie will serve it (``parity``), against the original
architecture decoded by the original's own rules (``uie_check`` for the two pointer networks).
"""
