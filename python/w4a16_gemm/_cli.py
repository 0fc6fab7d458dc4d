"""Console entry point `w4a16_only_test`: runs the C++ test executable shipped inside the package."""

from __future__ import annotations

import os
import sys


def executable_path() -> str:
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin", "w4a16_only_test")


def main() -> None:
    exe = executable_path()
    if not os.access(exe, os.X_OK):
        sys.stderr.write(f"w4a16_only_test: executable missing from the installation ({exe})\n")
        sys.exit(4)
    os.execv(exe, [exe, *sys.argv[1:]])


if __name__ == "__main__":
    main()
