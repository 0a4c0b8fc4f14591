"""Every figure of docs/results.md's benchmark table comes from the result file its command writes
(bench/results/<name>.json, in git): each row's result cell is rebuilt here from that file and must
equal the page's, so a figure typed by hand, or left behind by a new run, fails. (The recipes ledger's
tables: tests/test_bench_recipes.py; the CPU speed table: tests/test_speed_choice.py.)"""

import json
import re

from helpers import ROOT

RESULTS = ROOT / "bench" / "results"


def figures(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text())


def data_cell(r: dict) -> str:
    f, s = r["figures"], r["settings"]
    return (
        f"`mask_speedup={f['mask_speedup']:.2f}`, `item_speedup={f['item_speedup']:.2f}` (masks "
        f"{f['mask_items_per_s_original']:.0f} -> {f['mask_items_per_s_kit']:.0f} items/s, items "
        f"{f['item_items_per_s_original']:.0f} -> {f['item_items_per_s_kit']:.0f} items/s; {s['images']} photos; "
        f"{r['machine']['cpu']})"
    )


def ensemble_cell(r: dict) -> str:
    f = r["figures"]
    lo, hi = r["settings"]["sizes"][0], r["settings"]["sizes"][-1]
    same = all(f[f"identical_csv_{n}"] for n in (lo, hi))
    return (
        f"peak RSS {f[f'peak_rss_mb_{lo}']:.1f} MB -> {f[f'peak_rss_mb_{hi}']:.1f} MB (`peak_rss_mb_{lo}/{hi}`), "
        f"{f[f'images_per_s_{lo}']:.1f} / {f[f'images_per_s_{hi}']:.1f} images/s; the original's whole-array way: "
        f"{f[f'baseline_peak_rss_mb_{lo}']:.0f} MB -> {f[f'baseline_peak_rss_mb_{hi}']:.0f} MB, "
        f"{f[f'baseline_images_per_s_{lo}']:.1f} / {f[f'baseline_images_per_s_{hi}']:.1f} images/s"
        + (", identical CSV" if same else ", CSV DIFFERS")
    )


def cpu_cell(r: dict) -> str:
    f = r["figures"]
    return (
        f"training {f['train_images_per_s_default']:.2f} -> {f['train_images_per_s_tuned']:.2f} images/s "
        f"(`alloc_speedup={f['alloc_speedup']:.2f}`), inference {f['infer_images_per_s_default']:.2f} -> "
        f"{f['infer_images_per_s_tuned']:.2f} images/s (`infer_alloc_speedup={f['infer_alloc_speedup']:.2f}`); "
        f"{r['machine']['cpu']}, {r['machine']['threads']} threads"
    )


def tracking_cell(r: dict) -> str:
    f = r["figures"]
    share = ", ".join(
        f"{name} {100 * f[name]['tracking_share_of_epochs']:.1f}%"
        for name in ("tensorboard", "wandb", "tensorboard+wandb")
    )
    epochs = " / ".join(f"{f[name]['epoch_s']:.1f}" for name in ("tensorboard", "wandb", "tensorboard+wandb"))
    overhead = ", ".join(
        f"`epoch_overhead_{name.replace('+', '_')}={f[name]['epoch_overhead']:.3f}`"
        for name in ("tensorboard", "wandb", "tensorboard+wandb")
    )
    return (
        f"time the training process spends on tracking, of its epochs' time: {share}; whole-epoch times "
        f"({f['off']['epoch_s']:.1f} s off; {epochs} s) move by this machine's run-to-run noise ({overhead})"
    )


def tracking_sentence(r: dict) -> str:
    """docs/winning-moves.md's cost of tracking, from the same file as the bench table's cell."""
    f = r["figures"]
    share = lambda name: f"{100 * f[name]['tracking_share_of_epochs']:.1f}%"  # noqa: E731
    return (
        f"spends {share('tensorboard')} of the epoch time on TensorBoard, {share('wandb')} on W&B (offline), "
        f"{share('tensorboard+wandb')} on both"
    )


def test_the_cost_of_tracking_in_winning_moves_is_the_files():
    text = " ".join((ROOT / "docs" / "winning-moves.md").read_text().split())
    assert tracking_sentence(figures("tracking")) in text, "docs/winning-moves.md differs from tracking.json"


def durable_cell(r: dict) -> str:
    f = r["figures"]

    def pair(name: str) -> str:
        return f"{f[name]['rename_ms']:.1f} -> {f[name]['durable_ms']:.1f} ms"

    return (
        f"checkpoint (FPN-B3 + Adam state, {f['checkpoint']['mb']:.0f} MB) {pair('checkpoint')}; probability file "
        f"({r['settings']['probability_images']} images, {f['probabilities']['mb']:.0f} MB) {pair('probabilities')}; "
        f"small JSON {pair('small_json')}. A training epoch writes `last.pt` and sometimes `best.pt`: well under "
        "a second per epoch"
    )


def fit_cell(r: dict) -> str:
    f = r["figures"]
    two, three = f["models_2"], f["models_3"]
    same = two["identical"] and three["identical"]
    return (
        f"`fit_speedup_2={two['speedup']:.2f}`, `fit_speedup_3={three['speedup']:.2f}` (seconds an image, loop -> "
        f"batched: 2 models, {two['weightings']} weightings {two['loop_s_per_image']:.3f} -> "
        f"{two['batched_s_per_image']:.3f}; 3 models, {three['weightings']} weightings "
        f"{three['loop_s_per_image']:.3f} -> {three['batched_s_per_image']:.3f}; the models disagree on "
        f"{100 * two['disputed_share']:.0f}% / {100 * three['disputed_share']:.0f}% of pixels; "
        + ("identical confusion matrices" if same else "MATRICES DIFFER")
        + f"; {r['machine']['cpu']}, {r['machine']['threads']} threads)"
    )


CELLS = {
    "make bench-data": ("data", data_cell),
    "make bench-ensemble": ("ensemble", ensemble_cell),
    "make bench-cpu": ("cpu", cpu_cell),
    "make bench-tracking": ("tracking", tracking_cell),
    "make bench-durable": ("durable", durable_cell),
    "make bench-fit": ("fit", fit_cell),
}


def bench_table() -> dict[str, str]:
    text = (ROOT / "docs" / "results.md").read_text()
    table = text[text.index("| command | what | result |") :]
    rows = {}
    for line in table.splitlines()[2:]:
        if not line.startswith("| `make bench-"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows[cells[0].strip("`")] = cells[2]
    return rows


def test_each_bench_result_cell_is_rebuilt_from_its_file():
    rows = bench_table()
    for command, (name, cell) in CELLS.items():
        assert rows[command] == cell(figures(name)), (
            f"{command}: docs/results.md differs from bench/results/{name}.json"
        )
    assert set(rows) - set(CELLS) == {"make bench-gpu", "make bench-cpu-speed"}  # no GPU lent; its own table


def test_every_result_file_says_what_and_where_it_measured():
    for name, _ in CELLS.values():
        r = figures(name)
        assert r["bench"] == f"bench-{name}" and r["figures"] and r["settings"]
        assert r["machine"]["cpu"] and r["machine"]["torch"] and len(r["commit"]) >= 7


# docs/results.md's tables, by their header's first cells: each is rebuilt from its files by a test
# (recipes and CPU-ensemble members: test_bench_recipes; the rest: this file), so their cells are held
HELD_TABLES = {
    "| row | what changes |": "tests/test_bench_recipes.py: the recipes ledger",
    "| member | seeds |": "tests/test_bench_recipes.py: the recipes ledger",
    "| merge | seed |": "tests/test_bench_recipes.py: bench/results/cpu-ensemble-seed<N>.json",
    "| seed | labels | round |": "tests/test_bench_pseudo.py: bench/results/pseudo-seed<N>.json",
    "| CPU | native bf16 |": "test_speed_choice.py::test_the_cpu_speed_table_in_the_docs_is_the_benchs_result_files",
    "| command | what | result |": "test_each_bench_result_cell_is_rebuilt_from_its_file",
}
FIGURE = re.compile(r"(?<![\w.])[+-]?\d\.\d{3,4}(?!\d)")  # a metric as the docs print them: 3 or 4 decimals


def held_values() -> set[str]:
    """Every number of the files the docs' figures come from, as 3- and 4-decimal strings."""
    values: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
        elif isinstance(node, float):
            values.update({f"{node:.3f}", f"{node:.4f}"})

    for path in [ROOT / "bench" / "recipes-ledger.json", *sorted(RESULTS.glob("*.json"))]:
        walk(json.loads(path.read_text()))
    return values


def printed_figure(span: re.Match) -> str:
    """A code span kept as text when it is a bench's key=value figure line, else dropped (a setting)."""
    return span.group(1) if re.fullmatch(r"[\w/]+=[+-]?[\d.]+", span.group(1)) else ""


def test_every_metric_figure_in_the_docs_comes_from_a_file():
    """Every 3- or 4-decimal figure of README.md and docs/*.md (prose and tables; code blocks and code
    spans are settings, not results, unless a bench's key=value line) is a value of a result file in git
    (the recipes ledger, bench/results/*.json), a cell of one of results.md's tables that tests rebuild
    from those files, or the difference of two such figures of the same paragraph (a gain, a spread). A
    figure typed from a printed table that no file keeps fails here."""
    results = (ROOT / "docs" / "results.md").read_text()
    lines = results.splitlines()
    headers = [above for above, line in zip(lines, lines[1:]) if line.startswith("|---")]
    assert sorted(h for h in HELD_TABLES if any(x.startswith(h) for x in headers)) == sorted(HELD_TABLES)
    assert all(any(h.startswith(t) for t in HELD_TABLES) for h in headers), "a table of results.md no test holds"
    cells = {f.lstrip("+-") for line in results.splitlines() if line.startswith("|") for f in FIGURE.findall(line)}
    known = held_values() | cells
    unheld = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = re.sub(r"```.*?```", "", doc.read_text(), flags=re.S)
        for paragraph in re.split(r"\n\s*\n", text):
            paragraph = re.sub(r"`([^`]*)`", printed_figure, paragraph)  # code spans: settings, not results
            figures = FIGURE.findall(paragraph)
            good = [float(f) for f in figures if f.lstrip("+-") in known]
            for f in figures:
                if f.lstrip("+-") in known:
                    continue
                places = len(f.split(".")[1])
                if any(round(abs(a - b), places) == round(abs(float(f)), places) for a in good for b in good):
                    continue
                unheld.append(f"{doc.name}: {f} in {paragraph.strip()[:70]!r}")
    assert not unheld, "figures no result file holds:\n" + "\n".join(unheld)


def held_fold_times() -> set[tuple[int, ...]]:
    """Every run's training seconds a fold (`train_seconds`, as the ledger and bench-pseudo keep them), rounded."""
    times: set[tuple[int, ...]] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "train_seconds" and isinstance(v, list):
                    times.add(tuple(int(s + 0.5) for s in v))  # half up, as the docs print
                elif k == "train_seconds" and isinstance(v, dict):
                    times.update(tuple(int(s + 0.5) for s in per_fold) for per_fold in v.values())
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for path in [ROOT / "bench" / "recipes-ledger.json", *sorted(RESULTS.glob("*.json"))]:
        walk(json.loads(path.read_text()))
    return times


def test_every_fold_time_in_the_docs_is_a_runs_kept_train_seconds():
    """The docs' training times a fold ("734 / 922 / 878 s", one figure a date fold) are a run's
    `train_seconds` in the ledger or a bench result file, rounded: a time typed from a log fails."""
    held = held_fold_times()
    assert held
    shown = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for m in re.finditer(r"(?<![\d.])(\d+)\s*/\s*(\d+)\s*/\s*(\d+) s\b", doc.read_text()):
            shown.append((doc.name, tuple(int(x) for x in m.groups())))
    assert shown
    unheld = [f"{name}: {' / '.join(map(str, t))} s" for name, t in shown if t not in held]
    assert not unheld, "fold times no result file holds:\n" + "\n".join(unheld)


def container_sentence(r: dict) -> str:
    """docs/containers-and-gpus.md's measured paragraph, rebuilt from bench/results/container.json
    (written by make docker-build and make docker-smoke)."""
    b, s = r["build"], r["smoke"]
    gb = lambda n: f"{n / 1e9:.2f} GB"  # noqa: E731
    p = b["parts_bytes"]
    built = f"built in {s['built_seconds']:.0f} s, then " if s["built_seconds"] is not None else ""
    inside = "the CSV validated inside the image through `make docker-validate-submission`, "
    return (
        f"`make docker-build` {b['seconds']:.0f} s from the base image `{b['base']}` ({b['engine']}, {b['cpu']}, "
        f"{b['threads']} threads, commit {b['commit']}, {b['date']}); image {gb(b['image_bytes'])}, of which the "
        f"virtual environment {gb(p['venv'])}: the CUDA libraries of the torch wheels (`nvidia-*`) {gb(p['nvidia'])}, "
        f"torch {gb(p['torch'])}, triton {gb(p['triton'])}. `make docker-smoke` ({s['engine']}, commit "
        f"{s['commit']}, {s['date']}): {built}`make demo` inside the image (no network, no GPU) in "
        f"{s['demo_seconds']:.0f} s, `demo.csv` owned by uid {s['csv_owner_uid']} and valid on the host, "
        f"{inside if s['passthrough_validated'] else ''}"
        f"{s['settings_parity_runs']} model folders and presets resolving to the same settings inside the image "
        f"as here, and the README's `docker run` line: {s['readme_line']}"
    )


def assert_section_holds(sentence: str, name: str, start: str, end: str) -> None:
    """docs/containers-and-gpus.md holds ``sentence`` (rebuilt from bench/results/<name>.json), and its
    section from ``start`` to ``end`` has no other time or size outside code blocks."""
    text = " ".join((ROOT / "docs" / "containers-and-gpus.md").read_text().split())
    assert sentence in text, f"docs/containers-and-gpus.md differs from bench/results/{name}.json"
    section = re.sub(r"```.*?```", "", text[text.index(start) : text.index(end)]).replace(sentence, "")
    unheld = re.findall(r"\b\d+(?:\.\d+)? ?(?:s|min|GB|MB)\b", section)
    assert not unheld, f"{name} figures no file holds: {unheld}"


def test_the_container_figures_are_the_files():
    """Every time and size of the container section comes from bench/results/container.json: the
    paragraph is rebuilt from the file, and no other figure in seconds or bytes stands beside it."""
    assert_section_holds(container_sentence(figures("container")), "container", "## Docker", "## Kaggle")


def bundle_sentence(r: dict) -> str:
    """docs/containers-and-gpus.md's bundle figures, rebuilt from bench/results/bundle.json (make bench-bundle)."""
    f = r["figures"]
    b, t, c, v, tv = f["fp16"], f["as_trained"], f["fp16_container"], f["fp16_venv"], f["as_trained_venv"]
    image = f", its image built first in {c['image_seconds']:.0f} s" if c["stand_in_image_was_built"] else ""
    changed = c["pixels_differing_from_runs_own"]
    return (
        f"the bundle is {b['sizes_mb']['all']:.1f} MB ({b['wheels']} wheels {b['sizes_mb']['wheels']:.1f} MB, "
        f"{b['checkpoints']} fp16 checkpoints {b['sizes_mb']['checkpoints']:.1f} MB; {t['sizes_mb']['all']:.1f} MB "
        f"with `HALF=0`), made in {b['seconds']:.0f} s; the notebook ran offline in {c['notebook_seconds']:.0f} s in "
        f"the stand-in container (`{r['settings']['docker']}`, `--network none`{image}) and "
        f"{v['notebook_seconds']:.0f} s in the venv, install from the bundle included, on the {c['images']} test "
        f"photos; its CSV equalled `trashseg infer` + `trashseg ensemble` on all {c['pixels']:,} pixels. Against "
        f"the runs' own probabilities the fp16 checkpoints changed {changed:,} of those pixels "
        f"({100 * changed / c['pixels']:.2f}%); with `HALF=0`, {tv['pixels_differing_from_runs_own'] or 'none'} "
        f"({r['machine']['cpu']}, commit {r['commit']})"
    )


def test_the_bundle_figures_are_the_files():
    """The code-competition bundle's sizes, times and pixel counts are bench/results/bundle.json's, and no
    other time or size stands in its section."""
    assert_section_holds(bundle_sentence(figures("bundle")), "bundle", "### Code competitions", "## CPU runs")


def start_sentence(r: dict) -> str:
    """docs/results.md's first-minutes figures of one kind of CPU, from bench/results/start-<kind>.json."""
    f, s = r["figures"], r["settings"]
    kind = "native bf16" if s["kind"] == "bf16-native" else "AVX2 only, no native bf16: the demo trains in fp32"
    return (
        f"`make setup` from a fresh clone {f['setup_cold_s']:.1f} s with uv's cache empty ({f['setup_warm_s']:.1f} s "
        f"with it filled), `make demo` {f['demo_s']:.0f} s ({r['machine']['cpu']}, {kind}; commit {s['clone_of']}, "
        f"`bench/results/start-{s['kind']}.json`)"
    )


def test_the_first_minutes_are_the_files():
    """Each kind of CPU measured by make bench-start has its setup and demo times in docs/results.md, as
    its file holds them, and no other time stands in that paragraph."""
    text = (ROOT / "docs" / "results.md").read_text()
    kept = sorted(RESULTS.glob("start-*.json"))
    assert kept
    paragraph = next(p for p in re.split(r"\n\s*\n", text) if "`make bench-start`" in p)
    flat = " ".join(paragraph.split())
    for path in kept:
        sentence = start_sentence(json.loads(path.read_text()))
        assert sentence in flat, f"docs/results.md differs from {path.name}"
        flat = flat.replace(sentence, "")
    unheld = re.findall(r"\b\d+(?:\.\d+)? ?(?:s|min)\b", flat)
    assert not unheld, f"times no file holds: {unheld}"
