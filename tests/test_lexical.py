"""The lexical term of budget_examples: the share of the code's names a vocabulary keeps whole."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from avatar.core.errors import AvatarError
from avatar.core.registry import INDICATORS, TASKS
from avatar.distill.student import build_tokenizer
from avatar.search.lexical import LexicalModel, name_counts, names, whole_share
from avatar.search.space import Candidate
from tests.helpers import TINY_STUDENT, demo_search_context


def test_names_are_the_parse_trees_identifiers_and_words_elsewhere() -> None:
    assert names("int add(int first, int second) { return first + second; }", "c") == [
        "add", "first", "second", "first", "second"]
    assert names("class Box { void run() { item.close(count); } }", "java") == [
        "Box", "run", "item", "close", "count"]
    # a language without a grammar here: every identifier-like word, keywords too
    assert names("def area(r): return r * r", "python") == ["def", "area", "r", "return", "r", "r"]
    assert name_counts([("int a;", "int a, b;")], "c") == Counter({"a": 2, "b": 1})
    with pytest.raises(AvatarError, match="found no identifier"):
        name_counts(["1 + 2;"], "c")


@pytest.mark.parametrize("kind", ["Word", "BPE"])
def test_a_known_name_is_whole_and_a_rare_one_is_not(tmp_path, kind: str) -> None:
    task = TASKS.create("demo", size=60)
    tokenizer = build_tokenizer(Candidate.from_dict({"tokenizer": kind, "vocab_size": 1000,
                                                     "max_sequence_length": 128}), task, tmp_path)
    counts = name_counts(task.texts("unlabel_train"), task.language)
    known = next(name for name, _ in counts.most_common()
                 if len(tokenizer(" " + name, add_special_tokens=False)["input_ids"]) == 1)
    # Word reads the rare name as its unknown token, BPE in pieces: neither keeps it whole
    assert whole_share(tokenizer, {known: 3, "qzxvqzxvwk": 1}) == pytest.approx(0.75)


def test_the_model_interpolates_in_log_vocabulary_and_holds_the_ends() -> None:
    model = LexicalModel({"BPE": {1000: 0.3, 9000: 0.6}})
    assert model.share("BPE", 3000) == pytest.approx(0.45)
    assert (model.share("BPE", 500), model.share("BPE", 46000)) == (0.3, 0.6)
    with pytest.raises(AvatarError, match="measured: \\['BPE'\\]"):
        model.share("Word", 1000)


def test_the_indicator_multiplies_the_examples_by_the_share_from_real_tokenizers(tmp_path) -> None:
    context = demo_search_context(tmp_path)
    space = context.space
    plain = INDICATORS.create("budget_examples", runs=1)
    lexical = INDICATORS.create("budget_examples", runs=1, lexical=True, coverage_points=2,
                                coverage_examples=40)
    plain.prepare(context)
    lexical.prepare(context)
    assert sorted(lexical.shares.shares["WordPiece"]) == [1000, 4000]  # two measured sizes per kind
    candidate = space.validate(TINY_STUDENT)
    share = lexical.lexical_share(candidate, context)
    assert 0 < share <= 1
    assert lexical.predict(candidate, context) == pytest.approx(plain.predict(candidate, context)
                                                                + math.log10(share))
    with pytest.raises(AvatarError, match="indicator.lexical must be true or false"):
        INDICATORS.create("budget_examples", lexical="yes")
