"""python -m w4a16_gemm {info,configs,bench}: what this installation and GPU offer, and how fast it is."""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m w4a16_gemm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="library version and GPU support")
    sub.add_parser("configs", help="kernel configs compiled into this build")
    sub.add_parser("bench", help="benchmark against cuBLAS fp16 (python -m w4a16_gemm bench --help)", add_help=False)
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:
        from .bench import main as bench_main

        return bench_main(argv[1:])
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
