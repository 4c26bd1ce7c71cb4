"""A student's model card (``README.md``): what someone who finds the folder needs to trust it.

Why huggingface_hub's ``ModelCard``: the Hub, ``huggingface_hub`` and most tools read its YAML
header (tags, pipeline, metrics); the text under it says, in numbers, what the student is:
its task and label names, its teacher, its size, its test metrics, its agreement with the
teacher, its robustness (flips on renamed code) and the command that made it.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

CARD_NAME = "README.md"


def _number(value: Any, spec: str) -> str:
    return "n/a" if value is None else format(float(value), spec)


def model_card(meta: Mapping[str, Any], command: list[str] | None = None) -> ModelCard:
    """The card of a student from its ``avatar.json`` content (``meta``)."""
    metrics = dict(meta.get("metrics") or {})
    labels = list(meta.get("labels") or [])
    task = meta.get("task") or "unknown"
    data = ModelCardData(
        library_name="transformers",
        pipeline_tag="text-classification",
        tags=["avatar", "code", "knowledge-distillation", str(task)],
        model_name=f"avatar-{task}-student",
    )
    headline = {k.removeprefix("test/"): v for k, v in metrics.items()
                if k.startswith("test/") and not k.startswith("test/flip")}
    rows = "\n".join(f"| {name} | {_number(value, '.4f')} |" for name, value in sorted(headline.items()))
    flips = metrics.get("test/flips")
    robustness = (
        f"It changes its answer on **{int(flips)}** of {int(metrics.get('test/flip_examples', 0)):,} test "
        "examples when the functions' names, parameters and locals are renamed (a metamorphic copy of "
        "the test split; fewer is better)." if flips is not None else "Robustness was not measured."
    )
    if meta.get("canonical_names"):
        robustness += (" It reads every function with canonical names (`fa`, `va`, `vb` ...): `avatar "
                       "predict`, `avatar scan` and `avatar.report.predict.Predictor` rename them first; the "
                       "`pipeline` below does not, so give it code renamed by "
                       "`avatar.code.rename.canonical_identifiers`.")
    agreement = metrics.get("holdout/teacher_agreement")
    distillation = meta.get("distillation") or {}
    invocation = shlex.join(command if command is not None else sys.argv)
    text = f"""---
{data.to_yaml()}
---

# A {meta.get('size_mb', 0):.2f} MB student for `{task}`

Distilled by Avatar (z3 pruning, NSGA-II, knowledge distillation) from the teacher
`{meta.get('teacher', 'unknown')}`:
a {"pair" if meta.get("is_pair") else "single-function"} classifier of code with the labels
{", ".join(f"`{name}` ({index})" for index, name in enumerate(labels))}, reading at most
{meta.get('max_length', 'n/a')} tokens (longer code is truncated).

## Test metrics

| metric | value |
|---|---:|
{rows}

Agreement with its teacher on unlabeled examples held out of its training:
{_number(agreement, '.2%') if agreement is not None else 'not measured'}. {robustness}

## Use

```python
from transformers import pipeline

# truncation=True once here: the student reads its first max_length tokens, as in training
classify = pipeline("text-classification", model="<this folder>", truncation=True)
print(classify("int f(char *s) {{ char b[8]; strcpy(b, s); return 0; }}"))
```

or `avatar predict <this folder> file.c`, `avatar scan <this folder> src/`.

## How it was made

Loss `{distillation.get('loss', 'n/a')}`, {distillation.get('global_step', 'n/a')} steps, schedule
`{distillation.get('schedule', 'n/a')}`; the architecture is in `config.json`, the search point in
`avatar.json`. Command:

```bash
{invocation}
```
"""
    return ModelCard(text)
