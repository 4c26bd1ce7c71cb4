"""Per-student tokenizers on real Devign code: layout, templates, cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from transformers import PreTrainedTokenizerFast  # noqa: E402

from avatar.core.errors import AvatarError, DataError  # noqa: E402
from avatar.distill import tokenizer as tokmod  # noqa: E402
from avatar.distill.tokenizer import (  # noqa: E402
    TOKENIZER_KINDS,
    cached_tokenizer,
    load_reference_tokenizer,
    normalize_code,
    train_tokenizer,
)

VOCAB = 1000
N_FUNCS = 300
UNIGRAM_FUNCS = 60  # Unigram is the slow trainer: a tiny corpus keeps the file fast
SPECIAL_IDS = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4}


def _data_dir() -> Path:
    root = os.environ.get("AVATAR_DATA")
    if not root:
        pytest.skip("AVATAR_DATA is not set: no real Devign code to train tokenizers on")
    return Path(root)


@pytest.fixture(scope="module")
def funcs() -> list[str]:
    path = _data_dir() / "devign" / "valid.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} is absent: no real Devign code to train tokenizers on")
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line)["func"] for line in islice(handle, N_FUNCS)]


def _corpus(kind: str, funcs: list[str]) -> list[str]:
    return funcs[:UNIGRAM_FUNCS] if kind == "Unigram" else funcs


@pytest.fixture(scope="module")
def trained(funcs: list[str]) -> dict[str, PreTrainedTokenizerFast]:
    return {
        kind: train_tokenizer(kind, VOCAB, _corpus(kind, funcs), max_length=128)
        for kind in TOKENIZER_KINDS
    }


def test_kinds_are_the_config_space_values() -> None:
    assert TOKENIZER_KINDS == ("BPE", "WordPiece", "Unigram", "Word")


@pytest.mark.parametrize("kind", TOKENIZER_KINDS)
def test_special_tokens_roles_and_ids(trained: dict[str, PreTrainedTokenizerFast], kind: str) -> None:
    tok = trained[kind]
    for token, expected in SPECIAL_IDS.items():
        assert tok.convert_tokens_to_ids(token) == expected
    assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id, tok.mask_token_id) == (
        0, 1, 2, 3, 4,
    )
    assert (tok.cls_token_id, tok.sep_token_id) == (0, 2)
    assert tok.model_max_length == 128
    assert 5 < len(tok) <= VOCAB  # may saturate below VOCAB on a small corpus, never above


@pytest.mark.parametrize("kind", TOKENIZER_KINDS)
def test_every_id_fits_the_embedding_table(
    trained: dict[str, PreTrainedTokenizerFast], funcs: list[str], kind: str
) -> None:
    tok = trained[kind]
    unseen = funcs[N_FUNCS // 2 :] + ["int \u00e9t\u00e9 = 0; // \u6f22\u5b57 \U0001f600", ""]
    batch = tok(unseen, padding=True)
    assert max(max(ids) for ids in batch["input_ids"]) < VOCAB
    assert min(min(ids) for ids in batch["input_ids"]) >= 0
    assert max(tok.get_vocab().values()) < VOCAB


@pytest.mark.parametrize("kind", TOKENIZER_KINDS)
def test_pair_template_and_truncation(
    trained: dict[str, PreTrainedTokenizerFast], funcs: list[str], kind: str
) -> None:
    tok = trained[kind]
    a, b = "int f(int x) { return x; }", "int g(void) { return 1; }"
    bare_a = tok(a, add_special_tokens=False)["input_ids"]
    bare_b = tok(b, add_special_tokens=False)["input_ids"]
    assert tok(a)["input_ids"] == [0, *bare_a, 2]
    pair = tok(a, b, return_token_type_ids=True)
    assert pair["input_ids"] == [0, *bare_a, 2, 2, *bare_b, 2]
    assert set(pair["token_type_ids"]) == {0}  # RoBERTa: type_vocab_size is 1
    assert "token_type_ids" not in tok(a, b)

    long_a, long_b = funcs[0], funcs[1]
    assert len(tok(long_a)["input_ids"]) > 40 and len(tok(long_b)["input_ids"]) > 40
    cut = tok(long_a, long_b, truncation=True, max_length=64)["input_ids"]
    assert len(cut) == 64
    assert cut[0] == 0 and cut[-1] == 2 and cut.count(0) == 1
    middle = cut.index(2)
    assert cut[middle + 1] == 2 and cut.count(2) == 3
    assert middle > 10 and len(cut) - middle > 10  # longest_first trimmed both functions
    assert len(tok(long_a, long_b, truncation=True)["input_ids"]) <= 128  # model_max_length


@pytest.mark.parametrize("kind", TOKENIZER_KINDS)
def test_raw_code_is_whitespace_normalised(
    trained: dict[str, PreTrainedTokenizerFast], funcs: list[str], kind: str
) -> None:
    tok = trained[kind]
    raw = funcs[3]
    assert raw != normalize_code(raw)
    assert tok(raw)["input_ids"] == tok(normalize_code(raw))["input_ids"]


@pytest.mark.parametrize("kind", TOKENIZER_KINDS)
def test_save_and_load_round_trip(
    trained: dict[str, PreTrainedTokenizerFast], funcs: list[str], kind: str, tmp_path: Path
) -> None:
    tok = trained[kind]
    tok.save_pretrained(tmp_path)
    loaded = PreTrainedTokenizerFast.from_pretrained(str(tmp_path))
    sample = funcs[:5]
    assert loaded(sample[0], sample[1])["input_ids"] == tok(sample[0], sample[1])["input_ids"]
    assert loaded(sample)["input_ids"] == tok(sample)["input_ids"]
    assert loaded.all_special_ids == tok.all_special_ids
    assert (loaded.pad_token, loaded.mask_token, loaded.model_max_length) == ("<pad>", "<mask>", 128)


def test_word_kind_maps_unknown_words_to_unk(trained: dict[str, PreTrainedTokenizerFast]) -> None:
    tok = trained["Word"]
    tokens = tok.convert_ids_to_tokens(tok("return zqxv_never_seen_identifier ;")["input_ids"])
    assert tokens == ["<s>", "return", "<unk>", ";", "</s>"]


def test_symbols_split_but_identifiers_stay(trained: dict[str, PreTrainedTokenizerFast]) -> None:
    word = trained["Word"].tokenize("if(!s->opaque){")
    assert word == ["if", "(", "!", "s", "-", ">", "opaque", ")", "{"]
    pieces = trained["WordPiece"].tokenize("s->opaque")
    assert pieces[:3] == ["s", "-", ">"]


def test_unigram_reads_only_a_capped_corpus(funcs: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    consumed = 0

    def stream() -> Iterator[str]:
        nonlocal consumed
        for text in funcs:
            consumed += 1
            yield text

    monkeypatch.setattr(tokmod, "UNIGRAM_MAX_CHARS", 30_000)
    tok = train_tokenizer("Unigram", 500, stream())
    assert consumed < len(funcs) // 2
    assert len(tok) <= 500


def test_cache_trains_once_then_loads(funcs: list[str], tmp_path: Path) -> None:
    calls = 0

    def provider() -> list[str]:
        nonlocal calls
        calls += 1
        return funcs[:100]

    first = cached_tokenizer("Word", VOCAB, provider, tmp_path, "devign-abc123", max_length=256)
    assert calls == 1
    target = tmp_path / "devign-abc123" / f"Word_{VOCAB}_v{tokmod.TOKENIZER_FORMAT}"
    assert (target / "tokenizer.json").is_file()
    # no temp dir left behind, only the lock file
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name, f"{target.name}.lock"]
    second = cached_tokenizer("Word", VOCAB, provider, tmp_path, "devign-abc123", max_length=512)
    assert calls == 1  # a hit never reads the corpus
    assert second.model_max_length == 512
    assert second(funcs[0], funcs[1])["input_ids"] == first(funcs[0], funcs[1])["input_ids"]
    assert second.pad_token_id == 1 and second.mask_token_id == 4

    cached_tokenizer("Word", 600, provider, tmp_path, "devign-abc123")
    assert calls == 2  # another vocab size is another entry


def test_fast_word_split_matches_the_pre_tokenizer(funcs: list[str]) -> None:
    splitter = tokmod._split_code_symbols()
    texts = [normalize_code(f) for f in funcs[:100]]
    texts += ["if(!s->opaque){ x_1 = y2;}", "int \u00e9t\u00e9 = 0;"]
    for text in texts:
        assert tokmod._code_words(text, splitter) == [w for w, _ in splitter.pre_tokenize_str(text)]


TRAIN_EVERY_KIND = """
import json, sys
from itertools import islice
from avatar.distill.tokenizer import TOKENIZER_KINDS, cached_tokenizer
with open(sys.argv[1], encoding="utf-8") as handle:
    funcs = [json.loads(line)["func"] for line in islice(handle, 300)]
for kind in TOKENIZER_KINDS:
    corpus = funcs[:60] if kind == "Unigram" else funcs
    cached_tokenizer(kind, 1000, lambda: corpus, sys.argv[2], "devign-det")
"""


def test_every_kind_is_byte_identical_across_processes(tmp_path: Path) -> None:
    """Rust's hash maps are seeded per process: before the fix WordPiece ids and Unigram
    scores changed from one process to the next. PYTHONHASHSEED varies too, for good measure."""
    path = _data_dir() / "devign" / "valid.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} is absent: no real Devign code to train tokenizers on")
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", TRAIN_EVERY_KIND, str(path), str(tmp_path / seed)],
            env=env, capture_output=True, text=True, timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
    for kind in TOKENIZER_KINDS:
        entry = Path("devign-det") / f"{kind}_1000_v{tokmod.TOKENIZER_FORMAT}" / "tokenizer.json"
        first, second = (tmp_path / "1" / entry).read_bytes(), (tmp_path / "2" / entry).read_bytes()
        assert first == second, f"{kind} differs between processes"


def test_unknown_kind_lists_known_kinds(tmp_path: Path) -> None:
    with pytest.raises(AvatarError) as caught:
        train_tokenizer("SentencePiece", VOCAB, ["int x;"])
    message = str(caught.value)
    assert "SentencePiece" in message
    assert all(kind in message for kind in TOKENIZER_KINDS)

    def provider() -> list[str]:
        raise AssertionError("the provider must not be called for a bad kind")

    with pytest.raises(AvatarError, match="known kinds: BPE, WordPiece, Unigram, Word"):
        cached_tokenizer("bpe", VOCAB, provider, tmp_path, "k")


def test_bad_inputs_fail_with_one_line(funcs: list[str], tmp_path: Path) -> None:
    with pytest.raises(AvatarError, match="too small for a BPE tokenizer"):
        train_tokenizer("BPE", 100, funcs[:20])  # 256 bytes + 5 specials do not fit
    with pytest.raises(DataError, match="no non-empty code"):
        train_tokenizer("Word", VOCAB, ["", "  \n\t "])
    with pytest.raises(AvatarError, match="cache key"):
        cached_tokenizer("Word", VOCAB, lambda: funcs, tmp_path, "../escape")


def test_reference_tokenizer_is_wrapped_like_ours() -> None:
    path = _data_dir() / "tokenizers_avatar" / "devign_BPE_1000.json"
    if not path.is_file():
        pytest.skip(f"{path} is absent: the authors' tokenizer files are not available")
    tok = load_reference_tokenizer(path, max_length=64)
    assert len(tok) == 1000 and tok.model_max_length == 64
    assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    assert tok.mask_token is None  # the authors' files have no <mask>
    ids = tok("int f();", "int g();")["input_ids"]
    assert ids[0] == 0 and ids[-1] == 2 and ids.count(2) == 3
    with pytest.raises(DataError, match="missing tokenizer file"):
        load_reference_tokenizer(path.with_name("nope.json"))
