"""The checks of the settings that span keys or need a library: the architecture, encoder and
weights names (closest names suggested), the input size against the encoder's stride, the loss
weights, the schedule's floor, the copy-paste classes and the augmentation list, each problem one
line; run on the typed settings before any data is read (config.load_config)."""

from __future__ import annotations

from trashseg.errors import TrashsegError
from trashseg.settings import Settings, parse


def validate(cfg: Settings, source: str = "settings", models: bool = True) -> Settings:
    """The merged configuration as the typed settings, or one error listing every problem (the
    model's only when ``models``: commands that build no model skip importing SMP)."""
    settings = parse(cfg, source)
    problems = cross_checks(settings, models)
    if problems:
        lines = "\n  ".join(problems)
        raise TrashsegError(f"{len(problems)} invalid setting(s) in {source}:\n  {lines}")
    return settings


def cross_checks(cfg: Settings, models: bool) -> list[str]:
    """Checks that need another key or a library: names that must exist, sizes that must fit
    (the model's only when ``models``: commands that build no model skip importing SMP)."""
    from trashseg.data.classes import CLASSES, class_index

    if models:
        from trashseg.data.transforms import train_transform
        from trashseg.modeling.architectures import check_encoder, check_params, input_multiple
        from trashseg.modeling.weights_route import weights_route

    problems = []

    def attempt(check) -> bool:
        try:
            check()
            return True
        except TrashsegError as exc:
            problems.append(str(exc))
            return False

    mc, train = cfg.model, cfg.train
    arch_ok = models and attempt(lambda: check_params(mc.arch, mc.params))
    if models and attempt(lambda: check_encoder(mc.encoder)):
        attempt(lambda: weights_route(mc.weights, mc.encoder))
    if arch_ok:
        multiple = input_multiple(cfg)
        if train.img_size % multiple:
            lower = max(multiple, train.img_size // multiple * multiple)
            problems.append(
                f"train.img_size={train.img_size}: must be a multiple of {multiple} for "
                f"{mc.arch} (its encoder's output stride), e.g. {lower} or {lower + multiple}"
            )
    lc = cfg.loss
    if not any(getattr(lc, k) > 0 for k in ("ce_weight", "dice_weight", "lovasz_weight", "focal_weight")):
        problems.append(
            "loss: ce_weight, dice_weight, lovasz_weight and focal_weight are all 0; at least one must be positive"
        )
    if isinstance(lc.class_weights, list) and len(lc.class_weights) != len(CLASSES):
        problems.append(
            f"loss.class_weights: {len(lc.class_weights)} numbers given; give one per class ({len(CLASSES)}: "
            f"{', '.join(CLASSES)}), or auto"
        )
    if cfg.scheduler.min_lr > cfg.optimizer.lr:
        problems.append(f"scheduler.min_lr={cfg.scheduler.min_lr}: must not exceed optimizer.lr={cfg.optimizer.lr}")
    for name in cfg.augment.copy_paste.classes:
        try:
            class_index(name)
        except TrashsegError as exc:
            problems.append(f"augment.copy_paste.classes: {exc}")
    if models:
        attempt(lambda: train_transform(cfg))
    return problems
