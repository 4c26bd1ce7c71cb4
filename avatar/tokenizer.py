"""Per-student tokenizers: trained on the task's unlabeled code, cached on disk.

Why each student gets its own tokenizer: the paper's search space has a ``tokenizer``
dimension (BPE, WordPiece, Unigram, Word) and a ``vocab_size`` dimension, and a 3 MB
student cannot afford CodeBERT's 50k-row embedding table. So every distinct
(kind, vocab size) pair is trained once on the unlabeled half of the task's code and
cached under the caller's key (task name + data fingerprint).

Conventions shared by every kind, so one ``RobertaConfig`` fits all of them:

* special tokens at fixed ids, RoBERTa's layout: ``<s>``=0, ``<pad>``=1, ``</s>``=2,
  ``<unk>``=3, ``<mask>``=4 (``pad_token_id=1, bos_token_id=0, eos_token_id=2``);
* RoBERTa's template: ``<s> A </s>`` and, for pair tasks (clone detection encodes both
  functions in one sequence), ``<s> A </s> </s> B </s>``; every token type id is 0 because
  RoBERTa has ``type_vocab_size=1``;
* code is whitespace-normalised (``" ".join(code.split())``, as the paper's authors did)
  before training, and the same normalisation is part of the tokenizer's own pipeline, so
  encoding raw code and encoding normalised code give the same ids;
* every id is ``< vocab_size``: the student's embedding table has exactly ``vocab_size``
  rows. On a small corpus the learned vocabulary may saturate *below* ``vocab_size``
  (``len(tokenizer)`` tells the real size); that is fine, the extra rows are never used.
  Training raises ``AvatarError`` if a kind would need *more* than ``vocab_size`` entries
  (for byte-level BPE the 256-byte alphabet plus the 5 specials is the floor).

Unlike the authors' BPE files (see ``load_reference_tokenizer``) we do not lowercase:
identifiers' case carries meaning in C and Java.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from avatar.errors import AvatarError, DataError
from avatar.io import atomic_directory
from avatar.text import normalize_code

TOKENIZER_KINDS: tuple[str, ...] = ("BPE", "WordPiece", "Unigram", "Word")

BOS, PAD, EOS, UNK, MASK = "<s>", "<pad>", "</s>", "<unk>", "<mask>"
SPECIAL_TOKENS: tuple[str, ...] = (BOS, PAD, EOS, UNK, MASK)
"""In id order: the trainers put special tokens first, so ``<s>`` is 0 ... ``<mask>`` is 4."""

UNIGRAM_MAX_CHARS = 2_000_000
"""Unigram trains on at most this many characters of (normalised) code, the first texts.

Why: Unigram's EM pruning is slow, about 16 s for 2 MB at vocab 1000 on a laptop core
(16-23 s on 4 MB in NOTES.md, and the search trains one tokenizer per distinct vocab size),
while BPE, WordPiece and Word train in seconds on the whole corpus. 2 MB of Devign code
still yields about 44k Unigram pieces, so sizes up to the space's 46k nearly saturate.
"""

WORDPIECE_MAX_ALPHABET = 1000
"""WordPiece keeps at most this many characters (and at most a quarter of the vocabulary):
the trainer adds each kept character twice (``c`` and ``##c``) before any merge, so an
unbounded alphabet on code with many Unicode comments could overflow ``vocab_size``."""

_CACHE_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._=+-]*")


def _code_normalizer() -> normalizers.Normalizer:
    """The same whitespace normalisation inside the tokenizer, so callers may pass raw code."""
    return normalizers.Sequence([normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip()])


def _split_code_symbols() -> pre_tokenizers.PreTokenizer:
    """Split on whitespace, then isolate each symbol character (``->`` becomes ``-`` ``>``).

    A symbol is anything but a letter, digit, underscore or space: ``_`` belongs to C and
    Java identifiers (``net_init_tap`` stays one word), whereas ``tokenizers``' Punctuation
    and BERT's pre-tokenizer would cut it out. Why single symbols: grouping runs such as
    ``));`` would spend vocabulary (and, for the Word kind, produce ``<unk>``) on every
    combination of brackets in the corpus.
    """
    symbol = pre_tokenizers.Split(Regex(r"[^\w\s]"), behavior="isolated")
    return pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), symbol])


def _roberta_template() -> processors.PostProcessor:
    return processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}",
        pair=f"{BOS} $A {EOS} {EOS} $B {EOS}",
        special_tokens=[(BOS, 0), (EOS, 2)],
    )


def _bpe(vocab_size: int) -> tuple[Tokenizer, trainers.Trainer]:
    """Byte-level BPE (RoBERTa's and the authors' kind): no character is ever unknown."""
    tokenizer = Tokenizer(models.BPE(unk_token=UNK))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    return tokenizer, trainer


def _wordpiece(vocab_size: int) -> tuple[Tokenizer, trainers.Trainer]:
    tokenizer = Tokenizer(models.WordPiece(unk_token=UNK, continuing_subword_prefix="##"))
    tokenizer.pre_tokenizer = _split_code_symbols()
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        limit_alphabet=max(1, min(WORDPIECE_MAX_ALPHABET, vocab_size // 4)),
        continuing_subword_prefix="##",
        show_progress=False,
    )
    return tokenizer, trainer


def _unigram(vocab_size: int) -> tuple[Tokenizer, trainers.Trainer]:
    tokenizer = Tokenizer(models.Unigram())
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), unk_token=UNK, show_progress=False
    )
    return tokenizer, trainer


def _word(vocab_size: int) -> tuple[Tokenizer, trainers.Trainer]:
    """Whole words and single symbols; words outside the top ``vocab_size`` become ``<unk>``."""
    tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
    tokenizer.pre_tokenizer = _split_code_symbols()
    trainer = trainers.WordLevelTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), show_progress=False
    )
    return tokenizer, trainer


_BUILDERS: dict[str, Callable[[int], tuple[Tokenizer, trainers.Trainer]]] = {
    "BPE": _bpe,
    "WordPiece": _wordpiece,
    "Unigram": _unigram,
    "Word": _word,
}


def _check_kind(kind: str) -> None:
    if kind not in _BUILDERS:
        raise AvatarError(f"unknown tokenizer kind {kind!r}; known kinds: {', '.join(TOKENIZER_KINDS)}")


def _training_texts(texts: Iterable[str], max_chars: int | None, counter: list[int]) -> Iterator[str]:
    """Normalised non-empty texts, stopping once ``max_chars`` characters were yielded."""
    total = 0
    for text in texts:
        if max_chars is not None and total >= max_chars:
            return
        normalised = normalize_code(text)
        if normalised:
            counter[0] += 1
            total += len(normalised)
            yield normalised


def wrap_tokenizer(tokenizer: Tokenizer, max_length: int = 512) -> PreTrainedTokenizerFast:
    """A ``transformers`` tokenizer around ``tokenizer`` with RoBERTa's special-token roles.

    Special tokens missing from the vocabulary (``<mask>`` in the authors' files) are left
    unset rather than appended, so no id can reach past the embedding table.
    """
    vocab = tokenizer.get_vocab()
    roles = {"bos_token": BOS, "cls_token": BOS, "eos_token": EOS, "sep_token": EOS,
             "unk_token": UNK, "pad_token": PAD, "mask_token": MASK}
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        model_max_length=max_length,
        model_input_names=["input_ids", "attention_mask"],  # RoBERTa ignores token types
        **{role: token for role, token in roles.items() if token in vocab},
    )


def train_tokenizer(
    kind: str, vocab_size: int, texts: Iterable[str] | Sequence[str], max_length: int = 512
) -> PreTrainedTokenizerFast:
    """Train a ``kind`` tokenizer of at most ``vocab_size`` entries on ``texts`` (raw code).

    The result may hold fewer than ``vocab_size`` entries when the corpus is small (see the
    module docstring); Unigram reads only the first ``UNIGRAM_MAX_CHARS`` characters.
    """
    _check_kind(kind)
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size <= len(SPECIAL_TOKENS):
        raise AvatarError(f"vocab_size must be an integer > {len(SPECIAL_TOKENS)}, got {vocab_size!r}")
    tokenizer, trainer = _BUILDERS[kind](vocab_size)
    tokenizer.normalizer = _code_normalizer()
    counter = [0]
    max_chars = UNIGRAM_MAX_CHARS if kind == "Unigram" else None
    tokenizer.train_from_iterator(_training_texts(texts, max_chars, counter), trainer=trainer)
    if counter[0] == 0:
        raise DataError(f"cannot train a {kind} tokenizer: no non-empty code texts were given")
    if tokenizer.get_vocab_size() > vocab_size:
        raise AvatarError(
            f"vocab_size {vocab_size} is too small for a {kind} tokenizer: it needs "
            f"{tokenizer.get_vocab_size()} entries (alphabet and special tokens)"
        )
    for expected_id, token in enumerate(SPECIAL_TOKENS):
        if tokenizer.token_to_id(token) != expected_id:  # a tokenizers upgrade changed the layout
            got = tokenizer.token_to_id(token)
            raise RuntimeError(f"{kind} trainer put {token} at id {got}, not {expected_id}")
    tokenizer.post_processor = _roberta_template()
    return wrap_tokenizer(tokenizer, max_length)


def cached_tokenizer(
    kind: str,
    vocab_size: int,
    texts_provider: Callable[[], Sequence[str]],
    cache_dir: str | os.PathLike[str],
    key: str,
    max_length: int = 512,
) -> PreTrainedTokenizerFast:
    """The tokenizer in ``cache_dir/<key>/<kind>_<vocab_size>/``, trained and saved on a miss.

    ``texts_provider`` is called only on a miss (reading the corpus is the slow part of a
    hit). The save goes to a temporary directory beside the target and is renamed into
    place (``avatar.io.atomic_directory``), so a killed run never leaves a half-written
    tokenizer.
    """
    _check_kind(kind)
    if not _CACHE_KEY.fullmatch(key):
        raise AvatarError(f"tokenizer cache key {key!r} must be one path component of letters, digits, ._=+-")
    parent = Path(cache_dir) / key
    target = parent / f"{kind}_{vocab_size}"
    if not (target / "tokenizer.json").is_file():
        tokenizer = train_tokenizer(kind, vocab_size, texts_provider(), max_length)
        with atomic_directory(target) as tmp:
            tokenizer.save_pretrained(tmp)
    return PreTrainedTokenizerFast.from_pretrained(str(target), model_max_length=max_length)


def load_reference_tokenizer(path: str | os.PathLike[str], max_length: int = 512) -> PreTrainedTokenizerFast:
    """One of the authors' BPE JSON files (``tokenizers_avatar/``), wrapped like ours.

    Why: to compare our students' tokenization with the paper's. Their files lowercase,
    have no ``<mask>`` (so ``mask_token`` stays unset) and keep their own normaliser; we
    only swap in RoBERTa's pair template so pair tasks encode the same way.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"missing tokenizer file: {path}")
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as error:  # tokenizers raises a bare Exception on bad JSON
        raise DataError(f"{path}: not a tokenizers JSON file ({error})") from None
    tokenizer.post_processor = _roberta_template()
    return wrap_tokenizer(tokenizer, max_length)
