"""python -m w4a16_gemm {info,configs}: what this installation and GPU offer."""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m w4a16_gemm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="library version and GPU support")
    sub.add_parser("configs", help="kernel configs compiled into this build")
    args = parser.parse_args(argv)

    import w4a16_gemm as w4

    if args.command == "info":
        print(json.dumps({"version": w4.__version__, **w4.device_info()}, indent=2))
    elif args.command == "configs":
        for c in w4.list_configs():
            print(f"{c['index']:3d}  {c['name']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
