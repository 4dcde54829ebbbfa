"""The `hpchub` command."""

from __future__ import annotations

import argparse
import json
import sys


def _site(args: argparse.Namespace) -> int:
    # Imported here: the site module is for the demo machine (root), not for the hub's runtime.
    from .site.layout import SiteNameError
    from .site.manager import Site, describe, load_layout
    from .site.system import SiteError

    try:
        if args.action == "up":
            Site.open(args.name, args.isolated).up(with_hub=args.hub)
            return 0
        layout = load_layout(args.name)
        if layout is None:
            print(f"no site named {args.name!r} here", file=sys.stderr)
            return 0 if args.action == "down" else 3
        site = Site(layout)
        if args.action == "down":
            site.down(purge=args.purge)
            return 0
        report = site.status()
        print(json.dumps(report, indent=1) if args.json else describe(report))
        return 0 if report["up"] else 3
    except (SiteError, SiteNameError) as exc:
        print(f"hpchub site {args.action}: {exc}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hpchub", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    site = commands.add_parser("site", help="bring a demo HPC site up or down on this machine (root)")
    site.add_argument("action", choices=["up", "down", "status"])
    site.add_argument("--name", default="demo", help="site instance name (default: demo)")
    mode = site.add_mutually_exclusive_group()
    mode.add_argument("--isolated", dest="isolated", action="store_true", default=None,
                      help="hub side, login nodes and compute nodes in separate network namespaces")
    mode.add_argument("--loopback", dest="isolated", action="store_false",
                      help="everything on 127.0.0.1 (the default for a new instance)")
    site.add_argument("--no-hub", dest="hub", action="store_false", help="up: do not start the demo hub")
    site.add_argument("--purge", action="store_true", help="down: also delete the instance's state")
    site.add_argument("--json", action="store_true", help="status: print JSON")
    site.set_defaults(func=_site)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
