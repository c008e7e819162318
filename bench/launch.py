"""Run a command; write its own peak RSS (KiB) and exit code to a file.

    python -S bench/launch.py RESULT_FILE COMMAND [ARGS...]

On Linux a process inherits its parent's peak RSS: the kernel folds the old
memory's high-water mark in at exec, and a forked child starts as a copy of
its parent. So the benchmark (which holds pandas and large lists) cannot read
a child's own peak from ``wait4``; this small process (no site, few MB) forks
the command instead, and its ``ru_maxrss`` is the command's own.
"""

from __future__ import annotations

import os
import sys


def main() -> int:
    result, command = sys.argv[1], sys.argv[2:]
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(command[0], command)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    with open(result, "w", encoding="ascii") as out:
        out.write(f"{usage.ru_maxrss} {code}\n")
    return code if 0 <= code < 256 else 1


if __name__ == "__main__":
    sys.exit(main())
