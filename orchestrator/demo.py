"""`make demo`: bring up a local cluster and play the seed's story, one command at a time.

The story is told with the real `kubectl` when it is on PATH (through the kubeconfig `skiff up`
merged), and with `skiff` otherwise (or with --skiff); the cluster's own verbs (up, cluster status,
kill, start) are always `skiff`. Every command is printed as a person would type it, followed by its
output. The cluster is left running at the end (`make down` stops it).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from orchestrator.cli import launcher

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
BOLD, DIM, RESET = ("\033[1m", "\033[2m", "\033[0m") if sys.stdout.isatty() else ("", "", "")


class Story:
    def __init__(self, config: Path | None, kubectl: str | None) -> None:
        self.env = dict(os.environ)
        if config is not None:
            self.env["SKIFF_CONFIG"] = str(config)
        self.skiff_bin = str(Path(sys.executable).with_name("skiff"))
        self.kubectl = kubectl
        self.tool = "kubectl" if kubectl else "skiff"

    def k(self, *args: str, check: bool = True, quiet: bool = False) -> str:
        """Run a kubectl verb: with kubectl when the story uses it, else the same words with skiff."""
        if self.kubectl is None:
            return self.run(*args, check=check, quiet=quiet)
        return self._terminal("kubectl", self.kubectl, args, check, quiet)

    def say(self, text: str) -> None:
        print(f"\n{DIM}# {text}{RESET}", flush=True)

    def run(self, *args: str, check: bool = True, quiet: bool = False) -> str:
        """Run `skiff ARGS`, printing the command line and its output like a terminal would."""
        return self._terminal("skiff", self.skiff_bin, args, check, quiet)

    def _terminal(self, shown: str, program: str, args: tuple[str, ...], check: bool, quiet: bool) -> str:
        """Run `program ARGS` as a person at a terminal would see it, printed as `$ shown ARGS`."""
        if not quiet:
            print(f"{BOLD}$ {shown} {' '.join(shlex.quote(a) for a in args)}{RESET}", flush=True)
        proc = subprocess.run(
            [program, *args], env=self.env, capture_output=True, text=True, cwd=ROOT, timeout=120
        )
        if not quiet:
            sys.stdout.write(proc.stdout)
            sys.stdout.write(proc.stderr)
            sys.stdout.flush()
        if check and proc.returncode != 0:
            raise SystemExit(f"demo: `{shown} {' '.join(args)}` failed (exit {proc.returncode})")
        return proc.stdout

    def json(self, *args: str) -> dict:
        return json.loads(self.k(*args, "-o", "json", quiet=True))

    def wait(self, what: str, predicate, timeout: float = 60.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                if predicate():
                    return
            except (SystemExit, json.JSONDecodeError, KeyError):
                pass
            time.sleep(0.2)
        raise SystemExit(f"demo: timed out waiting for {what}")

    def ready_pods(self, app: str) -> list[dict]:
        pods = self.json("get", "pods", "-l", f"app={app}")["items"]
        return [
            p
            for p in pods
            if not p["metadata"].get("deletionTimestamp")
            and any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in p.get("status", {}).get("conditions") or []
            )
        ]


def http_get(address: str, port: int, host_header: str | None = None) -> tuple[int, str]:
    conn = http.client.HTTPConnection(address, port, timeout=5)
    try:
        conn.request("GET", "/", headers={"Host": host_header} if host_header else {})
        resp = conn.getresponse()
        return resp.status, resp.getheader("X-Hostname") or resp.read().decode(errors="replace")
    finally:
        conn.close()


def cluster_running(state_dir: str | None) -> bool:
    state = Path(state_dir).expanduser() if state_dir else launcher.default_state_dir()
    return bool(launcher.running_names(state))


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m orchestrator.demo")
    p.add_argument("--state-dir", default=None, help="where the cluster keeps its data and logs")
    p.add_argument("--config", type=Path, default=None, help="client config to write and use")
    p.add_argument("--http-port", type=int, default=8080)
    p.add_argument("--keep", action="store_true", help="reuse a running cluster instead of starting one")
    p.add_argument(
        "--skiff", action="store_true", help="tell the story with skiff even if kubectl is installed"
    )
    args = p.parse_args()
    started = time.monotonic()
    story = Story(args.config, None if args.skiff else shutil.which("kubectl"))

    if not args.keep:
        if cluster_running(args.state_dir):
            story.say("Stop the cluster an earlier run left")
            story.run("down", *(["--state-dir", args.state_dir] if args.state_dir else []))
        story.say("Bring up 3 masters, 5 workers and the load balancer, each its own process")
        # One balancer process: its round-robin is then exact, so ten requests reach ten pods. (With
        # several, the kernel spreads connections over processes that each keep their own rotation.)
        up = [
            "up",
            "--masters",
            "3",
            "--workers",
            "5",
            "--lb-workers",
            "1",
            "--http-port",
            str(args.http_port),
            "--fresh",
        ]
        if args.state_dir:
            up += ["--state-dir", args.state_dir]
        if args.config:
            up += ["--config", str(args.config)]
        story.run(*up)
    story.run("cluster", "status")

    story.say(f"Run the demo image as a deployment (told with {story.tool})")
    if story.kubectl:
        story.k("create", "deployment", "demo", "--image=jweissig/alpine-k8s-pod-lb-demo", "--port=5005")
    else:
        story.run("run", "demo", "--image=jweissig/alpine-k8s-pod-lb-demo", "--port=5005")
    story.wait("the first pod", lambda: len(story.ready_pods("demo")) >= 1)
    story.k("get", "deployment", "demo")
    story.k("get", "nodes")

    story.say("Expose it as a NodePort service, and route the ingress to it")
    story.k("expose", "deployment", "demo", "--target-port=5005", "--type=NodePort")
    story.k("get", "service", "demo")
    story.k("apply", "-f", str((EXAMPLES / "basic-ingress.yaml").relative_to(ROOT)))
    story.k("get", "ingress", "basic-ingress")

    story.say("Scale to ten replicas; the scheduler spreads them over the workers")
    story.k("scale", "--replicas=10", "deployment/demo")
    story.wait("10 ready pods", lambda: len(story.ready_pods("demo")) == 10)
    story.k("get", "deployments")

    config = json.loads(Path(story.env.get("SKIFF_CONFIG", Path.home() / ".skiff/config.json")).read_text())
    lb = config.get("lb") or {}
    address, port = lb.get("address", "127.0.0.1"), int(lb.get("httpPort", args.http_port))
    story.say(f"Ten requests through the ingress at http://{address}:{port}/, each on a new connection")
    names = []
    for i in range(10):
        status, host = http_get(address, port)
        names.append(host)
        print(f"  request {i + 1:2}: HTTP {status} from {host}")
    story.k("get", "pods", "-o", "wide")
    listed = {p["metadata"]["name"] for p in story.ready_pods("demo")}
    print(
        f"  {len(set(names))} distinct pods answered; all listed by `{story.tool} get pods`: {set(names) <= listed}"
    )

    story.say("Chaos: kill one container with kill -9; the agent restarts it")
    victim = story.ready_pods("demo")[0]
    pid = _container_pid(config, victim)
    if pid:
        print(f"$ kill -9 {pid}   # the container of {victim['metadata']['name']}")
        os.kill(pid, signal.SIGKILL)
        story.wait(
            "the container's restart",
            lambda: any(
                cs.get("restartCount", 0) > 0
                for cs in story.json("get", "pod", victim["metadata"]["name"])["status"].get(
                    "containerStatuses", []
                )
            ),
        )
        story.k("get", "pod", victim["metadata"]["name"])

    node = victim["spec"]["nodeName"]
    story.say(f"Chaos: kill the whole worker {node} (its agent and its containers)")
    story.run("kill", node, "--with-containers")
    story.wait(f"{node} NotReady", lambda: _node_ready(story, node) is False, timeout=30)
    story.k("get", "nodes")
    story.wait("10 ready pods on the other workers", lambda: _healed(story, node), timeout=60)
    story.k("get", "pods", "-o", "wide")

    story.say(f"Bring {node} back")
    story.run("start", node)
    print(f"\nThe demo took {time.monotonic() - started:.0f} s. The cluster is still running:")
    print(
        f"  skiff get pods -o wide          # what runs where (config: {story.env.get('SKIFF_CONFIG', '~/.skiff/config.json')})"
    )
    print("  kubectl get pods -o wide        # the same through the Kubernetes API (context skiff)")
    print(f"  curl http://{address}:{port}/    # through the load balancer")
    print("  make down                       # stop every process the cluster started")


def _container_pid(config: dict, pod: dict) -> int | None:
    """The host PID of the pod's container, read from its agent's state dir."""
    state_dir = Path(config.get("stateDir", ""))
    uid = pod["metadata"]["uid"]
    for path in state_dir.glob(f"workers/*/pods/{uid}/*/run.json"):
        try:
            return int(json.loads(path.read_text())["pid"])
        except (OSError, ValueError, KeyError):
            continue
    return None


def _node_ready(story: Story, node: str) -> bool:
    obj = story.json("get", "node", node)
    return any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in obj["status"].get("conditions") or []
    )


def _healed(story: Story, dead: str) -> bool:
    pods = story.ready_pods("demo")
    return len(pods) == 10 and all(p["spec"].get("nodeName") != dead for p in pods)


if __name__ == "__main__":
    main()
