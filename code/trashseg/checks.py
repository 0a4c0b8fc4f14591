"""The checks of the settings that span keys or need a library: the architecture, encoder and
weights names (closest names suggested), the input size against the encoder's stride, the loss
weights, the schedule's floor, the copy-paste classes and the augmentation list, each problem one
line; run on the typed settings before any data is read (config.load_config). What the library
checks found for settings that passed is kept per machine (checked_names.py)."""

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


def library_checks(cfg: Settings) -> tuple[dict, dict[str, list[str]]]:
    """The checks that import SMP, timm and albumentations: the facts they find (the input size's
    multiple, the encoder's hub weight names; None where its name is wrong) and the problems, by kind."""
    from trashseg.data.transforms import train_transform
    from trashseg.modeling.architectures import check_encoder, check_params, input_multiple
    from trashseg.modeling.weights_route import hub_weights_names

    mc = cfg.model
    facts: dict = {"multiple": None, "hub_weights": None}
    found: dict[str, list[str]] = {"model": [], "augment": []}

    def attempt(kind: str, check) -> bool:
        try:
            check()
        except TrashsegError as exc:
            found[kind].append(str(exc))
            return False
        return True

    if attempt("model", lambda: check_params(mc.arch, mc.params)):
        facts["multiple"] = input_multiple(cfg)
    if attempt("model", lambda: check_encoder(mc.encoder)):
        facts["hub_weights"] = hub_weights_names(mc.encoder)
    attempt("augment", lambda: train_transform(cfg))
    return facts, found


def model_checks(cfg: Settings) -> tuple[list[str], list[str]]:
    """The model's problems (names, weights, input size) and the augmentation list's. The library
    checks' findings for settings that passed them are kept per machine (checked_names.py), so a
    second check of the same settings imports no SMP."""
    from trashseg import checked_names
    from trashseg.modeling.weights_route import weights_route

    facts = checked_names.recall(cfg)
    found = {"model": [], "augment": []}
    if facts is None:
        facts, found = library_checks(cfg)
        if not any(found.values()):
            checked_names.remember(cfg, facts)
    problems, mc, size = found["model"], cfg.model, cfg.train.img_size
    if facts["hub_weights"] is not None:
        try:
            weights_route(mc.weights, mc.encoder, hub_names=facts["hub_weights"])
        except TrashsegError as exc:
            problems.append(str(exc))
    multiple = facts["multiple"]
    if multiple is not None and size % multiple:
        lower = max(multiple, size // multiple * multiple)
        problems.append(
            f"train.img_size={size}: must be a multiple of {multiple} for "
            f"{mc.arch} (its encoder's output stride), e.g. {lower} or {lower + multiple}"
        )
    return problems, found["augment"]


def cross_checks(cfg: Settings, models: bool) -> list[str]:
    """Checks that need another key or a library: names that must exist, sizes that must fit
    (the model's only when ``models``: commands that build no model skip importing SMP)."""
    from trashseg.data.classes import CLASSES, class_index

    problems, augment = model_checks(cfg) if models else ([], [])
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
    return problems + augment
