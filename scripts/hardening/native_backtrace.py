"""Native backtraces for crashes in the hardening runs.

    python3 scripts/hardening/native_backtrace.py build [OUT.so]   # compile the SIGSEGV/SIGABRT/SIGBUS handler
    LD_PRELOAD=OUT.so python3 ...                                   # a crash now prints the native frames
    python3 scripts/hardening/native_backtrace.py symbolize LOG     # add function names (addr2line) to them

The handler is installed before Python starts; Python's faulthandler (pytest enables it) then chains to it
after printing the Python frames, so a crash log has both. Frames inside our libraries print as
'lib.so(+0xOFFSET)'; `symbolize` resolves those with addr2line (build with SKBUILD_INSTALL_STRIP=false so
that the installed libraries keep their symbol tables).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile

HANDLER_C = r"""
#define _GNU_SOURCE
#include <execinfo.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static void on_fatal(int sig, siginfo_t* info, void* ctx) {
  (void)ctx;
  void* frames[96];
  char head[160];
  int len = 0;
  const char* name = sig == SIGSEGV ? "SIGSEGV" : sig == SIGBUS ? "SIGBUS" : sig == SIGABRT ? "SIGABRT" : "signal";
  len = snprintf(head, sizeof head, "\n*** native backtrace: %s (address %p, thread %d) ***\n", name,
                 info ? info->si_addr : (void*)0, (int)gettid());
  write(2, head, len);
  int n = backtrace(frames, 96);
  backtrace_symbols_fd(frames, n, 2);
  write(2, "*** end of native backtrace ***\n", 32);
  signal(sig, SIG_DFL);
  raise(sig);
}

__attribute__((constructor)) static void install(void) {
  static char alt[1 << 16];
  stack_t ss;
  ss.ss_sp = alt;
  ss.ss_size = sizeof alt;
  ss.ss_flags = 0;
  sigaltstack(&ss, 0);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_fatal;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, 0);
  sigaction(SIGBUS, &sa, 0);
  sigaction(SIGABRT, &sa, 0);
}
"""


def build(out: str) -> int:
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        print("native_backtrace: no C compiler found", file=sys.stderr)
        return 1
    with tempfile.NamedTemporaryFile("w", suffix=".c", delete=False) as f:
        f.write(HANDLER_C)
        src = f.name
    r = subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", out, src], capture_output=True, text=True)
    os.unlink(src)
    if r.returncode:
        print(r.stderr, file=sys.stderr)
        return r.returncode
    print(out)
    return 0


FRAME = re.compile(r"^(?P<lib>/[^()\s]+)\((?P<sym>[^)+]*)\+(?P<off>0x[0-9a-f]+)\)\s*\[(?P<addr>0x[0-9a-f]+)\]")


def symbolize(log: str) -> int:
    addr2line = shutil.which("addr2line")
    with open(log, errors="replace") as f:
        lines = f.read().splitlines()
    inside = False
    for line in lines:
        if "*** native backtrace" in line:
            inside = True
            print(line)
            continue
        if "*** end of native backtrace" in line:
            inside = False
            print(line)
            continue
        if not inside:
            continue
        m = FRAME.match(line.strip())
        if not m or m.group("sym") or not addr2line:
            print("   ", line.strip())
            continue
        r = subprocess.run([addr2line, "-f", "-C", "-e", m.group("lib"), m.group("off")], capture_output=True, text=True)
        func = r.stdout.splitlines()[0] if r.returncode == 0 and r.stdout else "?"
        print(f"    {os.path.basename(m.group('lib'))}+{m.group('off')}  {func[:240]}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "build":
        sys.exit(build(sys.argv[2] if len(sys.argv) > 2 else "/tmp/w4a16_native_backtrace.so"))
    if len(sys.argv) == 3 and sys.argv[1] == "symbolize":
        sys.exit(symbolize(sys.argv[2]))
    print(__doc__)
    sys.exit(2)
