"""The `hpchub` command."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .containers import RUNTIMES


def _site(args: argparse.Namespace) -> int:
    # Imported here: the site module is for the demo machine (root), not for the hub's runtime.
    from .site.layout import SiteNameError
    from .site.manager import Site, describe, load_layout
    from .site.system import SiteError

    try:
        if args.action == "up":
            Site.open(args.name, args.isolated, clusters=args.clusters).up(with_hub=args.hub, login=args.login)
            return 0
        layout = load_layout(args.name)
        if layout is None:
            print(f"no site named {args.name!r} here", file=sys.stderr)
            return 0 if args.action == "down" else 3
        site = Site(layout)
        if args.action == "down":
            site.down(purge=args.purge)
            return 0
        if args.action == "code":
            return _print_code(site, args.user)
        if args.action == "enrol":
            return _enrol(args.user)
        report = site.status()
        print(json.dumps(report, indent=1) if args.json else describe(report))
        return 0 if report["up"] else 3
    except (SiteError, SiteNameError) as exc:
        print(f"hpchub site {args.action}: {exc}", file=sys.stderr)
        return 1


def _print_code(site, user: str | None) -> int:
    """The one-time code a demo user's authenticator app would show now, for the login the
    site's hub asks for (single sign-on: the identity provider's; passwords: the PAM stack's)."""
    from .site import otp
    from .site.identity import totp
    from .site.layout import DEMO_USERS

    if user not in DEMO_USERS:
        print(f"hpchub site code: give --user, one of {', '.join(DEMO_USERS)}", file=sys.stderr)
        return 2
    if site.layout.single_sign_on_config.exists():
        secret = site.identity.totp_secret(user) if site.identity.users_file.exists() else None
    else:
        secret = otp.secret_of(user)
    if not secret:
        print(f"hpchub site code: {user} has not enrolled a one-time code (`hpchub site enrol --user {user}`)",
              file=sys.stderr)
        return 1
    print(totp(secret))
    return 0


def _enrol(user: str | None) -> int:
    """Enrol a demo user in one-time codes at the password login (the PAM stack)."""
    from .site import otp
    from .site.layout import DEMO_USERS

    if user not in DEMO_USERS:
        print(f"hpchub site enrol: give --user, one of {', '.join(DEMO_USERS)}", file=sys.stderr)
        return 2
    secret = otp.enrol(user)
    print(f"{user} now logs in with the password and a one-time code. Add this key to an authenticator app:\n"
          f"  {secret}\n  otpauth://totp/hpchub:{user}?secret={secret}&issuer=hpchub\n"
          f"(or read the current code with `hpchub site code --user {user}`)")
    return 0


def _fill_from_site(command: str, args: argparse.Namespace, defaults: dict) -> bool:
    """With --site, give the arguments not given the demo site's values (defaults: argument name
    -> function of the site's layout); False, said, if there is no such site."""
    if not args.site:
        return True
    from .site.manager import load_layout

    layout = load_layout(args.site)
    if layout is None:
        print(f"{command}: no site named {args.site!r} here", file=sys.stderr)
        return False
    for name, value_of in defaults.items():
        if not getattr(args, name):
            setattr(args, name, str(value_of(layout)))
    return True


def _ca_revoke(args: argparse.Namespace) -> int:
    from .credentials import CredentialError
    from .credentials.krl import revoke, serials_of_user

    if not _fill_from_site("hpchub ca revoke", args, {"krl": lambda site: site.revoked_keys,
                                                      "ca_pub": lambda site: site.ssh_dir / "user_ca.pub",
                                                      "ledger": lambda site: site.hub_ca_ledger}):
        return 1
    krl, ca_pub, ledger = args.krl, args.ca_pub, args.ledger
    if not (krl and ca_pub):
        print("hpchub ca revoke: give --site, or --krl and --ca-pub", file=sys.stderr)
        return 2
    if args.user:
        if not ledger:
            print("hpchub ca revoke: --user needs the CA's ledger (--ledger or --site)", file=sys.stderr)
            return 2
        serials = serials_of_user(ledger, args.user)
        if not serials:
            print(f"{args.user} has no unexpired certificate in {ledger}: nothing to revoke")
            return 0
    else:
        serials = args.serial
    try:
        count = revoke(krl, ca_pub, serials=serials)
    except CredentialError as exc:
        print(f"hpchub ca revoke: {exc.user_message}: {exc.log_detail}", file=sys.stderr)
        return 1
    print(f"revoked {count} certificate(s) in {krl}: serials {', '.join(map(str, serials))}")
    return 0


def _ca_serve(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from traitlets.config.loader import PyFileConfigLoader

    from .credentials import CredentialError
    from .credentials.service import CAService

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    path = Path(args.config).resolve()
    try:
        config = PyFileConfigLoader(path.name, str(path.parent)).load_config()
        service = CAService(config=config)
    except CredentialError as exc:
        print(f"hpchub ca serve: {exc.user_message}", file=sys.stderr)
        return 1
    except (OSError, SyntaxError) as exc:
        print(f"hpchub ca serve: cannot load {path}: {exc}", file=sys.stderr)
        return 1
    try:
        asyncio.run(service.serve())
    except KeyboardInterrupt:
        pass
    return 0


def _tunnels_serve(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from .limits import raise_open_files_limit
    from .remote.tunnels import TunnelService

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    soft, _ = raise_open_files_limit()
    logging.getLogger("hpchub.tunnels").info("open files limit: %s", soft)
    try:
        asyncio.run(TunnelService(args.socket, args.known_hosts).serve())
    except KeyboardInterrupt:
        pass
    return 0


def _check(args: argparse.Namespace) -> int:
    import asyncio

    from .check import FAIL, check_site, load_config, render

    print(f"hpchub check: {args.config}", flush=True)
    try:
        config = load_config(args.config)
    except Exception as exc:  # a config file is arbitrary Python: any error in it is the admin's to see
        print(f"hpchub check: cannot load {args.config}: {exc!r}", file=sys.stderr)
        return 2
    results = asyncio.run(check_site(config, args.account, args.job_timeout))
    print(render(results))
    return 1 if any(result.status == FAIL for result in results) else 0


def _announce(args: argparse.Namespace) -> int:
    from .announcement import read_announcement, write_announcement

    if not _fill_from_site("hpchub announce", args, {"file": lambda site: site.announcement_file}):
        return 1
    if not args.file:
        print("hpchub announce: give --file (the hub's HPCHub.announcement_file) or --site", file=sys.stderr)
        return 2
    try:
        if args.clear or args.text is not None:
            write_announcement(args.file, "" if args.clear else args.text)
        current = read_announcement(args.file)
    except OSError as exc:
        print(f"hpchub announce: {exc}", file=sys.stderr)
        return 1
    print(f"announcement: {current}" if current else "no announcement")
    return 0


def _drain(args: argparse.Namespace) -> int:
    import urllib.request

    from .drain import drain, read_drained, servers_on, undrain

    if not _fill_from_site("hpchub drain", args, {"file": lambda site: site.drain_file,
                                                  "hub_url": lambda site: site.hub_url,
                                                  "token_file": lambda site: site.hub_dir / "admin-token"}):
        return 1
    drain_file, hub_url, token_file = args.file, args.hub_url, args.token_file
    if not drain_file:
        print("hpchub drain: give --file (the hub's HPCSpawner.drain_file) or --site", file=sys.stderr)
        return 2
    try:
        if args.node and args.undo:
            drained = undrain(drain_file, args.node)
            print(f"{args.node} takes new servers again")
        elif args.node:
            drained = drain(drain_file, args.node, args.message)
            print(f"{args.node} is drained: no new servers there; its users are asked to move")
        else:
            drained = read_drained(drain_file)
    except (OSError, ValueError) as exc:
        print(f"hpchub drain: {exc}", file=sys.stderr)
        return 1
    print("drained: " + (", ".join(sorted(drained)) or "none"))
    if hub_url and token_file and (args.node or drained):
        # The servers still on the node(s), from the hub's REST API (with their saved state).
        request = urllib.request.Request(f"{hub_url.rstrip('/')}/hub/api/users?state=active",
                                         headers={"Authorization": f"token {Path(token_file).read_text().strip()}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                users = json.load(answer)
        except OSError as exc:
            print(f"hpchub drain: the hub cannot be asked for its servers ({exc})", file=sys.stderr)
            return 1
        for node in [args.node] if args.node and not args.undo else sorted(drained):
            found = servers_on(users, node)
            print(f"servers on {node}: " + (", ".join(f"{u}/{n or 'default'} ({k})" for u, n, k in found) or "none"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hpchub", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    site = commands.add_parser("site", help="bring a demo HPC site up or down on this machine (root)")
    site.add_argument("action", choices=["up", "down", "status", "enrol", "code"],
                      help="enrol: give a demo user a one-time code at the password login; code: print the "
                           "code a demo user's authenticator app would show now")
    site.add_argument("--name", default="demo", help="site instance name (default: demo)")
    mode = site.add_mutually_exclusive_group()
    mode.add_argument("--isolated", dest="isolated", action="store_true", default=None,
                      help="hub side, login nodes and compute nodes in separate network namespaces")
    mode.add_argument("--loopback", dest="isolated", action="store_false",
                      help="everything on 127.0.0.1 (the default for a new instance)")
    site.add_argument("--no-hub", dest="hub", action="store_false", help="up: do not start the demo hub")
    site.add_argument("--purge", action="store_true", help="down: also delete the instance's state")
    site.add_argument("--login", choices=["password", "oidc"], default=None,
                      help="up: how users log in: password (PAM; the hub signs certificates), or oidc (single "
                           "sign-on at the site's OpenID Connect provider with a one-time code; the site's CA "
                           "service signs). Default: as the instance was (password for a new one)")
    site.add_argument("--clusters", choices=["slurm,sge", "slurm"], default=None,
                      help="up: the clusters of the site: slurm,sge (a Slurm cluster and a Grid Engine cluster, "
                           "the default for a new instance) or slurm alone. Default: as the instance was")
    site.add_argument("--user", help="enrol, code: the demo user")
    site.add_argument("--json", action="store_true", help="status: print JSON")
    site.set_defaults(func=_site)

    ca = commands.add_parser("ca", help="the site's SSH user CA")
    ca_commands = ca.add_subparsers(dest="ca_command", required=True)
    revoke = ca_commands.add_parser(
        "revoke", help="revoke certificates: login nodes refuse them from then on (sshd RevokedKeys)")
    who = revoke.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="every unexpired certificate of this cluster user (from the ledger)")
    who.add_argument("--serial", type=int, action="append", help="a certificate's serial (repeatable)")
    revoke.add_argument("--site", help="a demo site instance: take its KRL, CA public key and ledger")
    revoke.add_argument("--krl", help="the key revocation list that sshd's RevokedKeys names")
    revoke.add_argument("--ca-pub", help="the CA's public key")
    revoke.add_argument("--ledger", help="the CA's ledger of issued certificates")
    revoke.set_defaults(func=_ca_revoke)
    serve = ca_commands.add_parser("serve", help="run the CA service (sshproxy-compatible), as root or in group shadow")
    serve.add_argument("-f", "--config", required=True, help="the service's traitlets config file (c.CAService...)")
    serve.set_defaults(func=_ca_serve)

    tunnels = commands.add_parser("tunnels", help="the hub's tunnel service")
    tunnel_commands = tunnels.add_subparsers(dest="tunnels_command", required=True)
    tserve = tunnel_commands.add_parser("serve", help="hold SSH tunnels to users' servers outside the hub process")
    tserve.add_argument("--socket", required=True, help="Unix socket to listen on (made 0600)")
    tserve.add_argument("--known-hosts", required=True, help="known_hosts file of the cluster's hosts")
    tserve.set_defaults(func=_tunnels_serve)

    check = commands.add_parser(
        "check", help="admins: test a configured site from the hub host (run as the hub's user, with its environment)")
    check.add_argument("-f", "--config", required=True, help="the hub's jupyterhub_config.py")
    check.add_argument("--account", help="the cluster account to test with (default: the hub's service account)")
    check.add_argument("--job-timeout", type=float, default=120,
                       help="seconds to wait for the probe job to run on a compute node (default: 120)")
    check.set_defaults(func=_check)

    drain_cmd = commands.add_parser(
        "drain", help="admins: no new servers on a login node; its users are asked to move (and its servers listed)")
    drain_cmd.add_argument("node", nargs="?", help="the login node's name (none: list the drained nodes)")
    drain_cmd.add_argument("--undo", action="store_true", help="the node takes new servers again")
    drain_cmd.add_argument("--message", default="", help="what its users read, e.g. 'kernel update on Tuesday'")
    drain_cmd.add_argument("--file", help="the hub's HPCSpawner.drain_file")
    drain_cmd.add_argument("--hub-url", help="the hub, to list the servers on the node (e.g. https://hub:443)")
    drain_cmd.add_argument("--token-file", help="an admin token for the hub's API (scopes: admin:users, "
                                                "admin:server_state)")
    drain_cmd.add_argument("--site", help="a demo site instance: its drain file, hub and admin token")
    drain_cmd.set_defaults(func=_drain)

    announce = commands.add_parser(
        "announce", help="admins: a notice at the top of every page of the hub (maintenance, an outage)")
    announce.add_argument("text", nargs="?", help="the notice, plain text (none: show the current one)")
    announce.add_argument("--clear", action="store_true", help="remove the notice")
    announce.add_argument("--file", help="the hub's HPCHub.announcement_file")
    announce.add_argument("--site", help="a demo site instance: its announcement file")
    announce.set_defaults(func=_announce)

    kernel = commands.add_parser("kernel", help="your own environments as Jupyter kernels (run on the cluster)")
    kernel_commands = kernel.add_subparsers(dest="kernel_action", required=True)
    kadd = kernel_commands.add_parser("add", help="register a venv or conda environment (it needs ipykernel)")
    kadd.add_argument("env", help="the environment's directory (with bin/python); with --container, the kernel's name")
    kadd.add_argument("--name", help="the kernel's name (default: the directory's name)")
    kadd.add_argument("--display-name", help='what JupyterLab shows (default: "Python (DIR)")')
    kadd.add_argument("--wrapper", help='a command the kernel runs inside, e.g. "apptainer exec image.sif"')
    kadd.add_argument("--container", metavar="IMAGE",
                      help="run the kernel inside this container image (it needs ipykernel), e.g. /images/pytorch")
    kadd.add_argument("--runtime", default="charliecloud", choices=sorted(RUNTIMES),
                      help="the container runtime (default: charliecloud)")
    kadd.add_argument("--python", default="python3",
                      help="with --container: the image's Python (default: python3 on the image's PATH)")
    batch = kadd.add_mutually_exclusive_group()
    batch.add_argument("--slurm", metavar="ARGS",
                       help='run the kernel in a Slurm job with these sbatch arguments, e.g. "--partition batch '
                            '--time 1:00:00"; JupyterLab stays where it is, only the kernel waits in the queue')
    batch.add_argument("--sge", metavar="ARGS", help='likewise in a Grid Engine job, with qsub arguments')
    kadd.add_argument("--site", action="store_true",
                      help="admins: register it in this Jupyter environment, for all its users")
    kernel_commands.add_parser("list", help="the kernels you added")
    kremove = kernel_commands.add_parser("remove", help="remove a kernel you added")
    kremove.add_argument("name")
    kernel.set_defaults(func=_kernel)
    return parser


def _kernel(args: argparse.Namespace) -> int:
    from .kernels import main as kernel_main

    return kernel_main(args)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
