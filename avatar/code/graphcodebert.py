"""GraphCodeBERT's model inputs and forward pass, built from ``avatar.code.dataflow``'s graphs.

GraphCodeBERT (Guo et al., ICLR 2021) feeds its encoder, beside the code subwords, one
extra input position per variable occurrence; attention between those positions follows
the data flow. This module holds the tensor side:

* ``graph_inputs``: token ids, position ids and the (L, L) attention mask for one snippet;
* ``graph_guided_forward``: runs a ``RobertaForSequenceClassification`` the way
  GraphCodeBERT does (a node's input embedding is the mean of its subwords' embeddings).

Kept apart from the parsing so that the data-flow analysis has no torch dependency and
the fine-tuning code (``avatar.teach.finetune``) is the only one importing these tensors.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Any

from avatar.code.dataflow import DataFlowEdge, analyse_code
from avatar.core.errors import AvatarError

if TYPE_CHECKING:
    import torch


def _linked(edges: list[DataFlowEdge]) -> list[DataFlowEdge]:
    """Drop isolated nodes (no sources, source of nothing): they would spend input positions."""
    used = {s for e in edges for s in e.source_indices}
    return [e for e in edges if e.source_indices or e.token_index in used]


def _subword_owners(tokens: list[str], offsets: list[tuple[int, int]], text: str) -> list[int]:
    """The code token of each subword, from its character offsets in ``" ".join(tokens)``."""
    starts, pos = [], 0
    for token in tokens:
        starts.append(pos)
        pos += len(token) + 1
    owners = []
    for start, end in offsets:
        at = start
        while at < end and text[at].isspace():  # a bare "Ġ" belongs to the token after it
            at += 1
        while at < len(text) and text[at].isspace():
            at += 1
        owners.append(min(max(bisect.bisect_right(starts, at) - 1, 0), len(tokens) - 1))
    return owners


def _special_ids(tokenizer: Any) -> tuple[int, int, int, int]:
    ids = {name: getattr(tokenizer, f"{name}_token_id", None) for name in ("cls", "sep", "unk", "pad")}
    missing = [name for name, value in ids.items() if value is None]
    if missing:
        raise AvatarError(f"graph_inputs needs a tokenizer with {', '.join(missing)} token(s) set")
    return ids["cls"], ids["sep"], ids["unk"], ids["pad"]


def graph_inputs(
    tokenizer: Any, code: str, language: str, code_length: int, data_flow_length: int
) -> dict[str, torch.Tensor]:
    """GraphCodeBERT's inputs for one snippet: ``input_ids``, ``position_idx``, ``attn_mask``.

    Layout (length ``L = code_length + data_flow_length``): ``<s>``, the code subwords,
    ``</s>``, one ``<unk>`` per data-flow node, padding. As in GraphCodeBERT the code may
    use the node budget the graph leaves free: code gets ``L - 2 - min(nodes, data_flow_length)``
    subwords. Nodes are the linked variable occurrences (isolated ones are dropped) whose
    token survived truncation, in token order. ``position_idx``: ``i + 2`` for the i-th code
    position (incl. ``<s>``/``</s>``), 0 for nodes, 1 for padding (RoBERTa's padding_idx).

    ``attn_mask[q, k]`` (bool, True = q may attend to k):
    code positions (incl. ``<s>``/``</s>``) see each other; ``<s>`` and ``</s>`` see every
    non-padding position; a node and the subwords of its own token see each other; a node
    sees the nodes it comes from / is computed from; every position sees itself (so no row
    is empty, padding included). Nodes do not see ``<s>``/``</s>``, which keeps
    ``attn_mask[node, code]`` exactly the node's subwords for ``graph_guided_forward``.
    """
    import torch

    if code_length < 2 or data_flow_length < 0:
        raise AvatarError(
            f"need code_length >= 2 and data_flow_length >= 0, got {code_length} and {data_flow_length}"
        )
    cls_id, sep_id, unk_id, pad_id = _special_ids(tokenizer)
    tokens, edges = analyse_code(code, language)
    edges = _linked(edges)
    text = " ".join(tokens)
    try:
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    except NotImplementedError as err:
        raise AvatarError("graph_inputs needs a fast tokenizer (offset mapping)") from err
    ids, owners = list(encoded["input_ids"]), _subword_owners(tokens, encoded["offset_mapping"], text)

    total = code_length + data_flow_length
    keep = total - 2 - min(len(edges), data_flow_length)
    ids, owners = ids[:keep], owners[:keep]
    spans: dict[int, tuple[int, int]] = {}  # token index -> subword positions [a, b) in the input
    for pos, owner in enumerate(owners, start=1):
        a, _ = spans.get(owner, (pos, pos))
        spans[owner] = (a, pos + 1)
    n_code = len(ids) + 2
    nodes = [e for e in edges if e.token_index in spans][: total - n_code]
    node_pos = {e.token_index: n_code + j for j, e in enumerate(nodes)}
    n_real = n_code + len(nodes)

    input_ids = torch.full((total,), pad_id, dtype=torch.long)
    input_ids[:n_code] = torch.tensor([cls_id, *ids, sep_id], dtype=torch.long)
    input_ids[n_code:n_real] = unk_id
    position_idx = torch.ones(total, dtype=torch.long)
    position_idx[:n_code] = torch.arange(2, n_code + 2)
    position_idx[n_code:n_real] = 0

    mask = torch.zeros(total, total, dtype=torch.bool)
    mask[:n_code, :n_code] = True
    mask[0, :n_real] = True
    mask[n_code - 1, :n_real] = True
    for edge in nodes:
        p = node_pos[edge.token_index]
        a, b = spans[edge.token_index]
        mask[p, a:b] = True
        mask[a:b, p] = True
        for source in edge.source_indices:
            if source in node_pos:
                mask[p, node_pos[source]] = True
    mask.fill_diagonal_(True)
    return {"input_ids": input_ids, "position_idx": position_idx, "attn_mask": mask}


def graph_embeddings(
    model: Any, input_ids: torch.Tensor, position_idx: torch.Tensor, attn_mask: torch.Tensor
) -> torch.Tensor:
    """Word embeddings with each node's row replaced by the mean of its subwords' rows.

    A node is a position with ``position_idx == 0``; its subwords are the code positions
    (``position_idx >= 2``) that ``attn_mask`` lets it see. Batched: (B, L) -> (B, L, H).
    """
    import torch

    embeddings = model.get_input_embeddings()(input_ids)
    nodes = position_idx.eq(0)
    code = position_idx.ge(2)
    node_to_code = (nodes[:, :, None] & code[:, None, :] & attn_mask.bool()).to(embeddings.dtype)
    counts = node_to_code.sum(-1, keepdim=True).clamp(min=1.0)
    averaged = torch.bmm(node_to_code / counts, embeddings)
    return torch.where(nodes[:, :, None], averaged, embeddings)


def graph_guided_forward(
    model: Any,
    input_ids: torch.Tensor,
    position_idx: torch.Tensor,
    attn_mask: torch.Tensor,
    labels: torch.Tensor | None = None,
) -> Any:
    """Run a RoBERTa classifier on GraphCodeBERT inputs (batched, as ``graph_inputs`` stacks).

    The (B, L, L) mask goes in as ``attention_mask``; transformers 4.57.6 turns any 3D mask
    into an additive (B, 1, L, L) float mask for both eager and sdpa attention (the sdpa
    fast path only rewrites 2D masks), so the default sdpa works and matches eager (tested).
    ``position_ids=position_idx`` relies on RoBERTa's ``padding_idx == 1``: position 1 is the
    zero padding embedding and nodes share the learned position 0.
    """
    limit = model.config.max_position_embeddings
    highest = int(position_idx.max())
    if highest >= limit:
        raise AvatarError(
            f"position id {highest} needs max_position_embeddings > {highest} (model has {limit}); "
            "use code_length + data_flow_length + 2 or shorter inputs"
        )
    embeddings = graph_embeddings(model, input_ids, position_idx, attn_mask)
    return model(
        inputs_embeds=embeddings,
        attention_mask=attn_mask.to(embeddings.dtype),
        position_ids=position_idx,
        labels=labels,
    )
