"""Energy/CO2 measurement, the energy meters and the report, on a tiny student and the demo task.

One tiny trained student (tests/test_export.py's builder) and a larger random "teacher" that
shares its tokenizer are saved once per module; the student is exported to ONNX and int8.
Energy here is whatever codecarbon measures or estimates on this machine: the tests check
that numbers are positive and consistent, never their values.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402

from avatar.core.registry import METERS, TASKS  # noqa: E402
from avatar.distill.folder import ONNX_NAME, QUANTIZED_NAME  # noqa: E402
from avatar.report.export import export_all  # noqa: E402
from avatar.report.measure import measure_model, parameter_count  # noqa: E402
from avatar.report.render import build_report  # noqa: E402
from avatar.report.rows import ReportRow  # noqa: E402
from avatar.run import green  # noqa: E402
from avatar.search.objectives import MeterContext  # noqa: E402
from avatar.search.space import Candidate  # noqa: E402
from avatar.stages import report_stage  # noqa: E402
from tests.helpers import load_space  # noqa: E402
from tests.test_export import build_student  # noqa: E402

N_EXAMPLES = 10  # the demo task of size 40 has 10 test examples


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Tiny models gain nothing from threads; on a shared 2-core machine spinning threads hurt."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def task():  # noqa: ANN201 - a Task
    return TASKS.create("demo", size=40)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``student`` (trained, exported to ONNX + int8) and ``teacher`` (random, 4x wider, same tokenizer)."""
    import torch
    from transformers import RobertaConfig, RobertaForSequenceClassification

    root = tmp_path_factory.mktemp("green")
    student = build_student(root / "students" / "tiny" / "student", "absolute")
    meta = json.loads((student / "avatar.json").read_text())
    (student / "avatar.json").write_text(json.dumps({**meta, "task": "demo"}))  # measured on the demo task
    export_all(student)
    teacher = root / "teacher"
    config = RobertaConfig(
        vocab_size=300, hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=256,
        max_position_embeddings=130, pad_token_id=1, bos_token_id=0, eos_token_id=2, type_vocab_size=1,
        num_labels=2,
    )
    torch.manual_seed(0)
    RobertaForSequenceClassification(config).save_pretrained(teacher)
    for item in student.iterdir():
        if item.name.startswith(("tokenizer", "special_tokens")) or item.name == "avatar.json":
            shutil.copy(item, teacher / item.name)
    return {"root": root, "student": student, "teacher": teacher}


@pytest.fixture(scope="module")
def rows(models: dict[str, Path], task) -> list[ReportRow]:  # noqa: ANN001
    out = [measure_model(models["teacher"], task, "torch", N_EXAMPLES, kind="teacher")]
    for backend in ("torch", "onnx", "int8"):
        out.append(measure_model(models["student"], task, backend, N_EXAMPLES))
    return out


# ---- the tracker ----------------------------------------------------------------------------------

def test_one_tracker_per_process() -> None:
    first = green.get_tracker()
    assert green.get_tracker() is first
    a = green.measure_workload(lambda: sum(range(200_000)), "a")
    b = green.measure_workload(lambda: sum(range(200_000)), "a")  # the same name twice is fine
    assert green.get_tracker() is first and green.tracker_starts() == 1
    for m in (a, b):
        assert m.seconds > 0 and m.energy_kwh > 0 and m.co2_g > 0
        assert m.estimated == (green.cpu_sensor_mode() not in green.SENSOR_CPU_MODES)
    green.configure_tracker()  # the same settings again: accepted
    other = "FRA" if green._settings["country_iso_code"] != "FRA" else "DEU"
    with pytest.raises(green.AvatarError, match="already runs"):
        green.configure_tracker(country_iso_code=other)


def test_energy_source_says_measured_or_estimated() -> None:
    source = green.energy_source()
    assert source.startswith("estimated" if green.energy_is_estimated() else "measured")
    info = green.machine_info()
    assert info["cpu"] and info["logical_cpus"] >= 1


def test_inference_workload_on_a_torch_model() -> None:
    import torch
    from transformers import RobertaConfig, RobertaForSequenceClassification

    torch.manual_seed(0)
    model = RobertaForSequenceClassification(RobertaConfig(
        vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=1, intermediate_size=32,
        max_position_embeddings=34, type_vocab_size=1)).eval()
    inputs = green.random_sequences(100, 32, 6)
    result = green.inference_workload(model, inputs, batch_size=4, warmup=1)
    assert result.n == 6 and result.outputs is not None and result.outputs.shape == (6, 2)
    assert result.latency_ms > 0
    energy, co2 = result.per_1000()
    assert energy == pytest.approx(result.measurement.energy_kwh * 1000 / 6)
    assert co2 > 0


# ---- measuring saved models -------------------------------------------------------------------------

def test_measure_model_rows(rows: list[ReportRow], models: dict[str, Path]) -> None:
    teacher, torch_row, onnx_row, int8_row = rows
    assert [r.kind for r in rows] == ["teacher", "student", "onnx", "int8"]
    assert teacher.name == "teacher" and torch_row.name == "tiny" and onnx_row.name == "tiny (onnx)"
    assert torch_row.size_mb == pytest.approx(parameter_count(models["student"]) * 4 / 2**20)
    assert onnx_row.size_mb == pytest.approx((models["student"] / ONNX_NAME).stat().st_size / 2**20)
    assert int8_row.size_mb == pytest.approx((models["student"] / QUANTIZED_NAME).stat().st_size / 2**20)
    assert int8_row.size_mb < onnx_row.size_mb and teacher.size_mb > torch_row.size_mb
    for row in rows:
        assert row.metric_name == "accuracy" and row.metric is not None and 0 <= row.metric <= 1
        assert set(row.metrics) == {"accuracy", "precision", "recall", "f1"}
        assert row.n_examples == N_EXAMPLES
        assert row.latency_ms > 0 and row.energy_kwh_per_1k > 0 and row.co2_g_per_1k > 0
    # the three backends of one student predict alike (int8 may flip a borderline example)
    assert onnx_row.metric == pytest.approx(torch_row.metric)


def test_parameter_count_matches_the_loaded_model(models: dict[str, Path]) -> None:
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(models["student"])
    assert parameter_count(models["student"]) == sum(p.numel() for p in model.parameters())


def test_build_report_writes_md_csv_png(rows: list[ReportRow], tmp_path: Path) -> None:
    paths = build_report(rows, tmp_path, title="Demo report")
    assert {p.name for p in paths.values()} == {"report.md", "report.csv", "report.png"}
    markdown = paths["md"].read_text()
    assert "size ratio | latency ratio | energy ratio" in markdown
    assert ("estimated" if green.energy_is_estimated() else "measured") in markdown
    assert green.machine_info()["cpu"] in markdown
    table = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + len(rows)
    assert table[1].startswith("| teacher | teacher |") and table[1].endswith("| 1.0x | 1.0x | 1.0x |")
    records = list(csv.DictReader(io.StringIO(Path(paths["csv"]).read_text())))
    assert [r["kind"] for r in records] == ["teacher", "student", "onnx", "int8"]
    student = records[1]
    assert float(student["size_ratio"]) == pytest.approx(rows[0].size_mb / rows[1].size_mb)
    assert float(student["latency_ratio"]) == pytest.approx(rows[0].latency_ms / rows[1].latency_ms)
    energy_ratio = rows[0].energy_kwh_per_1k / rows[1].energy_kwh_per_1k
    assert float(student["energy_ratio"]) == pytest.approx(energy_ratio)
    assert "metric_f1" in student
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_report_without_teacher_has_no_ratios(rows: list[ReportRow], tmp_path: Path) -> None:
    paths = build_report(rows[1:], tmp_path)
    assert "| n/a | n/a | n/a |" in paths["md"].read_text()


def test_report_stage_finds_students_by_default(models: dict[str, Path], tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    run_dir = models["root"]  # holds students/tiny/student, already exported
    cfg = OmegaConf.create({
        "task": {"name": "demo", "data_dir": None, "limit": None, "seed": 42, "size": 40},
        "paths": {"data": None},
        "report": {"teacher": str(models["teacher"]), "students": None, "examples": 4, "split": "test",
                   "export": True, "threads": 1},
    })
    paths = report_stage(cfg, run_dir)
    records = list(csv.DictReader(io.StringIO(Path(paths["csv"]).read_text())))
    # report.baseline (default true): a TF-IDF + LR row fitted on the demo's labeled half
    assert [r["kind"] for r in records] == ["teacher", "student", "onnx", "int8", "baseline"]
    assert all(r["n_examples"] == "4" for r in records)
    # latency: median and IQR over 10 round-robin repeats (report.latency_repeats), every row
    for record in records:
        assert record["latency_repeats"] == "10"
        assert float(record["latency_q1_ms"]) <= float(record["latency_ms"]) <= float(record["latency_q3_ms"])
    assert records[0]["teacher_agreement"] == "" and 0 <= float(records[1]["teacher_agreement"]) <= 1
    baseline = records[-1]
    assert baseline["name"] == "TF-IDF + LR (baseline)" and 0 <= float(baseline["teacher_agreement"]) <= 1
    assert float(baseline["size_ratio"]) > 0 and baseline["gflops"] == ""
    markdown = Path(paths["md"]).read_text()
    assert "the teacher's predictions on the same examples: tiny " in markdown
    assert "TF-IDF + LR (baseline): TF-IDF over code tokens" in markdown
    assert ("- Latency: 10 repeats per model, each one pass over the first 4 measured examples; the 5 "
            "models ran round-robin") in markdown
    teacher_line = next(line for line in markdown.splitlines() if line.startswith("| teacher |"))
    assert re.search(r"\| \d+\.\d\d \[\d+\.\d\d-\d+\.\d\d\] \|", teacher_line), teacher_line
    # robustness: every model ran on the same metamorphic copy of the measured examples
    assert all(0 <= int(r["flips"]) <= int(r["flip_examples"]) == 4 for r in records)
    assert "Flips (robustness): measured examples whose predicted label" in Path(paths["md"]).read_text()
    cfg.report.baseline = False
    records = list(csv.DictReader(io.StringIO(Path(report_stage(cfg, run_dir)["csv"]).read_text())))
    assert "baseline" not in [r["kind"] for r in records]
    cfg.report.students = [str(tmp_path / "missing*")]
    with pytest.raises(green.AvatarError, match="no folder matches"):
        report_stage(cfg, run_dir)


# ---- the meters ------------------------------------------------------------------------------------

def test_energy_meters_measure_once_and_cache(tmp_path: Path) -> None:
    from avatar.plugins.meters import energy

    space = load_space("tiny")
    candidate = Candidate.from_dict({
        "tokenizer": "BPE", "vocab_size": 1000, "num_hidden_layers": 1, "hidden_size": 32,
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "intermediate_size": 64, "num_attention_heads": 2,
        "attention_probs_dropout_prob": 0.1, "max_sequence_length": 64, "position_embedding_type": "absolute",
        "learning_rate": 1e-3, "batch_size": 16,
    })
    context = MeterContext(space=space, num_labels=2, run_dir=str(tmp_path))
    energy_meter = METERS.create("energy_kwh", examples=20)
    co2_meter = METERS.create("co2_g", examples=20)
    assert energy_meter.direction == co2_meter.direction == "min"
    kwh = energy_meter.measure(candidate, context)
    grams = co2_meter.measure(candidate, context)
    assert kwh > 0 and grams > 0
    # measured floats never repeat exactly: equality means the cached measurement came back
    assert energy_meter.measure(candidate, context) == kwh
    assert (tmp_path / energy.CACHE_NAME).is_file()
    energy.CACHE.clear()
    assert METERS.create("co2_g", examples=20).measure(candidate, context) == grams  # from the file
    other = METERS.create("energy_kwh", examples=21).measure(candidate, context)  # other settings: measured
    assert other > 0 and other != kwh
