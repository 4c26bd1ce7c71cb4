"""Data-flow extraction for C and Java, GraphCodeBERT inputs, and the graph-guided forward pass.

Expected edges are written as ``name#k``: the k-th occurrence (from 0) of that token text in
``code_tokens``, so each expectation can be checked by reading the function.
"""

from __future__ import annotations

import json
import os
from itertools import islice
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

from avatar.code.dataflow import DataFlowEdge, extract_dataflow
from avatar.code.graphcodebert import graph_embeddings, graph_guided_forward, graph_inputs
from avatar.code.parsing import code_tokens
from avatar.core.errors import AvatarError


def labels(code: str, language: str) -> list[str]:
    """Each token as ``text#k`` (its k-th occurrence)."""
    seen: dict[str, int] = {}
    out = []
    for token in code_tokens(code, language):
        out.append(f"{token}#{seen.get(token, 0)}")
        seen[token] = seen.get(token, 0) + 1
    return out


def flow(code: str, language: str) -> list[str]:
    """Edges as ``"x#1 computedFrom a#1 b#1"`` lines, in token order."""
    names = labels(code, language)
    return [
        f"{names[e.token_index]} {e.relation} {' '.join(names[i] for i in e.source_indices)}".rstrip()
        for e in extract_dataflow(code, language)
    ]


def check_consistent(code: str, language: str) -> list[DataFlowEdge]:
    tokens = code_tokens(code, language)
    edges = extract_dataflow(code, language)
    for edge in edges:
        assert tokens[edge.token_index] == edge.name
        assert edge.relation in ("comesFrom", "computedFrom")
        assert len(edge.sources) == len(edge.source_indices)
        assert list(edge.source_indices) == sorted(set(edge.source_indices))
        assert [tokens[i] for i in edge.source_indices] == list(edge.sources)
    assert [e.token_index for e in edges] == sorted({e.token_index for e in edges})
    return edges


# --------------------------------------------------------------------------------------
# C

C_STRAIGHT = """
int add(int a, int b) {
    int s = a + b;   /* the sum */
    int t;
    t = s * 2;       // doubled
    s += t;
    return s;
}
"""


def test_c_tokens_drop_comments_and_keep_literals_whole() -> None:
    assert code_tokens(C_STRAIGHT, "c") == (
        "int add ( int a , int b ) { int s = a + b ; int t ; t = s * 2 ; s += t ; return s ; }".split()
    )
    assert code_tokens('char *m = "a b\\n"; char c = \'x\';', "c") == [
        "char", "*", "m", "=", '"a b\\n"', ";", "char", "c", "=", "'x'", ";",
    ]


def test_c_straight_line() -> None:
    assert flow(C_STRAIGHT, "c") == [
        "a#0 comesFrom",
        "b#0 comesFrom",
        "s#0 computedFrom a#1 b#1",
        "a#1 comesFrom a#0",
        "b#1 comesFrom b#0",
        "t#0 comesFrom",
        "t#1 computedFrom s#1",
        "s#1 comesFrom s#0",
        "s#2 computedFrom s#0 t#2",  # s += t: the old s flows in
        "t#2 comesFrom t#1",
        "s#3 comesFrom s#2",
    ]
    edge = extract_dataflow(C_STRAIGHT, "c")[2]
    assert edge == DataFlowEdge("s", 11, "computedFrom", ("a", "b"), (13, 15))


def test_c_if_else_merges_branches() -> None:
    code = """
    int sign(int x) {
        int r;
        if (x > 0) { r = 1; } else if (x < 0) { r = -1; } else { r = 0; }
        return r * x;
    }
    """
    assert flow(code, "c") == [
        "x#0 comesFrom",
        "r#0 comesFrom",
        "x#1 comesFrom x#0",
        "r#1 computedFrom",
        "x#2 comesFrom x#0",
        "r#2 computedFrom",
        "r#3 computedFrom",
        "r#4 comesFrom r#1 r#2 r#3",  # every path assigns r: the declaration does not reach
        "x#3 comesFrom x#0",
    ]


def test_c_loops_see_the_previous_iteration() -> None:
    code = """
    int sum(int *a, int n) {
        int s = 0;
        for (int i = 0; i < n; i++) {
            if (a[i] < 0) continue;
            s += a[i];
        }
        while (s > 100) s = s / 2;
        return s;
    }
    """
    assert flow(code, "c") == [
        "a#0 comesFrom",
        "n#0 comesFrom",
        "s#0 computedFrom",
        "i#0 computedFrom",
        "i#1 comesFrom i#0 i#2",
        "n#1 comesFrom n#0",
        "i#2 computedFrom i#0 i#2",
        "a#1 comesFrom a#0",
        "i#3 comesFrom i#0 i#2",
        "s#1 computedFrom s#0 s#1 a#2 i#4",
        "a#2 comesFrom a#0",
        "i#4 comesFrom i#0 i#2",
        "s#2 comesFrom s#0 s#1 s#3",
        "s#3 computedFrom s#4",
        "s#4 comesFrom s#0 s#1 s#3",
        "s#5 comesFrom s#0 s#1 s#3",
    ]


def test_c_partial_writes_keep_the_base_and_calls_are_not_variables() -> None:
    code = """
    void fill(struct buf *b, int *out, int n) {
        b->len = n;
        out[n - 1] = b->len;
        *out = strlen(b->data);
    }
    """
    assert flow(code, "c") == [
        "b#0 comesFrom",
        "out#0 comesFrom",
        "n#0 comesFrom",
        "b#1 computedFrom b#0 n#1",
        "n#1 comesFrom n#0",
        "out#1 computedFrom out#0 b#2",
        "n#2 comesFrom n#0",  # the index is an ordinary use
        "b#2 comesFrom b#1",
        "out#2 computedFrom out#1 b#3",
        "b#3 comesFrom b#1",
    ]


def test_c_block_scope_hides_inner_declarations() -> None:
    assert flow("int f(int x) { { int x = 2; x++; } return x; }", "c") == [
        "x#0 comesFrom",
        "x#1 computedFrom",
        "x#2 computedFrom x#1",
        "x#3 comesFrom x#0",
    ]


# --------------------------------------------------------------------------------------
# Java


def test_java_straight_line() -> None:
    code = "static int area(int w, int h) { int a = w * h; int b = a; a = b + 1; return a - b; }"
    assert flow(code, "java") == [
        "w#0 comesFrom",
        "h#0 comesFrom",
        "a#0 computedFrom w#1 h#1",
        "w#1 comesFrom w#0",
        "h#1 comesFrom h#0",
        "b#0 computedFrom a#1",
        "a#1 comesFrom a#0",
        "a#2 computedFrom b#1",
        "b#1 comesFrom b#0",
        "a#3 comesFrom a#2",
        "b#2 comesFrom b#0",
    ]


def test_java_if_else() -> None:
    code = """
    String grade(int score) {
        String g;
        if (score >= 90) { g = "A"; } else { g = "B"; }
        return g + score;
    }
    """
    assert flow(code, "java") == [
        "score#0 comesFrom",
        "g#0 comesFrom",
        "score#1 comesFrom score#0",
        "g#1 computedFrom",
        "g#2 computedFrom",
        "g#3 comesFrom g#1 g#2",
        "score#2 comesFrom score#0",
    ]


def test_java_while_with_break() -> None:
    code = """
    int find(int[] xs, int key) {
        int i = 0;
        while (i < xs.length) {
            if (xs[i] == key) break;
            i++;
        }
        return i;
    }
    """
    assert flow(code, "java") == [
        "xs#0 comesFrom",
        "key#0 comesFrom",
        "i#0 computedFrom",
        "i#1 comesFrom i#0 i#3",
        "xs#1 comesFrom xs#0",  # xs.length: the field name is not a variable
        "xs#2 comesFrom xs#0",
        "i#2 comesFrom i#0 i#3",
        "key#1 comesFrom key#0",
        "i#3 computedFrom i#0 i#3",
        "i#4 comesFrom i#0 i#3",
    ]


def test_java_field_access_and_foreach() -> None:
    code = """
    public int total(List<Item> items, Point p) {
        int sum = 0;
        for (Item it : items) {
            sum += it.price * p.x;
        }
        p.y = sum;
        this.count = sum;
        return Math.max(sum, p.y);
    }
    """
    assert flow(code, "java") == [
        "items#0 comesFrom",
        "p#0 comesFrom",
        "sum#0 computedFrom",
        "it#0 computedFrom items#1",
        "items#1 comesFrom items#0",
        "sum#1 computedFrom sum#0 sum#1 it#1 p#1",
        "it#1 comesFrom it#0",
        "p#1 comesFrom p#0",
        "p#2 computedFrom p#0 sum#2",  # p.y = sum: a partial write of p
        "sum#2 comesFrom sum#0 sum#1",
        "sum#3 comesFrom sum#0 sum#1",  # this.count defines no variable
        "Math#0 comesFrom",  # a class receiver looks like a variable nobody defined
        "sum#4 comesFrom sum#0 sum#1",
        "p#3 comesFrom p#2",
    ]


def test_java_class_fields_switch_and_methods_are_separate() -> None:
    code = """
    class A {
        void f(int k) {
            int x;
            switch (k) { case 1: x = n; break; case 2: x = 2; default: x += 3; }
            n = x;
        }
        int g() { return n; }
        int n = 0;
    }
    """
    assert flow(code, "java") == [
        "k#0 comesFrom",
        "x#0 comesFrom",
        "k#1 comesFrom k#0",
        "x#1 computedFrom n#0",
        "n#0 comesFrom n#3",  # fields are defined before any method runs
        "x#2 computedFrom",
        "x#3 computedFrom x#0 x#2",  # case 2 falls through into default
        "n#1 computedFrom x#4",
        "x#4 comesFrom x#1 x#3",
        "n#2 comesFrom n#3",  # f's assignment to n does not flow into g
        "n#3 computedFrom",
    ]


def test_java_lambda_try_and_pattern() -> None:
    code = """
    void f(String s, Object o) {
        try (Reader r = open(s)) { int c = r.read(); } catch (IOException e) { log(e, s); }
        xs.forEach(v -> v.run());
        if (o instanceof String t) print(t);
    }
    """
    assert flow(code, "java") == [
        "s#0 comesFrom",
        "o#0 comesFrom",
        "r#0 computedFrom s#1",
        "s#1 comesFrom s#0",
        "c#0 computedFrom r#1",
        "r#1 comesFrom r#0",
        "e#0 comesFrom",
        "e#1 comesFrom e#0",
        "s#2 comesFrom s#0",
        "xs#0 comesFrom",
        "v#0 comesFrom",
        "v#1 comesFrom v#0",
        "o#1 comesFrom o#0",
        "t#0 computedFrom o#1",
        "t#1 comesFrom t#0",
    ]


# --------------------------------------------------------------------------------------
# Bad input


GARBAGE = [
    "",
    "}{ int = = ;; ((( x",
    "int f( { x = ; return",
    "for (;;) { while } else if x += += 3",
    "\x00\xff\ud800 binary \x7f junk",
    "(" * 3000,
    "int f() { x = " + "+".join(["a"] * 3000) + "; }",
    "class { void m( { for (T t : ) { this. = ; } }",
    # 40 nested loops: walking each loop twice at every depth would take 2**40 walks
    "void f() {" + "for (i = 0; i < n; i++) { x += i;" * 40 + "}" * 40 + "}",
]


@pytest.mark.parametrize("language", ["c", "java"])
def test_garbage_never_raises(language: str) -> None:
    for code in GARBAGE:
        check_consistent(code, language)
    assert extract_dataflow("", language) == []
    assert code_tokens("", language) == []


def test_unsupported_language() -> None:
    for call in (lambda: extract_dataflow("x = 1", "python"), lambda: code_tokens("x", "C")):
        with pytest.raises(AvatarError, match="supported: c, java"):
            call()


# --------------------------------------------------------------------------------------
# Real data (shared/data): invariants over real functions, inputs with the authors' tokenizer


def data_dir() -> Path:
    root = Path(os.environ.get("AVATAR_DATA", "/nonexistent"))
    needed = (root / "devign" / "test.jsonl", root / "bigclonebench" / "data.jsonl")
    if not all(path.is_file() for path in needed):
        pytest.skip(f"real data not found under AVATAR_DATA={root} (need {needed[0].name}, {needed[1].name})")
    return root


def first_functions(path: Path, n: int) -> list[str]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line)["func"] for line in islice(f, n)]


def test_real_functions_are_consistent() -> None:
    root = data_dir()
    sources = (("c", root / "devign" / "test.jsonl"), ("java", root / "bigclonebench" / "data.jsonl"))
    for language, path in sources:
        functions = first_functions(path, 40)
        edges = [check_consistent(code, language) for code in functions]
        assert sum(len(e) for e in edges) > 40 * 10
        # a few tiny functions (`return 1;`) have no flow at all; almost all others do
        assert sum(any(e.sources for e in found) for found in edges) >= 35


# --------------------------------------------------------------------------------------
# GraphCodeBERT inputs and the tiny model

CORPUS = [
    C_STRAIGHT,
    "int sum(int *a, int n) { int s = 0; for (int i = 0; i < n; i++) s += a[i]; return s; }",
    "static int area(int w, int h) { int a = w * h; int b = a; a = b + 1; return a - b; }",
    "public int total(List<Item> items) { int sum = 0; for (Item it : items) sum += it.price; return sum; }",
    "String grade(int score) { String g; if (score >= 90) g = \"A\"; else g = \"B\"; return g; }",
]


@pytest.fixture(scope="module")
def tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],  # pad = 1, as RoBERTa
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", cls_token="<s>", sep_token="</s>",
        unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
    )


def check_inputs(tokenizer, code: str, language: str, code_length: int, data_flow_length: int) -> int:
    """Check the layout and the mask of ``graph_inputs``; returns the number of nodes."""
    inputs = graph_inputs(tokenizer, code, language, code_length, data_flow_length)
    total = code_length + data_flow_length
    ids, pos, mask = inputs["input_ids"], inputs["position_idx"], inputs["attn_mask"]
    assert ids.shape == pos.shape == (total,) and mask.shape == (total, total) and mask.dtype == torch.bool
    n_code = int(pos.ge(2).sum())
    n_nodes = int(pos.eq(0).sum())
    assert pos[:n_code].tolist() == list(range(2, n_code + 2))
    assert pos[n_code : n_code + n_nodes].eq(0).all() and pos[n_code + n_nodes :].eq(1).all()
    assert ids[0] == tokenizer.cls_token_id and ids[n_code - 1] == tokenizer.sep_token_id
    assert ids[n_code : n_code + n_nodes].eq(tokenizer.unk_token_id).all()
    assert ids[n_code + n_nodes :].eq(tokenizer.pad_token_id).all()
    assert mask[:n_code, :n_code].all()
    assert mask.diagonal().all()
    pad = slice(n_code + n_nodes, total)
    assert not mask[pad].sum(-1).gt(1).any() and not mask[:, pad].sum(0).gt(1).any()

    edges = {e.token_index: e for e in extract_dataflow(code, language)}
    nodes = []
    for p in range(n_code, n_code + n_nodes):
        seen = mask[p, 1 : n_code - 1].nonzero().flatten() + 1  # the node's subwords, not <s> </s>
        assert not mask[p, 0] and not mask[p, n_code - 1] and mask[0, p] and mask[n_code - 1, p]
        assert seen.tolist() == list(range(int(seen[0]), int(seen[-1]) + 1))
        assert mask[seen, p].all()
        name = tokenizer.decode(ids[seen]).strip()
        nodes.append(name)
    # nodes are the linked edges, in token order, whose token survived truncation
    used = {s for e in edges.values() for s in e.source_indices}
    linked = [e for e in edges.values() if e.source_indices or e.token_index in used]
    assert [n.lower() for n in nodes] == [e.name.lower() for e in linked][:n_nodes]
    index_of = {e.token_index: n_code + j for j, e in enumerate(linked[:n_nodes])}
    for e in linked[:n_nodes]:
        for s in e.source_indices:
            if s in index_of:
                assert mask[index_of[e.token_index], index_of[s]]
    return n_nodes


def test_graph_inputs_layout(tokenizer) -> None:
    code = CORPUS[1]
    assert check_inputs(tokenizer, code, "c", 64, 32) == 11  # every occurrence here is linked
    # truncation: little code fits, so only nodes of surviving tokens remain
    small = check_inputs(tokenizer, code, "c", 12, 4)
    assert 0 < small <= 4
    inputs = graph_inputs(tokenizer, code, "c", 12, 4)
    assert inputs["input_ids"].shape == (16,)
    assert check_inputs(tokenizer, CORPUS[3], "java", 64, 16) == 7
    with pytest.raises(AvatarError, match="code_length"):
        graph_inputs(tokenizer, code, "c", 1, 4)


def test_graph_inputs_with_the_authors_tokenizer() -> None:
    from transformers import PreTrainedTokenizerFast

    root = data_dir()
    path = root / "tokenizers_avatar" / "bcb_BPE_1000.json"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    tok = PreTrainedTokenizerFast(
        tokenizer_file=str(path), cls_token="<s>", sep_token="</s>", unk_token="<unk>", pad_token="<pad>"
    )
    for code in first_functions(root / "bigclonebench" / "data.jsonl", 5):
        assert check_inputs(tok, code, "java", 256, 64) > 0


def tiny_model(tokenizer, max_positions: int, attn: str):
    from transformers import RobertaConfig, RobertaForSequenceClassification

    torch.manual_seed(0)
    config = RobertaConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=max_positions, type_vocab_size=1,
        pad_token_id=1, bos_token_id=0, eos_token_id=2, num_labels=2, attn_implementation=attn,
    )
    model = RobertaForSequenceClassification(config)
    assert model.config._attn_implementation == attn
    return model


def test_graph_guided_forward_tiny_roberta(tokenizer) -> None:
    code_length, data_flow_length = 48, 16
    batch = [graph_inputs(tokenizer, code, lang, code_length, data_flow_length)
             for code, lang in ((CORPUS[1], "c"), (CORPUS[3], "java"))]
    inputs = {k: torch.stack([b[k] for b in batch]) for k in batch[0]}
    model = tiny_model(tokenizer, code_length + data_flow_length + 2, "sdpa")

    # a node's input embedding is the mean of its subwords' embeddings
    emb = graph_embeddings(model, **inputs)
    words = model.get_input_embeddings()(inputs["input_ids"])
    row = int(inputs["position_idx"][0].eq(0).nonzero()[0])
    cols = inputs["attn_mask"][0, row] & inputs["position_idx"][0].ge(2)
    assert torch.allclose(emb[0, row], words[0, cols].mean(0))
    code_rows = inputs["position_idx"].ne(0)
    assert torch.equal(emb[code_rows], words[code_rows])

    model.train()
    out = graph_guided_forward(model, **inputs, labels=torch.tensor([0, 1]))
    assert out.logits.shape == (2, 2) and torch.isfinite(out.loss)
    out.loss.backward()
    grad = model.get_input_embeddings().weight.grad
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    assert grad[tokenizer.unk_token_id].abs().sum() == 0  # node ids were replaced, not embedded
    assert model.classifier.out_proj.weight.grad.abs().sum() > 0

    # the default sdpa attention treats the 3D mask exactly as eager attention does
    eager = tiny_model(tokenizer, code_length + data_flow_length + 2, "eager")
    eager.load_state_dict(model.state_dict())
    model.eval()
    eager.eval()
    with torch.no_grad():
        a = graph_guided_forward(model, **inputs).logits
        b = graph_guided_forward(eager, **inputs).logits
    assert torch.allclose(a, b, atol=1e-5)

    # the mask matters: letting everyone see everyone changes the logits
    with torch.no_grad():
        full = graph_guided_forward(model, inputs["input_ids"], inputs["position_idx"],
                                    torch.ones_like(inputs["attn_mask"])).logits
    assert not torch.allclose(a, full)

    short = tiny_model(tokenizer, code_length, "sdpa")
    with pytest.raises(AvatarError, match="max_position_embeddings"):
        graph_guided_forward(short, **inputs)
