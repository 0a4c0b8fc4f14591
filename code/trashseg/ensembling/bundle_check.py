"""`make kaggle-bundle-check`: the bundle's notebook executed as Kaggle executes it, with no network, and
its CSV compared with the kit's own. Kaggle's failures are offline ones (a wheel missing, a hub reached
for), so the notebook runs where only the bundle can supply the kit:

- ``container``: an image that stands in for Kaggle's (the Debian base, Python, torch, torchvision and a
  Jupyter kernel: Dockerfile.kaggle) with ``--network none``, the bundle at /kaggle/input/<slug>/ and the
  competition folder at /kaggle/input/<competition>/, read-only;
- ``venv``: a fresh venv whose only packages besides pip are torch, torchvision and the Jupyter kernel,
  linked from this environment, pip's configuration and index off, in a network namespace of its own
  (``unshare --net``) where the machine allows it.

The comparison (pixel for pixel, a CSV against a CSV) and the folder the notebook sees are here too."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from trashseg.ensembling.bundle import installed_closure
from trashseg.errors import TrashsegError

STAND_IN_IMAGE = "trashseg-kaggle:standin"
STAND_IN_BASE = "trashseg-base:bookworm"
# what a Kaggle notebook finds installed (the stand-in image's packages); numpy and pillow, which
# torchvision requires, are left out: the bundle must carry them
KERNEL_PACKAGES = ("torch", "torchvision", "ipykernel")
LEFT_TO_THE_BUNDLE = ("numpy", "pillow")


def compare(made: Path, reference: Path, test_json: Path) -> tuple[int, int, list[str], int]:
    """(pixels that differ, pixels in all, image ids that differ, images): both files read row by row
    through the submission checker, so a row missing, misordered or malformed stops it with one line."""
    from trashseg.ensembling.submission import expected_ids_from_test_json, read_rows

    expected = expected_ids_from_test_json(test_json)
    differ, total, images = 0, 0, []
    for (image_id, x), (_, y) in zip(read_rows(made, expected), read_rows(reference, expected), strict=True):
        n = int((x != y).sum())
        differ, total = differ + n, total + x.size
        if n:
            images.append(image_id)
    return differ, total, images, len(expected)


def kaggle_folders(root: Path, bundle: Path, slug: str, data: Path, competition: str) -> Path:
    """``root`` laid out as a notebook sees /kaggle: input/<slug> (the bundle), input/<competition>, working."""
    (root / "input").mkdir(parents=True, exist_ok=True)
    (root / "working").mkdir(exist_ok=True)
    for name, target in ((slug, bundle), (competition, data)):
        link = root / "input" / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(Path(target).resolve(), target_is_directory=True)
    return root / "working"


def link_packages(dest: Path, names: set[str]) -> int:
    """Symlinks in ``dest`` to the top-level files and folders of the installed distributions ``names``
    (packages, modules, .dist-info): a folder a .pth file puts on a fresh venv's path."""
    import importlib.metadata as md

    dest.mkdir(parents=True, exist_ok=True)
    linked = 0
    for name in sorted(names):
        dist = md.distribution(name)
        for top in sorted({f.parts[0] for f in dist.files or [] if f.parts and f.parts[0] != ".."}):
            source = Path(dist.locate_file(top))
            if top.endswith(".pth") or not source.exists() or (dest / top).exists():
                continue
            (dest / top).symlink_to(source)
            linked += 1
    return linked


def fresh_venv(work: Path) -> tuple[Path, dict[str, str]]:
    """A new venv (pip only) that sees torch, torchvision and a Jupyter kernel from this environment,
    and a kernelspec for it: (its python, the environment the runner needs)."""
    venv = work / "venv"
    proc = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise TrashsegError(f"python -m venv {venv} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    python = venv / "bin" / "python"
    # the venv's own setuptools (ensurepip's, older than torch requires) would hide the image's
    subprocess.run([str(python), "-m", "pip", "uninstall", "--quiet", "--yes", "setuptools"], capture_output=True)
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], capture_output=True, text=True
    ).stdout.strip()
    names = installed_closure(KERNEL_PACKAGES) - set(LEFT_TO_THE_BUNDLE)
    link_packages(work / "host-packages", names)
    (Path(site) / "kaggle-image.pth").write_text(str(work / "host-packages") + "\n", encoding="utf-8")
    spec = work / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True, exist_ok=True)
    kernel = {
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (kaggle-bundle-check venv)",
        "language": "python",
    }
    (spec / "kernel.json").write_text(json.dumps(kernel), encoding="utf-8")
    return python, {"JUPYTER_PATH": str(work / "jupyter")}


def kernel_environment(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment less what would let the notebook reach past the bundle (pip's
    configuration and index, the kit's own variables, a Python path), plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TRASHSEG_", "PIP_", "PYTHON", "VIRTUAL_ENV", "UV_", "JUPYTER", "KAGGLE_"))
    }
    return {**env, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PYTHONUNBUFFERED": "1", **extra}


def isolated(cmd: list[str]) -> tuple[list[str], str]:
    """``cmd`` in a network namespace of its own (loopback only) when the machine allows it."""
    unshare = shutil.which("unshare")
    ip = shutil.which("ip")
    if unshare and ip:
        probe = subprocess.run([unshare, "--net", ip, "link", "set", "lo", "up"], capture_output=True)
        if probe.returncode == 0:
            wrapped = [unshare, "--net", "sh", "-c", f'{ip} link set lo up && exec "$@"', "sh", *cmd]
            return wrapped, "no network (a network namespace of its own: loopback only)"
    return cmd, "the network is not cut (unshare --net is not permitted here): pip's index and configuration are off"


def execute_in_venv(bundle: Path, slug: str, data: Path, competition: str, work: Path, timeout: int) -> float:
    """Run the bundle's notebook in a fresh venv; seconds taken (venv made, install, inference)."""
    jupyter = Path(sys.executable).parent / "jupyter"
    if not jupyter.exists():
        raise TrashsegError(f"{jupyter}: not found; `make setup` installs Jupyter's runner (nbclient)")
    start = time.perf_counter()
    _, env = fresh_venv(work)
    working = kaggle_folders(work / "kaggle", bundle, slug, data, competition)
    out = working / "inference.ipynb"
    cmd = [
        str(jupyter),
        "execute",
        f"--timeout={timeout}",
        f"--output={out.with_suffix('')}",
        str(bundle / "inference.ipynb"),
    ]
    cmd, network = isolated(cmd)
    print(
        f"kaggle-bundle-check: notebook in a fresh venv (torch, torchvision, the kernel linked), {network}", flush=True
    )
    env = kernel_environment({**env, "KAGGLE_ROOT": str(work / "kaggle")})
    proc = subprocess.run(cmd, env=env, cwd=working, capture_output=True, text=True)
    report_notebook(proc)
    return time.perf_counter() - start


def stand_in_image(docker: str, image: str, base: str, ca_bundle: Path | None, root: Path) -> None:
    """Build ``image`` from Dockerfile.kaggle unless the engine has it."""
    if subprocess.run([docker, "image", "inspect", image], capture_output=True).returncode == 0:
        return
    cmd = [docker, "build", "-f", str(root / "Dockerfile.kaggle"), "-t", image, "--build-arg", f"BASE_IMAGE={base}"]
    if ca_bundle is not None:
        if not ca_bundle.is_file():
            raise TrashsegError(
                f"CA_BUNDLE={ca_bundle}: no such file (the PEM bundle of the proxy's certificate authority)"
            )
        cmd += ["--secret", f"id=ca_bundle,src={ca_bundle.resolve()}"]
    print("$ " + " ".join([*cmd, str(root)]), flush=True)
    if subprocess.call([*cmd, str(root)], env={**os.environ, "DOCKER_BUILDKIT": "1"}) != 0:
        raise TrashsegError(
            f"{docker} build of the stand-in image {image} failed (its output is above; its base {base} comes "
            "from `make docker-base`; with podman: DOCKER=podman)"
        )


def image_python(docker: str, image: str) -> str:
    """The 3.N of the Python in ``image``."""
    probe = "import sys; print('%d.%d' % sys.version_info[:2])"
    proc = subprocess.run(
        [docker, "run", "--rm", "--network", "none", image, "python3", "-c", probe], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise TrashsegError(f"{image}: python3 does not run in it ({(proc.stderr.strip().splitlines() or ['?'])[-1]})")
    return proc.stdout.strip()


def execute_in_container(
    docker: str, image: str, bundle: Path, slug: str, data: Path, competition: str, work: Path, timeout: int
) -> float:
    """Run the bundle's notebook in ``image`` with --network none; seconds taken (container start included)."""
    working = work / "working"
    working.mkdir(parents=True, exist_ok=True)
    cmd = [
        docker, "run", "--rm", "--network", "none",
        "-v", f"{bundle.resolve()}:/kaggle/input/{slug}:ro",
        "-v", f"{Path(data).resolve()}:/kaggle/input/{competition}:ro",
        "-v", f"{working.resolve()}:/kaggle/working",
        image,
        "jupyter", "execute", f"--timeout={timeout}", "--output=/kaggle/working/inference",
        f"/kaggle/input/{slug}/inference.ipynb",
    ]  # fmt: skip
    print(f"kaggle-bundle-check: notebook in {image} with --network none", flush=True)
    print("$ " + " ".join(cmd), flush=True)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    report_notebook(proc)
    return time.perf_counter() - start


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def report_notebook(proc: subprocess.CompletedProcess) -> None:
    """Stop with the failing cell's error, as the runner printed it (its last line: ``Name: message``)."""
    if proc.returncode == 0:
        return
    lines = [ANSI.sub("", ln).strip() for ln in (proc.stdout + proc.stderr).splitlines()]
    errors = [ln for ln in lines if re.match(r"^[A-Za-z_.]*(Error|Exception|Interrupt)\b.*:", ln)]
    detail = errors[-1] if errors else next((ln for ln in reversed(lines) if ln), "no output")
    raise TrashsegError(f"the bundle's notebook failed offline: {detail[:800]}")
