"""Container runtimes (hpchub.containers): the wrappers each runtime builds, run through a
real /bin/sh with the runtime's program replaced by one that prints the argv it was given;
targets' container settings; the check of a user's image choice."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hpchub.containers import RUNTIMES, ContainerError, runtime_named
from hpchub.containers.base import checked_image
from hpchub.site.hub import DEMO_TARGETS
from hpchub.spawners.options import FieldError, chosen_image, job_request, resolve
from hpchub.spawners.targets import Target, TargetConfigError

SERVER = ["/opt/jupyter/bin/jupyterhub-singleuser", "--debug", "it's a $(value) with `ticks`"]


@pytest.fixture
def programs(tmp_path):
    """A directory on PATH holding ch-run, podman and apptainer that print their argv as JSON."""
    for name in ("ch-run", "podman", "apptainer"):
        path = tmp_path / name
        path.write_text(f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")
        path.chmod(0o755)
    return tmp_path


def run_wrapped(programs, argv, *, home, user="alice", server_dir=None, cwd=None):
    env = {"PATH": f"{programs}:/usr/bin:/bin", "HOME": str(home), "USER": user}
    if server_dir is not None:
        env["HPCHUB_SERVER_DIR"] = str(server_dir)
    out = subprocess.run(argv, env=env, cwd=cwd or home, capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def test_charliecloud_binds_the_home_and_keeps_the_command_word_for_word(programs, tmp_path):
    image = tmp_path / "image"
    (image / "ch").mkdir(parents=True)
    (image / "ch" / "environment").write_text("PATH=/opt/jupyter/bin:/usr/bin:/bin\n")
    home = tmp_path / "home"
    home.mkdir()
    got = run_wrapped(programs, runtime_named("charliecloud").wrap(str(image), SERVER), home=home,
                      server_dir="/tmp/hpchub-1001/x")
    # The home is not /home/alice here: bound at its own path. /tmp is ch-run's own to share.
    assert got == ["--cd=" + str(home), "--set-env", "--bind=" + str(home), str(image), "--", *SERVER]


def test_charliecloud_uses_its_own_home_option_for_home_user_and_binds_a_server_dir_outside_tmp(programs, tmp_path):
    image = tmp_path / "image"
    image.mkdir()  # no /ch/environment: no --set-env (ch-run would refuse it)
    home = tmp_path / "home" / "alice"
    home.mkdir(parents=True)
    wrapped = runtime_named("charliecloud").wrap(str(image), ["python3", "-V"])
    env_home = "/home/alice"
    argv = [*wrapped]
    env = {"PATH": f"{programs}:/usr/bin:/bin", "HOME": env_home, "USER": "alice",
           "HPCHUB_SERVER_DIR": "/scratch/job-tmp"}  # (a node's TMPDIR outside /tmp)
    got = json.loads(subprocess.run(argv, env=env, cwd=home, capture_output=True, text=True, check=True).stdout)
    # (run from a folder outside the home, which the container does not see: it starts in the home)
    assert got == ["--cd=/home/alice", "--home", "--bind=/scratch/job-tmp", str(image), "--", "python3", "-V"]


def test_podman_and_apptainer_wrappers(programs, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    got = run_wrapped(programs, runtime_named("podman").wrap("docker.io/library/python:3.12", ["python3"], gpus=True),
                      home=home, server_dir="/tmp/s")
    assert got[:2] == ["run", "--rm"] and "--env-host" in got and "--userns=keep-id" in got
    assert f"--volume={home}:{home}" in got and "--volume=/tmp/s:/tmp/s" in got and "--device=nvidia.com/gpu=all" in got
    assert got[-2:] == ["docker.io/library/python:3.12", "python3"]
    got = run_wrapped(programs, runtime_named("apptainer").wrap("/images/tf.sif", ["python3"], gpus=True), home=home,
                      server_dir="/scratch/job/s")
    assert got == ["exec", f"--pwd={home}", "--nv", "--bind=/scratch/job/s", "/images/tf.sif", "python3"]
    got = run_wrapped(programs, runtime_named("apptainer").wrap("/images/tf.sif", ["python3"]), home=home)
    assert got == ["exec", f"--pwd={home}", "/images/tf.sif", "python3"]
    (home / "notebooks").mkdir()
    got = run_wrapped(programs, runtime_named("charliecloud").wrap("/images/x", ["python3"]), home=home,
                      cwd=home / "notebooks")  # a kernel starts in its notebook's folder
    assert got[0] == f"--cd={home}/notebooks"


@pytest.mark.parametrize("image", ["", "relative/../x", "/images/a b", "/images/$(id)", "/img;rm", "-rf",
                                   "/images/../etc", "x" * 300, "/images/\n", None, 3])
def test_images_hpchub_does_not_take(image):
    with pytest.raises(ContainerError):
        checked_image(image)
    for runtime in RUNTIMES.values():
        with pytest.raises(ContainerError):
            runtime().wrap(image, ["python3"])


def test_an_unknown_runtime_is_named():
    with pytest.raises(ContainerError, match="'docker' is not a container runtime hpchub knows"):
        runtime_named("docker")


@pytest.mark.parametrize("container, message", [
    ("/images/x", "must be a dict"),
    ({"runtime": "docker", "image": "/images/x"}, "`runtime` must be one of apptainer, charliecloud, podman"),
    ({"runtime": "charliecloud"}, "give `image` (the admin's) or `images`"),
    ({"runtime": "charliecloud", "image": "/a", "images": {"A": "/a"}}, "one of the two"),
    ({"runtime": "charliecloud", "image": "/images/a b"}, "is not an image path"),
    ({"runtime": "charliecloud", "images": {"A": "../a"}}, "image 'A'"),
    ({"runtime": "charliecloud", "images": ["/a"]}, "must be a dict of title -> image"),
    ({"runtime": "charliecloud", "image": "/a", "cmd": "jupyterhub-singleuser"}, "`cmd` must be a list of words"),
    ({"runtime": "charliecloud", "image": "/a", "privileged": True}, "unknown keys ['privileged']"),
])
def test_a_targets_container_settings_are_checked_at_start(container, message):
    with pytest.raises(TargetConfigError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        Target.from_config({"name": "c", "kind": "login", "container": container})


TARGETS = {spec["name"]: Target.from_config(spec) for spec in DEMO_TARGETS}
CHOICE = Target.from_config({"name": "c", "title": "In a container", "kind": "login", "container": {
    "runtime": "charliecloud", "images": {"PyTorch": "/images/pytorch", "Plain": "/images/plain"}}})
FIXED = Target.from_config({"name": "f", "title": "Fixed", "kind": "login", "container": {
    "runtime": "charliecloud", "image": "/images/fixed"}})


def test_the_image_a_server_runs_in():
    assert chosen_image(CHOICE, {"target": "c"}) == "/images/pytorch"  # the first of the list
    assert chosen_image(CHOICE, {"image": " Plain "}) == "/images/plain"  # by title
    assert chosen_image(CHOICE, {"image": "/images/plain"}) == "/images/plain"  # or by the image itself
    assert chosen_image(FIXED, {}) == "/images/fixed"
    assert chosen_image(TARGETS["login"], {}) is None
    assert chosen_image(TARGETS["compute-container"], {}).startswith("/opt/hpchub/images/")


@pytest.mark.parametrize("target, image, message", [
    (CHOICE, "/images/secret", "'/images/secret' is not one of the images offered here (PyTorch, Plain)"),
    (CHOICE, "pytorch", "'pytorch' is not one of the images offered here (PyTorch, Plain)"),
    (CHOICE, "/images/pytorch/../../etc", "is not one of the images offered here"),
    (FIXED, "/images/fixed", "Fixed runs no image of your choice"),
    (TARGETS["login"], "/images/x", "Login node runs no image of your choice"),
])
def test_an_image_outside_the_admins_list_is_refused_naming_the_field(target, image, message):
    for check in (lambda o: chosen_image(target, o), lambda o: resolve(target, o, None),
                  lambda o: job_request(target, o, None)):
        with pytest.raises(FieldError) as refused:
            check({"target": target.name, "image": image})
        assert refused.value.field == "image" and message in refused.value.message


def test_the_spawn_form_offers_the_images_of_a_target_that_has_a_choice():
    from hpchub.spawners.form import ClusterGroup, render
    from hpchub.spawners.targets import Choices

    html = render([ClusterGroup("default", "Cluster", "up", [CHOICE, FIXED], Choices({}, {}))],
                  last={"target": "c", "image": "Plain"}, refusal=None, user="alice")
    select = html[html.index('name="c.image"'):]
    select = select[:select.index("</select>")]
    assert '<option value="PyTorch" >PyTorch</option>' in select
    assert '<option value="Plain" selected>Plain</option>' in select
    assert "In the container image /images/fixed" in html


def test_the_kernel_command_words_are_not_shell_text(programs, tmp_path):
    """What the wrapper runs is the argv given, even with shell characters and spaces in it."""
    home = tmp_path / "home"
    home.mkdir()
    argv = ["python3", "-c", "print(1)", "a b", "$HOME", "'", '"', ";", "*"]
    got = run_wrapped(programs, runtime_named("charliecloud").wrap("/images/x", argv), home=home)
    assert got[got.index("--") + 1:] == argv


def test_kernel_add_container_writes_a_spec_whose_argv_is_the_runtimes(tmp_path, monkeypatch):
    from hpchub import kernels

    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    path = kernels.add("torch", container=("charliecloud", "/images/pytorch", "python3"), check=False)
    spec = json.loads((path / "kernel.json").read_text())
    assert path.name == "torch" and spec["display_name"] == "Python (pytorch, container)"
    assert spec["argv"] == runtime_named("charliecloud").wrap("/images/pytorch", [
        "python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"])
    assert spec["metadata"]["hpchub"] == {"container": {"runtime": "charliecloud", "image": "/images/pytorch"}}
    batch = kernels.add("torch-job", container=("charliecloud", "/images/pytorch", "python3"), check=False,
                        batch=("slurm", "--partition batch"))
    spec = json.loads((batch / "kernel.json").read_text())
    assert spec["metadata"]["kernel_provisioner"]["provisioner_name"] == "hpchub-batch"
    script = kernels.batch_job_script(spec["argv"], None)
    assert "exec /bin/sh -c" in script and "/images/pytorch - python3 -m ipykernel_launcher" in script


@pytest.mark.parametrize("container, wrapper, message", [
    (("charliecloud", "/images/a b", "python3"), "", "is not an image path"),
    (("docker", "/images/a", "python3"), "", "'docker' is not a container runtime"),
    (("charliecloud", "/images/a", "python3"), "apptainer exec", "give one"),
])
def test_kernel_add_container_refuses_what_it_cannot_use(tmp_path, monkeypatch, container, wrapper, message):
    from hpchub import kernels

    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(kernels.KernelError, match=message):
        kernels.add("k", container=container, wrapper=wrapper, check=False)
    assert not (tmp_path / "data").exists()


def test_kernel_add_container_says_in_the_runtimes_words_why_the_image_cannot_run_a_kernel(tmp_path, monkeypatch):
    from hpchub import kernels

    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "ch-run").write_text("#!/bin/sh\necho \"ch-run[1]: error: can't stat: $3: No such file\" >&2\nexit 1\n")
    (fake / "ch-run").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:/usr/bin:/bin")
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(kernels.KernelError) as refused:
        kernels.add("k", container=("charliecloud", "/images/missing", "python3"))
    assert "ipykernel cannot be imported in the image /images/missing" in str(refused.value)
    assert "ch-run[1]: error: can't stat" in str(refused.value)
    assert not (tmp_path / "data").exists()
