"""Writing caravan's git hooks into a repository, and taking them out again.

Four hooks cover the ways a branch moves: ``post-commit``, ``post-merge`` and ``post-rewrite``
in a working repository where someone commits, pulls or rebases, and ``post-receive`` in a
(bare) repository that receives pushes. Each is a small ``sh`` script that runs the user's own
hook first (a hook found at install time is kept as ``<name>.local``), then execs
``<python> -m caravan.hooks.notify --url URL --kind <name>``. The hooks go where git looks for
them (``core.hooksPath`` included). A line holding ``MARKER`` identifies caravan's scripts, so
installing twice rewrites them and uninstalling restores what was there before.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from caravan.errors import InvalidInputError

HOOKS = ("post-commit", "post-merge", "post-rewrite", "post-receive")
STDIN_HOOKS = frozenset({"post-rewrite", "post-receive"})  # git writes lines on their stdin
MARKER = "# caravan-hook"
LOCAL_SUFFIX = ".local"


@dataclass(frozen=True)
class HookChange:
    hook: Path
    outcome: str  # what happened, for the user: "installed", "removed", ...


def hooks_dir(repo: Path) -> Path:
    """Where git runs ``repo``'s hooks from; InvalidInputError if ``repo`` is no repository."""
    done = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--git-path", "hooks"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise InvalidInputError(
            f"{repo} is not a git repository: {done.stderr.strip() or 'git rev-parse failed'}"
        )
    path = Path(done.stdout.strip())
    return path if path.is_absolute() else (repo / path).resolve()


def check_url(url: str) -> None:
    """The server URL goes into shell scripts: an http(s) URL without spaces or controls."""
    if not url.startswith(("http://", "https://")) or any(c.isspace() or ord(c) < 32 for c in url):
        raise InvalidInputError(
            f"--url {url!r} must be the caravan server's http:// or https:// URL, "
            "e.g. http://127.0.0.1:7878"
        )


def hook_script(name: str, url: str, python: str | None = None) -> str:
    """The text of hook ``name`` notifying the server at ``url``."""
    python = shlex.quote(python or sys.executable)
    command = f'{python} -m caravan.hooks.notify --url {shlex.quote(url)} --kind {name} -- "$@"'
    local = f'"$hook_dir/{name}{LOCAL_SUFFIX}"'
    lines = [
        "#!/bin/sh",
        f"{MARKER}: tells the caravan server at {url} about this change (no polling).",
        "# Written by `caravan hook install`; `caravan hook uninstall` removes it. The hook that",
        f"# was here before, if any, is kept as {name}{LOCAL_SUFFIX} and runs first.",
        'hook_dir=$(dirname "$0")',
    ]
    if name in STDIN_HOOKS:  # both the user's hook and caravan's read the same lines
        lines += [
            "input=$(cat)",
            f'if [ -x {local} ]; then printf "%s\\n" "$input" | {local} "$@"; fi',
            f'printf "%s\\n" "$input" | exec {command}',
        ]
    else:
        lines += [f'if [ -x {local} ]; then {local} "$@"; fi', f"exec {command}"]
    return "\n".join(lines) + "\n"


def is_caravan_hook(path: Path) -> bool:
    try:
        head = path.read_text(encoding="utf-8", errors="replace")[:512]
    except OSError:
        return False
    return MARKER in head


def install_hooks(repo: Path, url: str) -> list[HookChange]:
    """Write caravan's hooks into ``repo``, keeping each existing hook as ``<name>.local``.

    Raises InvalidInputError, before writing anything, if a foreign hook cannot be kept
    because its ``.local`` name is taken.
    """
    check_url(url)
    directory = hooks_dir(repo)
    for name in HOOKS:
        hook, local = directory / name, directory / f"{name}{LOCAL_SUFFIX}"
        if _exists(hook) and not is_caravan_hook(hook) and _exists(local):
            raise InvalidInputError(
                f"{hook} is not caravan's and {local.name} exists too, so the hook cannot be "
                f"kept: merge or remove one of them, then install again"
            )
    directory.mkdir(parents=True, exist_ok=True)
    changes = []
    for name in HOOKS:
        changes.append(_install_one(directory / name, url))
    return changes


def _install_one(hook: Path, url: str) -> HookChange:
    outcome = "installed"
    if _exists(hook) and not is_caravan_hook(hook):
        hook.rename(hook.with_name(hook.name + LOCAL_SUFFIX))
        outcome = f"installed; the previous hook now runs first as {hook.name}{LOCAL_SUFFIX}"
    elif _exists(hook):
        outcome = "updated"
        hook.unlink()  # it may be a symlink into a shared directory: never write through it
    # Written beside and renamed, so git never runs a half-written hook.
    staging = hook.with_name(f".{hook.name}.caravan-tmp")
    staging.write_text(hook_script(hook.name, url), encoding="utf-8")
    staging.chmod(0o755)
    staging.replace(hook)
    return HookChange(hook, outcome)


def uninstall_hooks(repo: Path) -> list[HookChange]:
    """Remove caravan's hooks from ``repo``, putting back the hooks they had kept."""
    directory = hooks_dir(repo)
    changes = []
    for name in HOOKS:
        hook, local = directory / name, directory / f"{name}{LOCAL_SUFFIX}"
        if not _exists(hook):
            continue
        if not is_caravan_hook(hook):
            changes.append(HookChange(hook, "not caravan's; left alone"))
            continue
        hook.unlink()
        if _exists(local):
            local.rename(hook)
            changes.append(HookChange(hook, f"removed; {local.name} restored as {name}"))
        else:
            changes.append(HookChange(hook, "removed"))
    return changes


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()
