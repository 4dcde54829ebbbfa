"""Run every benchmark and print its report (results also saved under benchmarks/results/)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from . import batch_spawn, site_bringup, ssh_spawn, ssh_throughput, status_queries

BENCHMARKS = {"site-bringup": site_bringup, "ssh-spawn": ssh_spawn, "ssh-throughput": ssh_throughput,
              "batch-spawn": batch_spawn, "status-queries": status_queries}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--runs", type=int, help="repetitions of each measurement (default: each benchmark's own)")
    parser.add_argument("names", nargs="*", default=list(BENCHMARKS), help="benchmarks to run")
    args = parser.parse_args()
    out_dir = Path(__file__).parent / "results"
    out_dir.mkdir(exist_ok=True)
    for name in args.names:
        module = BENCHMARKS[name]
        result = module.run(args.runs) if args.runs else module.run()
        print(module.report(result), flush=True)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        (out_dir / f"{name}-{stamp}.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
