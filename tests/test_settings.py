"""Typed settings: every bad value, from a config file, `--set` or a Make variable, stops before any
data is read with one line naming the key, the value given and what is allowed."""

import pytest

from helpers import ROOT, make_process, tiny_run
from trashseg.config import load_config
from trashseg.errors import TrashsegError

FPN = ROOT / "code" / "FPN" / "config.yaml"


@pytest.mark.parametrize(
    "override,expected",
    [
        ("train.epochs=0", "train.epochs=0: Input should be greater than 0"),
        ("train.epochs=2.5", "train.epochs=2.5: Input should be a valid integer"),
        ("train.batch_size=-4", "train.batch_size=-4: Input should be greater than 0"),
        (
            "train.img_size=100",
            "train.img_size=100: must be a multiple of 32 for FPN (its encoder's output stride), e.g. 96 or 128",
        ),
        ("train.device=gpu", "train.device='gpu': use auto, cpu, cuda or cuda:N"),
        ("train.resume=maybe", "train.resume='maybe': Input should be a valid boolean"),
        ("data.num_workers=-1", "data.num_workers=-1: use auto or a whole number of 0 or more"),
        ("optimizer.lr=-1e-3", "optimizer.lr=-0.001: Input should be greater than 0"),
        ("optimizer.lr=fast", "optimizer.lr='fast': Input should be a valid number"),
        ("loss.name=focal", "loss.name='focal': Input should be 'ce_dice' or 'bce_dice'"),
        ("speed.amp=fp8", "speed.amp='fp8': Input should be 'auto', 'bf16', 'fp16' or 'off'"),
        ("tta.scales=[0.5, -1]", "tta.scales.1=-1: Input should be greater than 0"),
        ("pseudo.threshold=1.5", "pseudo.threshold=1.5: Input should be less than or equal to 1"),
        ("model.arch=UPerNett", "model.arch='UPerNett': not an SMP architecture; closest: UPerNet"),
        (
            "model.encoder=tu-resnet5",
            "model.encoder='tu-resnet5': no such encoder in SMP or timm; closest: tu-resnet50",
        ),
        ("model.encoder=efficientnet-b9", "closest: efficientnet-b7"),
        (
            "model.weights=imagnet",
            "model.weights='imagnet': not 'imagenet', 'offline', 'none' nor an existing file; closest: imagenet",
        ),
        ("model.params={decoder_channel: 64}", "model.params.decoder_channel: FPN takes no such parameter; closest: "),
        ("augment.copy_paste.classes=[Batery]", "augment.copy_paste.classes: unknown class 'Batery'"),
        ("augment.train=[{Blurr: {}}]", "augment: albumentations has no transform 'Blurr'"),
        ("loss.ce_weight=0", None),  # alone is fine: Dice only
    ],
)
def test_bad_setting_is_one_line_naming_key_value_and_what_is_allowed(override, expected):
    if expected is None:
        assert load_config(FPN, [override]).loss.ce_weight == 0
        return
    with pytest.raises(TrashsegError) as info:
        load_config(FPN, [override])
    lines = str(info.value).splitlines()
    assert lines[0] == "1 invalid setting(s) in defaults < " + str(FPN) + " < --set / Make variables:"
    assert len(lines) == 2 and expected in lines[1], lines


def test_list_entries_of_the_augmentation_recipe_are_addressed_by_position():
    cfg = load_config(
        FPN, ["augment.train.1.RandomBrightnessContrast.p=0.8", "augment.train.0.OneOf.transforms.2.GaussianBlur.p=0.6"]
    )
    train = cfg.augment.train
    assert train[1] == {"RandomBrightnessContrast": {"brightness_limit": 0.15, "contrast_limit": 0.2, "p": 0.8}}
    assert train[0]["OneOf"]["transforms"][2] == {"GaussianBlur": {"blur_limit": [3, 3], "p": 0.6}}
    assert train[4]["Affine"]["p"] == 0.5  # the rest untouched
    with pytest.raises(TrashsegError, match=r"augment.train.9: augment.train has 5 entries \(0..4\)"):
        load_config(FPN, ["augment.train.9.Affine.p=1"])
    with pytest.raises(TrashsegError, match="augment.train.1 is RandomBrightnessContrast, not Affine"):
        load_config(FPN, ["augment.train.1.Affine.p=1"])
    with pytest.raises(TrashsegError, match=r"RandomBrightnessContrast\(.*\) rejected: .*less than or equal to 1"):
        load_config(FPN, ["augment.train.1.RandomBrightnessContrast.p=2"])


def test_every_problem_is_reported_at_once_a_line_each():
    with pytest.raises(TrashsegError) as info:
        load_config(FPN, ["train.epochs=0", "train.device=gpu", "optimizer.lr=0", "loss.name=x"])
    assert str(info.value).startswith("4 invalid setting(s)") and len(str(info.value).splitlines()) == 5


def test_values_are_normalised_and_dumped_in_the_defaults_order():
    cfg = load_config(FPN, ["optimizer.lr=3e-4", "train.epochs=3"])
    assert cfg.optimizer.lr == pytest.approx(3e-4) and isinstance(cfg.optimizer.lr, float)
    from trashseg.settings import Settings

    dumped = cfg.model_dump()  # in the schema's order: what config.yaml and `config show` list
    assert list(dumped) == list(Settings.model_fields)
    assert list(dumped["train"]) == list(type(Settings().train).model_fields)
    assert cfg.train.epochs == 3 and isinstance(cfg.train.epochs, int)


def test_dilated_encoders_need_a_smaller_multiple():
    cfg = load_config(None, ["model.arch=DeepLabV3Plus", "train.img_size=400"])  # output stride 16
    assert cfg.train.img_size == 400
    with pytest.raises(TrashsegError, match="multiple of 16 for DeepLabV3Plus"):
        load_config(None, ["model.arch=DeepLabV3Plus", "train.img_size=392"])


def test_unreachable_hub_switches_to_the_local_cache_in_seconds(monkeypatch):
    from huggingface_hub import constants

    from trashseg.modeling import hub

    monkeypatch.setattr(constants, "ENDPOINT", "https://127.0.0.1:9")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    probes = []

    def unreachable(address, timeout=None):  # the probe, bounded by its own timeout, finds nobody
        probes.append((address, timeout))
        raise OSError("refused")

    monkeypatch.setattr(hub.socket, "create_connection", unreachable)
    hub.prepare_hub()
    # one probe of the endpoint, bounded by PROBE_SECONDS (not a minute of retries), then the local cache only
    assert probes == [(("127.0.0.1", 9), hub.PROBE_SECONDS)] and constants.HF_HUB_OFFLINE is True


BAD_MAKE_VARIABLES = [
    (dict(EPOCHS=0), "train.epochs=0: Input should be greater than 0"),
    (dict(IMG_SIZE=100), "train.img_size=100: must be a multiple of 32"),
    (dict(DEVICE="gpu"), "train.device='gpu': use auto, cpu, cuda or cuda:N"),
    (dict(ENCODER="tu-efficentnet_b0"), "closest: tu-efficientnet_b0"),
    (dict(ENCODER_WEIGHTS="imagnet"), "model.weights='imagnet'"),
    (dict(TTA=2), "TTA=2: use 1 (on) or 0 (off)"),
    (dict(RESUME="maybe"), "RESUME=maybe: use 1 (on) or 0 (off)"),
    (dict(GPUS="two"), "GPUS=two: must be a whole number"),
    (
        dict(MODEL="unet"),
        "MODEL=unet: no model folder is named so (code/*/config.yaml, model.name); did you mean upernet?",
    ),
    (dict(MODEL=""), "MODEL=: give a model, one of: deeplab fpn segformer upernet; or EXP=<preset>: cpu-lite"),
    (dict(EXP="cpu-lite", MODEL="deeplab"), "EXP=cpu-lite layers over fpn, not MODEL=deeplab"),
    (dict(EXP="nope"), "EXP=nope: no configs/nope.yaml; presets: cpu-lite cpu-lite-deeplab"),
]


@pytest.mark.slow
@pytest.mark.parametrize("variables,expected", BAD_MAKE_VARIABLES, ids=lambda v: str(v)[:30])
def test_bad_make_variable_stops_before_any_work(variables, expected, tmp_path):
    runs = tmp_path / "runs"
    proc = make_process("train", **{"MODEL": "fpn", "DATA_DIR": ROOT / "data/sample", "RUNS": runs, **variables})
    assert proc.returncode != 0
    assert expected in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not runs.exists()


@pytest.mark.slow
def test_imagenet_weights_without_hub_or_cache_stop_in_seconds_naming_three_ways_out(tmp_path, coco_dir):
    variables = tiny_run(coco_dir, tmp_path, ENCODER_WEIGHTS="imagenet", EPOCHS=1)
    proc = make_process("train-fpn", env={"HF_HOME": str(tmp_path / "empty-cache")}, **variables)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    message = proc.stderr.strip().splitlines()[-2]  # the line before make's own
    for way_out in ("make weights ENCODER=", "make weights-offline", "ENCODER_WEIGHTS=none"):
        assert way_out in message
    # the probe found no hub, so the kit went offline before timm asked: no request, no minute of retries
    assert "(LocalEntryNotFoundError from OfflineModeIsEnabled:" in message
