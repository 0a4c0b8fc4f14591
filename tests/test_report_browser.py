"""The report page and the runs table in a real browser (Debian's Chromium, headless, driven by
Playwright for Python; installed with apt-get when missing, as the PostgreSQL test installs its server):
both pages load from the file system with no console error and every image loaded; the gallery is in
the order of `make eval`'s per-image IoU, worst first; the class filter shows exactly the images that
hold (or miss) the class; a run's row in runs/index.html links to its report page."""

import json
import os
import shutil
import subprocess

import pytest

from helpers import SAMPLE, SAMPLE_DATES, run_make, tiny_run
from trashseg.data.classes import class_index

pytestmark = pytest.mark.slow  # a training, a browser
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking"]
FLAGS += ["--disable-component-update", "--disable-sync"]


def chromium() -> str:
    if not os.path.exists(CHROMIUM):
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            pytest.fail("Chromium is missing: install Debian's chromium package")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"]
        if subprocess.run(install, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, check=True, capture_output=True)
            subprocess.run(install, env=env, check=True, capture_output=True)
    return CHROMIUM


def open_page(browser, path):
    """The page at ``path`` (file://), every image scrolled into view and loaded; its console errors."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: errors.append(f"network: {r.url}") if not r.url.startswith("file:") else None)
    page.goto(path.as_uri())
    for img in page.query_selector_all("img"):
        img.scroll_into_view_if_needed()
    page.wait_for_function("[...document.images].every(i => i.complete)")
    return page, errors


def merged_per_image(runs, data) -> dict[str, float]:
    """Each validation image's IoU under the equal-weight mean of both models' probabilities, computed
    here from the files and the masks (not through the report)."""
    import cv2
    import numpy as np
    import torch

    from trashseg.data.coco import load_coco
    from trashseg.data.masks import MaskCache, read_mask
    from trashseg.evaluation.metrics import confusion_matrix, mean_iou

    files = [np.load(runs / m / "fold0" / "probs_valid.npy") for m in ("fpn", "deeplab")]
    names = json.loads((runs / "fpn" / "fold0" / "probs_valid.json").read_text())["image_ids"]
    cs = load_coco(data / "valid_data0.json", data, {})
    masks = dict(zip((cs.file_name(i) for i in cs.image_ids), MaskCache(runs.parent / "cache").build(cs)))
    out = {}
    for row, name in enumerate(names):
        pred = (files[0][row].astype(np.float32) * 0.5 + files[1][row].astype(np.float32) * 0.5).argmax(0)
        truth = cv2.resize(read_mask(masks[name]), pred.shape[::-1], interpolation=cv2.INTER_NEAREST)
        out[name] = mean_iou(confusion_matrix(torch.from_numpy(truth.astype(np.int64)), torch.from_numpy(pred), 11))
    return out


def test_report_and_runs_pages_in_a_real_browser(tmp_path):
    from playwright.sync_api import sync_playwright

    data = tmp_path / "data"
    shutil.copytree(SAMPLE, data)
    run_make("folds", DATA_DIR=data, K=3, GROUP=SAMPLE_DATES)
    variables = tiny_run(data, tmp_path, EPOCHS=2, FOLD=0, IMG_SIZE=96)
    run_make("train-fpn", **variables)
    run = tmp_path / "runs" / "fpn" / "fold0"
    out = run_make("report", RUN=run)
    assert f"wrote {run}/report/index.html" in out
    evaluated = tmp_path / "eval.json"
    run_make("eval-fpn", **variables, JSON=data / "valid_data0.json", OUT=evaluated)
    per_image = json.loads(evaluated.read_text())["per_image_iou"]
    worst_first = sorted(per_image, key=lambda n: (per_image[n] is None, per_image[n] or 0.0))
    # a second model and both folds' validation probabilities: the ensemble's out-of-fold page
    run_make("train-deeplab", **variables)
    for model in ("fpn", "deeplab"):
        run_make(f"infer-{model}", **variables, SPLITS="valid")
    run_make("report", DATA_DIR=data, RUNS=tmp_path / "runs", MODELS="fpn deeplab", ARGS=variables["ARGS"])
    merged_page = tmp_path / "runs" / "report-fpn-deeplab" / "index.html"
    merged_iou = merged_per_image(tmp_path / "runs", data)
    run_make("runs", RUNS=tmp_path / "runs", HTML=1)
    # which validation images hold Plastic bag, from the annotations themselves
    coco = json.loads((data / "valid_data0.json").read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    with_bag = {
        img["file_name"]
        for img in coco["images"]
        for a in coco["annotations"]
        if a["image_id"] == img["id"] and class_index(names[a["category_id"]]) == class_index("Plastic bag")
    }

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium(), args=FLAGS)
        page, errors = open_page(browser, run / "report" / "index.html")
        assert not errors, errors
        widths = page.evaluate("[...document.images].map(i => i.naturalWidth)")
        assert len(widths) == 2 + len(per_image) and min(widths) > 0  # the matrix, the curves, each row
        shown = page.eval_on_selector_all(".item h3", "els => els.map(e => e.textContent.split(':')[0].split(' ')[1])")
        assert shown == worst_first  # the gallery's order is eval's per-image IoU, worst first
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        filters = [("with-Plastic_bag", with_bag), ("without-Plastic_bag", set(per_image) - with_bag)]
        filters += [("with-Battery", set()), ("without-Battery", set(per_image))]  # none of the sample holds one
        for hash_, expected in filters:
            page.evaluate(f"location.hash = '{hash_}'")
            page.wait_for_timeout(100)
            visible = page.eval_on_selector_all(
                ".item:not(.hidden) h3", "els => els.map(e => e.textContent.split(':')[0].split(' ')[1])"
            )
            assert set(visible) == expected and len(visible) == len(expected), hash_
        merged, errors = open_page(browser, merged_page)
        assert not errors, errors
        shown = merged.eval_on_selector_all(
            ".item h3", "els => els.map(e => e.textContent.split(':')[0].split(' ')[1])"
        )
        assert shown == sorted(merged_iou, key=lambda n: merged_iou[n]) and "fpn (w=0.50), deeplab (w=0.50)" in (
            merged.content()
        )
        runs_page, errors = open_page(browser, tmp_path / "runs" / "index.html")
        assert not errors, errors
        link = runs_page.get_attribute("a[href*='fpn/fold0']", "href")
        assert link == "fpn/fold0/report/index.html"
        runs_page.click("a[href*='fpn/fold0']")
        runs_page.wait_for_load_state("load")
        assert runs_page.url.endswith("fpn/fold0/report/index.html") and "FPN fold 0" in runs_page.title()
        browser.close()
