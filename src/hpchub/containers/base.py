"""The container runtimes' contract.

A runtime turns a command into the command that runs it inside an image:

    wrap(image, argv, gpus=False) -> argv

The result is an argv list (no shell of the caller's), run by hpchub's launchers on a login
node or in a batch job, or by Jupyter as a kernel. What only the node knows is read there,
from the environment the command runs with, never spliced into the command:

    $HOME               the user's home: bound at the same path; the working directory is
                        $PWD when it is in the home (a kernel's notebook folder), else $HOME
    $HPCHUB_SERVER_DIR  the server's 0700 directory (its socket, Jupyter's runtime files,
                        credential files), set by the launchers; bound at the same path

The command keeps the environment it is given (the server's token reaches the server that way,
never through the command line), apart from what the image itself sets (its PATH, ...), and
keeps its process id where the runtime allows (Charliecloud, Apptainer), so that stopping the
server or culling it ends what runs in the image too. With gpus, the job's GPUs are passed
in as the runtime does that.

A wrapper made by a runtime uses a fixed shell script of its own, its values arriving as
positional arguments: an image path never becomes shell text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Where an image may be: an absolute path (a directory or a SquashFS/SIF file) or a reference
# to an image in a registry or the runtime's store ("docker.io/library/python:3.12"). No
# spaces, quotes or shell characters: the runtime's own words are the only ones it meets.
IMAGE = re.compile(r"(/[A-Za-z0-9._+@-]+)+/?|[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,255}")


class ContainerError(ValueError):
    """A container setting or image reference hpchub cannot use (said at start-up or by the command)."""


def checked_image(image) -> str:
    if not isinstance(image, str) or not IMAGE.fullmatch(image) or ".." in image.split("/"):
        raise ContainerError(f"{image!r} is not an image path or reference hpchub takes "
                             "(an absolute path, or a name like registry/image:tag)")
    return image


class ContainerRuntime:
    """A container runtime. Subclasses set `name`, `program`, `title` and `wrapper`: a fixed
    shell script that gets the image as $1, "gpus" or "-" as $2, then the command."""

    name = ""
    program = ""  # the runtime's command, found on the node's PATH
    title = ""
    tested_here = False  # the docs say what was run against the real runtime
    wrapper = ""

    def wrap(self, image: str, argv: list[str], gpus: bool = False) -> list[str]:
        return ["/bin/sh", "-c", self.wrapper, f"hpchub-{self.name}", checked_image(image), "gpus" if gpus else "-",
                *argv]


@dataclass(frozen=True)
class ContainerSpec:
    """A target's container: the runtime, the image the admin set or the images a user may
    choose from (title -> image), and the server's command inside the image (the spawner's
    `cmd` when not given: an image made from the site's Jupyter environment has it at the
    same place)."""

    runtime: str
    image: str = ""
    images: tuple[tuple[str, str], ...] = ()  # (title, image), in the admin's order
    cmd: tuple[str, ...] = ()
    gpus: bool = False

    KEYS = frozenset({"runtime", "image", "images", "cmd", "gpus"})

    @classmethod
    def from_config(cls, where: str, value) -> "ContainerSpec":
        from . import RUNTIMES

        if not isinstance(value, dict):
            raise ContainerError(f"{where}: `container` must be a dict with `runtime` and `image` or `images`")
        unknown = set(value) - cls.KEYS
        if unknown:
            raise ContainerError(f"{where}: `container`: unknown keys {sorted(unknown)}")
        runtime = value.get("runtime")
        if runtime not in RUNTIMES:
            raise ContainerError(f"{where}: `container`: `runtime` must be one of {', '.join(sorted(RUNTIMES))}")
        image, images = value.get("image", ""), value.get("images", {})
        if bool(image) == bool(images):
            raise ContainerError(f"{where}: `container`: give `image` (the admin's) or `images` (a user's choice), "
                                 "one of the two")
        if image:
            checked_image(image)
        if not isinstance(images, dict) or not all(isinstance(t, str) and t.strip() for t in images):
            raise ContainerError(f"{where}: `container`: `images` must be a dict of title -> image")
        for title, path in images.items():
            try:
                checked_image(path)
            except ContainerError as exc:
                raise ContainerError(f"{where}: `container`: image {title!r}: {exc}") from None
        cmd = value.get("cmd", [])
        if not isinstance(cmd, (list, tuple)) or not all(isinstance(w, str) and w and "\0" not in w for w in cmd):
            raise ContainerError(f"{where}: `container`: `cmd` must be a list of words")
        if not isinstance(value.get("gpus", False), bool):
            raise ContainerError(f"{where}: `container`: `gpus` must be true or false")
        return cls(runtime=runtime, image=image, images=tuple(images.items()), cmd=tuple(cmd),
                   gpus=value.get("gpus", False))

    @property
    def choosable(self) -> bool:
        return bool(self.images)

    @property
    def all_images(self) -> tuple[str, ...]:
        """Every image its servers may run in (the admin's, or each of the list)."""
        return tuple(image for _, image in self.images) if self.images else (self.image,)

    def image_for(self, chosen: str | None) -> str:
        """The image a server runs in: the admin's, or the user's choice (a title or an image
        of the list; checked by options.chosen_image before it gets here)."""
        if not self.images:
            return self.image
        for title, image in self.images:
            if chosen in (title, image):
                return image
        return self.images[0][1]

    def title_of(self, image: str) -> str:
        """How the user knows an image: its title in the admin's list, else the image itself."""
        return next((title for title, listed in self.images if listed == image), image)
