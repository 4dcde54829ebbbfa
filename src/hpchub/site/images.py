"""The demo's container image: Debian bookworm with Python and JupyterLab, run by Charliecloud.

Built once into /opt/hpchub/images (shared by every site instance, as the Jupyter environment
is), from Debian's mirror with debootstrap, then a Python environment at /opt/jupyter in it with
JupyterHub's single-user server, JupyterLab, ipykernel and numpy, at the versions of the site's
own Jupyter environment (their wheels come through the host's pip cache), and hpchub itself
(the walltime notice and the site's Jupyter settings). It is rebuilt only when its recipe or
those versions change; a change of hpchub's source reinstalls hpchub in it.

The image is a plain directory, as Charliecloud runs it: its environment (PATH) in
/ch/environment, which the runtime's wrapper applies (hpchub.containers.charliecloud); and a
label, /etc/hpchub-image, which tests and users read to know they are inside it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

from .layout import SOFTWARE_ROOT
from .software import JUPYTER_ENV, source_hash, source_tree
from .system import CommandError, SiteError, make_dir, run, say

IMAGES_ROOT = SOFTWARE_ROOT / "images"
DEMO_IMAGE = IMAGES_ROOT / "bookworm-jupyter"
DEMO_IMAGE_TITLE = "Debian 12, JupyterLab, numpy"
IMAGE_ENV = "/opt/jupyter"  # the Jupyter environment inside the image
IMAGE_LABEL = "etc/hpchub-image"
RECIPE = 2  # raise when the steps below change: the image is rebuilt
MIRROR = "http://deb.debian.org/debian"
DEBIAN_PACKAGES = ("python3", "python3-venv", "ca-certificates")
PYTHON_PACKAGES = ("jupyterhub", "jupyterlab", "ipykernel", "numpy")


def image_command() -> list[str]:
    """The single-user server's command inside the demo image."""
    return [f"{IMAGE_ENV}/bin/jupyterhub-singleuser"]


def _pins() -> list[str]:
    """The site environment's versions of everything (constraints for the image's packages)."""
    out = run([str(JUPYTER_ENV / "bin" / "pip"), "freeze", "--disable-pip-version-check", "--exclude", "hpchub"],
              timeout=120).stdout
    return sorted(line for line in out.splitlines() if "==" in line and not line.startswith("-"))


def _label(image: Path) -> dict:
    try:
        return json.loads((image / IMAGE_LABEL).read_text())
    except (OSError, ValueError):
        return {}


@contextmanager
def _build_lock():
    make_dir(IMAGES_ROOT, 0o755)
    with open(IMAGES_ROOT / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time (site instances come up in parallel)
        yield


def ensure_demo_image(mirror: str = MIRROR) -> Path:
    pins = _pins()
    wanted = hashlib.sha256(json.dumps([RECIPE, PYTHON_PACKAGES, DEBIAN_PACKAGES, pins]).encode()).hexdigest()
    root = source_tree()
    source = source_hash(root) if root is not None else ""
    with _build_lock():
        label = _label(DEMO_IMAGE)
        if label.get("recipe") != wanted:
            _build(DEMO_IMAGE, wanted, pins, root, mirror)
        elif root is not None and label.get("hpchub") != source:
            say(f"  images: installing hpchub into {DEMO_IMAGE}")
            _install_hpchub(DEMO_IMAGE, root)
        else:
            return DEMO_IMAGE
        _write_label(DEMO_IMAGE, {**_label(DEMO_IMAGE), "recipe": wanted, "hpchub": source})
        run(["chmod", "-R", "a+rX", str(DEMO_IMAGE)], timeout=300)
    return DEMO_IMAGE


CONTAINER_KERNEL = "image-bookworm"


def ensure_container_kernel(image: Path = DEMO_IMAGE) -> None:
    """The demo image as a kernel of the site's Jupyter environment, for every user's bare
    servers (JupyterLab stays where it is; the kernel runs in the image)."""
    run([str(JUPYTER_ENV / "bin" / "hpchub"), "kernel", "add", CONTAINER_KERNEL, "--container", str(image), "--site",
         "--display-name", f"Python 3 (container: {DEMO_IMAGE_TITLE})"], timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": "/root", "USER": "root", "LANG": "C.UTF-8"})


def _write_label(image: Path, label: dict) -> None:
    (image / IMAGE_LABEL).write_text(json.dumps(label, indent=1) + "\n")


def _in_image(image: Path, argv: list[str], timeout: float) -> None:
    run(["/usr/sbin/chroot", str(image), *argv], timeout=timeout,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/root", "LANG": "C.UTF-8"})


def _install_hpchub(image: Path, root: Path) -> None:
    """hpchub from this checkout into the image's environment (its wheel built here; no network)."""
    wheels = image / "tmp" / "hpchub-wheel"
    wheels.mkdir(parents=True, exist_ok=True)
    try:
        run([str(JUPYTER_ENV / "bin" / "pip"), "wheel", "--quiet", "--disable-pip-version-check", "--no-deps",
             "--wheel-dir", str(wheels), str(root)], timeout=600)
        _in_image(image, [f"{IMAGE_ENV}/bin/pip", "install", "--quiet", "--disable-pip-version-check", "--no-index",
                          "--no-deps", "--force-reinstall", "--find-links", "/tmp/hpchub-wheel", "hpchub"], timeout=300)
    finally:
        shutil.rmtree(wheels, ignore_errors=True)


def _build(image: Path, stamp: str, pins: list[str], root: Path | None, mirror: str) -> None:
    started = time.monotonic()
    say(f"  images: building the demo image {image} (Debian bookworm with debootstrap, then JupyterLab; "
        "about two minutes, once)")
    building = image.with_name(image.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    try:
        try:
            run(["debootstrap", "--variant=minbase", f"--include={','.join(DEBIAN_PACKAGES)}", "bookworm",
                 str(building), mirror], timeout=1200)
        except CommandError as exc:
            raise SiteError(f"the demo image's Debian base could not be made from {mirror}: {exc}") from None
        wheels = building / "tmp" / "hpchub-wheels"
        wheels.mkdir(parents=True)
        constraints = wheels / "constraints.txt"
        constraints.write_text("\n".join(pins) + "\n")
        # Wheels for the image's Python (the same Debian Python as the site's environment), through
        # the host's pip and its cache: the image's own pip then installs with no network.
        run([str(JUPYTER_ENV / "bin" / "pip"), "download", "--quiet", "--disable-pip-version-check",
             "--only-binary=:all:", "--dest", str(wheels), "--constraint", str(constraints), *PYTHON_PACKAGES],
            timeout=1200)
        _in_image(building, ["python3", "-m", "venv", IMAGE_ENV], timeout=300)
        _in_image(building, [f"{IMAGE_ENV}/bin/pip", "install", "--quiet", "--disable-pip-version-check", "--no-index",
                             "--find-links", "/tmp/hpchub-wheels", "--constraint", "/tmp/hpchub-wheels/constraints.txt",
                             *PYTHON_PACKAGES], timeout=1200)
        shutil.rmtree(wheels)
        if root is not None:
            _install_hpchub(building, root)
        for leftover in ("var/lib/apt/lists", "var/cache/apt/archives"):
            for path in (building / leftover).glob("*"):
                if path.is_file():
                    path.unlink()
        # ch-run puts the node's /etc/hosts and /etc/resolv.conf over the image's, where the image
        # has them (debootstrap's minbase has no /etc/hosts): the cluster's names resolve inside.
        for name in ("hosts", "resolv.conf"):
            (building / "etc" / name).touch()
        (building / "ch").mkdir(exist_ok=True)
        # The image's environment, as ch-image keeps a Dockerfile's ENV (applied by ch-run --set-env).
        (building / "ch" / "environment").write_text(
            f"PATH={IMAGE_ENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n")
        _write_label(building, {"name": image.name, "title": DEMO_IMAGE_TITLE, "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                "recipe": stamp, "python_packages": list(PYTHON_PACKAGES)})
        # The previous image stays beside it until the next build: servers running from it
        # (ch-run mounted its directory) keep their files.
        old = image.with_name(image.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if image.exists():
            image.rename(old)
        building.rename(image)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    say(f"  images: {image} built in {time.monotonic() - started:.0f} s")
