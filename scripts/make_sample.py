"""Rebuild data/sample/ (the bundled demo set) from ../shared/data/woosong-trashbags.

Real photos with real polygons, laid out like the competition: batch_* folders by recording date,
train_all.json with the competition's category names, test.json without annotations.
Run: .venv/bin/python scripts/make_sample.py [--src DIR] [--out data/sample]
"""

import argparse
import json
import re
import shutil
from pathlib import Path

DATES = {"2023-10-05": "batch_01_vt", "2023-11-30": "batch_02_vt", "2023-12-03": "batch_03", "2023-12-08": "batch_04"}
TEST_BATCH = "batch_04"
PER_DATE = 15
CATEGORIES = [
    {"id": 1, "name": "General trash", "supercategory": "General trash"},
    {"id": 8, "name": "Plastic bag", "supercategory": "Plastic bag"},
]
SOURCE_TO_ID = {"general_trashbag": 1, "other_trashbag": 8}


def date_of(file_name: str) -> str | None:
    m = re.search(r"(\d{4})-?(\d{2})-?(\d{2})", file_name)
    return f"{m[1]}-{m[2]}-{m[3]}" if m else None


def main():
    here = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser()
    parser.add_argument("--src", type=Path, default=here.parent / "shared/data/woosong-trashbags")
    parser.add_argument("--out", type=Path, default=here / "data/sample")
    args = parser.parse_args()
    src = json.loads((args.src / "annotations.json").read_text())
    cat_name = {c["id"]: c["name"] for c in src["categories"]}
    anns_of = {}
    for a in src["annotations"]:
        anns_of.setdefault(a["image_id"], []).append(a)

    picked = []
    for date, batch in DATES.items():
        imgs = sorted(
            (i for i in src["images"] if date_of(i["file_name"]) == date and i["id"] in anns_of),
            key=lambda i: i["file_name"],
        )
        step = max(len(imgs) // PER_DATE, 1)
        picked += [(batch, i) for i in imgs[::step][:PER_DATE]]

    train = {"images": [], "annotations": [], "categories": CATEGORIES}
    test = {"images": [], "annotations": [], "categories": CATEGORIES}
    ann_id = 0
    for new_id, (batch, img) in enumerate(picked):
        name = f"{batch}/{new_id:04d}.jpg"
        (args.out / batch).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.src / img["file_name"], args.out / name)
        entry = {
            "id": new_id,
            "file_name": name,
            "width": img["width"],
            "height": img["height"],
            "source_file": Path(img["file_name"]).name,
        }
        target = test if batch == TEST_BATCH else train
        target["images"].append(entry)
        if target is train:
            for a in anns_of[img["id"]]:
                train["annotations"].append(
                    {
                        **{k: a[k] for k in ("segmentation", "area", "bbox", "iscrowd")},
                        "id": ann_id,
                        "image_id": new_id,
                        "category_id": SOURCE_TO_ID[cat_name[a["category_id"]]],
                    }
                )
                ann_id += 1
    for name, data in (("train_all.json", train), ("test.json", test)):
        (args.out / name).write_text(json.dumps(data))
    print(
        f"{len(train['images'])} train images ({len(train['annotations'])} polygons), "
        f"{len(test['images'])} test images -> {args.out}"
    )


if __name__ == "__main__":
    main()
