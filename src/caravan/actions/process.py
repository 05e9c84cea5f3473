"""Running a user's command: the one way caravan starts a child process for an action.

``run_process`` starts the command in a process group of its own, streams its merged stdout and
stderr line by line to a callback while it runs (live logs), keeps the last 64 KB as a tail for
failure messages, and makes sure nothing it started outlives it: when the command ends, times
out, or the awaiting task is cancelled (an abandoned action), the whole group gets SIGTERM, then
SIGKILL after a grace period. ``scrubbed_environment`` builds the child's environment from an
allow-list, so caravan's own secrets never leak into user commands.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import ctypes
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULT_ALLOW: tuple[str, ...] = (
    "PATH",  # find the user's tools
    "LANG",  # locale: tools print readable text instead of ASCII fallbacks
    "LC_ALL",
    "LC_CTYPE",
    "TZ",  # the time zone the user expects in timestamps
    "TMPDIR",  # where the machine wants temporary files
    "SSL_CERT_FILE",  # custom CA bundles, e.g. behind a corporate proxy
    "SSL_CERT_DIR",
)
"""Variables copied from caravan's own environment into a child's.

Everything else is dropped on purpose: AWS_* credentials, tokens, CARAVAN_* settings, and HOME
(a command gets a private HOME so it cannot read or write the real user's dotfiles and caches).
"""

TAIL_BYTES = 64 * 1024
MAX_LINE_CHARS = 64 * 1024  # a longer line is passed on in pieces, so memory stays bounded
TERM_GRACE_SECONDS = 2.0  # between SIGTERM and SIGKILL of the group
DRAIN_SECONDS = 1.0  # how long to wait for the output pipe to close after the group is gone
_READ_CHUNK = 64 * 1024
_POLL_SECONDS = 0.02
_PR_SET_PDEATHSIG = 1

OutputCallback = Callable[[str], None]


@dataclass(frozen=True)
class ProcessResult:
    """How a command ended. ``exit_code`` is negative (-signal) when a signal ended it."""

    exit_code: int
    output_tail: str
    timed_out: bool


def scrubbed_environment(
    extra: Mapping[str, str],
    *,
    allow: Iterable[str] = DEFAULT_ALLOW,
    home: Path | None = None,
) -> dict[str, str]:
    """The allowed part of caravan's environment, a private ``HOME``, then ``extra`` on top.

    ``home`` (typically ``<workdir>/.home``) is created on demand. Without it, HOME is unset
    unless ``extra`` sets it; it is never the real user's home.
    """
    env = {name: os.environ[name] for name in allow if name in os.environ}
    env.setdefault("PATH", os.defpath)
    if home is not None:
        home.mkdir(parents=True, exist_ok=True)
        env["HOME"] = str(home)
    env.update(extra)
    return env


async def run_process(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    on_output: OutputCallback,
    timeout: float | None = None,  # noqa: ASYNC109 - the group must be killed, not just the wait
    stdin: bytes | None = None,
) -> ProcessResult:
    """Run ``argv`` in ``cwd`` with exactly ``env``; stream output lines to ``on_output``.

    ``on_output`` receives each line without its line ending, as soon as the line is complete.
    On cancellation the process group is stopped and ``CancelledError`` propagates.
    """
    if not argv:
        raise ValueError("run_process needs a command")
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=dict(env),
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        # Its own process group: one signal reaches the command and everything it started.
        start_new_session=True,
        preexec_fn=_die_with_parent(),
    )
    assert proc.stdout is not None
    output = _Output(on_output)
    pump = asyncio.create_task(_pump(proc.stdout, output))
    feeder = asyncio.create_task(_feed(proc, stdin)) if stdin is not None else None
    timed_out = False
    try:
        await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        timed_out = True
    finally:
        # Runs on success, timeout and cancellation alike. Shielded so that a second
        # cancellation cannot leave the group half-stopped.
        await asyncio.shield(_stop_group(proc, pump, feeder))
    assert proc.returncode is not None
    return ProcessResult(proc.returncode, output.tail(), timed_out)


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to SIGKILL the child when caravan dies, even by ``kill -9``.

    Without it a killed caravan would leave user commands (servers, long builds) running with
    nobody to stop them or read their output. The signal fires when the *thread* that forked
    exits, i.e. the thread running the event loop. The flag is not inherited: while caravan
    lives, grandchildren are reached through the process group, but if caravan is killed, a
    command the child had started keeps running to its end. Closing that gap needs a
    supervising process (or a cgroup) around each command.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def set_parent_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # caravan died between fork and prctl
            os._exit(1)

    return set_parent_death_signal


class _Output:
    """Splits the byte stream into lines for the callback and keeps the last bytes as a tail."""

    def __init__(self, on_output: OutputCallback) -> None:
        self._on_output = on_output
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial = ""
        self._tail = bytearray()

    def feed(self, chunk: bytes) -> None:
        self._tail += chunk
        del self._tail[:-TAIL_BYTES]
        text = self._partial + self._decoder.decode(chunk)
        *lines, self._partial = text.split("\n")
        for line in lines:
            self._emit(line)
        while len(self._partial) > MAX_LINE_CHARS:
            self._emit(self._partial[:MAX_LINE_CHARS])
            self._partial = self._partial[MAX_LINE_CHARS:]

    def close(self) -> None:
        rest = self._partial + self._decoder.decode(b"", final=True)
        self._partial = ""
        if rest:
            self._emit(rest)

    def tail(self) -> str:
        return bytes(self._tail).decode("utf-8", errors="replace")

    def _emit(self, line: str) -> None:
        try:
            self._on_output(line.removesuffix("\r"))
        except Exception:
            # A broken log sink must not stop the command or lose the rest of its output.
            logger.exception("output callback failed")


async def _pump(stream: asyncio.StreamReader, output: _Output) -> None:
    try:
        while chunk := await stream.read(_READ_CHUNK):
            output.feed(chunk)
    finally:
        output.close()


async def _feed(proc: asyncio.subprocess.Process, data: bytes) -> None:
    assert proc.stdin is not None
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        proc.stdin.write(data)
        await proc.stdin.drain()
        proc.stdin.close()


async def _stop_group(
    proc: asyncio.subprocess.Process,
    pump: asyncio.Task[None],
    feeder: asyncio.Task[None] | None,
) -> None:
    """Stop whatever is left of the process group, reap the leader, drain the output."""
    pgid = proc.pid
    if _group_alive(pgid):
        _signal_group(pgid, signal.SIGTERM)
        # Polling: the kernel gives no event when the last member of a group exits.
        for _ in range(round(TERM_GRACE_SECONDS / _POLL_SECONDS)):
            if proc.returncode is not None and not _group_alive(pgid):
                break
            await asyncio.sleep(_POLL_SECONDS)
        if _group_alive(pgid):
            _signal_group(pgid, signal.SIGKILL)
    await proc.wait()
    if feeder is not None:
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
    # The pipe closes when the last holder exits; a process that escaped the group with
    # setsid could keep it open forever, so stop reading after a short wait.
    done, _ = await asyncio.wait({pump}, timeout=DRAIN_SECONDS)
    if not done:
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump


def _group_alive(pgid: int) -> bool:
    """Whether any member of the group still runs (zombies waiting to be reaped do not count:
    the init of a container may reap orphans late, and they hold nothing open)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if not sys.platform.startswith("linux"):
        return True
    with os.scandir("/proc") as entries:
        return any(_running_in_group(entry, pgid) for entry in entries)


def _running_in_group(entry: os.DirEntry[str], pgid: int) -> bool:
    if not entry.name.isdigit():
        return False
    try:
        stat = Path(entry.path, "stat").read_text()
    except OSError:  # exited while we looked
        return False
    # Fields after the command name, which may itself contain spaces and parentheses.
    fields = stat[stat.rfind(")") + 2 :].split()
    return len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X")


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
