"""ONNX / int8 export of a student and the predictor on all three backends.

A tiny student (byte-level BPE of ~300 tokens, 2 layers of width 32) is trained for a few
steps on a toy rule (unsafe string calls = vulnerable) so its logits have real margins,
then exported once per position embedding type and shared by the tests of the module.
"""

from __future__ import annotations

import functools
import io
import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from avatar.cli.main import run_command  # noqa: E402
from avatar.core.text import normalize_code  # noqa: E402
from avatar.distill.folder import ONNX_NAME, QUANTIZED_NAME  # noqa: E402
from avatar.report.export import export_all, export_onnx  # noqa: E402
from avatar.report.predict import Predictor, read_student_meta  # noqa: E402

export_main = functools.partial(run_command, "export")
predict_main = functools.partial(run_command, "predict")

POSITION_TYPES = ["absolute", "relative_key", "relative_key_query"]
REPO = Path(__file__).resolve().parents[1]

SAFE = [
    "int add(int a, int b) { return a + b; }",
    "int max(int a, int b) { return a > b ? a : b; }",
    "void swap(int *a, int *b) { int t = *a; *a = *b; *b = t; }",
    "size_t len(const char *s) { size_t n = 0; while (s[n]) n++; return n; }",
    "int sum(int *v, int n) { int s = 0; for (int i = 0; i < n; i++) s += v[i]; return s; }",
    "void zero(int *v, int n) { for (int i = 0; i < n; i++) v[i] = 0; }",
    "int is_even(int x) { return x % 2 == 0; }",
    "double mean(double *v, int n) { double s = 0; for (int i = 0; i < n; i++) s += v[i]; return s / n; }",
    "void copy(char *d, const char *s, size_t n) { strncpy(d, s, n - 1); d[n - 1] = 0; }",
    "int clamp(int x, int lo, int hi) { if (x < lo) return lo; if (x > hi) return hi; return x; }",
    "static int count = 0; void inc(void) { count++; }",
    "int fact(int n) { return n <= 1 ? 1 : n * fact(n - 1); }",
    "void print(const char *s) { printf(\"%s\\n\", s); }",
    "int find(int *v, int n, int x) { for (int i = 0; i < n; i++) if (v[i] == x) return i; return -1; }",
    "char *dup(const char *s) { char *p = malloc(strlen(s) + 1); if (!p) return NULL; "
    "snprintf(p, strlen(s) + 1, \"%s\", s); return p; }",
    "void free_list(node *n) { while (n) { node *next = n->next; free(n); n = next; } }",
    "int abs_val(int x) { return x < 0 ? -x : x; }",
    "int read_int(FILE *f) { int x = 0; if (fscanf(f, \"%d\", &x) != 1) return -1; return x; }",
    "void fill(char *b, size_t n, char c) { memset(b, c, n); }",
    "int gcd(int a, int b) { while (b) { int t = b; b = a % b; a = t; } return a; }",
    "int min(int a, int b) { return a < b ? a : b; }",
    "bool empty(const char *s) { return s == NULL || s[0] == 0; }",
    "void init(struct ctx *c) { c->size = 0; c->cap = 16; c->data = calloc(16, sizeof(int)); }",
    "int parse(const char *s) { char *end; long v = strtol(s, &end, 10); return *end ? -1 : (int)v; }",
    "unsigned hash(const char *s) { unsigned h = 5381; while (*s) h = h * 33 + *s++; return h; }",
]
VULNERABLE = [
    "void copy(char *d, const char *s) { strcpy(d, s); }",
    "void greet(char *name) { char buf[16]; strcpy(buf, name); printf(buf); }",
    "void read_line(void) { char buf[64]; gets(buf); puts(buf); }",
    "void cat(char *d, const char *s) { strcat(d, s); }",
    "void load(char *dst, char *src, int n) { memcpy(dst, src, n); }",
    "int main(int argc, char **argv) { char b[8]; strcpy(b, argv[1]); return 0; }",
    "void log_msg(char *msg) { printf(msg); }",
    "void fmt(char *out, char *in) { sprintf(out, in); }",
    "void take(void) { char s[10]; scanf(\"%s\", s); }",
    "void join(char *a, char *b) { char t[32]; strcpy(t, a); strcat(t, b); puts(t); }",
    "void append(char *buf, char *x) { sprintf(buf + strlen(buf), \"%s\", x); }",
    "void get_name(char *n) { gets(n); }",
    "void move(char *d, char *s, size_t n) { memcpy(d, s, n + 1); }",
    "void store(int *a, int i, int v) { a[i] = v; }",
    "void input(void) { char cmd[32]; gets(cmd); system(cmd); }",
    "void run(char *arg) { char c[64]; sprintf(c, \"ls %s\", arg); system(c); }",
    "void dup2(char *d, char *s) { while (*s) *d++ = *s++; }",
    "void echo(char *s) { char b[4]; strcpy(b, s); }",
    "void over(char *p) { char a[8]; memcpy(a, p, strlen(p)); }",
    "void fr(char *p) { free(p); free(p); }",
    "void uaf(node *n) { free(n); n->next = NULL; }",
    "void idx(int *v, int n) { v[n] = 0; }",
    "void pr(char *user) { fprintf(stderr, user); }",
    "void cp(char *d, char *s) { strcpy(d, s); strcat(d, \"!\"); }",
    "void rd(int fd) { char b[16]; read(fd, b, 64); }",
]



def eval_snippets(count: int = 40, seed: int = 1) -> list[str]:
    """Snippets of 1 to 6 concatenated functions: short ones and ones truncated at max_length."""
    rng = random.Random(seed)
    pool = SAFE + VULNERABLE
    return ["\n".join(rng.sample(pool, rng.randint(1, 6))) for _ in range(count)]


def build_student(folder: Path, position_type: str) -> Path:
    """Train the tokenizer and a few steps of the classifier; save both like a real student."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast, RobertaConfig, RobertaForSequenceClassification

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator([normalize_code(code) for code in SAFE + VULNERABLE], trainer)
    backend.post_processor = processors.RobertaProcessing(sep=("</s>", 2), cls=("<s>", 0))
    assert [backend.token_to_id(t) for t in specials] == [0, 1, 2, 3, 4]
    assert backend.get_vocab_size() <= 300
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
        mask_token="<mask>", cls_token="<s>", sep_token="</s>", model_max_length=128,
    )
    config = RobertaConfig(
        vocab_size=300, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=130, pad_token_id=1, bos_token_id=0, eos_token_id=2, type_vocab_size=1,
        position_embedding_type=position_type, num_labels=2,
    )
    config._attn_implementation = "eager"  # sdpa would only fall back, with a warning, for relative types
    torch.manual_seed(0)
    model = RobertaForSequenceClassification(config)
    codes = [normalize_code(c) for c in SAFE + VULNERABLE]
    labels = torch.tensor([0] * len(SAFE) + [1] * len(VULNERABLE))
    batch = tokenizer(codes, truncation=True, max_length=128, padding=True, return_tensors="pt",
                      return_token_type_ids=False)
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(40):
        loss = model(**batch, labels=labels).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    meta = {"task": "vuln", "is_pair": False, "max_length": 128, "labels": ["safe", "vulnerable"]}
    (folder / "avatar.json").write_text(json.dumps(meta))
    return folder


_STUDENTS: dict[str, Path] = {}


def exported_student(tmp_path_factory: pytest.TempPathFactory, position_type: str) -> Path:
    """One trained and exported student per position type, shared across the module's tests."""
    if position_type not in _STUDENTS:
        folder = build_student(tmp_path_factory.mktemp(f"student_{position_type}"), position_type)
        paths = export_all(folder)
        assert paths == {"onnx": folder / ONNX_NAME, "int8": folder / QUANTIZED_NAME}
        _STUDENTS[position_type] = folder
    return _STUDENTS[position_type]


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Tiny models gain nothing from threads, and on a shared 2-core machine torch's spinning
    intra-op threads make each training step 20x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module", params=POSITION_TYPES)
def student(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return exported_student(tmp_path_factory, request.param)


@pytest.fixture(scope="module")
def one_student(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CLI does not depend on the position type: test it on the hardest one."""
    return exported_student(tmp_path_factory, "relative_key_query")


# ---- export and backend agreement ---------------------------------------------------------------

def test_onnx_graph_has_dynamic_int64_inputs(student: Path) -> None:
    import onnx

    graph = onnx.load(str(student / ONNX_NAME)).graph
    inputs = {i.name: i.type.tensor_type for i in graph.input}
    assert sorted(inputs) == ["attention_mask", "input_ids"]
    for tensor_type in inputs.values():
        assert tensor_type.elem_type == onnx.TensorProto.INT64
        assert [d.dim_param for d in tensor_type.shape.dim] == ["batch", "sequence"]
    assert [o.name for o in graph.output] == ["logits"]
    assert not [p.name for p in student.iterdir() if p.name.endswith(".tmp.onnx")]


def test_onnx_matches_torch(student: Path) -> None:
    codes = eval_snippets()
    torch_logits = Predictor.load(student, "torch").logits(codes, batch_size=8)
    onnx_pred = Predictor.load(student, "onnx")
    onnx_logits = onnx_pred.logits(codes, batch_size=8)
    np.testing.assert_allclose(onnx_logits, torch_logits, atol=1e-4, rtol=0)
    assert (onnx_logits.argmax(1) == torch_logits.argmax(1)).all()
    # Dynamic axes: other batch sizes (so other padded lengths) give the same logits.
    np.testing.assert_allclose(onnx_pred.logits(codes, batch_size=1), torch_logits, atol=1e-4, rtol=0)
    # The toy rule was learnt, so the labels are not all one class.
    assert 0 < torch_logits.argmax(1).sum() < len(codes)


def test_int8_is_smaller_and_agrees(student: Path, record_property: pytest.RecordProperty) -> None:
    assert (student / QUANTIZED_NAME).stat().st_size < (student / ONNX_NAME).stat().st_size
    codes = eval_snippets()
    torch_labels = [r.label for r in Predictor.load(student, "torch").predict(codes)]
    int8_labels = [r.label for r in Predictor.load(student, "int8").predict(codes)]
    rate = float(np.mean(np.array(torch_labels) == np.array(int8_labels)))
    record_property("int8_label_agreement", rate)
    print(f"int8 label agreement ({student.name}): {rate:.1%} of {len(codes)}")
    assert rate >= 0.9, f"int8 agrees with torch on only {rate:.1%}"


# ---- predictor ----------------------------------------------------------------------------------

def test_encoding_matches_transformers_tokenizer(one_student: Path) -> None:
    """The tokenizers-only path gives what PreTrainedTokenizerFast would, singles and pairs."""
    from transformers import PreTrainedTokenizerFast

    hf = PreTrainedTokenizerFast.from_pretrained(one_student)
    predictor = Predictor.load(one_student, "onnx")
    codes = [normalize_code(c) for c in eval_snippets(6)]
    pairs = list(zip(codes[:3], codes[3:]))
    for items, kwargs in ((codes, {"text": codes}),
                          (pairs, {"text": codes[:3], "text_pair": codes[3:]})):
        expected = hf(**kwargs, truncation=True, max_length=128, padding=True, return_tensors="np")
        got = predictor.encode(items)
        assert got["input_ids"].shape[1] == 128  # some snippets were truncated
        np.testing.assert_array_equal(got["input_ids"], expected["input_ids"])
        np.testing.assert_array_equal(got["attention_mask"], expected["attention_mask"])


def test_predict_results(one_student: Path) -> None:
    predictor = Predictor.load(one_student, "onnx")
    codes = eval_snippets(10)
    results = predictor.predict(codes, batch_size=3)
    assert len(results) == 10
    for result in results:
        assert result.label in (0, 1)
        assert abs(sum(result.probabilities) - 1.0) < 1e-6
        assert result.label == int(np.argmax(result.probabilities))
    # Whitespace is normalised, so layout does not change the prediction; order is kept.
    spaced = ["\n\n   ".join(code.split()) for code in codes]
    assert predictor.predict(spaced) == results
    assert predictor.predict([]) == []
    pairs = predictor.predict([(codes[0], codes[1]), (codes[2], codes[3])])
    assert len(pairs) == 2


def test_metadata_defaults_without_avatar_json(one_student: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    shutil.copytree(one_student, bare)
    (bare / "avatar.json").unlink()
    meta = read_student_meta(bare)
    assert (meta.is_pair, meta.max_length, meta.labels) == (False, 128, ["LABEL_0", "LABEL_1"])
    config = json.loads((bare / "config.json").read_text())
    config["max_position_embeddings"] = 66  # the cap wins over the tokenizer's 128
    (bare / "config.json").write_text(json.dumps(config))
    assert read_student_meta(bare).max_length == 64


# ---- command lines ------------------------------------------------------------------------------

def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_predict_cli_jsonl_file(one_student: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    codes = eval_snippets(5)
    data = tmp_path / "in.jsonl"
    data.write_text("".join(json.dumps({"idx": i, "func": c}) + "\n" for i, c in enumerate(codes)) + "\n")
    assert predict_main([str(one_student), str(data), "--backend", "onnx"]) == 0
    lines = _json_lines(capsys.readouterr().out)
    expected = Predictor.load(one_student, "onnx").predict(codes)
    assert [line["label"] for line in lines] == [r.label for r in expected]
    for line in lines:
        assert set(line) == {"index", "line", "label", "label_name", "probabilities"}
        assert line["label_name"] == ["safe", "vulnerable"][line["label"]]


def test_predict_cli_stdin_and_code_file(one_student: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    codes = eval_snippets(3)
    monkeypatch.setattr(sys, "stdin", io.StringIO("".join(json.dumps({"func": c}) + "\n" for c in codes)))
    assert predict_main([str(one_student), "-", "--backend", "int8"]) == 0
    assert len(_json_lines(capsys.readouterr().out)) == 3
    monkeypatch.setattr(sys, "stdin", io.StringIO(codes[2]))  # plain code on stdin: one snippet
    assert predict_main([str(one_student), "-", "--backend", "onnx"]) == 0
    assert len(_json_lines(capsys.readouterr().out)) == 1
    source = tmp_path / "f.c"
    source.write_text(codes[0])
    assert predict_main([str(one_student), str(source)]) == 0  # torch backend
    assert len(_json_lines(capsys.readouterr().out)) == 1
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"func1": codes[0], "func2": codes[1]}) + "\n")
    # a single-function student refuses pairs (it would label them, meaninglessly)
    assert predict_main([str(one_student), str(pairs), "--pair", "--backend", "onnx"]) == 2
    assert "reads single functions; the input here is pairs of functions" in _error_line(capsys)


def test_predict_cli_as_module(one_student: Path) -> None:
    """``avatar predict`` on stdin, in a fresh process (ONNX: no torch import)."""
    text = "".join(json.dumps({"func": c}) + "\n" for c in eval_snippets(4))
    command = [sys.executable, "-m", "avatar", "predict", str(one_student), "-", "--backend", "onnx"]
    done = subprocess.run(command, input=text, capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr
    assert len(_json_lines(done.stdout)) == 4


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def test_predict_cli_errors(one_student: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "in.jsonl"
    data.write_text(json.dumps({"func": "int f();"}) + "\n")
    assert predict_main([str(tmp_path / "nope"), str(data)]) == 2
    assert "student folder not found" in _error_line(capsys)

    unexported = tmp_path / "unexported"
    shutil.copytree(one_student, unexported, ignore=shutil.ignore_patterns("*.onnx"))
    assert predict_main([str(unexported), str(data), "--backend", "onnx"]) == 2
    line = _error_line(capsys)
    assert "model.onnx" in line and "avatar export" in line
    assert predict_main([str(unexported), str(data), "--backend", "int8"]) == 2
    assert "model_quantized.onnx" in _error_line(capsys)

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"func": "int f();"}) + "\n\n{not json\n")
    assert predict_main([str(one_student), str(bad), "--backend", "onnx"]) == 2
    assert f"{bad}:3: malformed JSON" in _error_line(capsys)
    bad.write_text(json.dumps({"func": "int f();"}) + "\n" + json.dumps({"code": "x"}) + "\n")
    assert predict_main([str(one_student), str(bad), "--backend", "onnx"]) == 2
    assert f"{bad}:2: missing string field 'func'" in _error_line(capsys)
    assert predict_main([str(one_student), str(data), "--pair", "--backend", "onnx"]) == 2
    assert "reads single functions; the input here is pairs" in _error_line(capsys)
    assert predict_main([str(one_student), str(tmp_path / "missing.c"), "--backend", "onnx"]) == 2
    assert "input not found" in _error_line(capsys)


def test_export_cli(one_student: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "s"
    shutil.copytree(one_student, folder, ignore=shutil.ignore_patterns("*.onnx"))
    assert export_main([str(folder), "--no-int8"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith(f"onnx: {folder / ONNX_NAME} (") and out[0].endswith(" MB)")
    assert not (folder / QUANTIZED_NAME).exists()
    assert export_main([str(tmp_path / "nope")]) == 2
    assert "student folder not found" in _error_line(capsys)


def test_export_onnx_custom_path(one_student: Path, tmp_path: Path) -> None:
    target = export_onnx(one_student, tmp_path / "out" / "student.onnx")
    assert target == tmp_path / "out" / "student.onnx" and target.stat().st_size > 0
    assert sorted(p.name for p in target.parent.iterdir()) == ["student.onnx"]
