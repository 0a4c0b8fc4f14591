"""Precision and memory layout chosen by what the machine runs natively: `speed: auto` trains and infers
in bf16 only on a CPU with native bf16 (AVX512-BF16 / AMX) and in fp32 elsewhere, channels_last on
both; the CPU presets and the demo say auto; a named bf16 that this CPU emulates runs, said once in one
line; every stage prints and records what it chose and why."""

import json
import re
import subprocess
import sys
import warnings

import pytest
import torch

from helpers import ROOT, cpu_env, make_coco, make_process, settings, tiny_run
from trashseg import registry
from trashseg.runtime import precision

CPU = torch.device("cpu")
NATIVE = (True, "this CPU runs bf16 natively: AVX512-BF16")
EMULATED = (False, "this CPU emulates bf16: no AVX512-BF16 or AMX")
CAPPED = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}


def capped_why() -> str:
    """What the probe says under CAPPED: the cap, on a CPU with bf16 hardware; on an AVX2-only CPU (the
    development machines are of either kind) its own lack of bf16, which it finds first."""
    hardware = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return "this CPU emulates bf16: " + ("oneDNN capped at AVX2" if hardware else "no AVX512-BF16 or AMX")


def preset_settings(name: str):
    p = registry.preset(name)
    return settings(config=registry.model(p.base).config, preset=p.path)


@pytest.mark.parametrize("probe,amp", [(NATIVE, torch.bfloat16), (EMULATED, None)])
@pytest.mark.parametrize("preset", ["cpu-lite", "cpu-lite-deeplab", None])  # the demo trains the two presets
def test_auto_is_bf16_only_where_native_and_channels_last_on_every_cpu(monkeypatch, probe, amp, preset):
    monkeypatch.setattr(precision, "cpu_bf16", lambda: probe)
    cfg = preset_settings(preset) if preset else settings()
    assert cfg.speed.amp == "auto" and cfg.speed.channels_last == "auto"
    choice = precision.choose(cfg.speed, CPU)
    assert choice.amp is amp and choice.channels_last is True and choice.slow is None
    named = "bf16" if amp is not None else "off"
    assert choice.describe().startswith(f"amp: {named} (auto: {probe[1]}), channels_last: true (auto: ")
    assert choice.record() == {
        "amp": named,
        "amp_why": f"auto: {probe[1]}",
        "channels_last": True,
        "channels_last_why": choice.layout_why,
    }


def test_no_preset_or_model_folder_names_a_precision_a_cpu_may_emulate():
    """bf16 / fp16 by name is slow on every CPU that lacks it: a shipped preset or model folder says auto
    (or off), and auto decides per machine."""
    found = {f"MODEL={m.name}": settings(config=m.config) for m in registry.models().values()}
    found |= {f"EXP={p}": preset_settings(p) for p in registry.presets()}
    assert len(found) >= 10
    named = {where: cfg.speed.amp for where, cfg in found.items() if cfg.speed.amp not in ("auto", "off")}
    assert not named, f"these name a precision a CPU may emulate (use speed.amp: auto): {named}"


def test_a_named_bf16_on_an_emulating_cpu_runs_and_is_said_once_in_one_line(monkeypatch, capsys):
    monkeypatch.setattr(precision, "cpu_bf16", lambda: EMULATED)
    monkeypatch.setattr(precision, "_SAID", set())
    cfg = settings("speed.amp=bf16", "speed.channels_last=false")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no UserWarning with a source path
        for _ in range(3):
            choice = precision.choose(cfg.speed, CPU)
            precision.say_once(choice)
    assert choice.amp is torch.bfloat16 and choice.channels_last is False  # what the user asked for
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("note: speed.amp=bf16: this CPU emulates bf16")
    assert "speed.amp=auto picks fp32" in err[0] and "several times slower" in err[0]
    monkeypatch.setattr(precision, "cpu_bf16", lambda: NATIVE)  # where it is native: nothing to say
    assert precision.choose(cfg.speed, CPU).slow is None
    assert precision.choose(settings("speed.amp=off").speed, CPU).describe().startswith("amp: off (set so)")


@pytest.mark.slow  # trains / starts Python processes
def test_the_isa_cap_reads_as_the_cpu_it_stands_for():
    """ONEDNN_MAX_CPU_ISA=AVX2 (how bench-cpu-speed --isa avx2 stands in for an AVX2-only CPU) makes the
    probe say emulated, whatever this CPU has; `config show` prints what each speed key resolves to."""
    code = "from trashseg.runtime.precision import cpu_bf16; print(cpu_bf16())"
    capped = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cpu_env(CAPPED))
    assert capped.stdout.strip() == f"(False, '{capped_why()}')", capped.stderr
    show = [sys.executable, "-m", "trashseg", "config", "show", "--exp", "cpu-lite"]
    out = subprocess.run(show, capture_output=True, text=True, env=cpu_env(CAPPED), cwd=ROOT).stdout
    assert re.search(
        r'^speed.amp: +"auto" +# configs/cpu-lite.yaml; ' + re.escape(f"here: off (auto: {capped_why()})") + "$",
        out,
        re.M,
    ), out
    assert re.search(r"^speed.channels_last: +\"auto\" +# configs/cpu-lite.yaml; here: true \(auto: ", out, re.M)
    native, why = precision.cpu_bf16()
    out = subprocess.run(show, capture_output=True, text=True, env=cpu_env(), cwd=ROOT).stdout
    assert f"here: {'bf16' if native else 'off'} (auto: {why})" in out


@pytest.mark.slow
def test_training_and_inference_follow_the_machines_choice_and_a_slow_named_one_is_said_once(tmp_path):
    """On a CPU that emulates bf16 (the ISA cap): auto trains and infers in fp32, channels_last, and says
    so in the header, the run record, settings.txt and the probability manifest; speed.amp=bf16 given
    by the user runs in bf16 with one plain line at start."""
    data = make_coco(tmp_path / "data")
    run = tiny_run(data, tmp_path, EPOCHS=1, FOLD=0)
    proc = make_process("train-fpn", env=CAPPED, **run)
    assert proc.returncode == 0, proc.stderr[-2000:]
    why = f"auto: {capped_why()}"
    assert f"(amp: off ({why}), channels_last: true (auto: " in proc.stdout
    folder = tmp_path / "runs" / "fpn" / "fold0"
    record = json.loads((folder / "run_record.json").read_text())["speed"]
    assert record["amp"] == "off" and record["amp_why"] == why and record["channels_last"] is True
    assert f"here: off ({why})" in (folder / "settings.txt").read_text()
    proc = make_process("infer-fpn", env=CAPPED, **run, SPLITS="valid", TTA=1)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"(amp: off ({why}), channels_last: true" in proc.stdout
    assert json.loads((folder / "probs_valid_tta.json").read_text())["speed"] == record

    named = make_process(
        "train-fpn", env=CAPPED, **{**run, "RUNS": tmp_path / "named", "ARGS": run["ARGS"] + " --set speed.amp=bf16"}
    )
    assert named.returncode == 0, named.stderr[-2000:]
    notes = [line for line in named.stderr.splitlines() if "speed.amp=bf16" in line]
    assert len(notes) == 1 and notes[0].startswith("note: speed.amp=bf16: this CPU emulates bf16")
    assert "UserWarning" not in named.stderr and "amp: bf16 (set so; this CPU emulates bf16" in named.stdout


def test_the_cpu_speed_table_in_the_docs_is_the_benchs_result_files():
    """docs/results.md's CPU speed rows are copied from bench/results/cpu-speed-*.json, cell by cell."""
    text = (ROOT / "docs" / "results.md").read_text()
    rows = re.findall(r"^\| [^|]*\(`(bench/results/cpu-speed-[a-z0-9-]+\.json)`\) \|(.*)\|$", text, re.M)
    assert len(rows) == 3, rows
    for path, rest in rows:
        result = json.loads((ROOT / path).read_text())
        cells = [c.strip() for c in rest.split("|")]
        rate, ratio = result["images_per_s"], result["ratio_to_fp32"]
        knobs = result["loader_knobs_images_per_s"]
        picks = result["auto_picks"]
        expected = [
            "yes" if result["native_bf16"] else "no",
            f"{rate['fp32']:.2f}",
            f"{rate['channels_last']:.2f} (x{ratio['channels_last']:.2f})",
            f"{rate['channels_last_bf16']:.2f} (x{ratio['channels_last_bf16']:.2f})",
            f"{'bf16' if picks['amp'] == 'bf16' else 'fp32'}{', channels_last' if picks['channels_last'] else ''}",
            " / ".join(f"{knobs[f'threads=2 workers={w}']:.2f}" for w in (0, 1, 2)),
            " / ".join(f"{knobs[f'threads=1 workers={w}']:.2f}" for w in (1, 2)),
        ]
        assert cells == expected, path
