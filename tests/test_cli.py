"""w4a16_only_test's command line: usage errors exit 2 with one line, on any machine."""

import subprocess

import pytest

from conftest import has_gpu
from w4a16_gemm import _cli, list_configs


def run(*args):
    return subprocess.run([_cli.executable_path(), *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "args,match",
    [
        (["3", "72", "192"], "group_size=128 is not supported for k=192"),
        (["1", "12", "64", "--group-size", "64"], "n a positive multiple of 8"),
        (["1", "16", "128", "--group-size", "32"], "group_size=32"),
        (["1", "16", "100"], "multiple of 64"),
        (["1", "2"], "expected M N K"),
        (["a", "16", "64"], "M must be an integer"),
        (["0", "16", "64"], "M must be in"),
        (["--iters"], "--iters needs a value"),
        (["--bogus"], "unknown option"),
        (["--config", "no_such_kernel"], "not in this build"),
        (["--config", "999"], "not in this build"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args, match):
    r = run(*args)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("w4a16_only_test: ") and match in lines[0], r.stderr


def test_help_and_list_configs():
    r = run("--help")
    assert r.returncode == 0 and "usage: w4a16_only_test" in r.stdout
    r = run("--list-configs")
    assert r.returncode == 0
    assert [line.split()[1] for line in r.stdout.strip().splitlines()] == [c["name"] for c in list_configs()]


@pytest.mark.skipif(has_gpu(), reason="checks the behaviour of a machine without an SM90 GPU")
def test_no_gpu_exits_3():
    r = run("3", "72", "192", "--group-size", "64")
    assert r.returncode == 3 and "no SM90 GPU" in r.stderr


def test_console_script_is_installed():
    import shutil

    assert shutil.which("w4a16_only_test") is not None
