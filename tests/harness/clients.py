"""The real clients a registry must satisfy: skopeo, podman, containerd's `ctr`, umoci.

Each wrapper keeps all client state (storage, runroot, config files, sockets) under a
directory the test owns and talks plain HTTP to 127.0.0.1 only. The flags are the ones
measured to work on this kind of machine (root, no systemd, a cgroup layout crun
cannot use, limits that cannot be raised): see shared TESTING.md.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.procs import HarnessError, Process, clean_env, wait_until
from harness.tools import require


class ToolError(HarnessError):
    """A client command failed; the message has the command line and its stderr."""


def run_tool(
    argv: Sequence[str | Path],
    *,
    timeout: float = 120,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a client to completion (`input` on its stdin); on failure raise `ToolError`."""
    require(str(argv[0]))
    args = [str(a) for a in argv]
    result = subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
        input=input,
    )
    if check and result.returncode != 0:
        raise ToolError(
            f"{' '.join(args)} exited {result.returncode}\n"
            f"--- stdout ---\n{result.stdout[-3000:]}\n--- stderr ---\n{result.stderr[-3000:]}"
        )
    return result


def _short_tmp() -> str | None:
    """/tmp when it exists: socket and runroot paths have length limits that TMPDIR may break."""
    return "/tmp" if os.path.isdir("/tmp") else None


def _docker(ref: str) -> str:
    return ref if ref.startswith("docker://") else f"docker://{ref}"


# -- skopeo ---------------------------------------------------------------------------------


def skopeo_copy(
    src: str,
    dest_dir: Path,
    ref: str = "x",
    *,
    all: bool = False,
    creds: str | None = None,
    timeout: float = 120,
) -> Path:
    """`skopeo copy docker://SRC oci:DEST_DIR:REF` over plain HTTP; returns DEST_DIR.

    skopeo fetches every blob and verifies its digest, so a successful copy proves the
    registry served (or redirected to) the right bytes.
    """
    argv: list[str | Path] = ["skopeo", "copy", "--quiet", "--src-tls-verify=false"]
    if all:
        argv.append("--all")
    if creds:
        argv += ["--src-creds", creds]
    argv += [_docker(src), f"oci:{dest_dir}:{ref}"]
    run_tool(argv, timeout=timeout)
    return Path(dest_dir)


def skopeo_inspect_bytes(
    ref: str,
    *,
    raw: bool = False,
    config: bool = False,
    platform: tuple[str, str] | None = None,
    timeout: float = 60,
) -> bytes:
    """`skopeo inspect --tls-verify=false [--raw|--config]` output, byte for byte.

    `--raw` gives the manifest exactly as served (hash it to check a digest). Without
    `--raw`/`--config`, skopeo also lists tags and fails if `/tags/list` is 404.
    `platform=("linux", "arm64")` picks an index entry for `--config`.
    """
    argv: list[str | Path] = ["skopeo"]
    if platform is not None:
        argv += ["--override-os", platform[0], "--override-arch", platform[1]]
    argv += ["inspect", "--tls-verify=false"]
    if raw:
        argv.append("--raw")
    if config:
        argv.append("--config")
    argv.append(_docker(ref))
    args = [str(a) for a in argv]
    require("skopeo")
    result = subprocess.run(args, capture_output=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise ToolError(f"{' '.join(args)} exited {result.returncode}\n{result.stderr.decode()}")
    return result.stdout


def skopeo_inspect(
    ref: str,
    *,
    raw: bool = False,
    config: bool = False,
    platform: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """`skopeo_inspect_bytes` parsed as JSON."""
    data = skopeo_inspect_bytes(ref, raw=raw, config=config, platform=platform)
    return json.loads(data)


# -- podman ---------------------------------------------------------------------------------


class Podman:
    """podman with private storage under `workdir`: pulls and runs without a daemon.

    Flags that were needed here: `--runtime runc` (crun fails on this cgroup layout),
    `--storage-driver vfs`, fixed `--ulimit`s (the sandbox cannot raise limits) and
    `--network none` (otherwise podman builds a bridge with nftables rules). Private
    `CONTAINERS_*` files keep the host's and the user's configuration out, and disable
    short-name search so a bad reference fails instead of prompting or going online.
    """

    ULIMITS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096")

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        for sub in ("root", "tmp"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        # podman refuses a runroot longer than 50 characters ("the specified runroot is
        # longer than 50 characters"), and pytest's tmp paths are longer: use a short one.
        self.runroot = Path(tempfile.mkdtemp(prefix="podman-", dir=_short_tmp()))
        registries = self.workdir / "registries.conf"
        registries.write_text('unqualified-search-registries = []\nshort-name-mode = "disabled"\n')
        containers = self.workdir / "containers.conf"
        containers.write_text(
            "[engine]\n"
            'runtime = "runc"\n'
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
            f'events_logfile_path = "{self.workdir / "events.log"}"\n'
            "[containers]\n"
            'netns = "none"\n'
        )
        (self.workdir / "auth.json").write_text("{}\n")  # where `podman login` keeps logins
        storage = self.workdir / "storage.conf"
        storage.write_text(
            "[storage]\n"
            'driver = "vfs"\n'
            f'graphroot = "{self.workdir / "root"}"\n'
            f'runroot = "{self.runroot}"\n'
        )
        self.env = clean_env(
            {
                "CONTAINERS_REGISTRIES_CONF": str(registries),
                "CONTAINERS_CONF": str(containers),
                "CONTAINERS_STORAGE_CONF": str(storage),
                "TMPDIR": str(self.workdir / "tmp"),
                "REGISTRY_AUTH_FILE": str(self.workdir / "auth.json"),  # podman login's
            }
        )

    def argv(self, *args: str) -> list[str]:
        """The podman command line with the global flags that keep it private."""
        return [
            "podman",
            "--root",
            str(self.workdir / "root"),
            "--runroot",
            str(self.runroot),
            "--tmpdir",
            str(self.workdir / "tmp"),
            "--storage-driver",
            "vfs",
            "--runtime",
            "runc",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
            *args,
        ]

    def command(
        self, *args: str, timeout: float = 180, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return run_tool(self.argv(*args), timeout=timeout, env=self.env, check=check)

    def login(self, host: str, user: str, password: str) -> str:
        """`podman login` to a plain-HTTP registry; the login is kept in `workdir`."""
        flags = ["--tls-verify=false", "--username", user, "--password-stdin"]
        result = run_tool(self.argv("login", *flags, host), env=self.env, input=password)
        return result.stdout

    def pull(self, ref: str, *, platform: str | None = None) -> str:
        """Pull `ref` over plain HTTP; returns the local image id podman prints."""
        extra = ["--platform", platform] if platform else []
        out = self.command("pull", "--tls-verify=false", *extra, ref).stdout
        return out.strip().splitlines()[-1] if out.strip() else ""

    def run(
        self,
        ref: str,
        *args: str,
        entrypoint: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 180,
    ) -> str:
        """`podman run --rm` the image (pulling it if needed) and return its stdout."""
        flags = ["--rm", "--network", "none", *self.ULIMITS, "--tls-verify=false"]
        if entrypoint is not None:
            flags += ["--entrypoint", entrypoint]
        for key, value in (env or {}).items():
            flags += ["--env", f"{key}={value}"]
        return self.command("run", *flags, ref, *args, timeout=timeout).stdout

    def inspect(self, ref: str) -> dict[str, Any]:
        """`podman image inspect` of a local image."""
        return json.loads(self.command("image", "inspect", ref).stdout)[0]

    def close(self) -> None:
        """Remove the short runroot (the rest lives in `workdir`, which the caller owns)."""
        shutil.rmtree(self.runroot, ignore_errors=True)

    def __enter__(self) -> Podman:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


# -- containerd -----------------------------------------------------------------------------


class Containerd:
    """A private containerd (CRI disabled) and `ctr` against its socket.

    containerd HEADs manifests before GETting them, like Docker and Kubernetes, so it is
    the client that catches a HEAD without the real Content-Length.
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        # A unix socket path must fit in 108 bytes; pytest's tmp paths can be longer.
        self._socket_dir: Path | None = None
        socket_dir = self.workdir
        if len(str(socket_dir)) > 80:
            self._socket_dir = socket_dir = Path(tempfile.mkdtemp(prefix="ctd-", dir=_short_tmp()))
        self.socket = socket_dir / "containerd.sock"
        self.config_path = self.workdir / "config.toml"
        self.process = Process(
            "containerd",
            ["containerd", "--config", str(self.config_path)],
            self.workdir,
            env=clean_env(),
        )

    def config(self) -> str:
        # The `opt` plugin defaults to /opt/containerd: keep it in the work dir too.
        w = self.workdir
        return (
            "version = 2\n"
            f'root = "{w / "root"}"\n'
            f'state = "{w / "state"}"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            "[grpc]\n"
            f'  address = "{self.socket}"\n'
            "[ttrpc]\n"
            f'  address = "{self.socket}.ttrpc"\n'
            "[debug]\n"
            '  level = "info"\n'
            '[plugins."io.containerd.internal.v1.opt"]\n'
            f'  path = "{w / "opt"}"\n'
        )

    def start(self, timeout: float = 20.0) -> Containerd:
        """Start containerd and wait until `ctr version` reaches the server."""
        require("containerd")
        require("ctr")
        self.config_path.write_text(self.config())
        self.process.start()

        def serving() -> bool:
            if not self.process.alive:
                raise HarnessError("containerd exited during start-up\n" + self.process.tail())
            return self.socket.exists() and self.ctr("version", check=False).returncode == 0

        if wait_until(serving, timeout):
            return self
        tail = self.process.tail()
        self.stop()
        raise HarnessError(f"containerd did not come up in {timeout:.0f} s\n{tail}")

    def stop(self) -> None:
        self.process.stop()
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)

    def __enter__(self) -> Containerd:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def ctr(
        self, *args: str, timeout: float = 180, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return run_tool(
            ["ctr", "--address", str(self.socket), *args],
            timeout=timeout,
            env=self.process.env,
            check=check,
        )

    def pull(self, ref: str, *, platform: str | None = None, all_platforms: bool = False) -> str:
        """`ctr images pull --plain-http REF` (fetches and unpacks); returns its output."""
        extra = ["--platform", platform] if platform else []
        if all_platforms:
            extra.append("--all-platforms")
        return self.ctr("images", "pull", "--plain-http", *extra, ref).stdout

    def images(self) -> dict[str, str]:
        """{reference: digest} of the images containerd holds."""
        lines = self.ctr("images", "ls").stdout.splitlines()[1:]
        return {cols[0]: cols[2] for line in lines if len(cols := line.split()) >= 3}


# -- umoci ----------------------------------------------------------------------------------


def umoci_unpack(layout_dir: Path, ref: str, bundle: Path) -> Path:
    """`umoci unpack --rootless` an image of an OCI layout; returns the bundle's rootfs.

    The rootfs is what a runtime would see: use it to check how layers were composed
    (which files exist, their modes, which layer won) without running anything.
    """
    run_tool(["umoci", "unpack", "--rootless", "--image", f"{layout_dir}:{ref}", bundle])
    return Path(bundle) / "rootfs"


def bundle_config(bundle: Path) -> dict[str, Any]:
    """The OCI runtime `config.json` umoci generated (process args, env, cwd)."""
    return json.loads((Path(bundle) / "config.json").read_text())
