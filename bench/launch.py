"""Run a command; write its own peak RSS (KiB), exit code, wall and CPU seconds to a file.

    python -S bench/launch.py RESULT_FILE COMMAND [ARGS...]

On Linux a process inherits its parent's peak RSS: the kernel folds the old
memory's high-water mark in at exec, and a forked child starts as a copy of
its parent. So the benchmark (which holds pandas and large lists) cannot read
a child's own peak from ``wait4``; this small process (no site, few MB) forks
the command instead, and its ``ru_maxrss`` is the command's own.

The wall time runs from the fork to the command's exit, so it leaves out this
launcher's own start-up; the CPU time is the command's and its reaped
children's (worker processes included), user plus system.
"""

from __future__ import annotations

import os
import sys
import time


def main() -> int:
    result, command = sys.argv[1], sys.argv[2:]
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(command[0], command)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    with open(result, "w", encoding="ascii") as out:
        out.write(f"{usage.ru_maxrss} {code} {seconds:.6f} {cpu:.6f}\n")
    return code if 0 <= code < 256 else 1


if __name__ == "__main__":
    sys.exit(main())
