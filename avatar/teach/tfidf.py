"""A classical classifier of code: TF-IDF over code tokens, then logistic regression (scikit-learn).

Why it exists: it is the baseline every distilled student must beat to be worth its training
(fitted in seconds to a minute on a CPU, no GPU, no network), and it is a teacher that needs
no model at all (``teacher=tfidf``). The report fits it on the labeled half and scores it on
the same examples as the models (``avatar.report.baseline``).

Tokens (``CodeAnalyzer``): a code-aware regular expression, not a word tokenizer, because
code's evidence is in its punctuation and operators as much as in its words (``->``,
``[``, ``<<=``, ``!=`` tell a bounds check from a raw copy), and its identifiers are
compounds. So each text gives

- its raw tokens (identifiers and keywords case-kept, numbers, strings' words, each operator
  and punctuation mark) and their n-grams over ``ngram_range`` (``memcpy (``, ``len >``);
- the lower-cased parts of every compound identifier (camelCase, snake_case, digits):
  ``readBuffer`` and ``read_buf_len`` share ``read``, so related names share evidence that
  whole identifiers, unique to one function, never would.

Pairs (clone detection): a bag of the concatenated pair cannot see similarity (it learns which
words occur, not whether the two functions share them). The pair's features are built from
the two functions' L2-normalised TF-IDF vectors ``a`` and ``b``: their elementwise product
``a * b`` (which terms both use, weighted; its sum is the cosine), the absolute difference
``|a - b|`` (which terms only one uses) and the cosine similarity itself, all symmetric in the
pair's order. ``bench/baseline_bench.py`` measured the choices (docs/benchmarks.md).
"""

from __future__ import annotations

import logging
import pickle
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from avatar.core.errors import AvatarError
from avatar.task.base import Code, Example, Task, snippets

log = logging.getLogger("avatar")

TOKEN = re.compile(
    r"[A-Za-z_$][A-Za-z0-9_$]*"  # identifiers and keywords
    r"|0[xX][0-9A-Fa-f]+|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?"  # numbers
    r"|>>>=|<<=|>>=|>>>|->|\+\+|--|<<|>>|<=|>=|==|!=|&&|\|\||::|[-+*/%&|^]="  # operators
    r"|\S"  # any other mark: ( ) [ ] { } ; , . < > = ! ~ ? : " ' ...
)
PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
PAIR_FEATURES = ("product", "diff", "cosine", "sum")
"""``sum`` (``a + b``, a bag of both functions) is there to be measured against, not used."""
DEFAULT_PAIR_FEATURES = ("product", "diff", "cosine")


@dataclass(frozen=True)
class CodeAnalyzer:
    """Text -> TF-IDF terms: raw-token n-grams plus identifier parts (see the module docstring).

    A module-level class, not a closure, so a fitted vectoriser pickles (its size is the model's).
    """

    ngram_range: tuple[int, int] = (1, 2)
    identifier_parts: bool = True

    def __call__(self, text: str) -> list[str]:
        tokens = TOKEN.findall(text)
        low, high = self.ngram_range
        terms = [" ".join(tokens[i:i + n]) for n in range(low, high + 1) for i in range(len(tokens) - n + 1)]
        for token in tokens if self.identifier_parts else ():
            if token[0].isalpha() or token[0] in "_$":
                parts = PART.findall(token)
                if len(parts) > 1:
                    terms.extend(part.lower() for part in parts)
        return terms


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AvatarError(f"teacher.{name} must be an integer >= 1, got {value!r}")
    return value


@dataclass(frozen=True)
class TfidfOptions:
    """The classifier's settings, validated at construction (each mistake is one line)."""

    max_features: int = 20_000
    ngram_range: tuple[int, int] = (1, 2)
    C: float = 1.0  # logistic regression's inverse regularisation strength (scikit-learn's name)
    seed: int = 42
    pair_features: tuple[str, ...] = DEFAULT_PAIR_FEATURES
    identifier_parts: bool = True  # the bench's ablation; the teacher keeps it on

    @classmethod
    def create(cls, max_features: Any = 20_000, ngram_range: Any = (1, 2), C: Any = 1.0,  # noqa: N803
               seed: Any = 42, pair_features: Any = DEFAULT_PAIR_FEATURES,
               identifier_parts: bool = True) -> TfidfOptions:
        """Plain (config) values -> options; a bad value raises one ``AvatarError`` line."""
        _positive_int(max_features, "max_features")
        pair = isinstance(ngram_range, Sequence) and not isinstance(ngram_range, str | bytes)
        if not pair or len(ngram_range) != 2:
            raise AvatarError(f"teacher.ngram_range must be two integers [low, high], got {ngram_range!r}")
        low, high = (_positive_int(n, "ngram_range") for n in ngram_range)
        if low > high or high > 4:
            raise AvatarError(f"teacher.ngram_range must satisfy 1 <= low <= high <= 4, got [{low}, {high}]")
        if isinstance(C, bool) or not isinstance(C, int | float) or not 0 < C < float("inf"):
            raise AvatarError(f"teacher.C must be a positive number, got {C!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise AvatarError(f"teacher.seed must be an integer, got {seed!r}")
        features = (pair_features,) if isinstance(pair_features, str) else tuple(pair_features or ())
        unknown = [f for f in features if f not in PAIR_FEATURES]
        if not features or unknown:
            raise AvatarError(f"teacher.pair_features must be a non-empty list of "
                              f"{', '.join(PAIR_FEATURES)}, got {pair_features!r}")
        return cls(max_features, (low, high), float(C), seed, features, bool(identifier_parts))

    def describe(self) -> str:
        """Every option, in one stable line: the teacher's cache identity."""
        low, high = self.ngram_range
        parts = "" if self.identifier_parts else " identifier_parts=false"
        return (f"max_features={self.max_features} ngram_range={low}-{high} C={self.C:g} seed={self.seed} "
                f"pair_features={'+'.join(self.pair_features)}{parts}")


def labeled_half(task: Task) -> tuple[list[Code], list[int]]:
    """The labeled examples of ``label_train`` (code, gold label): what the classifier learns from.

    One ``AvatarError`` line when the task has no such split, no labels there, or one class only.
    """
    try:  # a task's own AvatarError (missing file) passes through as it is
        examples: list[Example] = task.read_split("label_train")
    except (KeyError, ValueError, NotImplementedError, FileNotFoundError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise AvatarError(f"task {task.name!r} has no label_train split to learn from: {reason}") from None
    kept = [e for e in examples if e.label is not None]
    if not kept:
        what = (f"no gold labels on its {len(examples):,} label_train examples" if examples
                else "no label_train examples")
        raise AvatarError(f"task {task.name!r} has {what}: TF-IDF + LR learns from the labeled half")
    labels = [int(e.label) for e in kept]  # type: ignore[arg-type]
    if len(set(labels)) < 2:
        raise AvatarError(f"task {task.name!r}: every labeled example has label {labels[0]}; "
                          "TF-IDF + LR needs at least two classes")
    return [e.code for e in kept], labels


class TfidfClassifier:
    """TF-IDF (``CodeAnalyzer`` terms) and logistic regression; pairs through ``pair_features``."""

    def __init__(self, options: TfidfOptions | None = None) -> None:
        self.options = options or TfidfOptions()
        self.vectorizer: Any = None
        self.model: Any = None
        self.num_labels = 0
        self.fit_seconds = 0.0
        self.examples = 0
        self.is_pair = False

    def fit(self, codes: Sequence[Code], labels: Sequence[int], num_labels: int) -> TfidfClassifier:
        """Fit the vocabulary on the distinct texts of ``codes``, then the regression on their features."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        started = time.perf_counter()
        self.num_labels, self.examples = int(num_labels), len(codes)
        self.is_pair = bool(codes) and not isinstance(codes[0], str)
        self.vectorizer = TfidfVectorizer(
            analyzer=CodeAnalyzer(self.options.ngram_range, self.options.identifier_parts),
            max_features=self.options.max_features, sublinear_tf=True, dtype=np.float32,
        )
        self.vectorizer.fit(list(dict.fromkeys(_texts(codes))))
        self.vectorizer.stop_words_ = None  # the pruned terms: introspection only, and most of a pickle
        self.model = LogisticRegression(C=self.options.C, max_iter=2000, random_state=self.options.seed)
        self.model.fit(self.features(codes), np.asarray(labels, dtype=np.int64))
        self.fit_seconds = time.perf_counter() - started
        return self

    def features(self, codes: Sequence[Code]) -> Any:
        """A sparse row per example: its TF-IDF vector, or its pair's features."""
        from scipy import sparse

        if self.vectorizer is None:
            raise AvatarError("the TF-IDF classifier is not fitted")
        texts = _texts(codes)
        distinct = list(dict.fromkeys(texts))
        where = {text: i for i, text in enumerate(distinct)}
        vectors = self.vectorizer.transform(distinct).tocsr()
        rows = vectors[[where[t] for t in texts]]
        if not codes or isinstance(codes[0], str):
            return rows
        a, b = rows[0::2], rows[1::2]
        both = a.multiply(b).tocsr()
        parts = {
            "product": both,
            "diff": abs(a - b),
            "cosine": sparse.csr_matrix(np.asarray(both.sum(axis=1), dtype=np.float32)),
            "sum": a + b,
        }
        return sparse.hstack([parts[name] for name in self.options.pair_features], format="csr")

    def logits(self, codes: Sequence[Code], batch_size: int | None = None) -> np.ndarray:
        """(N, num_labels) float32 logits: softmax of a row gives the regression's probabilities.

        Binary: ``[-d/2, d/2]`` for the decision value ``d`` (exactly the logistic's odds,
        finite where ``log(predict_proba)`` would underflow to -inf). A class the labeled half
        never showed gets the row's lowest logit minus 30 (probability about 1e-13).
        ``batch_size`` is accepted for the predictor interface and ignored.
        """
        scores = np.asarray(self.model.decision_function(self.features(codes)), dtype=np.float32)
        if scores.ndim == 1:
            scores = np.stack([-scores / 2, scores / 2], axis=1)
        out = np.empty((len(scores), self.num_labels), dtype=np.float32)
        out[:] = (scores.min(axis=1) - 30.0)[:, None]
        out[:, self.model.classes_] = scores
        return out

    def predict(self, codes: Sequence[Code]) -> np.ndarray:
        return self.logits(codes).argmax(axis=1)

    def size_bytes(self) -> int:
        """Bytes of the pickled vectoriser and regression: what a deployment stores."""
        return len(pickle.dumps((self.vectorizer, self.model), protocol=pickle.HIGHEST_PROTOCOL))


def _texts(codes: Sequence[Code]) -> list[str]:
    """Single snippets as they are; pairs flattened to first, second, first, second ..."""
    out: list[str] = []
    for code in codes:
        out.extend(snippets(code))
    return out


def fit_on_labeled_half(task: Task, options: TfidfOptions | None = None) -> TfidfClassifier:
    """The classifier fitted on the task's labeled half (``labeled_half``'s errors if it cannot be)."""
    codes, labels = labeled_half(task)
    model = TfidfClassifier(options).fit(codes, labels, task.num_labels)
    log.info("TF-IDF + LR fitted on %s labeled %s examples (%s terms) in %.1f s", f"{len(codes):,}",
             task.name, f"{len(model.vectorizer.vocabulary_):,}", model.fit_seconds)
    return model
