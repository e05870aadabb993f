"""`sam local start-api` on this machine: no Docker engine, no registry to pull from, no network.

What SAM needs and how the harness gives it (see shared TESTING.md, "AWS SAM without Docker"):

* A Docker-compatible engine: podman's Docker API (`PodmanService`: `podman system service`
  on a unix socket, with storage, run root and configuration of its own under a temp dir).
* A Lambda base image, which cannot be pulled here: `write_base_image_tar` makes a stand-in
  from files on this machine (the Python 3.12 that `make sam-build` built with, its shared
  libraries, busybox-static, and `.aws-sam/runtime/python`, i.e. boto3 + awslambdaric as the
  real runtime has them in /var/runtime); `podman import` turns it into an image. SAM adds
  its Runtime Interface Emulator and the layer on top (`--invoke-image ... --skip-pull-image`).
* The built artefact of this machine's architecture: `.aws-sam/host` (`make sam-build`).
* A network that cannot reach anything but itself: everything runs in a new network
  namespace (`unshare`), see `harness.sam_local_scenario`, which this module launches
  (`run_scenario`) and whose JSON report the test asserts on.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from harness.clients import Podman
from harness.procs import HarnessError, Process, clean_env, wait_until
from harness.tools import beside_python, in_ci, require, require_path

REPO_ROOT = Path(__file__).resolve().parents[2]
TESTS = REPO_ROOT / "tests"
#: The stand-in base image, as `podman import` tags it.
BASE_IMAGE = "localhost/ociwrap-lambda-python:3.12"
#: Lambda's own layout: the runtime's Python in /var/lang, its client in /var/runtime,
#: the function in /var/task, layers in /opt.
LANG = "var/lang"
#: What the Lambda Python runtime's bootstrap puts on the path, in Lambda's order:
#: function, layer, runtime (so a function or layer can bring a newer boto3).
PYTHONPATH = "/var/task:/opt/python/lib/python3.12/site-packages:/opt/python:/var/runtime"
#: LD_LIBRARY_PATH as Lambda sets it; /var/lang/lib first, because the pyenv Python carries
#: a RUNPATH to its own prefix (/root/.pyenv/...), which does not exist in the image.
LD_LIBRARY_PATH = (
    "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib"
)
BOOTSTRAP = f"""#!/bin/sh
# Stand-in for the python3.12 runtime's bootstrap: the Runtime Interface Emulator starts it
# with AWS_LAMBDA_RUNTIME_API set; awslambdaric then polls that API for events.
export LD_LIBRARY_PATH={LD_LIBRARY_PATH}
export PYTHONPATH={PYTHONPATH}
exec /var/lang/bin/python3.12 -m awslambdaric "${{_HANDLER:-$AWS_LAMBDA_FUNCTION_HANDLER}}"
"""
#: Parts of the standard library no Lambda function needs (the real runtime lacks most too):
#: tests, GUI, installers, the static library for embedding, and pip's site-packages.
STDLIB_SKIP = frozenset(
    {
        "test",
        "idlelib",
        "tkinter",
        "turtledemo",
        "ensurepip",
        "lib2to3",
        "pydoc_data",
        "site-packages",
        "venv",
        "config-3.12-x86_64-linux-gnu",
        "config-3.12-aarch64-linux-gnu",
    }
)
#: Extension modules of the skipped parts (Tk pulls in X11) and CPython's own test modules.
DYNLOAD_SKIP = ("_tkinter", "_test", "_xxtest", "xxlimited", "xxsubtype", "_ctypes_test")
_LDD_LINE = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x[0-9a-f]+\)")


# -- the stand-in base image ----------------------------------------------------------------


def shared_libraries(binaries: Iterable[Path], inside: Iterable[Path] = ()) -> set[Path]:
    """The absolute paths of the shared libraries `binaries` load (ldd), the loader too.

    Left out: libpython (the image has its own copy in /var/lang/lib) and libraries under
    `inside` (a wheel's bundled `.libs`: they go into the image with their package)."""
    roots = [root.resolve() for root in inside]
    found: set[Path] = set()
    for binary in binaries:
        result = subprocess.run(
            ["ldd", str(binary)], capture_output=True, text=True, check=False, timeout=30
        )
        if result.returncode != 0:  # "not a dynamic executable": static, nothing to add
            continue
        for line in result.stdout.splitlines():
            if "not found" in line:
                raise HarnessError(f"{binary} needs a library this machine lacks: {line.strip()}")
            match = _LDD_LINE.search(line)
            if not match or "libpython" in match[1]:
                continue
            library = Path(match[1])
            if not any(library.resolve().is_relative_to(root) for root in roots):
                found.add(library)
    return found


def _elf_files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*.so*")):
        if path.is_file() and not path.is_symlink():
            yield path


def _dynload(stdlib: Path) -> list[Path]:
    """The extension modules the image keeps."""
    return [
        path
        for path in _elf_files(stdlib / "lib-dynload")
        if not path.name.startswith(DYNLOAD_SKIP)
    ]


def _root_owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _stdlib_filter(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    """What of the standard library goes in as it is (see `STDLIB_SKIP`)."""
    parts = info.name.split("/")  # var/lang/lib/python3.12/<top>/...
    top = parts[4] if len(parts) > 4 else ""
    if top in STDLIB_SKIP or info.name.endswith((".opt-1.pyc", ".opt-2.pyc")):
        return None
    if top == "lib-dynload" and info.isfile():
        return None  # added one by one, stripped
    return _root_owned(info)


class _RootFs:
    """A tar being filled as a root file system: root-owned entries, parents made first,
    shared objects without their debug sections when `strip` exists (the pyenv build's
    libpython is 30 MB with them, 8 MB without)."""

    def __init__(self, tar: tarfile.TarFile, scratch: Path) -> None:
        self.tar = tar
        self.scratch = scratch
        self.directories: set[str] = set()
        self.strip = shutil.which("strip")

    def directory(self, name: str, mode: int = 0o755) -> None:
        parts = name.split("/")
        for i in range(1, len(parts) + 1):
            path = "/".join(parts[:i])
            if path in self.directories:
                continue
            self.directories.add(path)
            info = tarfile.TarInfo(path)
            info.type = tarfile.DIRTYPE
            info.mode = mode if i == len(parts) else 0o755
            self.tar.addfile(_root_owned(info))

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self.directory(name.rsplit("/", 1)[0])
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = mode
        self.tar.addfile(_root_owned(info), io.BytesIO(data))

    def symlink(self, name: str, target: str) -> None:
        info = tarfile.TarInfo(name)
        info.type = tarfile.SYMTYPE
        info.linkname = target
        info.mode = 0o777
        self.tar.addfile(_root_owned(info))

    def tree(
        self,
        source: Path,
        name: str,
        keep: Callable[[tarfile.TarInfo], tarfile.TarInfo | None] = _root_owned,
    ) -> None:
        """`source` (a file, or a directory with everything below it) at `name`: what
        `keep` keeps (a directory it drops is not entered).

        podman refuses a layer that names a path twice, so a directory already in the tar
        is not added again, but entered."""
        self.directory(name.rsplit("/", 1)[0])
        pending = [(source, name)]
        while pending:
            path, arcname = pending.pop()
            info = keep(self.tar.gettarinfo(str(path), arcname))
            if info is None:
                continue
            if info.isdir():
                if info.name not in self.directories:
                    self.directories.add(info.name)
                    self.tar.addfile(info)
                children = sorted(path.iterdir(), reverse=True)
                pending += [(child, f"{arcname}/{child.name}") for child in children]
            elif info.isfile():
                with open(path, "rb") as data:
                    self.tar.addfile(info, data)
            else:
                self.tar.addfile(info)

    def native(self, source: Path, name: str) -> None:
        """A binary or shared object at `name`, stripped of debug sections if possible."""
        self.directory(name.rsplit("/", 1)[0])
        copy = self.scratch / f"{len(list(self.scratch.iterdir()))}-{source.name}"
        stripped = self.strip is not None and (
            subprocess.run(
                [self.strip, "--strip-debug", "-o", str(copy), str(source.resolve())],
                capture_output=True,
                check=False,
                timeout=60,
            ).returncode
            == 0
        )
        self.tar.add(copy if stripped else source.resolve(), name, filter=_root_owned)


def write_base_image_tar(
    dest: Path, python: Path, runtime: Path, extra_native: Iterable[Path] = ()
) -> Path:
    """A root file system for `podman import`: Lambda's python3.12 runtime, from this machine.

    * `/var/lang`: the prefix of `python` (a 3.12 built with a shared libpython), without
      the parts `STDLIB_SKIP` names; lib-dynload kept.
    * the shared libraries the interpreter, lib-dynload, `runtime` and `extra_native` (the
      layer's compiled packages) link to, at the paths ldd found them;
    * `/bin/busybox` and a link per applet (SAM's generated Dockerfile runs `mv`, `chmod`);
    * `/var/runtime`: `runtime` (boto3, awslambdaric) and `BOOTSTRAP`.
    """
    require("busybox")
    prefix = python.resolve().parents[1]
    stdlib = prefix / "lib" / "python3.12"
    libpython = prefix / "lib" / "libpython3.12.so.1.0"
    if not (stdlib / "os.py").is_file() or not libpython.is_file():
        raise HarnessError(f"{python} is not a Python 3.12 with a shared libpython ({prefix})")
    packages = [runtime, *extra_native]
    natives = [python.resolve(), libpython, *_dynload(stdlib)]
    for root in packages:
        natives += _elf_files(root)
    busybox = Path(shutil.which("busybox") or "/bin/busybox").resolve()
    applets = subprocess.run(
        [str(busybox), "--list"], capture_output=True, text=True, check=True, timeout=30
    ).stdout.split()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rootfs-") as scratch, tarfile.open(dest, "w") as tar:
        fs = _RootFs(tar, Path(scratch))
        for name in ("etc", "opt", "var/task", "var/runtime"):
            fs.directory(name)
        fs.directory("tmp", 0o1777)
        fs.native(python, f"{LANG}/bin/python3.12")
        fs.symlink(f"{LANG}/bin/python3", "python3.12")
        fs.symlink(f"{LANG}/bin/python", "python3.12")
        fs.native(libpython, f"{LANG}/lib/{libpython.name}")
        fs.tree(stdlib, f"{LANG}/lib/python3.12", _stdlib_filter)
        for module in _dynload(stdlib):
            fs.native(module, f"{LANG}/lib/python3.12/lib-dynload/{module.name}")
        for library in sorted(shared_libraries(natives, packages)):
            fs.native(library, library.as_posix().lstrip("/"))
        fs.tree(busybox, "bin/busybox")
        for applet in applets:
            if applet != "busybox":
                fs.symlink(f"bin/{applet}", "busybox")
        fs.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
        fs.file("etc/group", b"root:x:0:\n")
        fs.tree(runtime, "var/runtime")
        fs.file("var/runtime/bootstrap", BOOTSTRAP.encode(), 0o755)
    return dest


# -- podman's Docker API ----------------------------------------------------------------------


class PodmanService(Podman):
    """`podman system service` on a unix socket: the Docker-compatible engine SAM talks to.

    Same private storage, run root and flags as `harness.clients.Podman`, with a
    containers.conf of its own: SAM's containers need podman's default bridge network
    (SAM publishes the emulator's port 8080 to 127.0.0.1 and connects to it), so no
    `netns = "none"`; the ulimits go in `default_ulimits` because SAM cannot pass them and
    podman's defaults cannot be set in this sandbox ("error setting rlimit"); networks are
    configured in the work dir, not /etc/containers/networks.
    """

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        (self.workdir / "networks").mkdir(exist_ok=True)
        ulimits = ", ".join(f'"{value}"' for value in self.ULIMITS[1::2])
        (self.workdir / "containers.conf").write_text(
            "[containers]\n"
            f"default_ulimits = [{ulimits}]\n"
            "[engine]\n"
            'runtime = "runc"\n'
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
            f'events_logfile_path = "{self.workdir / "events.log"}"\n'
            "[network]\n"
            f'network_config_dir = "{self.workdir / "networks"}"\n'
        )
        # A unix socket path must fit in 108 bytes: the short run root, not the work dir.
        self.socket = self.runroot / "podman.sock"
        self.docker_host = f"unix://{self.socket}"
        self.process = Process(
            "podman-service",
            self.argv("system", "service", "--time=0", self.docker_host),
            self.workdir,
            env=self.env,
        )

    def start(self, timeout: float = 30.0) -> PodmanService:
        """Start the service and wait until its Docker API answers `/_ping`."""
        self.process.start()

        def pinging() -> bool:
            if self._pings():
                return True
            if not self.process.alive:
                raise HarnessError("podman system service exited\n" + self.process.tail())
            return False

        if not wait_until(pinging, timeout, interval=0.1):
            self.process.stop()
            raise HarnessError(f"podman's API did not answer in {timeout:.0f} s")
        return self

    def _pings(self) -> bool:
        """Whether the API answers `GET /_ping` with 200 (HTTP/1.0 over the unix socket)."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(2)
                sock.connect(str(self.socket))
                sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: podman\r\n\r\n")
                status_line = sock.recv(64).split(b"\r\n", 1)[0]
        except OSError:
            return False
        return status_line.split(b" ")[1:2] == [b"200"]

    def import_image(self, tar: Path, ref: str, changes: Iterable[str] = ()) -> str:
        """`podman import` a root file system tar as image `ref`; returns the image id."""
        flags = [arg for change in changes for arg in ("--change", change)]
        return self.command("import", "--quiet", *flags, str(tar), ref).stdout.strip()

    def gateway_address(self, network: str = "podman") -> str:
        """The bridge's own address on `network`: how a container reaches this namespace."""
        inspected = json.loads(self.command("network", "inspect", network).stdout)
        return str(inspected[0]["subnets"][0]["gateway"])

    def container_ids(self) -> list[str]:
        """Every container in this storage, running or not."""
        out = self.command("ps", "--all", "--quiet", "--no-trunc").stdout
        return out.split()

    def remove_containers(self) -> list[str]:
        """Remove every container (force: running ones are killed); returns their ids."""
        ids = self.container_ids()
        if ids:
            self.command("rm", "--force", "--time", "2", *ids, check=False)
        return ids

    def stop(self) -> None:
        """Stop the service (its process group), then remove the short run root."""
        self.process.stop()
        self.close()


# -- sam local start-api -----------------------------------------------------------------------


def sam_executable() -> str:
    """The `sam` installed with the dev requirements (beside this Python), else PATH's."""
    return beside_python("sam") or shutil.which("sam") or "sam"


class SamLocalApi:
    """`sam local start-api` of a built template against a Docker-compatible engine.

    SAM is given a home, temp dir and layer cache of its own (it writes its settings,
    build locks and layer copies there), dummy AWS credentials and region (the function
    gets them as its role's), no telemetry, and `--no-watch` (it would restart the warm
    container whenever the build directory changes).
    """

    def __init__(
        self,
        workdir: Path,
        template: Path,
        *,
        docker_host: str,
        invoke_image: str,
        env_vars: dict[str, dict[str, str]],
        port: int,
        host: str = "127.0.0.1",
        sts_endpoint_url: str | None = None,
    ) -> None:
        """`sts_endpoint_url`: where SAM asks STS for the account id at start (for
        `AWS::AccountId`); moto answers at once, where AWS is out of reach SAM spends
        seconds retrying before it falls back to a default."""
        self.workdir = Path(workdir)
        self.template = template
        self.port = port
        self.url = f"http://{host}:{port}"
        home = self.workdir / "home"
        tmp = self.workdir / "tmp"
        for directory in (home, tmp, self.workdir / "layers"):
            directory.mkdir(parents=True, exist_ok=True)
        self.env_vars_path = self.workdir / "env-vars.json"
        self.env_vars_path.write_text(json.dumps(env_vars, indent=1))
        argv = [sam_executable(), "local", "start-api", "--template", str(template)]
        argv += ["--invoke-image", invoke_image, "--skip-pull-image"]
        argv += ["--env-vars", str(self.env_vars_path), "--region", "us-east-1"]
        argv += ["--host", host, "--port", str(port)]
        argv += ["--warm-containers", "EAGER", "--no-watch"]
        argv += ["--layer-cache-basedir", str(self.workdir / "layers")]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "TMPDIR": str(tmp),
            "LANG": "C.UTF-8",
            "DOCKER_HOST": docker_host,
            "SAM_CLI_TELEMETRY": "0",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        if sts_endpoint_url:
            env["AWS_ENDPOINT_URL_STS"] = sts_endpoint_url
        self.process = Process("sam-local-start-api", argv, self.workdir, env=env, cwd=self.workdir)

    def start(self, timeout: float = 180.0) -> SamLocalApi:
        """Start SAM and wait until `/v2/` answers 200 through it (image built, container up)."""
        self.process.start()
        self.process.wait_http(f"{self.url}/v2/", 200, timeout)
        return self

    def stop(self, grace: float = 30.0) -> int | None:
        """SIGTERM (SAM then stops and deletes its warm containers), SIGKILL after `grace`."""
        return self.process.stop(grace)

    def log(self) -> str:
        return self.process.log()


# -- the pytest side ----------------------------------------------------------------------------

#: Commands the scenario runs, beyond Python: checked before anything starts.
TOOLS = ("unshare", "mount", "ip", "ldd", "podman", "runc", "skopeo", "docker-registry", "busybox")


def _unavailable(message: str) -> NoReturn:
    """Skip the test (fail it under CI=true): the convention of `harness.tools.require`."""
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def prerequisites() -> dict[str, Path]:
    """What the scenario needs, or skip (fail under CI): the tools, root (namespaces),
    `sam`, a Python 3.12, and `make sam-build`'s host build and runtime packages."""
    from ociwrap_local.sam import HOST_BUILD, RUNTIME, find_python312

    for tool in TOOLS:
        require(tool)
    sam = sam_executable()
    if shutil.which(sam) is None:
        _unavailable("sam not found (pip install -r requirements-dev.txt)")
    probe = subprocess.run(
        ["unshare", "--net", "--mount", "--pid", "--fork", "true"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    if probe.returncode != 0:
        _unavailable(f"unshare cannot make namespaces here (root needed): {probe.stderr.strip()}")
    python = find_python312()
    if python is None:
        _unavailable("no Python 3.12 (python3.12 on PATH or under pyenv; e.g. pyenv install 3.12)")
    require_path(HOST_BUILD / "template.yaml", "make sam-build")
    runtime = require_path(RUNTIME / "python" / "awslambdaric", "make sam-build").parent
    return {"python": python, "host_build": HOST_BUILD, "runtime": runtime}


#: podman's storage goes on a tmpfs of this size when the machine has `TMPFS_MIN_AVAILABLE`
#: bytes of memory available: vfs copies the root file system per layer and container
#: (about 0.5 GB in all), and on this kind of machine's disk that took 15-60 s, varying
#: with the other disk traffic; in memory it takes a few seconds.
TMPFS_SIZE = "2g"
TMPFS_MIN_AVAILABLE = 6 * 1024**3


def memory_available() -> int:
    """`MemAvailable` of /proc/meminfo, in bytes (0 if unknown)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def run_scenario(workdir: Path, timeout: float = 900.0) -> dict[str, Any]:
    """Run `harness.sam_local_scenario` in new network, mount and pid namespaces; its report.

    `--kill-child`: if this side gives up (timeout), unshare's SIGKILL ends the scenario,
    pid 1 of its pid namespace, and with it every process it started.
    """
    needs = prerequisites()
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "report.json"
    log = workdir / "scenario.log"
    pythonpath = os.pathsep.join(str(p) for p in (TESTS, REPO_ROOT / "dev"))
    env = clean_env(
        {
            "PYTHONPATH": pythonpath,
            "PYTHONUNBUFFERED": "1",
            "PATH": os.environ.get("PATH", "/usr/bin:/bin") + ":/usr/sbin:/sbin",
        }
    )
    argv = ["unshare", "--net", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc"]
    argv += [sys.executable, "-m", "harness.sam_local_scenario"]
    argv += ["--workdir", str(workdir), "--out", str(out), "--python", str(needs["python"])]
    argv += ["--runtime", str(needs["runtime"]), "--host-build", str(needs["host_build"])]
    if memory_available() >= TMPFS_MIN_AVAILABLE:
        argv += ["--storage-tmpfs", TMPFS_SIZE]
    started = time.monotonic()
    with open(log, "wb") as output:
        try:
            result = subprocess.run(
                argv,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=REPO_ROOT,
                timeout=timeout,
                check=False,
            )
            returncode: int | None = result.returncode
        except subprocess.TimeoutExpired:
            returncode = None
    if not out.exists():
        tail = log.read_text(errors="replace")[-4000:]
        raise HarnessError(f"the scenario wrote no report (exit {returncode})\n{tail}")
    report: dict[str, Any] = json.loads(out.read_text())
    report["exit"] = returncode
    report["wall_seconds"] = round(time.monotonic() - started, 1)
    report["scenario_log"] = str(log)
    return report
