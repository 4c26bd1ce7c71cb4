"""The ``demo`` task: generated C functions, vulnerable (1) or safe (0), no dataset needed.

Why it exists: a first run, the tutorial and CI need a task that works on a fresh
checkout with nothing to download. Avatar therefore writes its own data: plausible C
functions built from a seeded generator. A function is vulnerable when it holds one
unchecked unsafe pattern (``strcpy``/``strcat``/``gets``/``sprintf`` into a fixed
buffer, ``memcpy`` or a copy loop whose length is not checked against the buffer, an
array index without a (correct) bounds check); the safe variants check the length,
bound the copy (``strncpy`` with ``sizeof``, ``snprintf``, ``fgets``) or check the index.

Why it is not trivial: identifiers, buffer sizes, statement order, filler statements and
helper calls vary, and both classes use the "dangerous" functions (a safe function may
``strcpy`` after a length check, or ``sprintf`` a number into a wide buffer) as well as
the "safe" ones, so no single token separates the labels; the evidence is in how tokens
combine, which a small model can learn.

Determinism: each split draws from its own ``random.Random`` seeded from a SHA-256 of
(seed, split), never from Python's salted ``hash()``, so the data is identical across
runs and processes. Splits never share a function: later splits skip any text an
earlier split produced (test first, so a test function is never regenerated away).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from avatar.core.registry import TASKS
from avatar.task.base import Example, Split, Task

# Splits skip functions an earlier split produced; the evaluation splits go first.
_GENERATION_ORDER: tuple[Split, ...] = ("test", "valid", "label_train", "unlabel_train")

_VERBS = [
    "parse",
    "copy",
    "load",
    "read",
    "handle",
    "build",
    "store",
    "set",
    "format",
    "fill",
    "decode",
    "update",
    "append",
    "init",
    "process",
    "save",
    "lookup",
    "register",
]
_NOUNS = [
    "name",
    "path",
    "header",
    "record",
    "entry",
    "packet",
    "config",
    "user",
    "field",
    "token",
    "label",
    "message",
    "buffer",
    "request",
    "option",
    "key",
    "session",
    "frame",
]
_BUFFERS = [
    "buf",
    "name",
    "path",
    "line",
    "tmp",
    "out",
    "dst",
    "field",
    "label",
    "msg",
    "key",
    "host",
    "title",
    "dest",
    "scratch",
    "text",
    "cmd",
    "value_str",
    "local",
    "work",
]
_SOURCES = ["src", "input", "str", "arg", "value", "text_in", "user_name", "data_str", "s", "in"]
_DATA = ["data", "payload", "bytes", "raw", "chunk", "packet", "blob", "frame_data"]
_LENGTHS = ["len", "size", "length", "n", "count", "nbytes", "data_len", "sz"]
_INDICES = ["idx", "index", "slot", "pos", "id", "k", "entry_id", "channel"]
_TABLES = ["table", "counts", "slots", "values", "cache", "hist", "regs", "map"]
_INTS = ["ret", "rc", "status", "total", "result", "err", "used", "flags"]
_SIZES = [8, 16, 20, 24, 32, 40, 48, 64, 80, 100, 128, 200, 256, 512]
_SIZE_MACROS = ["MAX_NAME", "BUF_SIZE", "PATH_LEN", "LINE_MAX_LEN", "MAX_FIELD", "NAME_LEN"]
_TABLE_MACROS = ["MAX_SLOTS", "TABLE_SIZE", "NUM_CHANNELS", "MAX_ENTRIES"]
_ERRORS = ["-1", "-EINVAL", "ERR_RANGE", "-ENOMEM", "0", "-E2BIG"]
_HELPERS = ["log_debug", "trace_event", "audit_log", "debug_print", "report_status"]
_CALLS = ["update_stats", "notify_listeners", "mark_dirty", "refresh_cache", "touch_entry"]
_LINE_HANDLERS = ["process_line", "handle_input", "parse_tokens", "dispatch_command", "store_line"]


@dataclass
class _Part:
    """A fragment of a function: parameters, local declarations and statements."""

    params: list[str] = field(default_factory=list)
    decls: list[str] = field(default_factory=list)
    body: list[str] = field(default_factory=list)

    def extend(self, other: _Part) -> None:
        self.params += other.params
        self.decls += other.decls
        self.body += other.body


class _Builder:
    """The random source and the names already used by the function being generated."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()
        self.error = rng.choice(_ERRORS)

    def name(self, pool: list[str]) -> str:
        """An identifier from ``pool`` not yet used in this function (suffixed if all are)."""
        free = [n for n in pool if n not in self.used]
        chosen = self.rng.choice(free) if free else f"{self.rng.choice(pool)}{len(self.used)}"
        self.used.add(chosen)
        return chosen

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def buffer(self, kind: str = "char", minimum: int = 8) -> tuple[str, str, str]:
        """A fixed-size local buffer: (name, declaration, expression for its size)."""
        name = self.name(_BUFFERS)
        if self.chance(0.3):
            size = self.rng.choice(_SIZE_MACROS)
        else:
            size = str(self.rng.choice([s for s in _SIZES if s >= minimum]))
        size_expr = size if self.chance(0.3) else f"sizeof({name})"
        return name, f"{kind} {name}[{size}];", size_expr

    def fail(self, condition: str) -> list[str]:
        """An early return on ``condition``, in one of the brace styles seen in real code."""
        if self.chance(0.5):
            return [f"if ({condition}) {{", f"    return {self.error};", "}"]
        return [f"if ({condition})", f"    return {self.error};"]


# --- the patterns: each returns the vulnerable or the safe version of one operation ---


def _string_copy(b: _Builder, vulnerable: bool) -> _Part:
    dst, decl, size = b.buffer()
    src = b.name(_SOURCES)
    part = _Part([f"const char *{src}"], [decl])
    if vulnerable:
        if b.chance(0.3):  # a check that looks reassuring but bounds nothing
            part.body += b.fail(f"{src} == NULL")
        part.body.append(f"strcpy({dst}, {src});")
        return part
    style = b.rng.randrange(3)
    if style == 0:
        part.body += [f"strncpy({dst}, {src}, {size} - 1);", f"{dst}[{size} - 1] = '\\0';"]
    elif style == 1:
        part.body += b.fail(f"strlen({src}) >= {size}")
        part.body.append(f"strcpy({dst}, {src});")
    else:
        part.body.append(f'snprintf({dst}, {size}, "%s", {src});')
    return part


def _string_concat(b: _Builder, vulnerable: bool) -> _Part:
    dst, decl, size = b.buffer(minimum=16)
    src = b.name(_SOURCES)
    prefix = b.rng.choice(["/tmp/", "user:", "id=", "./", "key_"])
    part = _Part([f"const char *{src}"], [decl])
    part.body.append(f'strcpy({dst}, "{prefix}");' if b.chance(0.5) else f"{dst}[0] = '\\0';")
    if vulnerable:
        part.body.append(f"strcat({dst}, {src});")
    elif b.chance(0.5):
        part.body.append(f"strncat({dst}, {src}, {size} - strlen({dst}) - 1);")
    else:
        part.body += b.fail(f"strlen({dst}) + strlen({src}) >= {size}")
        part.body.append(f"strcat({dst}, {src});")
    return part


def _read_line(b: _Builder, vulnerable: bool) -> _Part:
    line, decl, size = b.buffer(minimum=32)
    part = _Part([], [decl])
    stream = "stdin"
    if b.chance(0.4):
        stream = b.name(["fp", "stream", "in_file", "f"])
        part.params.append(f"FILE *{stream}")
    if vulnerable:
        if stream == "stdin" and b.chance(0.6):
            part.body += b.fail(f"gets({line}) == NULL")
        else:
            part.body += b.fail(f'fscanf({stream}, "%s", {line}) != 1')
    else:
        part.body += b.fail(f"fgets({line}, {size}, {stream}) == NULL")
        part.body.append(f"{line}[strcspn({line}, \"\\n\")] = '\\0';")
    part.body.append(f"{b.rng.choice(_LINE_HANDLERS)}({line});")
    return part


def _format(b: _Builder, vulnerable: bool) -> _Part:
    dst, decl, size = b.buffer(minimum=16)
    first, second = b.name(_SOURCES), b.name(_SOURCES)
    fmt = b.rng.choice(["%s/%s", "%s:%s", "%s=%s", "%s %s", "[%s] %s"])
    part = _Part([f"const char *{first}", f"const char *{second}"], [decl])
    if vulnerable:
        part.body.append(f'sprintf({dst}, "{fmt}", {first}, {second});')
    elif b.chance(0.6):
        part.body += b.fail(f'snprintf({dst}, {size}, "{fmt}", {first}, {second}) >= (int){size}')
    else:
        part.body += b.fail(f"strlen({first}) + strlen({second}) + 2 > {size}")
        part.body.append(f'sprintf({dst}, "{fmt}", {first}, {second});')
    return part


def _mem_copy(b: _Builder, vulnerable: bool) -> _Part:
    dst, decl, size = b.buffer(kind=b.rng.choice(["char", "unsigned char", "uint8_t"]))
    data, length = b.name(_DATA), b.name(_LENGTHS)
    length_type = b.rng.choice(["size_t", "size_t", "int", "unsigned int"])
    part = _Part([f"const void *{data}", f"{length_type} {length}"], [decl])
    if vulnerable:
        if b.chance(0.4):  # checks something, but not the destination's size
            part.body += b.fail(b.rng.choice([f"{length} == 0", f"{data} == NULL"]))
        part.body.append(f"memcpy({dst}, {data}, {length});")
    elif b.chance(0.6):
        part.body += b.fail(f"{length} > {size}")
        part.body.append(f"memcpy({dst}, {data}, {length});")
    else:
        part.body.append(f"memcpy({dst}, {data}, {length} < {size} ? {length} : {size});")
    return part


def _index(b: _Builder, vulnerable: bool) -> _Part:
    table, index = b.name(_TABLES), b.name(_INDICES)
    count = b.rng.choice(_TABLE_MACROS) if b.chance(0.5) else str(b.rng.choice([4, 8, 16, 32, 64]))
    part = _Part([f"int {index}"], [f"int {table}[{count}];"])
    value = b.name(_INTS)
    part.params.append(f"int {value}")
    access = b.rng.choice([f"{table}[{index}] = {value};", f"{table}[{index}] += {value};"])
    if vulnerable:
        if b.chance(0.35):  # off by one or missing the lower bound
            part.body += b.fail(b.rng.choice([f"{index} > {count}", f"{index} >= {count} + 1"]))
        part.body.append(access)
    elif b.chance(0.6):
        part.body += b.fail(f"{index} < 0 || {index} >= {count}")
        part.body.append(access)
    else:
        part.body += [f"if ({index} >= 0 && {index} < {count}) {{", f"    {access}", "}"]
    return part


def _loop_copy(b: _Builder, vulnerable: bool) -> _Part:
    dst, decl, size = b.buffer()
    src, length, i = b.name(_SOURCES), b.name(_LENGTHS), b.name(["i", "j", "pos", "n_copied"])
    part = _Part([f"const char *{src}", f"size_t {length}"], [decl, f"size_t {i};"])
    bound = f"{i} < {length}" if vulnerable else f"{i} < {length} && {i} < {size} - 1"
    part.body += [f"for ({i} = 0; {bound}; {i}++) {{", f"    {dst}[{i}] = {src}[{i}];", "}"]
    if not vulnerable and b.chance(0.3):
        part.body[0] = f"for ({i} = 0; {i} < {length}; {i}++) {{"
        part.body = [*b.fail(f"{length} >= {size}"), *part.body]
    part.body.append(f"{dst}[{i}] = '\\0';")
    return part


_PATTERNS: list[Callable[[_Builder, bool], _Part]] = [
    _string_copy,
    _string_concat,
    _read_line,
    _format,
    _mem_copy,
    _index,
    _loop_copy,
]


# --- statements that occur in both classes: noise, some of it dangerous-looking ---


def _decoy(b: _Builder) -> _Part:
    """A safe use of a function that usually signals danger, or a bounded one that signals safety."""
    kind = b.rng.randrange(5)
    if kind == 0:
        name, decl, _ = b.buffer(minimum=16)
        word = b.rng.choice(["none", "default", "n/a", "guest", "root"])
        return _Part([], [decl], [f'strcpy({name}, "{word}");'])
    if kind == 1:
        name = b.name(["num", "digits", "id_str", "numbuf"])
        number = b.name(_INTS)
        return _Part([f"int {number}"], [f"char {name}[32];"], [f'sprintf({name}, "%d", {number});'])
    if kind == 2:
        copy, header = b.name(["copy", "saved", "snapshot"]), b.name(["hdr", "header", "info"])
        return _Part(
            [f"const struct header *{header}"],
            [f"struct header {copy};"],
            [f"memcpy(&{copy}, {header}, sizeof({copy}));"],
        )
    if kind == 3:
        name, decl, size = b.buffer(minimum=32)
        helper = b.rng.choice(_HELPERS)
        note = b.rng.choice(["step %d", "at line %d", "checkpoint %d", "stage=%d"])
        return _Part([], [decl], [f'snprintf({name}, {size}, "{note}", __LINE__);', f"{helper}({name});"])
    name, decl, size = b.buffer(minimum=16)
    return _Part([], [decl], [f"memset({name}, 0, {size});"])


def _filler(b: _Builder) -> _Part:
    """Neutral statements: counters, context updates, logging, helper calls."""
    kind = b.rng.randrange(6)
    if kind == 0:
        var = b.name(_INTS)
        return _Part([], [f"int {var} = 0;"], [f"{var} += {b.rng.randint(1, 9)};"])
    if kind == 1:
        ctx = b.name(["ctx", "state", "conn", "dev"])
        field_name = b.rng.choice(["refcount", "errors", "calls", "pending"])
        return _Part([f"struct context *{ctx}"], [], [*b.fail(f"{ctx} == NULL"), f"{ctx}->{field_name}++;"])
    if kind == 2:
        helper = b.rng.choice(_HELPERS)
        return _Part([], [], [f'{helper}("{b.rng.choice(_VERBS)} %s", __func__);'])
    if kind == 3:
        return _Part([], [], [f"{b.rng.choice(_CALLS)}();"])
    if kind == 4:
        flags = b.name(["mode", "opts", "bits"])
        return _Part([f"unsigned int {flags}"], [], [f"{flags} |= 0x{b.rng.randint(1, 255):02x};"])
    lock = b.name(["lock", "mutex", "guard"])
    return _Part(
        [f"pthread_mutex_t *{lock}"], [], [f"pthread_mutex_lock({lock});", f"pthread_mutex_unlock({lock});"]
    )


def _function(rng: random.Random, vulnerable: bool) -> str:
    """One C function; when ``vulnerable`` exactly one of its core operations is unsafe."""
    b = _Builder(rng)
    cores = [b.rng.choice(_PATTERNS) for _ in range(1 if b.chance(0.65) else 2)]
    bad = b.rng.randrange(len(cores)) if vulnerable else -1
    parts = [pattern(b, i == bad) for i, pattern in enumerate(cores)]
    extras = [_decoy(b) for _ in range(b.rng.choice([0, 0, 1, 1, 2]))]
    extras += [_filler(b) for _ in range(b.rng.randint(1, 3))]
    for extra in extras:  # fillers and decoys land before, between or after the core
        parts.insert(b.rng.randint(0, len(parts)), extra)
    whole = _Part()
    for part in parts:
        whole.extend(part)
    b.rng.shuffle(whole.params)
    if b.chance(0.5):
        b.rng.shuffle(whole.decls)
    name = f"{b.rng.choice(_VERBS)}_{b.rng.choice(_NOUNS)}"
    qualifier = "static " if b.chance(0.4) else ""
    result = b.rng.choice(["0", "0", "1", f"{len(whole.body)}"])
    lines = [f"{qualifier}int {name}({', '.join(whole.params) or 'void'})", "{"]
    lines += [f"    {decl}" for decl in whole.decls]
    if whole.decls:
        lines.append("")
    lines += [f"    {stmt}" for stmt in whole.body]
    lines.append(f"    return {result};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _split_rng(seed: int, split: str) -> random.Random:
    digest = hashlib.sha256(f"avatar-demo:{seed}:{split}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def generate_split(rng: random.Random, count: int, seen: set[str]) -> list[tuple[str, int]]:
    """``count`` (code, label) pairs, half of each label, none of them already in ``seen``."""
    labels = [i % 2 for i in range(count)]
    rng.shuffle(labels)
    out: list[tuple[str, int]] = []
    for label in labels:
        code = _function(rng, vulnerable=bool(label))
        while code in seen:
            code = _function(rng, vulnerable=bool(label))
        seen.add(code)
        out.append((code, label))
    return out


@TASKS.register("demo")
class DemoTask(Task):
    """Generated C vulnerability detection: 1 = vulnerable, 0 = safe. ``data_dir`` is ignored."""

    label_names = ("not vulnerable", "vulnerable")

    num_labels = 2
    is_pair = False
    language = "c"
    headline_metric = "accuracy"

    def __init__(
        self, data_dir: str | None = None, limit: int | None = None, seed: int = 42, size: int = 400
    ) -> None:
        super().__init__(data_dir=data_dir, limit=limit, seed=seed)
        if size < 4:
            raise ValueError(f"demo task size must be at least 4, got {size}")
        self.size = size
        self._splits: dict[Split, list[Example]] | None = None

    def split_sizes(self) -> dict[Split, int]:
        """``size`` examples in each training half, a quarter of that for valid and test."""
        return {
            "label_train": self.size,
            "unlabel_train": self.size,
            "valid": self.size // 4,
            "test": self.size // 4,
        }

    def _generate(self) -> dict[Split, list[Example]]:
        sizes = self.split_sizes()
        seen: set[str] = set()
        splits: dict[Split, list[Example]] = {}
        for split in _GENERATION_ORDER:
            pairs = generate_split(_split_rng(self.seed, split), sizes[split], seen)
            splits[split] = [
                Example(code=code, label=label, id=f"demo-{split}-{i}")
                for i, (code, label) in enumerate(pairs)
            ]
        return splits

    def read_split(self, split: Split) -> list[Example]:
        if self._splits is None:  # generated once: every split costs a few milliseconds
            self._splits = self._generate()
        if split not in self._splits:
            raise ValueError(f"unknown split {split!r}; known: {', '.join(self._splits)}")
        examples = self._splits[split]
        return list(examples if self.limit is None else examples[: self.limit])
