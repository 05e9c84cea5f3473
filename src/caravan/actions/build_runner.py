"""Run a buildspec in a working directory the way CodeBuild does, and collect its artifacts.

CodeBuild (buildspec 0.2) runs every command of a build in one shell instance, so ``cd`` and
variables persist across commands and phases. We reproduce that with one shell process fed a
generated script (``build_script``): each command is ``eval``-ed in turn between two marker lines
that carry the phase, the command's index and its exit status. The markers are printed on
stdout, in order with the command's own output; ``_BuildLog`` turns them into CodeBuild's log
lines ("[Container] ... Running command ...", "Phase complete: BUILD State: SUCCEEDED") and
into the outcome.

Phase rules (CodeBuild's): install, pre_build, build, post_build in order. A failed command
ends its phase's ``commands``; the phase's ``finally`` commands run regardless. When install or
pre_build fails with on-failure ABORT nothing later runs; post_build runs even after a failed
build phase, with ``CODEBUILD_BUILD_SUCCEEDING=0``; with on-failure CONTINUE the next phases run
but the build still fails. Artifacts are collected only from a successful build.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import shlex
import shutil
import tempfile
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from caravan.actions.base import MAX_FAILURE_MESSAGE
from caravan.actions.buildspec import PHASE_NAMES, ArtifactSpec, Buildspec, OnFailure
from caravan.actions.process import run_process, scrubbed_environment
from caravan.actions.workspace import collect_files
from caravan.errors import InvalidInputError

PRIMARY_ARTIFACT = ""
"""Key of the primary ``artifacts`` in ``BuildOutcome.output_dirs`` (identifiers are not empty)."""

_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_TAIL_HEADING = "\nLast lines of output:\n"
_SHELLS = {"sh": "/bin/sh", "bash": "bash"}
_TAIL_CHARS = 64 * 1024


@dataclass(frozen=True)
class BuildOutcome:
    succeeded: bool
    failed_phase: str | None  # CodeBuild's phase type: INSTALL, BUILD, UPLOAD_ARTIFACTS, ...
    exit_code: int | None  # of the failed command, or of the shell
    exported_variables: dict[str, str]
    output_dirs: dict[str, Path]  # artifact identifier (PRIMARY_ARTIFACT for the primary) -> dir
    message: str  # CodeBuild's phase context: "Phase: BUILD, Code: ..., Message: ..."
    failed_command: str | None = None
    output_tail: str = ""  # the commands' own output (no container lines), last ~64 KB
    unset_exported: tuple[str, ...] = field(default=())  # exported-variables that were never set
    timed_out: bool = False


async def run_build(
    spec: Buildspec,
    *,
    workdir: Path,
    secondary_sources: Mapping[str, Path] | None = None,
    env: Mapping[str, str] | None = None,
    on_output: Callable[[str], None],
    timeout: float | None = None,  # noqa: ASYNC109 - handed to run_process, which kills the group
    scratch: Path | None = None,
    build_id: str | None = None,
    initiator: str = "caravan",
    collect: Iterable[str] | None = None,
) -> BuildOutcome:
    """Run ``spec`` with ``workdir`` as CODEBUILD_SRC_DIR; see the module docstring.

    ``env`` holds the declared variables (they override the buildspec's ``env.variables``).
    ``scratch`` is a private directory outside the sources for HOME, the script and the
    collected artifacts (default: a new temporary directory the caller removes).
    ``collect`` names the artifacts to collect (``PRIMARY_ARTIFACT`` and secondary
    identifiers); default: all the buildspec declares.
    """
    scratch = scratch or Path(tempfile.mkdtemp(prefix="caravan-build-"))
    exports_dir = scratch / "exported"
    for stale in (exports_dir, scratch / "artifacts"):  # from an interrupted earlier run
        shutil.rmtree(stale, ignore_errors=True)
    exports_dir.mkdir(parents=True)
    nonce = secrets.token_hex(12)
    script = scratch / "build.sh"
    script.write_text(build_script(spec, nonce=nonce, exports_dir=exports_dir))
    environment = scrubbed_environment(
        {
            **spec.variables,
            **(env or {}),
            **_reserved_variables(workdir, secondary_sources or {}, build_id, initiator),
        },
        home=scratch / ".home",
    )
    log = _BuildLog(spec, nonce, on_output)
    for warning in spec.warnings:
        log.container(f"Warning: {warning}")
    try:
        result = await run_process(
            [_SHELLS[spec.shell], str(script)],
            cwd=workdir,
            env=environment,
            on_output=log.feed,
            timeout=timeout,
        )
    except OSError as exc:  # no such shell, or the working directory vanished
        message = f"cannot start the {spec.shell} shell in {workdir}: {exc.strerror}"
        return _failed(log, _first_phase(spec).upper(), "CLIENT_ERROR", message)
    outcome = log.outcome(result.exit_code, result.timed_out, timeout)
    if not outcome.succeeded:
        return outcome
    exported, unset = _read_exports(spec.exported_variables, exports_dir)
    wanted = _artifact_specs(spec, collect)
    sources = [workdir, *(secondary_sources or {}).values()]
    output_dirs: dict[str, Path] = {}
    for ident, declared in wanted.items():
        dest = scratch / "artifacts" / (f"secondary/{ident}" if ident else "primary")
        label = "artifacts" if ident == PRIMARY_ARTIFACT else f"secondary-artifacts.{ident}"
        try:
            root, artifact = _artifact_root(declared, environment, sources, label)
            await asyncio.to_thread(collect_files, root, artifact, dest, label=label)
        except InvalidInputError as exc:  # ArchiveError too: a symlink leaving the sources
            log.container(f"Phase complete: UPLOAD_ARTIFACTS State: FAILED ({exc.message})")
            return _failed(log, "UPLOAD_ARTIFACTS", "CLIENT_ERROR", exc.message)
        output_dirs[ident] = dest
    log.container("Phase complete: UPLOAD_ARTIFACTS State: SUCCEEDED")
    return BuildOutcome(
        succeeded=True,
        failed_phase=None,
        exit_code=0,
        exported_variables=exported,
        output_dirs=output_dirs,
        message="Build succeeded",
        output_tail=log.tail(),
        unset_exported=unset,
    )


def build_script(spec: Buildspec, *, nonce: str, exports_dir: Path) -> str:
    """The POSIX shell script that runs the whole build in one shell session."""
    out = [
        "# Generated by caravan: one shell session for the whole build, as CodeBuild 0.2.",
        # The nonce is split in two so that printing the function (bash's `set`) shows no
        # marker.
        f"__cv_mark() {{ printf '%s%s:%s\\n' {nonce[:8]} {nonce[8:]} \"$*\"; }}",
        "__cv_abort=0",
        "CODEBUILD_BUILD_SUCCEEDING=1; export CODEBUILD_BUILD_SUCCEEDING",
    ]
    for name, phase in spec.phases.items():
        # Only install and pre_build failures (with ABORT) stop later phases: post_build
        # runs after a failed build, as in CodeBuild.
        out.append('if [ "$__cv_abort" = 0 ]; then' if name != "install" else "if true; then")
        out += [f"  __cv_mark P {name}", "  __cv_failed=0"]
        out += _block(name, "c", phase.commands, "__cv_failed")
        out.append("  __cv_fin=0")
        out += _block(name, "f", phase.finally_, "__cv_fin")
        out += [
            '  [ "$__cv_fin" = 0 ] || __cv_failed=1',
            f'  __cv_mark Q {name} "$__cv_failed"',
            '  if [ "$__cv_failed" != 0 ]; then',
            "    CODEBUILD_BUILD_SUCCEEDING=0",
        ]
        if name in ("install", "pre_build") and phase.on_failure is OnFailure.ABORT:
            out.append("    __cv_abort=1")
        out += ["  fi", "fi"]
    for variable in spec.exported_variables:
        # ${NAME+set} tells an unset variable from an empty one; both plain shell variables
        # and exported ones count, as CodeBuild reads them from the build's shell.
        target = shlex.quote(str(exports_dir / variable))
        out.append(
            f'if [ "${{{variable}+set}}" = set ]; then printf %s "${variable}" > {target}; fi'
        )
    out += ["__cv_mark X", ""]
    return "\n".join(out)


def _block(phase: str, kind: str, commands: Iterable[str], flag: str) -> list[str]:
    lines: list[str] = []
    for index, command in enumerate(commands):
        lines += [
            f'  if [ "${flag}" = 0 ]; then',
            f"    __cv_mark C {phase} {kind} {index}",
            f"    eval {shlex.quote(command)}",
            "    __cv_rc=$?",
            f'    __cv_mark E {phase} {kind} {index} "$__cv_rc"',
            f'    [ "$__cv_rc" = 0 ] || {flag}=1',
            "  fi",
        ]
    return lines


def _reserved_variables(
    workdir: Path, secondary: Mapping[str, Path], build_id: str | None, initiator: str
) -> dict[str, str]:
    variables = {
        "CODEBUILD_SRC_DIR": str(workdir),
        "CODEBUILD_BUILD_ID": build_id or f"caravan:{uuid.uuid4()}",
        "CODEBUILD_INITIATOR": initiator,
        "CODEBUILD_BUILD_SUCCEEDING": "1",
    }
    for ident, path in secondary.items():
        variables[f"CODEBUILD_SRC_DIR_{ident}"] = str(path)
    return variables


def _read_exports(
    names: Iterable[str], exports_dir: Path
) -> tuple[dict[str, str], tuple[str, ...]]:
    values: dict[str, str] = {}
    unset: list[str] = []
    for name in names:
        path = exports_dir / name
        if path.exists():
            values[name] = path.read_text(errors="replace")
        else:
            unset.append(name)
    return values, tuple(unset)


def _artifact_specs(spec: Buildspec, collect: Iterable[str] | None) -> dict[str, ArtifactSpec]:
    declared: dict[str, ArtifactSpec] = dict(spec.secondary_artifacts)
    if spec.artifacts is not None:
        declared[PRIMARY_ARTIFACT] = spec.artifacts
    if collect is None:
        return declared
    return {ident: declared[ident] for ident in collect if ident in declared}


def _artifact_root(
    artifact: ArtifactSpec, environment: Mapping[str, str], sources: list[Path], label: str
) -> tuple[Path, ArtifactSpec]:
    """The source directory an artifact is collected from, and its base relative to it.

    CodeBuild expands variables in base-directory, so a secondary source can be packaged with
    ``base-directory: $CODEBUILD_SRC_DIR_other``.
    """
    base = artifact.base_directory
    if base is None or "$" not in base:
        return sources[0], artifact
    expanded = _VARIABLE.sub(lambda m: environment.get(m[1] or m[2], ""), base)
    path = Path(expanded)
    if not path.is_absolute():
        return sources[0], replace(artifact, base_directory=expanded or None)
    for root in sources:
        if path.resolve().is_relative_to(root.resolve()):
            relative = path.resolve().relative_to(root.resolve()).as_posix()
            return root, replace(artifact, base_directory=None if relative == "." else relative)
    raise InvalidInputError(f"{label}.base-directory {base} is outside the build's sources")


def _failed(log: _BuildLog, phase: str, code: str, message: str) -> BuildOutcome:
    return BuildOutcome(
        succeeded=False,
        failed_phase=phase,
        exit_code=None,
        exported_variables={},
        output_dirs={},
        message=f"Phase: {phase}, Code: {code}, Message: {message}",
        output_tail=log.tail(),
    )


class _BuildLog:
    """Turns the script's output into CodeBuild's log and tracks how each phase ended."""

    def __init__(self, spec: Buildspec, nonce: str, on_output: Callable[[str], None]) -> None:
        self._spec = spec
        self._marker = f"{nonce}:"
        self._on_output = on_output
        self._tail: deque[str] = deque()
        self._tail_chars = 0
        self.phase: str | None = None  # the phase running now
        self.last_phase: str | None = None
        self.command: str | None = None  # the command running now
        self.finished = False
        self.failure: tuple[str, str, int] | None = None  # first failed (phase, command, rc)
        self._phase_failure: tuple[str, int] | None = None

    def container(self, text: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y/%m/%d %H:%M:%S.%f")
        self._on_output(f"[Container] {stamp} {text}")

    def feed(self, line: str) -> None:
        at = line.find(self._marker)
        if at < 0:
            self._user(line)
            return
        if at > 0:  # the command's last output had no newline
            self._user(line[:at])
        try:
            self._event(line[at + len(self._marker) :].split())
        except (ValueError, KeyError, IndexError):  # not one of ours after all
            self._user(line[at:])

    def tail(self) -> str:
        return "\n".join(self._tail)

    def _user(self, line: str) -> None:
        self._on_output(line)
        self._tail.append(line)
        self._tail_chars += len(line) + 1
        while self._tail_chars > _TAIL_CHARS and len(self._tail) > 1:
            self._tail_chars -= len(self._tail.popleft()) + 1

    def _event(self, words: list[str]) -> None:
        kind, args = (words[0], words[1:]) if words else ("", [])
        if kind == "P" and args:
            self.phase, self._phase_failure = args[0], None
            self.container(f"Entering phase {args[0].upper()}")
        elif kind == "C" and len(args) == 3:
            self.command = self._command(args[0], args[1], int(args[2]))
            self.container(f"Running command {self.command}")
        elif kind == "E" and len(args) == 4 and args[3] != "0":
            command = self._command(args[0], args[1], int(args[2]))
            self.container(f"Command did not exit successfully {command} exit status {args[3]}")
            if self._phase_failure is None:
                self._phase_failure = (command, int(args[3]))
        elif kind == "Q" and len(args) == 2:
            self._phase_complete(args[0], args[1] == "0")
        elif kind == "X":
            self.finished = True

    def _command(self, phase: str, kind: str, index: int) -> str:
        block = self._spec.phases[phase]
        return (block.commands if kind == "c" else block.finally_)[index]

    def _phase_complete(self, phase: str, ok: bool) -> None:
        state = "SUCCEEDED" if ok else "FAILED"
        self.container(f"Phase complete: {phase.upper()} State: {state}")
        self.last_phase, self.phase, self.command = phase, None, None
        if ok:
            self.container("Phase context status code:  Message: ")
            return
        command, rc = self._phase_failure or ("", 1)
        self.container(
            f"Phase context status code: COMMAND_EXECUTION_ERROR Message: "
            f"Error while executing command: {command}. Reason: exit status {rc}"
        )
        if self.failure is None:
            self.failure = (phase, command, rc)

    def outcome(self, exit_code: int, timed_out: bool, timeout: float | None) -> BuildOutcome:
        phase = (self.phase or self.last_phase or _first_phase(self._spec)).upper()
        if timed_out:
            self.container(f"Phase complete: {phase} State: TIMED_OUT")
            message = f"Build timed out after {timeout:g} seconds"
            return replace(
                self._failure(phase, "BUILD_TIMED_OUT", message, exit_code), timed_out=True
            )
        if not self.finished:
            # The shell itself ended mid-build: `exit` in a command, or `set -e` tripping.
            command = self.command or ""
            self.container(f"Phase complete: {phase} State: FAILED")
            message = f"Error while executing command: {command}. Reason: exit status {exit_code}"
            return self._failure(phase, "COMMAND_EXECUTION_ERROR", message, exit_code, command)
        if self.failure is not None:
            failed_phase, command, rc = self.failure
            message = f"Error while executing command: {command}. Reason: exit status {rc}"
            return self._failure(
                failed_phase.upper(), "COMMAND_EXECUTION_ERROR", message, rc, command
            )
        return BuildOutcome(True, None, 0, {}, {}, "Build succeeded", output_tail=self.tail())

    def _failure(
        self, phase: str, code: str, message: str, exit_code: int, command: str | None = None
    ) -> BuildOutcome:
        return BuildOutcome(
            succeeded=False,
            failed_phase=phase,
            exit_code=exit_code,
            exported_variables={},
            output_dirs={},
            message=f"Phase: {phase}, Code: {code}, Message: {message}",
            failed_command=command,
            output_tail=self.tail(),
        )


def _first_phase(spec: Buildspec) -> str:
    return next(iter(spec.phases), PHASE_NAMES[0])


def failure_report(outcome: BuildOutcome, *, limit: int = MAX_FAILURE_MESSAGE) -> str:
    """CodePipeline's failure message for a build, then as many last output lines as fit."""
    state = "TIMED_OUT" if outcome.timed_out else "FAILED"
    head = f"Build terminated with state: {state}. {outcome.message}"
    room = limit - len(head) - len(_TAIL_HEADING)
    if not outcome.output_tail or room < 200:
        return head
    tail = outcome.output_tail[-room:]
    if len(tail) < len(outcome.output_tail) and "\n" in tail:
        tail = tail[tail.index("\n") + 1 :]  # start at a whole line
    return head + _TAIL_HEADING + tail
