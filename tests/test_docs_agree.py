"""README, `make help`, the Makefile and the CLI agree: every target, verb and variable the README
tells a user to type exists, and every documented target and variable is listed by `make help`."""

import re

from helpers import ROOT, run_make

MAKEFILE = (ROOT / "Makefile").read_text()
# the front page and the pages it sends readers to: what a user copies from either must work
README = "\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])
ENVIRONMENT = {"HF_HUB_OFFLINE", "MALLOC_MMAP_MAX_", "MALLOC_TOP_PAD_", "MALLOC_TRIM_THRESHOLD_", "CI", "WANDB_MODE"}
ENVIRONMENT |= {"ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "TRASHSEG_WEIGHTS_CACHE"}
# what the docs show failing on purpose (a typo, a renamed variable, a preset given as a model target),
# each beside the one line it stops with; tests/test_make_variables.py drives every one of them
SHOWN_FAILING = {"FOLDS", "EPOCH", "WEIGHTS", "WEIGHTS_ENSEMBLE", "DOCKER_WEIGHTS", "train-cpu-lite"}


def readme_code() -> str:
    """The README's fenced blocks (comments dropped) and inline code spans: what a user copies."""
    fenced = [re.sub(r"#.*", "", block) for block in re.findall(r"```[a-z]*\n(.*?)```", README, flags=re.S)]
    inline = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", README, flags=re.S))
    return "\n".join(fenced + inline)


def targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z0-9-]*%?):(?!=)", MAKEFILE, flags=re.M))


def model_names() -> set[str]:
    from trashseg import registry

    return set(registry.models())


def variables() -> set[str]:
    """What a user may set: the verbs' variables, the Makefile's own (?=), ARGS and STORAGE."""
    from trashseg.cli.options import VARS

    return set(VARS) | set(re.findall(r"^([A-Z_]+)\s*\?=", MAKEFILE, flags=re.M)) | {"ARGS"}


def exists(target: str, known: set[str]) -> bool:
    """A plain target, or one a pattern rule makes: docker-<any target>, train-/infer-/eval-<model>."""
    if target in known:
        return True
    prefix, _, stem = target.partition("-")
    if f"{prefix}-%" not in known:
        return False
    return prefix == "docker" or stem in model_names()


def documented_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z0-9-]*%?):[^\n]*##", MAKEFILE, flags=re.M))


def test_every_make_target_in_the_readme_exists():
    known = targets()
    used = set(re.findall(r"\bmake ([a-z][a-z0-9-]*)", readme_code()))
    unknown = {t for t in used if not exists(t, known)} - SHOWN_FAILING
    assert used and not unknown, f"README names make targets the Makefile lacks: {sorted(unknown)}"


def test_every_variable_in_the_readme_is_a_make_variable_or_documented_environment():
    used = set(re.findall(r"\b([A-Z][A-Z0-9_]+)=", readme_code()))
    scheduled = {f"TRASHSEG_{v}" for v in variables()}  # a job scheduler's spelling of a kit variable
    unknown = used - variables() - ENVIRONMENT - scheduled - SHOWN_FAILING
    assert used and not unknown, f"README uses variables the Makefile does not declare: {sorted(unknown)}"


def test_make_help_lists_every_documented_target_and_variable():
    out = run_make("help")
    listed = set(re.findall(r"^  make (\S+)", out, flags=re.M))
    assert documented_targets() and documented_targets() <= listed
    missing = {v for v in variables() if not re.search(rf"\b{v}\b", out)}
    assert not missing, f"make help does not mention: {sorted(missing)}"


def test_every_trashseg_verb_in_the_readme_exists_and_has_help():
    from trashseg.cli import VERBS

    used = set(re.findall(r"\btrashseg ([a-z][a-z-]*)", readme_code()))
    assert used and not used - set(VERBS), f"README names verbs the CLI lacks: {sorted(used - set(VERBS))}"


def test_trashseg_and_every_verb_answer_help():
    import subprocess
    import sys

    from trashseg.cli import VERBS

    top = subprocess.run([sys.executable, "-m", "trashseg", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert top.returncode == 0 and all(f"  {verb} " in top.stdout for verb in VERBS)
    for verb in VERBS:
        proc = subprocess.run(
            [sys.executable, "-m", "trashseg", verb, "--help"], capture_output=True, text=True, cwd=ROOT
        )
        assert proc.returncode == 0 and proc.stdout.strip() and "Traceback" not in proc.stderr, (verb, proc.stderr)
    wrong = subprocess.run([sys.executable, "-m", "trashseg", "trian"], capture_output=True, text=True, cwd=ROOT)
    assert wrong.returncode == 2 and "trashseg trian: no such verb; did you mean train?" in wrong.stderr


def test_the_readme_is_a_front_page_that_links_every_docs_page():
    front = (ROOT / "README.md").read_text()
    assert len(front.splitlines()) < 200
    pages = {p.name for p in (ROOT / "docs").glob("*.md")}
    linked = set(re.findall(r"\]\(docs/([a-z-]+\.md)\)", front))
    assert pages and pages == linked, (pages, linked)
    for page in pages:  # and each page's pictures exist
        for picture in re.findall(r"!\[[^]]*\]\(([^)]+)\)", (ROOT / "docs" / page).read_text()):
            assert (ROOT / "docs" / picture).is_file(), (page, picture)
