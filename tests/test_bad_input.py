"""Bad input: one clear line each, an ``AvatarError`` (exit code 2 at the CLI), nothing half-written.

Table-driven: each case builds its bad input in a temporary folder, runs the real code
path, and asserts the message. The CLI's translation to one stderr line and exit code 2
is checked once per entry point in ``test_cli_search.py`` and below.
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import os
import random
import resource
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from avatar.core.errors import AvatarError
from avatar.core.registry import CONSTRAINTS, TASKS, TEACHERS
from avatar.search.evolve import SearchSettings
from avatar.search.objectives import Objectives
from avatar.search.smt import Pruner
from avatar.search.space import Space
from tests.conftest import REPO
from tests.helpers import load_space, tiny_student


def _compose(*overrides: str):
    with initialize_config_dir(str(REPO / "configs"), version_base="1.3"):
        return compose("search", overrides=list(overrides))


def unknown_constraint(tmp: Path) -> None:
    CONSTRAINTS.build({"name": "sizes"})


def unknown_task(tmp: Path) -> None:
    TASKS.get("vulnerability")


def unknown_meter(tmp: Path) -> None:
    Objectives.from_config("flops", [{"name": "watts"}])


def bad_override_type(tmp: Path) -> None:
    SearchSettings(population="forty")  # type: ignore[arg-type]


def too_small_population(tmp: Path) -> None:
    SearchSettings(population=1)


def bad_constraint_option(tmp: Path) -> None:
    CONSTRAINTS.build({"name": "size", "max_mb": -1})


def dimension_without_values(tmp: Path) -> None:
    Space.from_config([{"name": "hidden_size", "choices": []}])


def unsat_constraint_set(tmp: Path) -> None:
    Pruner(load_space("tiny"), [CONSTRAINTS.create("size", max_mb=0.0001)], 2)


def missing_data_root(tmp: Path) -> None:
    TASKS.create("vuln", data_dir=str(tmp / "nowhere")).read_split("test")


def malformed_jsonl_line(tmp: Path) -> None:
    folder = tmp / "devign"
    folder.mkdir()
    good = json.dumps({"func": "int f(){}", "target": 0, "idx": 0})
    for name in ("train.jsonl", "valid.jsonl"):
        (folder / name).write_text(good + "\n")
    (folder / "test.jsonl").write_text(good + "\n" + '{"func": "int g(){}", "target": \n')
    TASKS.create("vuln", data_dir=str(folder)).read_split("test")


def pair_with_unknown_function(tmp: Path) -> None:
    folder = tmp / "bigclonebench"
    folder.mkdir()
    (folder / "data.jsonl").write_text(json.dumps({"idx": "1", "func": "void a(){}"}) + "\n")
    for name in ("label_train.txt", "unlabel_train.txt", "valid_sampled.txt"):
        (folder / name).write_text("1\t1\t1\t1\n")
    (folder / "test_sampled.txt").write_text("1\t1\t1\n1\t99\t0\n")
    TASKS.create("clone", data_dir=str(folder)).read_split("test")


def teacher_hub_id_offline(tmp: Path) -> None:
    from avatar.plugins.teachers.huggingface import load_pretrained

    load_pretrained("microsoft/codebert-base", 2)


def predictions_of_wrong_length(tmp: Path) -> None:
    from avatar.teach.teacher import TeacherContext

    path = tmp / "logits.npy"
    np.save(path, np.zeros((7, 2), dtype=np.float32))
    task = TASKS.create("demo", size=12)
    teacher = TEACHERS.create("predictions", path=str(path))
    teacher.produce(task, TeacherContext(tmp, tmp, {}))


def unknown_logger(tmp: Path) -> None:
    from avatar.run.tracking import create_logger

    create_logger({"name": "tensorboard"}, str(tmp), {})


def unreadable_checkpoint(tmp: Path) -> None:
    from avatar.search.evolve import run_search
    from avatar.search.objectives import MeterContext

    (tmp / "search_checkpoint.json").write_text('{"generation": 3, "popul')
    space = load_space("tiny")
    pruner = Pruner(space, [CONSTRAINTS.create("heads")], 2)
    objectives = Objectives.from_config("flops", ["size_mb"])
    run_search(space, pruner, objectives, MeterContext(space, 2), SearchSettings(population=4), tmp)


def candidate_outside_space(tmp: Path) -> None:
    load_space("tiny").validate({"hidden_size": 17})


def unknown_stage(tmp: Path) -> None:
    from avatar.stages import train

    with initialize_config_dir(str(REPO / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=["stage=evaluate"])
    train(cfg, tmp)


def unknown_indicator_from_config(tmp: Path) -> None:
    cfg = _compose("indicator.name=oracle")
    Objectives.from_config(dict(cfg.indicator), [])


def out_of_memory_batch(tmp: Path) -> None:
    import torch

    from avatar.learn.training import explain_out_of_memory

    with explain_out_of_memory(64, "distilling a student"):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def _devign_folder(tmp: Path, test_lines: bytes) -> Path:
    folder = tmp / "devign"
    folder.mkdir()
    good = json.dumps({"func": "int f(){}", "target": 0, "idx": 0}).encode() + b"\n"
    for name in ("train.jsonl", "valid.jsonl"):
        (folder / name).write_bytes(good)
    (folder / "test.jsonl").write_bytes(good + test_lines)
    return folder


def non_utf8_jsonl_line(tmp: Path) -> None:
    folder = _devign_folder(tmp, b'{"func": "int g(){ /* caf\xe9 */ }", "target": 1, "idx": 1}\n')
    TASKS.create("vuln", data_dir=str(folder)).read_split("test")


def non_utf8_gzipped_train(tmp: Path) -> None:
    folder = _devign_folder(tmp, b"")
    (folder / "train.jsonl").unlink()
    lines = [json.dumps({"func": f"int f{i}(){{}}", "target": i % 2, "idx": i}).encode() for i in range(3)]
    lines[2] = lines[2].replace(b"int", b"\xff\xfeint")
    (folder / "train.jsonl.gz").write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    TASKS.create("vuln", data_dir=str(folder)).read_split("label_train")


def truncated_gzipped_train(tmp: Path) -> None:
    folder = _devign_folder(tmp, b"")
    (folder / "train.jsonl").unlink()
    records = [json.dumps({"func": "int f(){}" * 50, "target": 0, "idx": i}) for i in range(50)]
    whole = gzip.compress("\n".join(records).encode() + b"\n")
    (folder / "train.jsonl.gz").write_bytes(whole[: len(whole) // 2])  # a download cut short
    TASKS.create("vuln", data_dir=str(folder)).read_split("label_train")


def _bigclonebench(tmp: Path, functions: bytes, test_pairs: bytes) -> Path:
    folder = tmp / "bigclonebench"
    folder.mkdir()
    (folder / "data.jsonl").write_bytes(functions)
    for name in ("label_train.txt", "unlabel_train.txt", "valid_sampled.txt"):
        (folder / name).write_text("1\t1\t1\t1\n")
    (folder / "test_sampled.txt").write_bytes(test_pairs)
    return folder


def non_utf8_pair_file(tmp: Path) -> None:
    functions = json.dumps({"idx": "1", "func": "void a(){}"}).encode() + b"\n"
    folder = _bigclonebench(tmp, functions, b"1\t1\t1\n1\t1\x00\xc3\t0\n")
    TASKS.create("clone", data_dir=str(folder)).read_split("test")


def non_utf8_clone_functions(tmp: Path) -> None:
    functions = b'{"idx": "1", "func": "void a(){ /* \xa9 1998 */ }"}\n'
    folder = _bigclonebench(tmp, functions, b"1\t1\t1\n")
    TASKS.create("clone", data_dir=str(folder)).read_split("test")


def _predictions_teacher(tmp: Path, name: str):  # noqa: ANN202 - (teacher, task, context)
    from avatar.teach.teacher import TeacherContext

    task = TASKS.create("demo", size=12)
    return TEACHERS.create("predictions", path=str(tmp / name)), task, TeacherContext(tmp, tmp, {})


def non_utf8_predictions_text(tmp: Path) -> None:
    (tmp / "logits.txt").write_bytes(b"0.1 0.9\n0.2\x96 0.8\n")
    teacher, task, context = _predictions_teacher(tmp, "logits.txt")
    teacher.produce(task, context)


def empty_predictions_npy(tmp: Path) -> None:
    (tmp / "logits.npy").write_bytes(b"")
    teacher, task, context = _predictions_teacher(tmp, "logits.npy")
    teacher.produce(task, context)


def truncated_predictions_npy(tmp: Path) -> None:
    np.save(tmp / "logits.npy", np.zeros((12, 2), dtype=np.float32))
    whole = (tmp / "logits.npy").read_bytes()
    (tmp / "logits.npy").write_bytes(whole[:-40])
    teacher, task, context = _predictions_teacher(tmp, "logits.npy")
    teacher.produce(task, context)


def truncated_knowledge_file(tmp: Path) -> None:
    from avatar.teach.teacher import Knowledge

    Knowledge("demo", "t", "", logits=np.zeros((12, 2))).save(tmp / "teacher.npz")
    (tmp / "teacher.npz").write_bytes((tmp / "teacher.npz").read_bytes()[:200])
    teacher, task, context = _predictions_teacher(tmp, "teacher.npz")
    teacher.produce(task, context)


@contextmanager
def _stdin(data: bytes) -> Iterator[None]:
    """``sys.stdin`` reading ``data``, as a pipe would deliver it."""
    saved = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")
    try:
        yield
    finally:
        sys.stdin = saved


def binary_stdin_to_predict(tmp: Path) -> None:
    from avatar.report.inputs import read_inputs

    with _stdin(b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x00>\x00"):
        read_inputs("-", pair=False)


def empty_stdin_to_predict(tmp: Path) -> None:
    from avatar.report.inputs import read_inputs

    with _stdin(b"  \n\t\n"):
        read_inputs("-", pair=False)


def empty_function_in_jsonl(tmp: Path) -> None:
    from avatar.report.inputs import read_inputs

    (tmp / "in.jsonl").write_text(json.dumps({"func": "int f(){}"}) + "\n" + json.dumps({"func": " "}) + "\n")
    read_inputs(str(tmp / "in.jsonl"), pair=False)


def control_chars_on_stdin(tmp: Path) -> None:
    from avatar.report.inputs import read_inputs

    with _stdin(b"\x00\x01\n"):  # no code at all: called empty, not binary and not labelled
        read_inputs("-", pair=False)


def control_chars_in_code_file(tmp: Path) -> None:
    from avatar.report.inputs import read_inputs

    (tmp / "f.c").write_text("\ufeff\x07\u200b\r\n\x1b\n")  # BOM, bell, zero-width space, escape
    read_inputs(str(tmp / "f.c"), pair=False)


def control_chars_in_jsonl_field(tmp: Path) -> None:
    from avatar.report.inputs import read_inputs

    lines = [json.dumps({"func": "int f(){}"}), json.dumps({"func": "\u0000"})]  # JSON escapes a NUL
    (tmp / "in.jsonl").write_text("\n".join(lines) + "\n")
    read_inputs(str(tmp / "in.jsonl"), pair=False)


def control_chars_in_pair_field(tmp: Path) -> None:
    from avatar.report.inputs import read_inputs

    (tmp / "pairs.jsonl").write_text(json.dumps({"func1": "int f(){}", "func2": "\u200b\u0007 \t"}) + "\n")
    read_inputs(str(tmp / "pairs.jsonl"), pair=True)


def control_chars_to_predictor(tmp: Path) -> None:
    from avatar.report.predict import Predictor

    Predictor.load(tiny_student(tmp)).predict(["int f(){}", "\x00\x01\n"])


def _cut(path: Path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def empty_snippet_to_predictor(tmp: Path) -> None:
    from avatar.report.predict import Predictor

    Predictor.load(tiny_student(tmp)).predict(["int f(){}", "\n  "])


def truncated_weights_in_predict(tmp: Path) -> None:
    from avatar.report.predict import Predictor

    student = tiny_student(tmp)
    _cut(student / "model.safetensors", 0.5)
    Predictor.load(student, "torch")


def truncated_weights_in_export(tmp: Path) -> None:
    from avatar.report.export import export_onnx

    student = tiny_student(tmp)
    _cut(student / "model.safetensors", 0.9)
    export_onnx(student)


def labels_of_another_student_in_export(tmp: Path) -> None:
    """``avatar.json`` from a 3-class student beside a 2-class student's weights (files mixed)."""
    from avatar.report.export import export_onnx

    student = tiny_student(tmp)
    meta = {"task": "codelang", "is_pair": False, "labels": ["python", "java", "c"]}
    (student / "avatar.json").write_text(json.dumps(meta))
    export_onnx(student)


def unreadable_student_tokenizer(tmp: Path) -> None:
    from avatar.report.predict import Predictor

    student = tiny_student(tmp)
    _cut(student / "tokenizer.json", 0.5)
    Predictor.load(student, "torch")


def damaged_onnx_model(tmp: Path) -> None:
    from avatar.report.predict import Predictor

    student = tiny_student(tmp)
    (student / "model.onnx").write_bytes(b"\x08\x07\x12\x04half")
    Predictor.load(student, "onnx")


def permission_denied_output(tmp: Path) -> None:
    from avatar.core.io import atomic_write_json

    if not Path("/sys/kernel").is_dir():
        pytest.skip("no sysfs here: nowhere that refuses a new file even to root")
    atomic_write_json("/sys/avatar-report.json", {"a": 1})  # sysfs refuses new files, root or not


@contextmanager
def _file_size_limit(limit: int) -> Iterator[None]:
    """A real write failure without filling a disk: past ``ulimit -f`` a write fails with EFBIG."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills the process
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def full_disk_while_writing(tmp: Path) -> None:
    from avatar.core.io import atomic_write_bytes

    (tmp / "out").mkdir()
    try:
        with _file_size_limit(4096):
            atomic_write_bytes(tmp / "out" / "pareto.json", b"x" * 100_000)
    finally:
        assert list((tmp / "out").iterdir()) == []  # no temp file left behind


def full_disk_while_saving_a_folder(tmp: Path) -> None:
    from avatar.core.io import atomic_directory

    (tmp / "out").mkdir()
    try:
        with _file_size_limit(4096), atomic_directory(tmp / "out" / "student") as folder:
            (folder / "model.safetensors").write_bytes(b"x" * 100_000)
    finally:
        assert list((tmp / "out").iterdir()) == []  # no temp folder left behind


def _compose_train(*overrides: str):
    with initialize_config_dir(str(REPO / "configs"), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def trainer_epochs_not_a_number(tmp: Path) -> None:
    from avatar.stages import train

    train(_compose_train("stage=teacher", "trainer.max_epochs=abc"), tmp)


def trainer_limit_not_a_number(tmp: Path) -> None:
    from avatar.stages import search

    search(_compose("indicator=flops", "distill.top_k=0", "trainer.limit_val_batches=all"), tmp)


def run_dir_in_use(tmp: Path) -> None:
    from avatar.run.runlock import run_lock
    from avatar.stages import train

    with run_lock(tmp):
        train(_compose_train("stage=report"), tmp)


def search_on_two_devices(tmp: Path) -> None:
    from avatar.stages import search

    search(_compose("indicator=flops", "distill.top_k=0", "trainer.devices=2", "trainer.strategy=ddp"), tmp)


def options_of_another_indicator(tmp: Path) -> None:
    """``experiment=demo indicator=flops``: the demo's surrogate options reach the flops indicator."""
    cfg = _compose("experiment=demo", "indicator=flops")
    Objectives.from_config(dict(cfg.indicator), [])


def budget_below_the_checkpoint(tmp: Path) -> None:
    """A rerun with a smaller ``trainer.max_epochs`` than the interrupted student already trained."""
    import torch

    from avatar.distill.settings import DistillSettings
    from avatar.distill.train import distill_candidate
    from avatar.plugins.tasks.demo import DemoTask
    from avatar.teach.teacher import Knowledge

    task = DemoTask(limit=16)
    gold = np.array([e.label for e in task.read_split("unlabel_train")])
    logits = np.eye(2)[gold] * 6 - 3
    knowledge = Knowledge(task.name, "gold", task.fingerprint("unlabel_train"), logits=logits)
    candidate = load_space("tiny").validate({
        "tokenizer": "BPE", "vocab_size": 1000, "num_hidden_layers": 1, "hidden_size": 32,
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "intermediate_size": 64, "num_attention_heads": 2,
        "attention_probs_dropout_prob": 0.1, "max_sequence_length": 128,
        "position_embedding_type": "absolute", "learning_rate": 1e-3, "batch_size": 16,
    })
    (tmp / "run" / "checkpoints").mkdir(parents=True)
    torch.save({"epoch": 5, "global_step": 40, "state_dict": {}}, tmp / "run" / "checkpoints" / "last.ckpt")
    distill_candidate(candidate, task, knowledge, DistillSettings(progress_bar=False), tmp / "run",
                      cache_dir=tmp / "cache", trainer={"max_epochs": 2})


def unknown_search_algorithm(tmp: Path) -> None:
    from avatar.stages import search

    search(_compose("indicator=flops", "distill.top_k=0", "search.algorithm=moead"), tmp)


def unknown_executor(tmp: Path) -> None:
    from avatar.stages import search

    search(_compose("indicator=flops", "distill.top_k=0", "executor.name=dask"), tmp)


def negative_top_k(tmp: Path) -> None:
    from avatar.stages import search

    search(_compose("indicator=flops", "distill.top_k=-1"), tmp)


def zero_generations(tmp: Path) -> None:
    SearchSettings(generations=0)


def zero_time_budget(tmp: Path) -> None:
    from avatar.stages import search

    search(_compose("indicator=flops", "distill.top_k=0", "trainer.max_time=00:00:00:00"), tmp)


def negative_time_budget(tmp: Path) -> None:
    from avatar.stages import train

    train(_compose_train("stage=teacher", "trainer.max_time=-1"), tmp)


def unknown_loss(tmp: Path) -> None:
    from avatar.stages import search

    search(_compose("indicator=flops", "distill.top_k=0", "distill.loss=soft"), tmp)


def loss_option_out_of_range(tmp: Path) -> None:
    from avatar.stages import search

    search(_compose("indicator=flops", "distill.top_k=0", "distill.loss=kl_cosine",
                    "+distill.loss_options.cosine_weight=-2"), tmp)


def gpus_on_a_cluster_without_gpus(tmp: Path) -> None:
    from avatar.run.executor import RayExecutor

    RayExecutor(gpus_per_run=0.25)._check_resources({"CPU": 2.0})


def _demo_student(tmp: Path) -> Path:
    """``tiny_student`` with the ``avatar.json`` a demo student has (single functions, task demo)."""
    folder = tiny_student(tmp)
    (folder / "avatar.json").write_text(json.dumps({"task": "demo", "is_pair": False, "labels": ["0", "1"]}))
    return folder


def student_of_another_task_in_report(tmp: Path) -> None:
    from avatar.report.stage import ReportOptions, report_run

    class Vuln(TASKS.get("demo")):  # a stand-in with another name: the report must not measure it
        name = "vuln"

    report_run(Vuln(size=20), tmp, ReportOptions(students=[str(_demo_student(tmp))], examples=2))


def single_function_student_given_pairs(tmp: Path) -> None:
    from avatar.cli.main import run_command

    data = tmp / "pairs.jsonl"
    data.write_text(json.dumps({"func1": "int f(){}", "func2": "int g(){}"}) + "\n")
    printed = io.StringIO()
    with redirect_stderr(printed):
        assert run_command("predict", [str(_demo_student(tmp)), str(data), "--pair"]) == 2
    raise AvatarError(printed.getvalue().strip())  # the one line the user saw


def recorded_path_outside_the_run_gone(tmp: Path) -> None:
    """A file of a run directory moved from elsewhere names a folder outside it that is gone."""
    from avatar.core.io import recorded_path

    (tmp / "run").mkdir()
    recorded_path("/elsewhere/cache/teachers/demo-1", tmp / "run", source="run/teacher.json")


CASES: list[tuple[Callable[[Path], None], str]] = [
    (unknown_constraint, "unknown constraint 'sizes'; known constraints: flops, heads, size, train_memory"),
    (unknown_task, "unknown task 'vulnerability'; known tasks: clone, demo, vuln"),
    (unknown_meter, "unknown meter 'watts'; known meters:"),
    (bad_override_type, "search.population must be int, got 'forty'"),
    (too_small_population, "search.population must be at least 2"),
    (bad_constraint_option, "constraint 'size': bad options"),
    (dimension_without_values, "space dimension 'hidden_size' has no values"),
    (unsat_constraint_set, "unsatisfiable over this space: size(max_mb=0.0001)"),
    (missing_data_root, "nowhere does not exist; get the data from"),
    (malformed_jsonl_line, "test.jsonl:2"),
    (pair_with_unknown_function, "test_sampled.txt:2: unknown function id 99"),
    (teacher_hub_id_offline, "teacher.path=<local dir>"),
    (predictions_of_wrong_length, "logits.npy: 7 predictions, but task demo has 12 unlabeled examples"),
    (unknown_logger, "unknown logger 'tensorboard'; known loggers: none, wandb"),
    (unreadable_checkpoint, "unreadable search checkpoint"),
    (candidate_outside_space, "candidate does not fit the space"),
    (unknown_stage, "unknown stage 'evaluate'; known stages: teacher, distill, report"),
    (out_of_memory_batch, "out of memory while distilling a student at batch size 64: restrict the space's"),
    (unknown_indicator_from_config,
     "unknown indicator 'oracle'; known indicators: budget_examples, flops, snip, surrogate"),
    (non_utf8_jsonl_line, "test.jsonl:2: not UTF-8 text (byte 0xe9 at column 26); save the file as UTF-8"),
    (non_utf8_gzipped_train, "train.jsonl.gz:3: not UTF-8 text (byte 0xff at column 11)"),
    (truncated_gzipped_train, "train.jsonl.gz: cannot read (Compressed file ended before the end-of-stream"),
    (non_utf8_pair_file, "test_sampled.txt:2: not UTF-8 text (byte 0xc3 at column 5)"),
    (non_utf8_clone_functions, "data.jsonl:1: not UTF-8 text (byte 0xa9 at column 36)"),
    (non_utf8_predictions_text, "logits.txt:2: not UTF-8 text (byte 0x96 at column 4)"),
    (empty_predictions_npy, "logits.npy: not a readable .npy array (the file is empty: 0 bytes)"),
    (truncated_predictions_npy, "logits.npy: not a readable .npy array (Failed to read all data for array"),
    (truncated_knowledge_file, "teacher.npz: not a teacher knowledge file (File is not a zip file)"),
    (binary_stdin_to_predict, "<stdin>: binary input (a NUL byte at offset 7), not source code"),
    (empty_stdin_to_predict, "<stdin>: the input is empty: there is no code to classify"),
    (empty_function_in_jsonl, "in.jsonl:2: field 'func' is empty: there is no code to classify"),
    (empty_snippet_to_predictor, "snippet 2 is empty: there is no code to classify"),
    (control_chars_on_stdin, "<stdin>: the input is empty: there is no code to classify"),
    (control_chars_in_code_file, "f.c: the input is empty: there is no code to classify"),
    (control_chars_in_jsonl_field, "in.jsonl:2: field 'func' is empty: there is no code to classify"),
    (control_chars_in_pair_field, "pairs.jsonl:1: field 'func2' is empty: there is no code to classify"),
    (control_chars_to_predictor, "snippet 2 is empty: there is no code to classify"),
    (truncated_weights_in_predict, "model.safetensors: cannot load the student's weights (Error while"),
    (truncated_weights_in_export, "model.safetensors: cannot load the student's weights ("),
    (unreadable_student_tokenizer, "tokenizer.json: not a readable tokenizer ("),
    (damaged_onnx_model, "model.onnx: not a loadable ONNX model ("),
    (permission_denied_output, "cannot write /sys/avatar-report.json: Permission denied (EACCES); make it"),
    (full_disk_while_writing, "pareto.json: File too large (EFBIG); raise the file size limit (ulimit -f)"),
    (full_disk_while_saving_a_folder, "student: File too large (EFBIG); raise the file size limit"),
    (trainer_epochs_not_a_number, "trainer.max_epochs must be an integer, got 'abc' (str)"),
    (trainer_limit_not_a_number, "trainer.limit_val_batches must be a number, got 'all' (str)"),
    (run_dir_in_use, "is in use by pid {pid} on host"),
    (search_on_two_devices, "search.py runs each training on one device (got trainer.devices=2"),
    (unknown_executor, "unknown executor 'dask'; known executors: local, ray"),
    (negative_top_k, "distill.top_k must be an integer >= 0 (0: no students), got -1"),
    (zero_generations, "search.generations must be >= 1, got 0"),
    (zero_time_budget, "trainer.max_time must be longer than zero, got '00:00:00:00': nothing would train"),
    (negative_time_budget, "trainer.max_time must be DD:HH:MM:SS (e.g. 00:01:00:00), got -1"),
    (unknown_loss, "unknown loss 'soft'; known losses: hard, kl, kl_cosine"),
    (loss_option_out_of_range, "distill.loss_options.cosine_weight must be >= 0, got -2"),
    (gpus_on_a_cluster_without_gpus, "executor.gpus_per_run=0.25 but the Ray cluster has no GPU to give"),
    (student_of_another_task_in_report, "was trained for task 'demo', not 'vuln'"),
    (single_function_student_given_pairs, "reads single functions; the input here is pairs of functions"),
    (unknown_search_algorithm, "search.algorithm must be one of nsga2, nsga3, spea2, got 'moead'"),
    (options_of_another_indicator, "indicator 'flops' has no option samples, max_steps, train_examples, "
                                   "eval_examples, target, learning_rate (it takes no options); options an "
                                   "experiment set for another indicator go with ~indicator.samples"),
    (labels_of_another_student_in_export, "has 3 labels; its weights' classifier head has 2"),
    (budget_below_the_checkpoint, "last.ckpt has trained 5 epochs, more than trainer.max_epochs=2: set "
                                  "trainer.max_epochs>=5 to resume it, or delete it to train from the start"),
    (recorded_path_outside_the_run_gone, "teacher.json: /elsewhere/cache/teachers/demo-1 no longer exists"),
]


@pytest.mark.parametrize("case, message", CASES, ids=[case.__name__ for case, _ in CASES])
def test_bad_input_is_one_clear_line(case: Callable[[Path], None], message: str, tmp_path: Path) -> None:
    random.seed(0)
    with pytest.raises(AvatarError) as error:
        case(tmp_path)
    text = str(error.value)
    assert message.format(pid=os.getpid()) in text
    assert "\n" not in text and "Traceback" not in text


def test_unwritable_output_dir_is_one_line_before_hydra(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    done = subprocess.run(
        [sys.executable, "search.py", f"hydra.run.dir={blocker}/run", "distill.top_k=0"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().startswith(f"error: output directory {blocker}/run is not writable")
    assert len(done.stderr.strip().splitlines()) == 1


def test_yaml_syntax_error_names_file_and_line_and_leaves_no_run_dir(tmp_path: Path) -> None:
    folder = tmp_path / "configs" / "experiment"
    folder.mkdir(parents=True)
    (folder / "broken.yaml").write_text("# @package _global_\nsearch: {population: [4\n")
    run = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "search.py", "--config-dir", str(tmp_path / "configs"), "experiment=broken",
         f"hydra.run.dir={run}"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (f"error: {folder / 'broken.yaml'}:3:1: not valid YAML "
                                   "(expected ',' or ']', but got '<stream end>')")
    assert not run.exists()


def test_an_option_from_config_dir_passes_the_preflight(tmp_path: Path) -> None:
    """``--config-dir`` adds options: the check before Hydra knows them (it used to refuse them all)."""
    from avatar.cli.preflight import preflight

    folder = tmp_path / "experiment"
    folder.mkdir()
    (folder / "mine.yaml").write_text("# @package _global_\nsearch: {population: 4}\n")
    preflight(["--config-dir", str(tmp_path), "experiment=mine"], REPO / "configs")  # no SystemExit
    with pytest.raises(SystemExit):
        preflight(["experiment=mine"], REPO / "configs")


@pytest.mark.parametrize("data, message", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
     "error: <stdin>: binary input (a NUL byte at offset 8), not source code"),
    (b"", "error: <stdin>: the input is empty: there is no code to classify"),
    (b"\x00\x01\n", "error: <stdin>: the input is empty: there is no code to classify"),
    (b'{"func": "int f(){}"}\n{"func": "\\u0000"}\n',
     "error: <stdin>:2: field 'func' is empty: there is no code to classify"),
], ids=["binary", "empty", "control-characters", "control-characters-in-jsonl"])
def test_predict_cli_refuses_binary_and_empty_stdin(
    data: bytes, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from avatar.cli.main import run_command
    predict_main = functools.partial(run_command, 'predict')

    student = tiny_student(tmp_path)
    with _stdin(data):
        assert predict_main([str(student), "-"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # no label at all, least of all a confident one
    assert captured.err.strip() == message


def test_push_lists_the_students_files_and_offline_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``avatar push``: everything up to the network call; offline it stops there in one line."""
    from avatar.cli.main import run_command

    student = tiny_student(tmp_path)
    (student / ".model.onnx.123.abcd.tmp.onnx").write_bytes(b"a killed export")
    assert run_command("push", [str(student), "me/tiny-student", "--dry-run"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0] == f"would push {len(listed) - 1} files of {student} to me/tiny-student:"
    names = [line.strip() for line in listed[1:]]
    assert "README.md" in names and "config.json" in names and not [n for n in names if ".tmp" in n]
    assert run_command("push", [str(student), "me/tiny-student"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: HF_HUB_OFFLINE is set: avatar push needs the Hugging Face Hub; unset it, log in "
        "(hf auth login, or HF_TOKEN) and run the command again")
    assert run_command("push", [str(student), "tiny-student"]) == 2
    assert "repository id must be <user or organisation>/<name>" in capsys.readouterr().err
