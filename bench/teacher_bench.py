"""How fast can this machine fine-tune and run a teacher? (``python bench/teacher_bench.py``)

Prints examples/s for one fine-tuning step (forward + backward + AdamW, batch 8) and for
inference (``torch.inference_mode``, batch 8) at sequence lengths 256 and 512, for a tiny
RoBERTa classifier and a roberta-base-sized one (``RobertaConfig()`` defaults, random
weights, ``max_position_embeddings=514`` as the real checkpoint has, so 512 tokens fit).
Why: it tells whether fine-tuning a CodeBERT teacher here is practical (it is not on a
laptop CPU: use a GPU server and the ``predictions`` teacher) and sizes the test budgets.
One warm-up step, then 1 (base) or 10 (tiny) timed steps; about 2-3 minutes on a CPU core.
"""

from __future__ import annotations

import argparse
import time

import torch
from transformers import RobertaConfig, RobertaForSequenceClassification

BATCH = 8
MODELS = {
    "tiny (1x32, vocab 1k)": dict(
        vocab_size=1000, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=514,
    ),
    "roberta-base (12x768)": dict(max_position_embeddings=514),
}


def _batch(config: RobertaConfig, length: int, device: torch.device) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, config.vocab_size, (BATCH, length), generator=generator)
    ids[:, 0], ids[:, -1] = 0, 2
    return {
        "input_ids": ids.to(device),
        "attention_mask": torch.ones_like(ids).to(device),
        "labels": torch.randint(0, 2, (BATCH,), generator=generator).to(device),
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_rate(model: torch.nn.Module, batch: dict[str, torch.Tensor], steps: int) -> float:
    """Examples per second of full fine-tuning steps (the first, warm-up step is not timed)."""
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
    device = batch["input_ids"].device
    for step in range(steps + 1):
        if step == 1:
            _sync(device)
            started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        model(**batch).loss.backward()
        optimizer.step()
    _sync(device)
    return steps * BATCH / (time.perf_counter() - started)


def infer_rate(model: torch.nn.Module, batch: dict[str, torch.Tensor], steps: int) -> float:
    """Examples per second of batched inference (warm-up batch not timed)."""
    model.eval()
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    device = batch["input_ids"].device
    with torch.inference_mode():
        model(**inputs)
        _sync(device)
        started = time.perf_counter()
        for _ in range(steps):
            model(**inputs)
        _sync(device)
    return steps * BATCH / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--base-steps", type=int, default=1, help="timed steps for the base model")
    parser.add_argument("--tiny-steps", type=int, default=10, help="timed steps for the tiny model")
    parser.add_argument(
        "--threads", type=int, default=None,
        help="torch threads (default: torch's). On a CPU shared with other jobs use 1: OpenMP threads "
        "that wait for a busy core make small models 20x slower",
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, batch {BATCH}")
    print()
    print("| model | params | seq | fine-tune ex/s | s/step | inference ex/s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    total = time.perf_counter()
    for name, options in MODELS.items():
        torch.manual_seed(0)
        config = RobertaConfig(num_labels=2, **options)
        model = RobertaForSequenceClassification(config).to(device)
        params = sum(p.numel() for p in model.parameters())
        steps = args.base_steps if params > 10_000_000 else args.tiny_steps
        for length in (256, 512):
            batch = _batch(config, length, device)
            train = train_rate(model, batch, steps)
            infer = infer_rate(model, batch, steps)
            row = [name, f"{params / 1e6:.2f} M", length, f"{train:.2f}", f"{BATCH / train:.2f}"]
            row.append(f"{infer:.2f}")
            print("| " + " | ".join(map(str, row)) + " |", flush=True)
    print()
    print(f"total {time.perf_counter() - total:.0f} s")


if __name__ == "__main__":
    main()
