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

Same corpus, same tokenizer, byte for byte, in any process: two runs with one seed must
give one front. ``tokenizers``' BPE and WordLevel trainers are deterministic, but its
WordPiece and Unigram trainers are not across processes: Rust's ``HashMap`` is seeded at
random per process (no environment variable fixes it; ``RAYON_NUM_THREADS=1`` does not
help), and (1) the WordPiece trainer gives the ``##c`` continuation characters their ids
in that hash order, which then breaks ties between equally frequent merges, so ids and
even the learned set change; (2) the Unigram trainer sums its EM statistics in that order,
so scores differ in the last bits and tied pieces change places. So WordPiece runs the
same (BPE) trainer on a deterministic encoding of continuation characters
(``_wordpiece``), and Unigram is trained by SentencePiece, the reference
implementation that ``tokenizers`` ports, whose trainer is deterministic for a fixed
thread count (``_unigram``); both end as ordinary ``tokenizers`` models.
"""

from __future__ import annotations

import io
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from avatar.core.errors import AvatarError, DataError
from avatar.core.io import atomic_directory, cache_lock, discard_corrupt, first_line
from avatar.core.text import normalize_code

TOKENIZER_KINDS: tuple[str, ...] = ("BPE", "WordPiece", "Unigram", "Word")

BOS, PAD, EOS, UNK, MASK = "<s>", "<pad>", "</s>", "<unk>", "<mask>"
SPECIAL_TOKENS: tuple[str, ...] = (BOS, PAD, EOS, UNK, MASK)
"""In id order: the trainers put special tokens first, so ``<s>`` is 0 ... ``<mask>`` is 4."""

UNIGRAM_MAX_CHARS = 2_000_000
"""Unigram trains on at most this many characters of (normalised) code, the first texts.

Why: Unigram's EM pruning is slow, about 16 s for 2 MB at vocab 1000 on a laptop core
(16-23 s on 4 MB as measured for ``tokenizers``' trainer; SentencePiece's is about twice
as fast; the search trains one tokenizer per distinct vocab size), while BPE, WordPiece and
Word train in seconds on the whole corpus. 2 MB of Devign code still yields about 44k
Unigram pieces, so sizes up to the space's 46k nearly saturate.
"""

WORDPIECE_MAX_ALPHABET = 1000
"""WordPiece keeps at most this many characters (and at most a quarter of the vocabulary):
the trainer adds each kept character twice (``c`` and ``##c``) before any merge, so an
unbounded alphabet on code with many Unicode comments could overflow ``vocab_size``."""

SENTENCEPIECE_THREADS = 2
"""Fixed, not the machine's core count: SentencePiece's EM sums per thread, so the thread
count is part of what makes its result reproducible across machines."""

TOKENIZER_FORMAT = 2
"""Version of a cached tokenizer entry (``<kind>_<vocab>_v<format>``). 2: deterministic
training; entries of format 1 (unversioned) came from the nondeterministic trainers and
are never read again."""

_CONTINUATION_BASE = 0xF0000
"""Start of Supplementary Private Use Area-A: stand-ins for continuation characters."""

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


def _bpe(vocab_size: int, texts: Iterator[str]) -> Tokenizer:
    """Byte-level BPE (RoBERTa's and the authors' kind): no character is ever unknown.

    Deterministic as it is: the 256-byte alphabet gets its ids before any word is seen.
    """
    tokenizer = Tokenizer(models.BPE(unk_token=UNK))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def _wordpiece(vocab_size: int, texts: Iterator[str]) -> Tokenizer:
    """WordPiece learned by the BPE trainer (as ``tokenizers``' own WordPieceTrainer does), made
    deterministic: each continuation character ``##c`` enters the trainer as one stand-in
    character from the private use area, so every id is fixed (sorted) before the first merge
    and ties between merges are broken the same way in every process."""
    splitter = _split_code_symbols()
    words: Counter[str] = Counter()
    for text in texts:
        words.update(_code_words(text, splitter))
    kept = _wordpiece_alphabet(words, vocab_size)
    stand_in = _continuation_stand_ins(words, kept)
    helper = Tokenizer(models.BPE(unk_token=UNK))
    helper.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), initial_alphabet=sorted(kept),
        show_progress=False,
    )
    helper.train_from_iterator(_stand_in_corpus(words, kept, stand_in), trainer=trainer)
    original = {code: char for char, code in stand_in.items()}
    vocab = {_wordpiece_token(token, original): index for token, index in helper.get_vocab().items()}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token=UNK, continuing_subword_prefix="##"))
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
    tokenizer.pre_tokenizer = splitter
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    return tokenizer


_ASCII_WORDS = re.compile(r"\w+|[^\w\s]", re.ASCII)


def _code_words(text: str, splitter: pre_tokenizers.PreTokenizer) -> list[str]:
    r"""The words ``splitter`` (``_split_code_symbols``) makes of ``text``.

    ASCII text, nearly all code, goes through an equivalent Python regex: five times faster
    than building the pre-tokenizer's offset tuples, and the same words (for ASCII, both
    regex engines agree on ``\w`` and ``\s``); any other text goes through ``splitter``.
    """
    if text.isascii():
        return _ASCII_WORDS.findall(text)
    return [word for word, _ in splitter.pre_tokenize_str(text)]


def _wordpiece_alphabet(words: Counter[str], vocab_size: int) -> set[str]:
    """The most frequent characters, at most ``WORDPIECE_MAX_ALPHABET`` and a quarter of the
    vocabulary; ties go to the smaller code point (the library's pick among ties is random)."""
    chars: Counter[str] = Counter()
    for word, count in words.items():
        for char in word:
            chars[char] += count
    limit = max(1, min(WORDPIECE_MAX_ALPHABET, vocab_size // 4))
    return set(sorted(chars, key=lambda char: (-chars[char], char))[:limit])


def _continuation_stand_ins(words: Counter[str], kept: set[str]) -> dict[str, str]:
    """Kept character -> an unused private-use character for its ``##`` form, in code point order."""
    continuing = sorted({char for word in words for char in word[1:] if char in kept})
    used = set().union(*words) if words else set()
    stand_in: dict[str, str] = {}
    code = _CONTINUATION_BASE
    for char in continuing:
        while chr(code) in used:
            code += 1
        stand_in[char] = chr(code)
        code += 1
    return stand_in


def _stand_in_corpus(words: Counter[str], kept: set[str], stand_in: dict[str, str]) -> Iterator[str]:
    """Each word as often as it occurs, continuation characters replaced by their stand-ins.

    Characters outside the alphabet are dropped, as the library's trainer drops them; a
    character keeps its continuation form by its place in the original word.
    """
    for word, count in words.items():
        encoded = "".join(
            char if place == 0 else stand_in[char] for place, char in enumerate(word) if char in kept
        )
        if encoded:
            yield " ".join([encoded] * count)


def _wordpiece_token(token: str, original: dict[str, str]) -> str:
    """A learned stand-in token as WordPiece spells it: a leading stand-in becomes ``##``."""
    prefix = "##" if token[:1] in original else ""
    return prefix + "".join(original.get(char, char) for char in token)


def _unigram(vocab_size: int, texts: Iterator[str]) -> Tokenizer:
    """A Unigram model trained by SentencePiece, then held by ``tokenizers`` (as transformers'
    converters hold SentencePiece models): the same algorithm and defaults as ``tokenizers``'
    trainer (seed pieces, EM with shrinking 0.75, pieces of up to 16 characters), with
    deterministic sums and sorts. Words start at ``▁`` (``Metaspace``) in both."""
    try:
        import sentencepiece as spm
    except ImportError:
        raise AvatarError(
            "Unigram tokenizers need the sentencepiece package: pip install sentencepiece==0.2.3"
        ) from None

    corpus = list(texts)
    needed = len({char for text in corpus for char in text.replace(" ", "\u2581")} | {"\u2581"})
    _check_fits("Unigram", vocab_size, needed + len(SPECIAL_TOKENS))
    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(corpus), model_writer=model, model_type="unigram",
            vocab_size=vocab_size - len(SPECIAL_TOKENS) + 1,  # its own <unk> is one of ours
            hard_vocab_limit=False, character_coverage=1.0, normalization_rule_name="identity",
            remove_extra_whitespaces=False, add_dummy_prefix=True, split_by_whitespace=True,
            split_by_unicode_script=False, split_by_number=False, max_sentencepiece_length=16,
            max_sentence_length=1 << 30, num_threads=SENTENCEPIECE_THREADS,
            unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1, minloglevel=2,
        )
    except RuntimeError as error:
        reason = first_line(error)
        raise AvatarError(f"SentencePiece could not train a Unigram tokenizer: {reason}") from None
    trained = spm.SentencePieceProcessor(model_proto=model.getvalue())
    pieces = [(trained.id_to_piece(i), trained.get_score(i)) for i in range(1, trained.get_piece_size())]
    vocab = [(token, 0.0) for token in SPECIAL_TOKENS]
    vocab += [(piece, score) for piece, score in pieces if piece not in SPECIAL_TOKENS]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=SPECIAL_TOKENS.index(UNK), byte_fallback=False))
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    return tokenizer


def _word(vocab_size: int, texts: Iterator[str]) -> Tokenizer:
    """Whole words and single symbols; words outside the top ``vocab_size`` become ``<unk>``.

    Deterministic as it is: the trainer orders words by count, then by the word itself.
    """
    tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
    tokenizer.pre_tokenizer = _split_code_symbols()
    trainer = trainers.WordLevelTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), show_progress=False
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


_TRAINERS: dict[str, Callable[[int, Iterator[str]], Tokenizer]] = {
    "BPE": _bpe,
    "WordPiece": _wordpiece,
    "Unigram": _unigram,
    "Word": _word,
}


def _check_fits(kind: str, vocab_size: int, needed: int) -> None:
    if needed > vocab_size:
        raise AvatarError(
            f"vocab_size {vocab_size} is too small for a {kind} tokenizer: it needs "
            f"{needed} entries (alphabet and special tokens)"
        )


def _check_kind(kind: str) -> None:
    if kind not in _TRAINERS:
        raise AvatarError(f"unknown tokenizer kind {kind!r}; known kinds: {', '.join(TOKENIZER_KINDS)}")


def _training_texts(texts: Iterable[str], max_chars: int | None) -> Iterator[str]:
    """Normalised non-empty texts, stopping once ``max_chars`` characters were yielded."""
    total = 0
    for text in texts:
        if max_chars is not None and total >= max_chars:
            return
        normalised = normalize_code(text)
        if normalised:
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
    max_chars = UNIGRAM_MAX_CHARS if kind == "Unigram" else None
    stream = _training_texts(texts, max_chars)
    first = next(stream, None)
    if first is None:
        raise DataError(f"cannot train a {kind} tokenizer: no non-empty code texts were given")
    tokenizer = _TRAINERS[kind](vocab_size, chain([first], stream))
    tokenizer.normalizer = _code_normalizer()  # the texts were normalised already: same result
    _check_fits(kind, vocab_size, tokenizer.get_vocab_size())
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
    """The tokenizer in ``cache_dir/<key>/<kind>_<vocab>_v<TOKENIZER_FORMAT>/``, trained and saved on a miss.

    ``texts_provider`` is called only on a miss (reading the corpus is the slow part of a
    hit). The save goes to a temporary directory beside the target and is renamed into
    place (``avatar.core.io.atomic_directory``), so a killed run never leaves a half-written
    tokenizer. A miss is trained under ``cache_lock``: a concurrent run waits, then loads
    this one. An entry that does not load (damaged on disk) is reported, deleted and retrained.
    """
    _check_kind(kind)
    if not _CACHE_KEY.fullmatch(key):
        raise AvatarError(f"tokenizer cache key {key!r} must be one path component of letters, digits, ._=+-")
    target = Path(cache_dir) / key / f"{kind}_{vocab_size}_v{TOKENIZER_FORMAT}"
    tokenizer = _load_cached(target, max_length, repair=False)
    if tokenizer is not None:
        return tokenizer
    with cache_lock(target):
        tokenizer = _load_cached(target, max_length, repair=True)
        if tokenizer is None:
            trained = train_tokenizer(kind, vocab_size, texts_provider(), max_length)
            with atomic_directory(target) as tmp:
                trained.save_pretrained(tmp)
            tokenizer = PreTrainedTokenizerFast.from_pretrained(str(target), model_max_length=max_length)
    return tokenizer


def _load_cached(target: Path, max_length: int, repair: bool) -> PreTrainedTokenizerFast | None:
    """The cached tokenizer in ``target``, or ``None`` when absent or (``repair``: then deleted) corrupt.

    Without ``repair`` (no lock held) a bad entry is only skipped: another process may be
    replacing it at this moment.
    """
    if not target.exists():
        return None
    try:
        if not (target / "tokenizer.json").is_file():
            raise AvatarError("no tokenizer.json")
        tokenizer = PreTrainedTokenizerFast.from_pretrained(str(target), model_max_length=max_length)
        ids = tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS))
        if ids != list(range(len(SPECIAL_TOKENS))):
            raise AvatarError(f"special tokens at ids {ids}, not 0..{len(SPECIAL_TOKENS) - 1}")
    except Exception as error:  # noqa: BLE001 - tokenizers raises bare Exceptions on bad JSON
        if repair:
            discard_corrupt(target, error)
        return None
    return tokenizer


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
