"""Every setting of hpchub's spawner, with its help (which is the documentation: the settings
reference is generated from it). The spawner (spawner.py) is these settings plus behaviour.

Set them as `c.HPCSpawner.*`. The sections of hpchub 0.1's classes keep working for every
hpchub spawner, in the order they applied then: `c.RemoteSpawner.*` (reaching the login
nodes), `c.SSHSpawner.*`, `c.BatchSpawner.*` (batch jobs), then `c.HPCSpawner.*`, then the
preset's own (`c.SSHSpawner.*` for hpchub-ssh, `c.SlurmSpawner.*` for hpchub-slurm).
"""

from __future__ import annotations

from traitlets import Bool, Callable, Dict, Float, Integer, List, Unicode, Union, default
from traitlets.config import LoggingConfigurable

from .batch import DEFAULT_JOB_TEMPLATE

# The sections of hpchub 0.1's spawner classes, which still configure every hpchub spawner.
LEGACY_SECTIONS = ("RemoteSpawner", "SSHSpawner", "BatchSpawner")


class HPCSettings(LoggingConfigurable):
    """The settings of HPCSpawner (declarations only; see spawner.py)."""

    # ----- the login nodes, and how servers are started there ------------------------------
    login_nodes = List(
        Dict(),
        config=True,
        help="""The login nodes: `[{"name": "login1", "address": "login1.example.org", "port": 22}, ...]`.
        Servers of login-node targets run on the one with the fewest of this hub's servers, then
        the lowest load; batch jobs are submitted from the first that answers, in this order.
        An entry may also give `"cluster_address"`: the login node's address as compute nodes
        see it, for servers in batch jobs to reach the hub's API through it.""",
    )

    known_hosts = Unicode(
        config=True,
        help="""known_hosts file with the login nodes' host keys (or a `@cert-authority` line for
        a host CA). Host keys are always verified: a mismatch stops the spawn.""",
    )

    launcher_python = Unicode(
        "python3",
        config=True,
        help="""Python on the cluster that runs hpchub's launcher (3.6 or newer, standard
        library only; it is sent over the SSH channel, nothing is installed on the cluster).""",
    )

    connect_timeout = Integer(15, config=True, help="Seconds to wait for an SSH connection to a login node.")

    tunnel_socket = Unicode(
        "hpchub-tunnels.sock",
        config=True,
        help="""Unix socket of the tunnel service (`hpchub tunnels serve`), which holds the SSH
        tunnels to users' servers outside the hub process so that a hub restart does not cut
        open notebooks. Relative paths are taken from the hub's working directory. If nothing
        answers there, the hub starts the service itself, detached, beside the proxy.""",
    )

    start_tunnel_service = Bool(
        True,
        config=True,
        help="""Whether the hub starts the tunnel service itself when nothing answers on
        `tunnel_socket` (detached, in a session of its own, so that a hub restart leaves it).
        False where a supervisor runs it as a service of its own (`systemd/hpchub-tunnels.service`,
        compose's `tunnels` service): the hub then waits for it to come back and never starts
        a second one beside it.""",
    )

    setup_lines = List(
        Unicode(),
        config=True,
        help="""Shell lines run before the server starts, e.g.
        `["module load python/3.11", "export OMP_NUM_THREADS=1"]`. They come from this
        configuration only (never from users) and run in bash, which then starts the server.""",
    )

    kernel_transport = Unicode(
        "ipc",
        config=True,
        help="""ZeroMQ transport between the server and its kernels. `ipc` (the default) uses
        Unix sockets in the server's private runtime directory, so no TCP port of a kernel is
        open to the other users of a shared node; `tcp` is Jupyter's own default.""",
    )

    x509_cert_dir = Unicode(
        "/etc/grid-security/certificates",
        config=True,
        help="""Where grid tools on the nodes find the trusted CA certificates: set as
        `X509_CERT_DIR` for servers of users who have an X.509 credential (from MyProxy at
        login; see `CredentialIssuingAuthenticator.myproxy_server`). Empty: not set.""",
    )

    launcher_wait = Float(
        30,
        config=True,
        help="""Seconds a launcher on the cluster waits for something to happen (the server to
        open its socket, a job to report) before answering; the hub then asks again.""",
    )

    drain_file = Unicode(
        "",
        config=True,
        help="""A JSON file of the login nodes drained for maintenance, which `hpchub drain NODE`
        edits (read at every spawn; no restart needed). A drained node takes no new server and
        no new job's submission; users with a server there are told on the home page, with the
        admin's message, to restart it elsewhere. A drained node removed from `login_nodes`
        has the servers still on it stopped at their next poll. Empty: no draining.
        Example: `/srv/jupyterhub/drained-login-nodes.json`.""",
    )

    login_start_timeout = Float(120, config=True, help="""Seconds a login-node server may take to
        start (JupyterHub's start_timeout for login-node targets; batch targets wait for the
        queue, bounded by max_queue_wait and ready_timeout instead).""")

    # ----- where users may run ---------------------------------------------------------------
    targets = List(
        Dict(),
        config=True,
        help="""The places a user may start a server, as cards on the spawn page, in order.
        Each is a dict:
        `name` (short, in the REST API's `user_options.target`), `title`, `description`,
        `kind` (`login`: on a login node over SSH; `batch`: in a batch job),
        `defaults` (job values: partition, account, qos, nodes, cores, memory_mb, gpus,
        walltime, reservation, constraint), `choose` (the fields the user may change),
        `limits` (`partitions`: allowed names; `max_walltime`, `max_nodes`, `max_cores`,
        `max_memory_mb`, `max_gpus`), optionally `groups` (Unix groups) or `accounts`
        (Slurm accounts) to offer it only to their members, `cluster` (a name from
        `clusters`; none: the default cluster), and the target's own environment:
        `setup_lines` (run after `setup_lines`, e.g. `["module load cuda/12"]`), `environment`
        (variables for its servers; not JUPYTERHUB_* or HPCHUB_*), `scheduler_args` (extra
        directives of its jobs, each a list of words, e.g. `[["--licenses=matlab:1"]]`; options
        hpchub sets, or that are job fields, are refused) and `login_nodes` (names of its
        cluster's login nodes it uses; none: all). These are checked when the hub starts.
        Users' values are checked again against
        what the scheduler allows each user. hpchub-ssh and hpchub-slurm do not read it: they
        have one implicit target each (a login node; a job with the settings below).""",
    )

    clusters = Dict(
        config=True,
        help="""Further clusters this hub serves, by name, besides the default one (which
        `login_nodes`, `scheduler` and `status_interval` describe): each a dict of `title` (on
        the spawn page), `login_nodes` (as `login_nodes`), `scheduler` (one of
        hpchub.schedulers.SCHEDULERS: `slurm`, `sge`), `scheduler_options` (the adapter's, e.g.
        `{"parallel_environment": "smp"}` for Grid Engine), `known_hosts` (the file with its
        login nodes' host keys; default: `known_hosts`), `status_interval` and
        `service_account` (the account its status queries and cluster information run as;
        default: the authenticator's `service_account`) and `issuer` (for login nodes that
        trust another SSH user CA than the main one: the name of one of the authenticator's
        `extra_issuers`, which also signs the service account's certificate). Targets name
        their cluster (`"cluster": "NAME"`); the spawn page groups them by cluster and says
        each cluster's state. Each cluster has its own SSH connections, job watcher (one status
        query per cluster per interval) and cached choices; one that is down affects only its
        own targets. Users log in once: they get a certificate from each issuer then (one SSH
        user CA may serve several clusters).""",
    )

    cluster_title = Unicode(
        "",
        config=True,
        help="""The default cluster's title on the spawn page, where `clusters` adds others
        (empty: "Cluster").""",
    )

    choices_ttl = Float(300, config=True, help="""Seconds the scheduler's partitions, the users'
        associations and the reservations are cached for the spawn page and its checks.""")

    check_against_scheduler = Bool(
        True,
        config=True,
        help="""Whether batch targets' options are checked against what the scheduler lets each
        user use (partitions from `sinfo`, the user's associations, reservations), read with
        the service account, before a job is submitted. False (hpchub-slurm's default): values
        are checked for their form and the target's limits only, and the scheduler judges them
        (its refusal reaches the user in its own words).""",
    )

    pre_spawn_checks = List(
        Union([Callable(), Unicode()]),
        ["hpchub.spawners.prespawn:slurm_usage_limits"],
        config=True,
        help="""Checks of what would keep a batch job from ever starting, each an async callable
        (or its import path, "module:name") with the contract of `hpchub.spawners.prespawn`:
        `check(context) -> [Finding, ...]`. Their findings are shown on the spawn form, next to
        the targets and accounts they concern, and a job they concern is refused (HTTP 400, the
        finding's message on the account field) instead of being submitted. Run when the
        scheduler is asked for the form's choices (`check_against_scheduler`), their queries
        cached as long as those. The default flags a Slurm account whose `GrpTRESMins` limit is
        used up. [] for none.""",
    )

    # ----- batch jobs ---------------------------------------------------------------------
    scheduler = Unicode("slurm", config=True, help="The batch scheduler: one of hpchub.schedulers.SCHEDULERS.")

    job_template = Unicode(
        DEFAULT_JOB_TEMPLATE,
        config=True,
        help="""Jinja2 template of the job script's body (the scheduler's directive lines, e.g.
        #SBATCH, come before it from the adapter). Variables: `setup_lines`, `launcher_python`,
        `launcher_config`, `launcher_source`; filter `q` quotes a value for bash, and every
        value that is not the admin's own text must go through it. The body must end by
        running the launcher as the default does.""",
    )

    # The job settings of hpchub-slurm's one target (hpchub's targets carry their own defaults).
    partition = Unicode("", config=True, help="""Partition (queue) for the job; empty for the
        scheduler's default. (hpchub-slurm's job; with hpchub, each target has its own.)""")
    account = Unicode("", config=True, help="Account to charge; empty for the user's default account (hpchub-slurm).")
    qos = Unicode("", config=True, help="Quality of service; empty for the default (hpchub-slurm).")
    walltime = Unicode("01:00:00", config=True, help="Time limit, in the scheduler's format ([D-]HH:MM:SS) (hpchub-slurm).")
    nodes = Integer(1, config=True, help="Nodes for the job; the server runs on the first, srun reaches all (hpchub-slurm).")
    cores = Integer(0, config=True, help="CPU cores per node (0: the scheduler's default) (hpchub-slurm).")
    memory_mb = Integer(0, config=True, help="Memory per node in MB (0: the scheduler's default) (hpchub-slurm).")
    gpus = Integer(0, config=True, help="GPUs per node (hpchub-slurm).")
    constraint = Unicode("", config=True, help="Node features the job needs (e.g. `haswell&ib`) (hpchub-slurm).")
    reservation = Unicode("", config=True, help="Reservation to run in (hpchub-slurm).")

    connect_to_server = Unicode(
        "via-login-node",
        config=True,
        help="""How the hub reaches the server on the compute node: `via-login-node` (a forward
        over the SSH connection to the login node the job was submitted from; works when
        compute nodes have no route from the hub) or `direct` (the hub has a route to the
        compute nodes' addresses).""",
    )

    status_interval = Float(30, config=True, help="""Seconds between the hub's status queries
        for all jobs (one query for all of them, with jitter; longer while the scheduler is slow).""")
    spawn_status_interval = Float(2, config=True, help="""Seconds between status queries while any
        spawn is in progress, so that a job that fails in the queue ends its spawn quickly.""")
    gone_grace = Float(30, config=True, help="""Seconds a job may be missing from the queue before it is
        taken as ended (and only if accounting agrees).""")
    max_queue_wait = Float(7 * 86400, config=True, help="""Seconds a job may wait in the queue before the
        spawn gives up and cancels it. The queue being slow is not a failure: the default is a week.""")
    ready_timeout = Float(300, config=True, help="""Seconds from the job's start to its server answering,
        after which the spawn fails (and the job is cancelled).""")
    stop_timeout = Float(30, config=True, help="""Seconds stop() waits for the cancelled job to
        end (leave the queue's running and completing states) before it returns anyway.""")
    walltime_warning_minutes = Integer(10, config=True, help="""Minutes before the job's time limit at
        which JupyterLab tells the user to save their work (hpchub's JupyterLab extension).""")

    # ----- JupyterHub's settings, with hpchub's defaults -------------------------------------
    @default("cmd")
    def _default_cmd(self):
        return ["jupyterhub-singleuser"]

    @default("env_keep")
    def _default_env_keep(self):
        # The node's own login environment (PATH, LANG, ...) comes from the SSH session or
        # the job; nothing of the hub's environment is passed on.
        return []

    @default("start_timeout")
    def _default_start_timeout(self):
        # JupyterHub's own limit on start() must not cut a queued job short: the queue wait is
        # bounded by max_queue_wait and the start-up by ready_timeout instead (a login-node
        # target sets login_start_timeout when it is chosen).
        return int(self.max_queue_wait + self.ready_timeout + 600)
