"""Test helpers shared by several test files."""

from __future__ import annotations

from pathlib import Path

import yaml

from avatar.core.registry import TASKS
from avatar.search.objectives import MeterContext
from avatar.search.space import Space
from avatar.task.base import Example, Split, Task

REPO = Path(__file__).resolve().parents[1]


def load_space(name: str) -> Space:
    text = (REPO / "configs" / "space" / f"{name}.yaml").read_text()
    return Space.from_config(yaml.safe_load(text)["dimensions"])


# a small student of space=tiny (the proxies' tests score it and its variants)
TINY_STUDENT = {
    "tokenizer": "BPE", "vocab_size": 1000, "num_hidden_layers": 1, "hidden_size": 32, "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1, "intermediate_size": 64, "num_attention_heads": 2,
    "attention_probs_dropout_prob": 0.1, "max_sequence_length": 128, "position_embedding_type": "absolute",
    "learning_rate": 1e-3, "batch_size": 16,
}


# ---- a three-class toy: which language is a snippet written in? ---------------------------------------

CODELANG_LABELS = ("python", "java", "c")
_NAMES = ["total", "count", "value", "item", "left", "right", "size", "index", "result", "acc", "node", "key"]
_FUNCS = ["add", "scale", "merge", "clamp", "score", "update", "lookup", "combine", "measure", "reduce"]


def codelang_snippet(label: int, rng) -> str:  # noqa: ANN001 - random.Random
    """A short function in Python (0), Java (1) or C (2): lexically far apart on purpose."""
    a, b, tmp = rng.sample(_NAMES, 3)
    func, op, k = rng.choice(_FUNCS), rng.choice("+-*"), rng.randint(2, 99)
    if label == 0:
        body = [f"def {func}_{a}({a}, {b}):", f"    {tmp} = {a} {op} {b} * {k}"]
        body += rng.choice([[f"    if {tmp} > {k}:", f"        print({tmp})"], [f"    {tmp} += len([{a}])"]])
        return "\n".join([*body, f"    return {tmp}", ""])
    if label == 1:
        body = [f"public static int {func}{a.title()}(int {a}, int {b}) {{",
                f"    int {tmp} = {a} {op} {b} * {k};"]
        body += rng.choice([[f"    System.out.println({tmp});"], [f"    {tmp} += Math.max({a}, {b});"]])
        return "\n".join([*body, f"    return {tmp};", "}", ""])
    body = [f"static int {func}_{a}(const int *{a}, size_t {b})", "{",
            f"    int {tmp} = *{a} {op} (int){b} * {k};"]
    body += rng.choice([[f'    printf("%d\\n", {tmp});'], [f"    {tmp} += (int)sizeof(*{a});"]])
    return "\n".join([*body, f"    return {tmp};", "}", ""])


def codelang_records(per_class: dict[str, int] | None = None, seed: int = 0) -> list[dict]:
    """``{"code", "label", "split"}`` records, balanced per split (the docs' data file format)."""
    import random

    rng = random.Random(seed)
    sizes = per_class or {"label_train": 10, "unlabel_train": 10, "valid": 5, "test": 5}
    records = []
    for split, count in sizes.items():
        for i in range(count * len(CODELANG_LABELS)):
            label = i % len(CODELANG_LABELS)
            records.append({"code": codelang_snippet(label, rng), "label": label, "split": split})
    return records


# ---- a student that loads in a second -----------------------------------------------------------------

def tiny_student(tmp: Path) -> Path:
    """A saved, untrained 1-layer student with a Word tokenizer: enough to load and predict, in a second."""
    from transformers import RobertaConfig, RobertaForSequenceClassification

    from avatar.distill.tokenizer import train_tokenizer

    folder = tmp / "student"
    tokenizer = train_tokenizer("Word", 40, ["int main(void) { return 0; }", "void f(char *s) { gets(s); }"],
                                max_length=32)
    config = RobertaConfig(vocab_size=40, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=16, max_position_embeddings=34, pad_token_id=1, bos_token_id=0,
                           eos_token_id=2)
    RobertaForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def demo_search_context(tmp: Path) -> MeterContext:
    """A search's view of the demo task (60 examples) over the tiny space, a 10-minute student
    budget and a cache under ``tmp``: what the indicators that read the task's code need."""
    task = TASKS.create("demo", size=60)
    return MeterContext(load_space("tiny"), 2, str(tmp), task=task, cache_dir=tmp / "cache",
                        student_seconds=600.0)


class Copies(Task):
    """Demo functions in pairs: (f, f with a comment and other spacing) is a clone (1), (f, g) is not (0)."""

    name = "copies"
    is_pair = True
    headline_metric = "f1"

    def __init__(self, size: int = 80) -> None:
        super().__init__()
        self.base = TASKS.create("demo", size=size)

    def read_split(self, split: Split) -> list[Example]:
        singles = self.base.read_split(split)
        out = []
        for i, (a, b) in enumerate(zip(singles, singles[1:] + singles[:1])):
            twin = "/* copied */\n" + a.code.replace("    ", "\t")  # type: ignore[union-attr]
            code = (a.code, twin) if i % 2 == 0 else (a.code, b.code)
            out.append(Example(code=code, label=1 - i % 2, id=f"{a.id}+{i}"))  # type: ignore[arg-type]
        return out
