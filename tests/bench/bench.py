#!/usr/bin/env python3
"""Stowage beside the registries users would otherwise run, measured in one run on one machine.

Starts stowage-local (embedded storage) and, beside it, Debian's docker-registry (CNCF
Distribution), Verdaccio and nginx; loads the same content into each; measures every read with
the same load generator, concurrency and duration (wrk for GET, hey for HEAD: wrk stalls on
HEAD answers that carry a length), authenticated on both sides; times a large layer push with
each server's peak memory; prints a table and writes it as JSON. Run by tests/bench/run.
"""

import argparse
import base64
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request

TOKEN = "stw_benchmarkAdminTokenNotASecret000000000"
PEER_USER, PEER_PASSWORD = "bench", "bench-password"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
NPM_ABBREVIATED = "application/vnd.npm.install-v1+json"


# --- HTTP without following redirects --------------------------------------------------------

class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def call(method, url, body=None, headers=None):
    """(status, headers, body) of one request; HTTP errors are answers, not exceptions."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with OPENER.open(request, timeout=120) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def expect(status, wanted, what, body=b""):
    if status not in wanted:
        raise SystemExit(f"{what}: HTTP {status} {body[:300]!r}")


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_answering(url, process, timeout=60.0):
    """Seconds until `url` answers anything, polled every 2 ms."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise SystemExit(f"{url}: the server exited with {process.returncode}")
        try:
            call("GET", url)
            return time.monotonic() - started
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.002)
    raise SystemExit(f"{url} did not answer within {timeout} s")


def peak_memory_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# --- Content, the same for every server ------------------------------------------------------

def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image():
    layer = os.urandom(4096)
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha256(layer)]},
    }).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": sha256(layer), "size": len(layer)}],
    }).encode()
    return config, layer, manifest


def npm_tarball(name, version):
    package = json.dumps({"name": name, "version": version, "main": "index.js"}).encode()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for path, data in [("package/package.json", package),
                           ("package/index.js", b"module.exports = (s, n) => s.padStart(n);\n")]:
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def npm_publication(name, version, tarball):
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode()
    return json.dumps({
        "_id": name, "name": name, "dist-tags": {"latest": version},
        "versions": {version: {
            "name": name, "version": version, "main": "index.js",
            "description": "pads strings", "_id": f"{name}@{version}",
            "dist": {"shasum": hashlib.sha1(tarball).hexdigest(), "integrity": integrity,
                     "tarball": f"http://placeholder/{name}/-/{name}-{version}.tgz"},
        }},
        "_attachments": {f"{name}-{version}.tgz": {
            "content_type": "application/octet-stream",
            "data": base64.b64encode(tarball).decode(), "length": len(tarball)}},
    }).encode()


# Pushes per server and layer size; the table shows the median.
PUSH_ROUNDS = 3

MAVEN_DIR = "com/acme/lib"
POM = b"""<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
<groupId>com.acme</groupId><artifactId>lib</artifactId><version>1.0</version></project>
"""


# --- Pushing to a registry (both speak the distribution API) ---------------------------------

def finishing_url(base, name, auth, digest):
    """Starts an upload session; the URL that finishes it with `digest`."""
    status, headers, body = call("POST", f"{base}/v2/{name}/blobs/uploads/", b"",
                                 {"Authorization": auth})
    expect(status, (202,), "start upload", body)
    location = headers["Location"]
    if location.startswith("/"):
        location = base + location
    separator = "&" if "?" in location else "?"
    return f"{location}{separator}digest={digest}"


def push_blob(base, name, data, auth):
    status, _, body = call("PUT", finishing_url(base, name, auth, sha256(data)), data,
                           {"Authorization": auth, "Content-Type": "application/octet-stream"})
    expect(status, (201,), "finish upload", body)


def push_image(base, name, auth, tags, content):
    config, layer, manifest = content
    for blob in (config, layer):
        push_blob(base, name, blob, auth)
    for tag in tags:
        status, _, body = call("PUT", f"{base}/v2/{name}/manifests/{tag}", manifest,
                               {"Authorization": auth, "Content-Type": OCI_MANIFEST})
        expect(status, (201,), "push manifest", body)


def push_layer_file(base, name, path, auth, process):
    """Streams a file as one blob (POST, then PUT with the body); MB/s and peak memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    url = finishing_url(base, name, auth, f"sha256:{digest.hexdigest()}")
    started = time.monotonic()
    result = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT", "-T", path,
         "-H", f"Authorization: {auth}", "-H", "Content-Type: application/octet-stream",
         url],
        capture_output=True, text=True, check=True)
    elapsed = time.monotonic() - started
    expect(int(result.stdout), (201,), "layer push")
    return os.path.getsize(path) / elapsed / 1e6, peak_memory_mib(process.pid)


# --- Load generation -------------------------------------------------------------------------

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(url, headers, duration, connections):
    command = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", url]
    for header in headers:
        command[1:1] = ["-H", header]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    latency = {}
    for percentile in ("50", "99"):
        value, unit = re.search(rf"\s{percentile}%\s+([\d.]+)(us|ms|s)\b", out).groups()
        latency[percentile] = float(value) * UNITS[unit]
    if "Non-2xx or 3xx responses" in out:
        raise SystemExit(f"{url}: errors under load:\n{out}")
    return rps, latency["50"], latency["99"]


def hey(url, headers, duration, connections):
    command = ["hey", "-z", f"{duration}s", "-c", str(connections), "-m", "HEAD"]
    for header in headers:
        command += ["-H", header]
    out = subprocess.run(command + [url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = float(re.search(r"50% in ([\d.]+) secs", out).group(1)) * 1e3
    p99 = float(re.search(r"99% in ([\d.]+) secs", out).group(1)) * 1e3
    statuses = re.findall(r"\[(\d{3})\]\s+\d+ responses", out)
    if any(not s.startswith(("2", "3")) for s in statuses):
        raise SystemExit(f"{url}: errors under load:\n{out}")
    return rps, p50, p99


def measure(method, url, headers, expected, args):
    status, _, body = call(method, url, None, dict(h.split(": ", 1) for h in headers))
    expect(status, expected, f"{method} {url}", body)
    tool = hey if method == "HEAD" else wrk
    return tool(url, headers, args.duration, args.connections)


# --- The servers -----------------------------------------------------------------------------

class Servers:
    def __init__(self, args, work):
        self.args, self.work, self.processes = args, work, []

    def start(self, command, log, **kwargs):
        process = subprocess.Popen(command, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                                   **kwargs)
        self.processes.append(process)
        return process

    def stop_all(self):
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()

    def stowage(self, data_dir, *extra):
        """stowage-local on `data_dir`; `extra` arguments such as --emulate-aws."""
        port = free_port()
        # Upstreams on loopback: the proxy rows' upstream is a local Verdaccio.
        env = dict(os.environ, STOWAGE_BOOTSTRAP_TOKEN=TOKEN, STOWAGE_LOG="warn",
                   STOWAGE_UPSTREAM_ALLOW_PRIVATE="1")
        started = time.monotonic()
        process = self.start([self.args.stowage, "--listen", f"127.0.0.1:{port}",
                              "--data-dir", data_dir, "--max-body-bytes", str(1 << 31),
                              *extra],
                             f"{self.work}/stowage{''.join(extra)}.log", env=env)
        base = f"http://127.0.0.1:{port}"
        wait_until_answering(f"{base}/v2/", process)
        return base, process, time.monotonic() - started

    def distribution(self):
        port = free_port()
        htpasswd = f"{self.work}/registry.htpasswd"
        # The cheapest bcrypt cost htpasswd allows: Distribution checks it on every request.
        subprocess.run(["htpasswd", "-B", "-C", "4", "-b", "-c", htpasswd, PEER_USER,
                        PEER_PASSWORD], check=True, capture_output=True)
        config = f"{self.work}/registry.yml"
        with open(config, "w") as f:
            f.write(f"""version: 0.1
log: {{level: error, accesslog: {{disabled: true}}}}
storage:
  filesystem: {{rootdirectory: {self.work}/registry-data}}
  cache: {{blobdescriptor: inmemory}}
  delete: {{enabled: true}}
http: {{addr: "127.0.0.1:{port}"}}
auth:
  htpasswd: {{realm: bench, path: {htpasswd}}}
""")
        process = self.start(["docker-registry", "serve", config], f"{self.work}/registry.log")
        base = f"http://127.0.0.1:{port}"
        wait_until_answering(f"{base}/v2/", process)
        return base, process

    def verdaccio(self, name="verdaccio", uplink=None):
        """A Verdaccio; with `uplink` (its URL and a token), a proxy of that registry."""
        port = free_port()
        config = f"{self.work}/{name}.yaml"
        uplinks, proxy = "{}", ""
        if uplink:
            url, token = uplink
            uplinks = f"{{up: {{url: '{url}/', auth: {{type: bearer, token: '{token}'}}}}}}"
            proxy = ", proxy: up"
        with open(config, "w") as f:
            f.write(f"""storage: {self.work}/{name}-storage
auth:
  htpasswd: {{file: {self.work}/{name}.htpasswd, max_users: 10}}
uplinks: {uplinks}
packages:
  '**': {{access: $authenticated, publish: $authenticated, unpublish: $authenticated{proxy}}}
server: {{keepAliveTimeout: 60}}
web: {{enable: false}}
# Signed tokens, as production set-ups use: checked without a password hash per request.
security:
  api: {{jwt: {{sign: {{expiresIn: 1d}}}}}}
max_body_size: 100mb
log: {{type: stdout, format: pretty, level: error}}
""")
        process = self.start([self.args.verdaccio, "--config", config,
                              "--listen", f"127.0.0.1:{port}"], f"{self.work}/{name}.log")
        base = f"http://127.0.0.1:{port}"
        wait_until_answering(f"{base}/-/ping", process)
        status, _, body = call("PUT", f"{base}/-/user/org.couchdb.user:{PEER_USER}",
                               json.dumps({"name": PEER_USER, "password": PEER_PASSWORD}).encode(),
                               {"Content-Type": "application/json"})
        expect(status, (201,), "verdaccio adduser", body)
        return base, process, json.loads(body)["token"]

    def nginx(self, root):
        port = free_port()
        htpasswd = f"{self.work}/nginx.htpasswd"
        subprocess.run(["htpasswd", "-s", "-b", "-c", htpasswd, PEER_USER, PEER_PASSWORD],
                       check=True, capture_output=True)
        config = f"{self.work}/nginx.conf"
        with open(config, "w") as f:
            f.write(f"""worker_processes auto;
pid {self.work}/nginx.pid;
error_log {self.work}/nginx-error.log error;
daemon off;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  types {{ application/xml xml; application/java-archive jar; }}
  default_type application/octet-stream;
  sendfile on;
  client_body_temp_path {self.work}/nginx-body;
  proxy_temp_path {self.work}/nginx-proxy;
  fastcgi_temp_path {self.work}/nginx-fastcgi;
  uwsgi_temp_path {self.work}/nginx-uwsgi;
  scgi_temp_path {self.work}/nginx-scgi;
  server {{
    listen 127.0.0.1:{port};
    root {root};
    auth_basic bench;
    auth_basic_user_file {htpasswd};
  }}
}}
""")
        process = self.start(["nginx", "-c", config, "-p", self.work], f"{self.work}/nginx.log")
        base = f"http://127.0.0.1:{port}"
        wait_until_answering(base, process)
        return base, process


# --- The run ---------------------------------------------------------------------------------

def load_stowage(base):
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    for path, body in [
        ("/api/workspaces", {"slug": "bench", "plan": "premium"}),
        ("/api/workspaces/bench/repositories", {"slug": "main"}),
        ("/api/workspaces/bench/packages", {"type": "container", "name": "app/server", "repository": "main"}),
        ("/api/workspaces/bench/packages", {"type": "container", "name": "app/big", "repository": "main"}),
        ("/api/workspaces/bench/packages", {"type": "npm", "name": "left-pad", "repository": "main"}),
        ("/api/workspaces/bench/packages", {"type": "maven", "name": "com.acme:lib", "repository": "main"}),
    ]:
        status, _, answer = call("POST", base + path, json.dumps(body).encode(), auth)
        expect(status, (201,), path, answer)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stowage", required=True, help="the stowage-local binary")
    parser.add_argument("--verdaccio", required=True, help="the verdaccio command")
    parser.add_argument("--duration", type=int, default=10, help="seconds per row")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--push-mib", type=int, default=256, help="the large layer's size")
    parser.add_argument("--versions", type=int, default=100, help="npm versions published")
    parser.add_argument("--out", required=True, help="where the JSON results go")
    parser.add_argument("--extra", help="JSON merged into the results (sizes, AWS calls)")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="stowage-bench-")
    servers = Servers(args, work)
    try:
        results = run(args, servers, work)
    finally:
        servers.stop_all()
    if args.extra:
        with open(args.extra) as f:
            results.update(json.load(f))
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)
    print_table(results)
    shutil.rmtree(work, ignore_errors=True)


def run(args, servers, work):
    stowage, stowage_process, first_start = servers.stowage(f"{work}/stowage-data")
    registry, registry_process = servers.distribution()
    verdaccio, verdaccio_process, verdaccio_token = servers.verdaccio()
    load_stowage(stowage)

    stowage_basic = basic("admin", TOKEN)
    registry_basic = basic(PEER_USER, PEER_PASSWORD)
    tags = [f"1.{i}" for i in range(20)]
    content = image()
    config = content[0]
    push_image(stowage, "bench/app/server", stowage_basic, tags, content)
    push_image(registry, "bench/app/server", registry_basic, tags, content)

    for minor in range(args.versions):
        version = f"1.{minor}.0"
        publication = npm_publication("left-pad", version, npm_tarball("left-pad", version))
        for base, auth in [(f"{stowage}/npm/bench", f"Bearer {TOKEN}"),
                           (verdaccio, f"Bearer {verdaccio_token}")]:
            status, _, body = call("PUT", f"{base}/left-pad", publication,
                                   {"Authorization": auth, "Content-Type": "application/json"})
            expect(status, (200, 201), f"publish {version}", body)

    # Maven: the same files deployed to Stowage, and laid out for nginx (the metadata as
    # Stowage generates it, byte for byte).
    root = f"{work}/maven-root"
    os.makedirs(f"{root}/{MAVEN_DIR}/1.0")
    jar = os.urandom(64 * 1024)
    for name, data in [("lib-1.0.pom", POM), ("lib-1.0.jar", jar)]:
        status, _, body = call("PUT", f"{stowage}/maven/bench/{MAVEN_DIR}/1.0/{name}", data,
                               {"Authorization": stowage_basic})
        expect(status, (201,), name, body)
        with open(f"{root}/{MAVEN_DIR}/1.0/{name}", "wb") as f:
            f.write(data)
    status, _, metadata = call("GET", f"{stowage}/maven/bench/{MAVEN_DIR}/maven-metadata.xml",
                               None, {"Authorization": stowage_basic})
    expect(status, (200,), "maven-metadata.xml", metadata)
    with open(f"{root}/{MAVEN_DIR}/maven-metadata.xml", "wb") as f:
        f.write(metadata)
    os.chmod(work, 0o755)
    nginx, _ = servers.nginx(root)

    # npm through a proxy: a package only the first Verdaccio has, cached by Stowage (an
    # upstream of repository "hub") and by a second Verdaccio (its uplink), each warmed by one
    # read of the document and the tarball.
    publication = npm_publication("up-pad", "1.0.0", npm_tarball("up-pad", "1.0.0"))
    status, _, body = call("PUT", f"{verdaccio}/up-pad", publication,
                           {"Authorization": f"Bearer {verdaccio_token}",
                            "Content-Type": "application/json"})
    expect(status, (200, 201), "publish up-pad", body)
    api = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    for path, body in [
        ("/api/workspaces/bench/repositories", {"slug": "hub"}),
        ("/api/workspaces/bench/repositories/hub/upstreams",
         {"type": "npm", "url": f"{verdaccio}/", "password": verdaccio_token}),
    ]:
        status, _, answer = call("POST", stowage + path, json.dumps(body).encode(), api)
        expect(status, (201,), path, answer)
    proxy, _, proxy_token = servers.verdaccio("verdaccio-proxy", (verdaccio, verdaccio_token))
    up_tarball = "up-pad/-/up-pad-1.0.0.tgz"
    for url, auth in [(f"{stowage}/npm/bench/up-pad", f"Bearer {TOKEN}"),
                      (f"{proxy}/up-pad", f"Bearer {proxy_token}")]:
        status, _, body = call("GET", url, None, {"Authorization": auth})
        expect(status, (200,), f"warm {url}", body)
        tarball_url = url.replace("/up-pad", f"/{up_tarball}")
        status, _, body = call("GET", tarball_url, None, {"Authorization": auth})
        expect(status, (200, 307), f"warm {tarball_url}", body)

    s_auth, r_auth = f"Authorization: {stowage_basic}", f"Authorization: {registry_basic}"
    x_auth = f"Authorization: Bearer {proxy_token}"
    v_auth = f"Authorization: Bearer {verdaccio_token}"
    n_auth = f"Authorization: {basic(PEER_USER, PEER_PASSWORD)}"
    oci_accept = f"Accept: {OCI_MANIFEST}"
    config_digest = sha256(config)
    tarball = "left-pad/-/left-pad-1.7.0.tgz"
    rows = [
        # (group, operation, method, stowage url, headers, expected, peer, peer url, headers, expected)
        ("containers", "manifest GET by tag", "GET",
         f"{stowage}/v2/bench/app/server/manifests/1.0", [s_auth, oci_accept], (200,),
         "docker-registry", f"{registry}/v2/bench/app/server/manifests/1.0", [r_auth, oci_accept], (200,)),
        ("containers", "manifest HEAD", "HEAD",
         f"{stowage}/v2/bench/app/server/manifests/1.0", [s_auth, oci_accept], (200,),
         "docker-registry", f"{registry}/v2/bench/app/server/manifests/1.0", [r_auth, oci_accept], (200,)),
        ("containers", "blob HEAD", "HEAD",
         f"{stowage}/v2/bench/app/server/blobs/{config_digest}", [s_auth], (200,),
         "docker-registry", f"{registry}/v2/bench/app/server/blobs/{config_digest}", [r_auth], (200,)),
        ("containers", "blob GET (Stowage: its redirect)", "GET",
         f"{stowage}/v2/bench/app/server/blobs/{config_digest}", [s_auth], (307,),
         "docker-registry", f"{registry}/v2/bench/app/server/blobs/{config_digest}", [r_auth], (200,)),
        ("containers", "tag list (20 tags)", "GET",
         f"{stowage}/v2/bench/app/server/tags/list", [s_auth], (200,),
         "docker-registry", f"{registry}/v2/bench/app/server/tags/list", [r_auth], (200,)),
        ("npm", f"abbreviated document, {args.versions} versions", "GET",
         f"{stowage}/npm/bench/left-pad", [s_auth, f"Accept: {NPM_ABBREVIATED}"], (200,),
         "verdaccio", f"{verdaccio}/left-pad", [v_auth, f"Accept: {NPM_ABBREVIATED}"], (200,)),
        ("npm", f"full document, {args.versions} versions", "GET",
         f"{stowage}/npm/bench/left-pad", [s_auth, "Accept: application/json"], (200,),
         "verdaccio", f"{verdaccio}/left-pad", [v_auth, "Accept: application/json"], (200,)),
        ("npm", "tarball GET (Stowage: its redirect)", "GET",
         f"{stowage}/npm/bench/{tarball}", [s_auth], (307,),
         "verdaccio", f"{verdaccio}/{tarball}", [v_auth], (200,)),
        ("npm proxy", "cached document through an upstream", "GET",
         f"{stowage}/npm/bench/up-pad", [s_auth, "Accept: application/json"], (200,),
         "verdaccio uplink", f"{proxy}/up-pad", [x_auth, "Accept: application/json"], (200,)),
        ("npm proxy", "cached tarball (Stowage: its redirect)", "GET",
         f"{stowage}/npm/bench/{up_tarball}", [s_auth], (307,),
         "verdaccio uplink", f"{proxy}/{up_tarball}", [x_auth], (200,)),
        ("maven", "pom GET (Stowage: its redirect)", "GET",
         f"{stowage}/maven/bench/{MAVEN_DIR}/1.0/lib-1.0.pom", [s_auth], (307,),
         "nginx", f"{nginx}/{MAVEN_DIR}/1.0/lib-1.0.pom", [n_auth], (200,)),
        ("maven", "jar HEAD", "HEAD",
         f"{stowage}/maven/bench/{MAVEN_DIR}/1.0/lib-1.0.jar", [s_auth], (200,),
         "nginx", f"{nginx}/{MAVEN_DIR}/1.0/lib-1.0.jar", [n_auth], (200,)),
        ("maven", "maven-metadata.xml GET", "GET",
         f"{stowage}/maven/bench/{MAVEN_DIR}/maven-metadata.xml", [s_auth], (200,),
         "nginx", f"{nginx}/{MAVEN_DIR}/maven-metadata.xml", [n_auth], (200,)),
    ]
    measured = []
    for (group, operation, method, s_url, s_headers, s_expected,
         peer, p_url, p_headers, p_expected) in rows:
        s_rps, s_p50, s_p99 = measure(method, s_url, s_headers, s_expected, args)
        p_rps, p_p50, p_p99 = measure(method, p_url, p_headers, p_expected, args)
        target = 0.5 if peer == "nginx" else 1.0
        measured.append({
            "group": group, "operation": operation, "peer": peer,
            "stowage": {"rps": s_rps, "p50_ms": s_p50, "p99_ms": s_p99},
            "peer_result": {"rps": p_rps, "p50_ms": p_p50, "p99_ms": p_p99},
            "ratio": s_rps / p_rps, "target": target, "met": s_rps / p_rps >= target,
        })
        print(f"  {operation}: {s_rps:,.0f} vs {p_rps:,.0f} req/s", file=sys.stderr)

    # The push: a small layer first, then the large one, three rounds each, alternating the
    # servers; the median rate and the peak memory after the rounds. Each round pushes new
    # content, so every push stores a new blob. Stowage makes every part durable (fsync) before
    # it records it and Distribution does not, so the disk is flushed before each push: neither
    # pays for what was written before it. Beside them, the AWS deployment's shape
    # (--emulate-aws: the POST through the Lambda path, the body to the upload service).
    emulated, emulated_process, _ = servers.stowage(f"{work}/emulated-data", "--emulate-aws")
    load_stowage(emulated)
    pushes = {}
    for size_mib in (args.push_mib // 8, args.push_mib):
        rates = {}
        peaks = {}
        for round_number in range(PUSH_ROUNDS):
            path = f"{work}/layer-{size_mib}-{round_number}"
            with open(path, "wb") as f:
                for _ in range(size_mib):
                    f.write(os.urandom(1 << 20))
            for name, base, auth, process in [
                ("stowage", stowage, stowage_basic, stowage_process),
                ("stowage --emulate-aws", emulated, stowage_basic, emulated_process),
                ("docker-registry", registry, registry_basic, registry_process),
            ]:
                os.sync()
                mbps, peak = push_layer_file(base, "bench/app/big", path, auth, process)
                rates.setdefault(name, []).append(mbps)
                peaks[name] = peak
            os.remove(path)
        for name, measured_rates in rates.items():
            pushes.setdefault(name, []).append({
                "layer_mib": size_mib, "mb_per_s": statistics.median(measured_rates),
                "rounds_mb_per_s": measured_rates, "peak_memory_mib": peaks[name]})

    # From process start to the first answered request, on the loaded data.
    stowage_process.terminate()
    stowage_process.wait()
    starts = []
    for _ in range(5):
        _, process, seconds = servers.stowage(f"{work}/stowage-data")
        starts.append(seconds * 1000)
        process.terminate()
        process.wait()
    return {
        "machine": machine(),
        "settings": {"duration_s": args.duration, "connections": args.connections,
                     "load_generators": "wrk -t2 (GET), hey (HEAD), on the same machine"},
        "rows": measured,
        "push": pushes,
        "stowage_startup_ms": {"first": first_start * 1000, "median_of_5": statistics.median(starts)},
        "peers": {"docker-registry": peer_version(["docker-registry", "--version"]),
                  "verdaccio": peer_version([args.verdaccio, "--version"]),
                  "nginx": peer_version(["nginx", "-v"])},
    }


def peer_version(command):
    result = subprocess.run(command, capture_output=True, text=True)
    return (result.stdout + result.stderr).strip().splitlines()[0]


def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cpu": model, "cores": os.cpu_count(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)}


def print_table(results):
    print(f"\nMachine: {results['machine']['cores']} cores, {results['machine']['cpu']}; "
          f"{results['settings']['connections']} connections, "
          f"{results['settings']['duration_s']} s per row, {results['settings']['load_generators']}\n")
    print("| Row | Peer | Stowage req/s | p50 / p99 ms | Peer req/s | p50 / p99 ms | Ratio | Target |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for row in results["rows"]:
        s, p = row["stowage"], row["peer_result"]
        mark = "" if row["met"] else " (missed)"
        print(f"| {row['group']}: {row['operation']} | {row['peer']} | {s['rps']:,.0f} | "
              f"{s['p50_ms']:.2f} / {s['p99_ms']:.2f} | {p['rps']:,.0f} | "
              f"{p['p50_ms']:.2f} / {p['p99_ms']:.2f} | {row['ratio']:.2f}× | ≥{row['target']}×{mark} |")
    print(f"\n| Push | Layer | MB/s (median of {PUSH_ROUNDS}) | Rounds | Peak memory (MiB) |")
    print("|---|---:|---:|---:|---:|")
    for name, pushes in results["push"].items():
        for push in pushes:
            rounds = " / ".join(f"{rate:.0f}" for rate in push["rounds_mb_per_s"])
            print(f"| {name} | {push['layer_mib']} MiB | {push['mb_per_s']:.0f} | {rounds} | "
                  f"{push['peak_memory_mib']:.0f} |")
    startup = results["stowage_startup_ms"]
    print(f"\nstowage-local, process start to first answered request: "
          f"{startup['median_of_5']:.0f} ms (median of 5; first start on empty data "
          f"{startup['first']:.0f} ms)")
    for name, size in results.get("binary_sizes_kib", {}).items():
        print(f"  {name}: {size:,} KiB")
    if results.get("aws_calls"):
        print("\nAWS calls per request (DynamoDB and S3 on moto; budgets asserted by the suite):")
        print("| Operation | DynamoDB | S3 | Budget | Calls |")
        print("|---|---:|---:|---:|---|")
        for row in results["aws_calls"]:
            print(f"| {row['operation']} | {row['dynamodb_calls']} | {row['s3_calls']} | "
                  f"≤{row['budget_dynamodb']} | {row['calls']} |")


if __name__ == "__main__":
    main()
