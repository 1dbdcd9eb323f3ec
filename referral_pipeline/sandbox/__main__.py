"""Command line: ``python -m referral_pipeline.sandbox serve|generate ...`` (contracts §3)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .core.config import SYSTEMS

SCALES = ("tiny", "small", "medium", "large")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m referral_pipeline.sandbox",
                                     description="Local simulators of Salesforce, commercetools, BigCommerce, Friendbuy and Yotpo.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve_p = sub.add_parser("serve", help="serve the five simulators on port-base+1..5")
    src = serve_p.add_mutually_exclusive_group()
    src.add_argument("--data", type=Path, help="fixture directory (contracts §3.1)")
    src.add_argument("--scale", choices=SCALES, default="small", help="generated world size (default small)")
    serve_p.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    serve_p.add_argument("--state-dir", type=Path, help="persist state here on shutdown and reload it on start")
    serve_p.add_argument("--host", default="127.0.0.1")
    serve_p.add_argument("--port-base", type=int, default=8700)
    serve_p.add_argument("--faults", help="fault spec: YAML/JSON file, inline JSON, or 'p_429=0.1;yotpo:p_slow=0.2'")
    serve_p.add_argument("--env-file", type=Path, default=Path(".sandbox.env"),
                         help="where to write the environment variables (default .sandbox.env)")
    serve_p.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset of simulators")

    gen_p = sub.add_parser("generate", help="write a generated world as a fixture directory")
    gen_p.add_argument("--scale", choices=SCALES, default="small")
    gen_p.add_argument("--seed", type=int, default=1)
    gen_p.add_argument("--out", type=Path, required=True)

    args = parser.parse_args(argv)
    if args.command == "serve":
        from .server import ServeOptions, serve

        systems = tuple(s.strip() for s in args.systems.split(",") if s.strip())
        bad = set(systems) - set(SYSTEMS)
        if bad:
            parser.error(f"unknown systems {sorted(bad)}; choose from {', '.join(SYSTEMS)}")
        return serve(ServeOptions(data=args.data, scale=args.scale, seed=args.seed, state_dir=args.state_dir,
                                  host=args.host, port_base=args.port_base, faults=args.faults,
                                  env_file=args.env_file, systems=systems))
    if args.command == "generate":
        from .generator import generate_world

        generate_world(args.scale, args.seed, args.out)
        print(f"generated {args.scale} world (seed {args.seed}) in {args.out}")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
