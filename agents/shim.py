"""The container shim: the parent of one container instance, so the container outlives its agent.

Run as `python -S agents/shim.py CONTAINER_DIR` in a new session (the agent starts it with
start_new_session=True); `python agents/shim.py --probe` prints which isolation this machine allows.
It imports only the standard library (never gRPC: forking a process with live gRPC objects hangs).

What it does, in order:
1. reads CONTAINER_DIR/spec.json (written by the agent: argv, env, cwd, hostname, isolation, limits);
2. creates the container's cgroup (v1 memory+cpu or v2, whichever this machine has) with the limits;
3. with `uts`/`pid`: unshare(CLONE_NEWUTS | CLONE_NEWPID), sets the hostname to the pod name, and forks a
   tiny init (PID 1 in the new namespace) that forks the container, reaps orphans and reports the
   container's wait status; when it exits the kernel kills whatever is left in the namespace;
4. the container process joins the cgroup, gets its own process group (stop = signal to that group,
   sent by the agent), stdout+stderr to a pipe, and execs the program;
5. writes run.json {instance, shimPid, pid, pgid, startedAt} (pid/pgid as seen from the host);
6. copies the container's output into CONTAINER_DIR/log, rotated at `logMaxBytes` into log.1;
7. when the container exits: writes exit.json {instance, exitCode, signal, reason (Completed, Error,
   OOMKilled, StartError), message, startedAt, finishedAt} atomically (tmp + rename), removes the
   cgroup, and exits 0.

State files are written with tmp + rename, so a reader sees a whole file or none.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import time
from typing import Any

CLONE_NEWUTS = 0x04000000
CLONE_NEWPID = 0x20000000
CGROUP_PREFIX = "skiff"
STARTED = b"S"  # the mini init to the shim: the container exec'd (a start error begins "start-error")


def write_json(path: str, data: Any) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def unshare(flags: int) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


# ---------------------------------------------------------------- cgroups


def cgroup_mounts() -> dict[str, str]:
    """{'memory': mountpoint, 'cpu': mountpoint} for cgroup v1, or {'v2': mountpoint}."""
    out: dict[str, str] = {}
    try:
        with open("/proc/mounts", encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 4:
                    continue
                if parts[2] == "cgroup":
                    opts = parts[3].split(",")
                    for ctl in ("memory", "cpu"):
                        if ctl in opts:
                            out.setdefault(ctl, parts[1])
                elif parts[2] == "cgroup2" and parts[1] == "/sys/fs/cgroup":
                    out["v2"] = parts[1]
    except OSError:
        pass
    return out


def own_cgroup(controller: str) -> str:
    """This process's cgroup path for a v1 controller ('' for v2's unified line)."""
    with open("/proc/self/cgroup", encoding="utf-8") as f:
        for line in f:
            _, ctls, path = line.rstrip("\n").split(":", 2)
            if controller in ctls.split(",") or (controller == "" and ctls == ""):
                return path
    return "/"


class Cgroup:
    """The container's cgroup: created with limits, joined by the container, read for OOM, removed."""

    def __init__(self, name: str, memory: int | None, cpu_millis: int | None) -> None:
        self.dirs: list[str] = []
        self.memory_dir = ""
        self.version = ""
        mounts = cgroup_mounts()
        if "memory" in mounts or "cpu" in mounts:
            self.version = "v1"
            for ctl in ("memory", "cpu"):
                if ctl not in mounts:
                    continue
                d = os.path.join(mounts[ctl] + own_cgroup(ctl), CGROUP_PREFIX, name)
                _makedirs(d)
                self.dirs.append(d)
                if ctl == "memory":
                    self.memory_dir = d
                    if memory:
                        _write(os.path.join(d, "memory.limit_in_bytes"), str(memory))
                        try:  # no swap either, so the limit is a real one
                            _write(os.path.join(d, "memory.memsw.limit_in_bytes"), str(memory))
                        except OSError:
                            pass
                elif cpu_millis:
                    _write(os.path.join(d, "cpu.cfs_period_us"), "100000")
                    _write(os.path.join(d, "cpu.cfs_quota_us"), str(max(1000, cpu_millis * 100)))
        elif "v2" in mounts:
            self.version = "v2"
            parent = os.path.join(mounts["v2"] + own_cgroup(""), CGROUP_PREFIX)
            _makedirs(parent)
            try:
                _write(os.path.join(parent, "cgroup.subtree_control"), "+memory +cpu")
            except OSError:
                pass
            d = os.path.join(parent, name)
            _makedirs(d)
            self.dirs.append(d)
            self.memory_dir = d
            if memory:
                _write(os.path.join(d, "memory.max"), str(memory))
                try:
                    _write(os.path.join(d, "memory.swap.max"), "0")
                except OSError:
                    pass
            if cpu_millis:
                _write(os.path.join(d, "cpu.max"), f"{max(1000, cpu_millis * 100)} 100000")

    def join(self) -> None:
        """Move the calling process into every controller's cgroup."""
        for d in self.dirs:
            _write(os.path.join(d, "cgroup.procs"), "0")

    def oom_killed(self) -> bool:
        if not self.memory_dir:
            return False
        name = "memory.oom_control" if self.version == "v1" else "memory.events"
        try:
            with open(os.path.join(self.memory_dir, name), encoding="utf-8") as f:
                for line in f:
                    k, _, v = line.partition(" ")
                    if k == "oom_kill" and int(v) > 0:
                        return True
        except (OSError, ValueError):
            pass
        return False

    def remove(self) -> None:
        for d in self.dirs:
            for _ in range(50):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)
            try:  # the shared parent goes too once the last container left it
                os.rmdir(os.path.dirname(d))
            except OSError:
                pass


def _makedirs(d: str) -> None:
    # Another shim may remove the shared parent between our two mkdirs: try again.
    for attempt in range(3):
        try:
            os.makedirs(d, exist_ok=True)
            return
        except FileNotFoundError:
            if attempt == 2:
                raise


def _write(path: str, value: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(value)


# ---------------------------------------------------------------- the container process


def exec_container(spec: dict[str, Any], cgroup: Cgroup | None, log_w: int, err_w: int) -> None:
    """In the forked child: join the cgroup, wire stdio, exec. Never returns."""
    try:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        if cgroup is not None:
            cgroup.join()
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log_w, 1)
        os.dup2(log_w, 2)
        os.closerange(3, err_w)
        os.closerange(err_w + 1, 65536)
        if spec.get("cwd"):
            os.chdir(spec["cwd"])
        argv = spec["argv"]
        os.execvpe(argv[0], argv, spec["env"])
    except BaseException as e:  # noqa: BLE001 - report any failure to start, then die
        msg = (
            f"{type(e).__name__}: {e}"
            if not isinstance(e, OSError)
            else f'exec: "{spec["argv"][0]}": {e.strerror}'
        )
        try:
            os.write(err_w, msg.encode()[:4000])
        finally:
            os._exit(127)


def start(spec: dict[str, Any], cgroup: Cgroup | None, log_w: int) -> tuple[int, str]:
    """Fork and exec the container; (pid, start error or '') once exec succeeded or failed."""
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        os.close(err_r)
        os.setpgid(0, 0)
        exec_container(spec, cgroup, log_w, err_w)
    os.close(err_w)
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass
    chunks = []
    while True:
        b = os.read(err_r, 4096)
        if not b:
            break
        chunks.append(b)
    os.close(err_r)
    return pid, b"".join(chunks).decode(errors="replace")


def mini_init(spec: dict[str, Any], cgroup: Cgroup | None, log_w: int, status_w: int) -> None:
    """PID 1 of the container's PID namespace: start the container, reap everything, report, exit."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    os.setpgid(0, 0)
    # The container joins PID 1's process group: one killpg from the agent reaches it.
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        os.close(err_r)
        exec_container(spec, cgroup, log_w, err_w)
    os.close(err_w)
    os.close(log_w)
    err = b""
    while True:
        b = os.read(err_r, 4096)
        if not b:
            break
        err += b
    if err:
        os.write(status_w, b"start-error " + err)
        os._exit(0)
    os.write(status_w, STARTED)  # exec'd: the shim may now say the container runs
    while True:
        try:
            child, status = os.wait()
        except ChildProcessError:
            os._exit(0)
        if child == pid:
            os.write(status_w, b"exit %d" % status)
            os._exit(0)


# ---------------------------------------------------------------- logs


class RotatingLog:
    """Appends to DIR/log; at `max_bytes` renames it to log.1 (dropping the older one) and starts anew."""

    def __init__(self, path: str, max_bytes: int, files: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.files = max(1, files)
        self.f = open(path, "ab", buffering=0)  # noqa: SIM115
        self.size = self.f.tell()

    def write(self, data: bytes) -> None:
        if self.size + len(data) > self.max_bytes and self.size > 0:
            self.f.close()
            for i in range(self.files - 1, 0, -1):
                src = self.path if i == 1 else f"{self.path}.{i - 1}"
                if os.path.exists(src):
                    os.replace(src, f"{self.path}.{i}")
            if self.files == 1:
                os.unlink(self.path)
            self.f = open(self.path, "ab", buffering=0)  # noqa: SIM115
            self.size = 0
        self.f.write(data)
        self.size += len(data)


# ---------------------------------------------------------------- main


def now() -> float:
    return time.time()


def run(cdir: str) -> int:
    with open(os.path.join(cdir, "spec.json"), encoding="utf-8") as f:
        spec = json.load(f)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    instance = spec.get("instance", 0)
    cgroup: Cgroup | None = None
    cg = spec.get("cgroup") or {}
    if cg.get("enabled"):
        try:
            cgroup = Cgroup(cg["name"], cg.get("memory"), cg.get("cpuMillis"))
        except OSError as e:
            print(f"shim: cgroup setup failed: {e}", file=sys.stderr)
            cgroup = None
    flags = (CLONE_NEWUTS if spec.get("uts") else 0) | (CLONE_NEWPID if spec.get("pid") else 0)
    if flags:
        unshare(flags)
    if spec.get("uts") and spec.get("hostname"):
        import socket

        socket.sethostname(spec["hostname"][:63])

    log_r, log_w = os.pipe()
    log = RotatingLog(
        os.path.join(cdir, "log"), int(spec.get("logMaxBytes", 10 << 20)), int(spec.get("logFiles", 2))
    )
    started = now()
    start_error = ""
    status_r = -1
    status_prefix = b""
    if spec.get("pid"):
        status_r, status_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(log_r)
            os.close(status_r)
            mini_init(spec, cgroup, log_w, status_w)
        os.close(status_w)
        try:
            os.setpgid(pid, pid)
        except OSError:
            pass
        # Wait for the container's exec, as start() does: run.json tells the agent (and a stop) that
        # the container runs, and a SIGTERM to the group before the container was forked, or before it
        # reset the shim's ignored signals, was lost (the stop then waited its grace and killed).
        first = os.read(status_r, len(STARTED))
        status_prefix = b"" if first == STARTED else first
    else:
        pid, start_error = start(spec, cgroup, log_w)
    os.close(log_w)
    write_json(
        os.path.join(cdir, "run.json"),
        {"instance": instance, "shimPid": os.getpid(), "pid": pid, "pgid": pid, "startedAt": started},
    )

    # Copy output until the container has exited (then drain what its leftovers still write, briefly).
    wait_status: int | None = None
    drain_deadline = 0.0
    while True:
        timeout = 0.1 if wait_status is None else max(0.0, drain_deadline - now())
        ready, _, _ = select.select([log_r], [], [], timeout)
        if ready:
            data = os.read(log_r, 65536)
            if data:
                log.write(data)
            elif wait_status is not None:
                break
            else:
                # EOF before the exit: every writer is gone; only the exit is left to wait for.
                _, wait_status = os.waitpid(pid, 0)
                break
        if wait_status is None:
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                wait_status = st
                drain_deadline = now() + 0.3
        elif now() >= drain_deadline:
            break
    finished = now()
    os.close(log_r)

    # The container's own status: from the mini init when there is one, else the child's.
    status = wait_status or 0
    if status_r >= 0:
        report = status_prefix
        while True:
            b = os.read(status_r, 4096)
            if not b:
                break
            report += b
        if report.startswith(b"start-error "):
            start_error = report[len(b"start-error ") :].decode(errors="replace")
        elif report.startswith(b"exit "):
            status = int(report[5:])
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + sig
    message = ""
    if start_error:
        reason, code, message = "StartError", 128, start_error
    elif cgroup is not None and cgroup.oom_killed():
        reason = "OOMKilled"
        code = code or 137
    else:
        reason = "Completed" if code == 0 else "Error"
    if start_error:
        log.write(f"skiff: failed to start container: {start_error}\n".encode())
    write_json(
        os.path.join(cdir, "exit.json"),
        {
            "instance": instance,
            "exitCode": code,
            "signal": sig,
            "reason": reason,
            "message": message,
            "startedAt": started,
            "finishedAt": finished,
        },
    )
    if cgroup is not None:
        cgroup.remove()
    return 0


def probe() -> dict[str, Any]:
    """Which isolation a container would get here: {"uts": bool, "pid": bool, "cgroup": "v1"|"v2"|""}."""
    out: dict[str, Any] = {"uts": False, "pid": False, "cgroup": ""}
    if sys.platform != "linux" or os.geteuid() != 0:
        return out
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        ok = b"0"
        try:
            unshare(CLONE_NEWUTS | CLONE_NEWPID)
            import socket

            socket.sethostname("skiff-probe")
            child = os.fork()
            if child == 0:
                os._exit(0 if os.getpid() == 1 else 1)
            _, st = os.waitpid(child, 0)
            ok = b"1" if os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0 else b"0"
        except OSError:
            pass
        os.write(w, ok)
        os._exit(0)
    os.close(w)
    res = os.read(r, 1)
    os.close(r)
    os.waitpid(pid, 0)
    out["uts"] = out["pid"] = res == b"1"
    try:
        cg = Cgroup(f"probe-{os.getpid()}", None, None)
        if cg.dirs:
            out["cgroup"] = cg.version
        cg.remove()
    except OSError:
        pass
    return out


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[1] == "--probe":
        print(json.dumps(probe()))
        return 0
    if len(argv) != 2:
        print("usage: shim.py CONTAINER_DIR | --probe", file=sys.stderr)
        return 2
    return run(argv[1])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
