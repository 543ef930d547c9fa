"""agentlab: two (or more) vgpumig agents on loopback, for integration tests.

Each Lab makes a private temp dir with test certificates (scripts/mkcerts),
and per host: a vgpu-sysfs-emu mount, a state dir, a unix socket, a TCP port
for the mutual-TLS peer API, and a config with libvirt_uri=none and every
other host as a [peer NAME].  Everything started is stopped by pid and
unmounted when the Lab closes (also on failure and on SIGTERM).

Only the Python standard library is used.  Helpers talk to the agents the
way real clients do: HTTP over the unix socket (local API), HTTPS with a
client certificate (peer API), the vgpumig CLI and the hook binary.
"""

import http.client
import json
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid

BUILD = os.environ.get("VGPUMIG_BUILD") or os.path.join(os.path.dirname(__file__), "../../../build")
SRC = os.environ.get("VGPUMIG_SRC") or os.path.join(os.path.dirname(__file__), "../../..")
AGENT = os.path.join(BUILD, "agent/vgpumigd")
CLI = os.path.join(BUILD, "cli/vgpumig")
HOOK = os.path.join(BUILD, "hook/vgpumig-hook")
EMU = os.path.join(BUILD, "tools/vgpu-sysfs-emu")
MKCERTS = os.path.join(SRC, "scripts/mkcerts")
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
METADATA_NS = "http://vgpumig.dev/xmlns/domain/1"

failures = []


def check(cond, what):
    """Record one assertion; the test goes on so one run shows every failure."""
    if cond:
        print(f"ok   {what}", flush=True)
    else:
        print(f"FAIL {what}", flush=True)
        failures.append(what)
    return cond


def finish():
    if failures:
        print(f"{len(failures)} check(s) failed:", file=sys.stderr)
        for f in failures:
            print(f"  {f}", file=sys.stderr)
        sys.exit(1)
    print("all checks passed")
    sys.exit(0)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout=10.0, step=0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class Reply:
    def __init__(self, status, body, ctype):
        self.status = status
        self.body = body
        self.ctype = ctype or ""

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


def http_request(conn, method, path, body=None, ctype="application/json"):
    headers = {}
    if body is not None:
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        headers["Content-Type"] = ctype
    try:
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        return Reply(r.status, r.read(), r.getheader("Content-Type"))
    finally:
        conn.close()


class Host:
    def __init__(self, lab, name, index):
        self.lab = lab
        self.name = name
        self.dir = os.path.join(lab.dir, name)
        self.mount = os.path.join(self.dir, "sysfs")
        self.state = os.path.join(self.dir, "state")
        self.socket = os.path.join(self.dir, "a.sock")
        self.port = free_port()
        self.ip = "127.0.0.1"
        self.conf = os.path.join(self.dir, "vgpumigd.conf")
        self.log = os.path.join(self.dir, "agent.log")
        self.cert = os.path.join(lab.certs, f"{name}.pem")
        self.key = os.path.join(lab.certs, f"{name}-key.pem")
        self.agent = None
        self.emu = None
        self.extra = {}
        self.libvirt_uri_as_peer = None  # what other hosts' configs name (default qemu+tcp)
        os.makedirs(self.mount)
        os.makedirs(self.state)

    # ---- emulator ----
    def start_emulator(self, catalog="A100", gpus=2, driver="550.90.05"):
        log = open(os.path.join(self.dir, "emu.log"), "w")
        self.emu = subprocess.Popen([EMU, "--catalog", catalog, "--gpus", str(gpus),
                                     "--driver-version", driver, "-f", self.mount],
                                    stdout=log, stderr=subprocess.STDOUT)
        ok = wait_for(lambda: os.path.isdir(os.path.join(self.mount, "sys/bus/pci/devices"))
                      or self.emu.poll() is not None)
        if self.emu.poll() is not None or not ok:
            raise RuntimeError(f"{self.name}: emulator did not mount: {open(log.name).read()}")

    def stop_emulator(self):
        if self.emu:
            subprocess.run(["fusermount3", "-u", "-z", self.mount], stderr=subprocess.DEVNULL)
            try:
                self.emu.wait(5)
            except subprocess.TimeoutExpired:
                self.emu.kill()
                self.emu.wait()
            self.emu = None

    def emu_control(self, line):
        with open(os.path.join(self.mount, ".vgpu-emu/control"), "w") as f:
            f.write(line)

    def mdevs(self):
        """{uuid: type_id} of the mdev instances in the emulated sysfs."""
        d = os.path.join(self.mount, "sys/bus/mdev/devices")
        out = {}
        for u in sorted(os.listdir(d)):
            t = os.path.basename(os.readlink(os.path.join(d, u, "mdev_type")))
            out[u] = t
        return out

    def parents(self):
        d = os.path.join(self.mount, "sys/class/mdev_bus")
        return sorted(os.listdir(d))

    def create_mdev(self, type_id, uuid, parent=None):
        """Create an instance behind the agent's back (as another tool would)."""
        for p in ([parent] if parent else self.parents()):
            t = os.path.join(self.mount, "sys/class/mdev_bus", p, "mdev_supported_types", type_id)
            try:
                if int(open(os.path.join(t, "available_instances")).read()) < 1:
                    continue
                with open(os.path.join(t, "create"), "w") as f:
                    f.write(uuid)
                return p
            except OSError:
                continue
        raise RuntimeError(f"{self.name}: cannot create {type_id} {uuid}")

    # ---- agent ----
    def write_config(self, **extra):
        cfg = {
            "host_name": self.name,
            "state_dir": self.state,
            "sysfs_root": self.mount,
            "socket": self.socket,
            "listen": f"127.0.0.1:{self.port}",
            "tls_cert": self.cert,
            "tls_key": self.key,
            "tls_ca": self.lab.ca,
            "libvirt_uri": "none",
            "log_level": "debug",
        }
        cfg.update(self.extra)
        cfg.update(extra)
        lines = ["[vgpumigd]"] + [f"{k} = {v}" for k, v in cfg.items() if v is not None]
        for h in self.lab.hosts.values():
            if h is not self:
                uri = h.libvirt_uri_as_peer or f"qemu+tcp://{h.name}/system"
                lines += ["", f"[peer {h.name}]", f"address = 127.0.0.1:{h.port}",
                          f"libvirt_uri = {uri}", "migration_tls = no"]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start_agent(self, env=None, wait=True, **extra):
        self.write_config(**extra)
        e = dict(os.environ)
        e.update(env or {})
        log = open(self.log, "a")
        log.write(f"---- start {time.strftime('%T')} env={env}\n")
        log.flush()
        self.agent = subprocess.Popen([AGENT, "--config", self.conf], stdout=log,
                                      stderr=subprocess.STDOUT, env=e)
        if wait:
            self.wait_ready()
        return self.agent

    def wait_ready(self, timeout=15):
        def ready():
            if self.agent.poll() is not None:
                return True
            try:
                return self.local("GET", "/v1/host").status == 200
            except OSError:
                return False
        wait_for(ready, timeout, 0.02)
        if self.agent.poll() is not None:
            raise RuntimeError(f"{self.name}: agent exited with {self.agent.returncode}:\n"
                               + self.log_tail())

    def log_tail(self, n=40):
        try:
            return "".join(open(self.log).readlines()[-n:])
        except OSError:
            return ""

    def stop_agent(self, sig=signal.SIGTERM):
        if self.agent and self.agent.poll() is None:
            self.agent.send_signal(sig)
            try:
                self.agent.wait(10)
            except subprocess.TimeoutExpired:
                self.agent.kill()
                self.agent.wait()
        rc = self.agent.returncode if self.agent else None
        self.agent = None
        return rc

    # ---- talking to it ----
    def local(self, method, path, body=None, ctype="application/json", timeout=30):
        return http_request(UnixHTTPConnection(self.socket, timeout), method, path, body, ctype)

    def peer(self, method, path, body=None, as_host=None, cert=None, key=None, ca=None,
             ctype="application/json", timeout=30):
        """HTTPS to this host's peer API, presenting as_host's certificate
        (or cert/key; cert=False presents none)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(ca or self.lab.ca)
        if cert is None and as_host is not None:
            cert, key = as_host.cert, as_host.key
        if cert:
            ctx.load_cert_chain(cert, key)
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=timeout)
        return http_request(conn, method, path, body, ctype)

    def cli(self, *args, user=None, stdin=None, check_rc=None):
        cmd = [CLI, "--socket", self.socket] + list(args)
        if user:
            pw = pwd.getpwnam(user)
            cmd = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups"] + cmd
        p = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60)
        return p

    def cli_json(self, *args):
        p = self.cli("--json", *args)
        if p.returncode != 0:
            raise RuntimeError(f"{self.name}: vgpumig {' '.join(args)}: rc {p.returncode}: {p.stderr}")
        return json.loads(p.stdout)

    def claims(self):
        """Claims as `vgpumig claims --json` reports them (a list)."""
        j = self.cli_json("claims")
        return j["claims"] if isinstance(j, dict) else j

    def hook(self, domain, op, sub_op, stdin=b"", env=None, timeout=60):
        e = dict(os.environ)
        e["VGPUMIG_SOCKET"] = self.socket
        e["VGPUMIG_HOOK_CONFIG"] = "/nonexistent"
        e.update(env or {})
        return subprocess.run([HOOK, domain, op, sub_op, "-"], input=stdin, capture_output=True,
                              env=e, timeout=timeout)


class Lab:
    def __init__(self, names=("host-a", "host-b")):
        self.dir = tempfile.mkdtemp(prefix="vgm-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.certs = os.path.join(self.dir, "certs")
        subprocess.run([MKCERTS, self.certs] + list(names), check=True)
        self.ca = os.path.join(self.certs, "ca.pem")
        self.hosts = {}
        for i, n in enumerate(names):
            self.hosts[n] = Host(self, n, i)
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))

    def __getitem__(self, name):
        return self.hosts[name]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def start(self, catalog="A100", gpus=2, **agent_extra):
        for h in self.hosts.values():
            h.start_emulator(catalog, gpus)
        for h in self.hosts.values():
            h.start_agent(**agent_extra)
        return self

    def close(self):
        failed = bool(failures) or sys.exc_info()[0] is not None
        for h in self.hosts.values():
            try:
                h.stop_agent()
            except Exception:
                pass
            if failed:
                print(f"---- {h.name} agent log (tail) ----\n{h.log_tail()}", file=sys.stderr)
        for h in self.hosts.values():
            h.stop_emulator()
        shutil.rmtree(self.dir, ignore_errors=True)


def claim_body(migration_id, source_host, devices, domain_uuid=None, domain_name="vm1"):
    return {
        "migration_id": migration_id,
        "domain_uuid": domain_uuid or "6a1e0cbb-0000-4000-8000-" + migration_id.encode().hex()[-12:].rjust(12, "0"),
        "domain_name": domain_name,
        "source_host": source_host,
        "devices": devices,
    }


def device(source_id, profile="NVIDIA A100-4C", fb_mib=4096, type_id="nvidia-471", kind="mdev"):
    return {"source_id": source_id, "kind": kind, "profile_name": profile,
            "framebuffer_bytes": fb_mib * 1024 * 1024, "type_id": type_id}


def domain_file(lab, name, vgpu, profile="NVIDIA A100-4C", type_id="nvidia-471", fb_mib=4096,
                viommu=False, meta=True):
    """Write a domain XML (data/vgpu.xml.in) with one mdev vGPU, and with
    vgpumig metadata naming its profile when meta; returns its path."""
    template = open(os.path.join(DATA, "vgpu.xml.in")).read()
    hostdev = (f"    <hostdev mode='subsystem' type='mdev' managed='no' model='vfio-pci'>\n"
               f"      <source>\n        <address uuid='{vgpu}'/>\n      </source>\n    </hostdev>")
    if viommu:
        hostdev += "\n    <iommu model='intel'/>"
    md = (f"    <vgpumig:vgpus xmlns:vgpumig=\"{METADATA_NS}\">\n"
          f"      <vgpumig:vgpu id='{vgpu}' kind='mdev' profile='{profile}' type='{type_id}' "
          f"framebuffer='{fb_mib * 1024 * 1024}'/>\n    </vgpumig:vgpus>") if meta else ""
    xml = (template.replace("@NAME@", name).replace("@DOMUUID@", str(uuid.uuid4()))
           .replace("@META@", md).replace("@HOSTDEVS@", hostdev))
    path = os.path.join(lab.dir, f"{name}.xml")
    with open(path, "w") as f:
        f.write(xml)
    return path


def owners(host):
    """{target_id: [claim ids]} over the live (held/committed) claims."""
    out = {}
    for c in host.claims():
        if c.get("state") in ("released",):
            continue
        for m in c.get("mapping") or c.get("devices") or []:
            out.setdefault(m["target_id"], []).append(c["claim_id"])
    return out
