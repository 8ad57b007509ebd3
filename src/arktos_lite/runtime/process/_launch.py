"""The command line that starts one container process, and its exit-status protocol.

Every container runs under a small `/bin/sh` wrapper in a new session (so its process
group is the container)::

    [join cgroups] -> [nsenter --net=<pod netns>] ->
        [unshare --fork --pid --mount-proc --mount --uts --ipc] ->
        sh: [hostname, bind mounts]; cd workdir; trap : TERM INT;
            (: > started; exec "$@"); echo $? > exit

The wrapper ignores SIGTERM/SIGINT only by catching them with a no-op trap, so the workload
(which starts with default dispositions) gets the group's SIGTERM with default semantics;
the wrapper then records the workload's status (143 after SIGTERM, 137 after SIGKILL of
just the workload, ...) in the exit file. That file lets a runtime that did not start the
process learn its exit code. When the wrapper itself dies by SIGKILL there is no file and
the runtime falls back to what it knows (it sent SIGKILL: 137).

Until the workload's subshell has reset the traps, the group's SIGTERM is taken by the
trap, in the wrapper or in the fresh fork, and lost: the workload would then run until
SIGKILL. The subshell writes the `started` file once its signals are default, and a
runtime waits for that file (briefly) before it sends SIGTERM.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Collection, Sequence
from pathlib import Path

SHELL = "/bin/sh"
# Exit code when the wrapper could not set the container up (mount, cwd): like runc's
# "container init failed" it is distinct from anything the workload reports.
SETUP_FAILED = 128
SETUP_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Next to the exit file: written once the workload's signals are its own (see above).
STARTED = "started"


@dataclasses.dataclass(frozen=True, slots=True)
class BindMount:
    host_path: str
    container_path: str
    readonly: bool


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Isolation:
    """Namespaces for one container: its hostname and bind mounts (None: unisolated)."""

    unshare: str
    mount: str
    hostname: str
    mounts: tuple[BindMount, ...]


def _fail(message: str, exit_file: Path) -> str:
    return (
        f"{{ echo {shlex.quote('arktos: ' + message)} >&2; "
        f"echo {SETUP_FAILED} > {shlex.quote(str(exit_file))}; exit {SETUP_FAILED}; }}"
    )


def _inner_script(
    *, workdir: str, exit_file: Path, isolation: Isolation | None, env_names: Collection[str]
) -> str:
    lines = []
    if isolation is not None:
        q = shlex.quote
        # Setup commands (mkdir, dirname) come from the host, whatever the container's PATH.
        lines.append(f"arktos_path=$PATH; PATH={q(SETUP_PATH)}")
        if isolation.hostname:
            lines.append(
                f"echo {q(isolation.hostname)} > /proc/sys/kernel/hostname || "
                f"echo {q('arktos: cannot set hostname ' + isolation.hostname)} >&2"
            )
        mount = q(isolation.mount)
        for m in isolation.mounts:
            src, dst = q(m.host_path), q(m.container_path)
            # A mount point must exist; for a file source it must be a file.
            lines.append(
                f"if [ -d {src} ]; then mkdir -p {dst}; "
                f'else mkdir -p "$(dirname {dst})" && {{ [ -e {dst} ] || : > {dst}; }}; fi'
            )
            what = f"cannot mount {m.host_path} at {m.container_path}"
            lines.append(f"{mount} --rbind {src} {dst} || " + _fail(what, exit_file))
            if m.readonly:
                lines.append(
                    f"{mount} -o remount,bind,ro {dst} || " + _fail(what + " read-only", exit_file)
                )
        lines.append("PATH=$arktos_path; unset arktos_path")
    lines.append(
        f"cd {shlex.quote(workdir)} || "
        + _fail(f"cannot enter working directory {workdir}", exit_file)
    )
    # `cd` exported these into the environment; the workload gets exactly its own env.
    lines += [f"unset {name}" for name in ("OLDPWD", "PWD") if name not in env_names]
    started = shlex.quote(str(exit_file.with_name(STARTED)))
    lines += [
        "trap : TERM INT",
        f'(: > {started}; exec "$@")',
        "rc=$?",
        f"echo $rc > {shlex.quote(str(exit_file))}",
        "exit $rc",
    ]
    return "\n".join(lines)


def container_argv(
    program: Sequence[str],
    *,
    workdir: str,
    exit_file: Path,
    cgroup_procs: Sequence[Path] = (),
    isolation: Isolation | None = None,
    env_names: Collection[str] = (),
    netns: tuple[str, str] | None = None,
) -> list[str]:
    """The argv (run with /bin/sh in a new session) that starts `program` as a container.

    The wrapper scripts are written next to `exit_file` (so `ps` shows
    `/bin/sh .../start.sh <program>`); they must stay there while the container runs.
    `env_names` are the variables the container's environment sets (the wrapper leaves
    those alone). `netns` is `(nsenter, path)`: the container runs in the network
    namespace at `path` (the wrapper's process enters it and execs, keeping its pid).
    """
    inner = _inner_script(
        workdir=workdir, exit_file=exit_file, isolation=isolation, env_names=env_names
    )
    outer = [f"echo $$ > {shlex.quote(str(f))} 2>/dev/null || :" for f in cgroup_procs]
    start = exit_file.with_name("start.sh")
    enter = ""
    if netns is not None:
        nsenter, path = netns
        enter = f"{shlex.quote(nsenter)} --net={shlex.quote(path)} -- "
        outer.append(
            f"[ -e {shlex.quote(path)} ] || "
            + _fail(f"network namespace {path} not found", exit_file)
        )
    if isolation is None and not enter:
        outer.append(inner)
    else:
        init = exit_file.with_name("init.sh")
        init.write_text(inner + "\n")
        if isolation is None:
            outer.append(f'exec {enter}{SHELL} {shlex.quote(str(init))} "$@"')
        else:
            outer.append(
                f"exec {enter}{shlex.quote(isolation.unshare)} --fork --pid --mount-proc "
                f'--mount --uts --ipc --propagation private {SHELL} {shlex.quote(str(init))} "$@"'
            )
    start.write_text("\n".join(outer) + "\n")
    return [SHELL, str(start), *program]


def join_cgroups_argv(argv: Sequence[str], cgroup_procs: Sequence[Path]) -> list[str]:
    """`argv` started inside the given cgroups (for exec'd processes)."""
    if not cgroup_procs:
        return list(argv)
    joins = "; ".join(f"echo $$ > {shlex.quote(str(f))} 2>/dev/null" for f in cgroup_procs)
    return [SHELL, "-c", joins + '; exec "$@"', "arktos-exec", *argv]
