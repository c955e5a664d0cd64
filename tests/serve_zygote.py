"""A server factory for the browser tests: one process per test worker imports the product once, then
forks a real `careloop serve` for each test.

Starting the server from scratch costs every browser test an interpreter start, the import of the whole
product and the safety net's model (several seconds of CPU, more than many of the tests themselves), and
about a hundred tests start one. A forked child skips all of that and then runs exactly what
`careloop serve` runs, from `backend.app.cli.main`, with its test's environment: its own database, its own
settings (every cache is emptied before the command starts, so nothing read in this process leaks into
it), its own port. tests/backend/app/test_serve.py and test_cli.py still start the command the ordinary
way, so that path stays tested on its own.

Protocol, one JSON line each way on stdin/stdout: the parent sends {"argv", "env", "cwd", "log"}; this
process forks and answers {"pid"}. The child writes its output to `log`; when it ends, this process reaps
it and writes its exit status to `log` + ".status", so the test can poll and wait for it like a Popen.
This process never starts a thread (a fork copies only the forking thread, and a lock another thread
held would stay locked in the child forever).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from pathlib import Path
from types import FrameType
from typing import Any

_status_files: dict[int, str] = {}  # a running child's status file
_ended_early: dict[int, int] = {}  # a child reaped before its status file was recorded


def _record(pid: int, code: int) -> None:
    path = _status_files.pop(pid, None)
    if path is None:
        _ended_early[pid] = code
    else:
        Path(path).write_text(str(code))


def _reap(_signum: int, _frame: FrameType | None) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _record(pid, os.waitstatus_to_exitcode(status))


def _child(request: dict[str, Any]) -> None:
    """Become the test's server; never returns."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setpgid(0, 0)  # its own group: the test ends the server and anything it started together
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        sys.stdin = open(0, closefd=False)  # noqa: SIM115  (the process's own stdin, for its whole life)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])

        from backend.app import cli
        from tests.caches import reset_caches

        reset_caches()
        sys.argv = ["careloop", *request["argv"]]
        code = cli.main(request["argv"])
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main() -> None:
    # Everything a server start would import, imported once here. The safety net's model is loaded too
    # (it starts no thread), and the unknown-user password hash made, so each child starts with both.
    import uvicorn  # noqa: F401

    import backend.app.cli
    import backend.app.http_server
    import backend.app.periodic
    import backend.web.app  # noqa: F401
    import tests.caches  # noqa: F401
    from backend.security import auth
    from nlu.safety_net import default_net

    default_net()
    auth.warm()
    signal.signal(signal.SIGCHLD, _reap)
    print(json.dumps({"ready": os.getpid()}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)
        _status_files[pid] = request["log"] + ".status"
        if pid in _ended_early:  # it ended (and was reaped) before it was recorded
            _record(pid, _ended_early.pop(pid))
        print(json.dumps({"pid": pid}), flush=True)


if __name__ == "__main__":
    main()
