"""Errors a user caused: the entry points print them as one line and exit non-zero."""


class AvatarError(Exception):
    """Bad input (config, data, plugin name): one clear line, never a traceback."""


class DataError(AvatarError):
    """Missing or malformed data; the message names the file (and line) at fault."""


def is_out_of_memory(error: BaseException) -> bool:
    """CUDA's ``OutOfMemoryError`` or the CPU allocator's "can't allocate memory"."""
    text = str(error)
    return type(error).__name__ == "OutOfMemoryError" or "can't allocate memory" in text or (
        "out of memory" in text.lower()
    )


def out_of_memory_hint(batch_size: int, what: str) -> str:
    """One line that says what ran out and what to change."""
    smaller = max(1, batch_size // 2)
    return (
        f"out of memory while {what} at batch size {batch_size}: restrict the space's batch_size "
        f"choices (e.g. to {smaller} and below), lower distill.eval_batch_size, or use "
        "trainer.precision=16-mixed on a GPU"
    )
