"""A forking test server for scripts/mutation.sh: import torch once, test every mutant.

mutmut runs its --runner once per mutant. Started cold, each run spends most
of its time importing torch, numpy and pytest (10 s or more on a loaded
machine), far longer than the targeted tests themselves. Here a server
imports them once; for every mutant the client asks, and the server forks a
child that imports sparsescale afresh (it is never imported in the parent, so
the child reads the mutated source from disk) and runs pytest there. The
child's exit status is pytest's, except that a collection error (a mutant
that breaks its module's import) and a hang count as failures: mutmut 2
counts a mutant killed only on exit status 1 (see _for_mutmut).

    python scripts/mutation_runner.py serve SOCKET [PYTEST ARGS...]   (cwd: the scratch tree)
    python -S scripts/mutation_runner.py ask SOCKET
        (the runner: exit status = pytest's)

No bytecode is written (see mutation.sh). A child that runs longer than
CHILD_LIMIT seconds is killed (mutmut's own timeout kills only the client).
"""

from __future__ import annotations

import os
import select
import signal
import socket
import sys

CHILD_LIMIT = 600


def serve(path: str, args: list[str]) -> None:
    sys.dont_write_bytecode = True
    import numpy  # noqa: F401  the expensive imports, paid once
    import pytest

    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    if os.path.exists(path):
        os.unlink(path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    while True:
        conn, _ = server.accept()
        with conn:
            if conn.recv(16) == b"stop":
                break
            pid = os.fork()
            if pid == 0:
                server.close()
                conn.close()
                signal.alarm(CHILD_LIMIT)
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 1)
                os.dup2(devnull, 2)
                try:
                    code = int(pytest.main(list(args)))
                except BaseException:
                    code = 3
                os._exit(code)
            code = _wait(pid, conn)
            try:
                conn.sendall(str(_for_mutmut(code)).encode())
            except OSError:  # the client was killed (mutmut's timeout): nobody to tell
                pass
    server.close()
    os.unlink(path)


def _for_mutmut(code: int) -> int:
    """mutmut 2 counts a mutant killed only when the tests exit with status 1
    (failures). A mutant that breaks the import of its module makes pytest stop
    at collection (status 2), and one that hangs is killed here: both are
    caught by the tests, so both become 1. 0 (all passed) and 5 (no tests
    collected: a wrong test selection, not a killed mutant) stay."""
    return code if code in (0, 5) else 1


def _wait(pid: int, conn: socket.socket) -> int:
    """The child's exit status; the child is killed if the client goes away
    (mutmut killed it at its timeout), so that the next mutant need not wait."""
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        ready, _, _ = select.select([conn], [], [], 0.05)
        if ready and not conn.recv(16):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return -signal.SIGKILL


def ask(path: str, what: bytes = b"test") -> int:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(path)
    client.sendall(what)
    reply = b""
    while chunk := client.recv(16):
        reply += chunk
    return int(reply or b"0")


if __name__ == "__main__":
    mode, sock = sys.argv[1], sys.argv[2]
    if mode == "serve":
        serve(sock, sys.argv[3:])
    elif mode == "stop":
        ask(sock, b"stop")
    else:
        sys.exit(ask(sock))
