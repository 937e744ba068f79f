"""Jasmin 0.11.0 as a real SMPP peer between tilfreds and the SMSC simulator (P3, P7).

``scripts/ensure-jasmin`` installs it in ``.peers/jasmin`` (a virtualenv of its own); this module
writes its configuration into a temporary folder with our ports, starts ``jasmind`` with its DLR
lookup and DLR thrower in-process (they carry receipts back to SMPP clients), and configures it
through jcli: a user ``tilfreds`` for our SMPP adapter, an SMPP client connector to the simulator,
an MT default route to that connector and an MO default route to the ``tilfreds`` user. So
messages travel tilfreds -> Jasmin -> SMSC, and receipts and replies travel back.

It uses the machine's RabbitMQ (a vhost of its own, made anew with rabbitmqctl) and the machine's
``redis-server`` program, run as a server of its own on our port with nothing on disk: Jasmin
0.11.0 ignores ``dbid`` unless Redis has a password, and the simulator's message ids repeat from
run to run, so a shared database would match receipts to an earlier run's messages. Ports:
``TILFREDS_PEERS_PORT_BASE`` (27760) + 0..5 for Jasmin, + 6 for its Redis, + 7 for the simulator.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from tests.peers import processes
from tests.peers.smsc import Smsc

ROOT = Path(__file__).resolve().parents[2]
HOME = Path(os.environ.get("TILFREDS_JASMIN_HOME", ROOT / ".peers" / "jasmin"))
JASMIND = HOME / "bin" / "jasmind.py"
PORT_BASE = int(os.environ.get("TILFREDS_PEERS_PORT_BASE", "27760"))
USER, PASSWORD = "tilfreds", "tf-pass"  # Jasmin's SMPP passwords are at most 8 characters
SMSC_USER, SMSC_PASSWORD = "jasmin", "js-pass"


def installed() -> str | None:
    """Why Jasmin cannot run here, or None."""
    if not JASMIND.exists():
        return f"Jasmin is not installed at {HOME} (run scripts/ensure-jasmin)"
    return None


@dataclass(frozen=True)
class Ports:
    smpp: int
    jcli: int
    http: int
    router: int
    smpp_pb: int
    client_manager: int
    redis: int
    smsc: int

    @classmethod
    def from_base(cls, base: int) -> Ports:
        return cls(*(base + n for n in range(8)))


class Jcli:
    """Jasmin's telnet console, driven line by line (its telnet negotiation is ignored)."""

    PROMPT = re.compile(rb"(jcli : |> )$")

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.run("")  # the banner ends without a prompt: an empty line brings one

    def _read(self) -> str:
        data = b""
        while not self.PROMPT.search(data):
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"jcli closed the connection after {data!r}")
            data += chunk
        return data.decode("utf-8", "replace")

    def run(self, *lines: str) -> str:
        """Send each line in turn; the console's answer to the last one."""
        answer = ""
        for line in lines:
            self.sock.sendall(line.encode() + b"\r\n")
            answer = self._read()
        return answer

    def add(self, command: str, **fields: str) -> None:
        """An ``X -a`` dialogue: one ``key value`` line per field, then ``ok``."""
        answer = self.run(f"{command} -a", *(f"{k} {v}" for k, v in fields.items()), "ok")
        if "Successfully" not in answer:
            raise RuntimeError(f"jcli {command} -a {fields}: {answer}")

    def close(self) -> None:
        self.sock.close()


def _config(folder: Path, ports: Ports, vhost: str) -> str:
    spec = next(HOME.glob("lib/python*/site-packages/txamqp/specs/standard/amqp0-9-1.stripped.xml"))
    store = folder / "store"
    return f"""\
[smpp-server]
id = tilfreds-peer
bind = 127.0.0.1
port = {ports.smpp}
[smpp-server-pb]
bind = 127.0.0.1
port = {ports.smpp_pb}
[client-management]
bind = 127.0.0.1
port = {ports.client_manager}
store_path = {store}
[router]
bind = 127.0.0.1
port = {ports.router}
store_path = {store}
[http-api]
bind = 127.0.0.1
port = {ports.http}
[jcli]
bind = 127.0.0.1
port = {ports.jcli}
authentication = False
[amqp-broker]
host = 127.0.0.1
port = 5672
vhost = {vhost}
username = guest
password = guest
spec = {spec}
[dlr]
dlr_lookup_retry_delay = 1
dlr_lookup_max_retries = 10
[redis-client]
host = 127.0.0.1
port = {ports.redis}
"""


def _rabbitmq_vhost(name: str) -> str:
    """A vhost of our own, made anew so that no message queued by an earlier run is thrown at
    this one, and a parallel run's queues never mix with ours; "/" where rabbitmqctl is missing
    or not allowed (it needs root), and then runs on one machine must not overlap."""
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        return "/"

    def run(*args: str) -> bool:
        return (
            subprocess.run([ctl, *args], capture_output=True, check=False, timeout=60).returncode
            == 0
        )

    run("delete_vhost", name)
    if run("add_vhost", name) and run("set_permissions", "-p", name, "guest", ".*", ".*", ".*"):
        return name
    return "/"


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"jasmind did not open port {port}:\n{log.read_text()}"
                ) from None
            time.sleep(0.2)


@dataclass
class Jasmin:
    """A running jasmind in front of ``smsc``; ``host``/``port`` is where tilfreds binds."""

    folder: Path
    smsc: Smsc
    ports: Ports
    proc: subprocess.Popen[bytes] | None = None
    redis: subprocess.Popen[bytes] | None = None
    started_in: float = 0.0
    _log: IO[bytes] | None = None

    host = "127.0.0.1"
    system_id = USER
    password = PASSWORD

    @property
    def port(self) -> int:
        return self.ports.smpp

    def start(self) -> Jasmin:
        began = time.monotonic()
        for sub in ("etc/resource", "log", "store"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        vhost = _rabbitmq_vhost(f"tilfreds-peers-{self.ports.smpp}")
        self.redis = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.ports.redis), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.folder)),
            ],
            stdout=subprocess.DEVNULL,
        )
        config = self.folder / "etc" / "jasmin.cfg"
        config.write_text(_config(self.folder, self.ports, vhost))
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "ROOT_PATH": str(self.folder),
            "LOG_PATH": str(self.folder / "log"),
            "CONFIG_PATH": str(self.folder / "etc"),
            "STORE_PATH": f"{self.folder / 'store'}/",
            "RESOURCE_PATH": str(self.folder / "etc" / "resource"),
        }
        out = self.folder / "jasmind.out"
        self._log = out.open("wb")
        self.proc = subprocess.Popen(
            [str(JASMIND), "-c", str(config), "--enable-dlr-lookup", "--enable-dlr-thrower"],
            env=env,
            cwd=self.folder,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        _wait_port(self.ports.jcli, self.proc, out)
        self.configure()
        if not self.smsc.wait_for(lambda: self.smsc.binds > 0, timeout=30):
            raise RuntimeError(f"Jasmin never bound to the SMSC:\n{out.read_text()}")
        self.started_in = time.monotonic() - began
        return self

    def configure(self) -> None:
        jcli = Jcli(self.ports.jcli)
        try:
            jcli.add("group", gid="tilfreds")
            jcli.add("user", username=USER, password=PASSWORD, gid="tilfreds", uid="tilfreds")
            jcli.add(
                "smppccm",
                cid="simsc",
                host="127.0.0.1",
                port=str(self.ports.smsc),
                username=SMSC_USER,
                password=SMSC_PASSWORD,
                submit_throughput="0",  # Jasmin's default is 1 message a second
                bind="transceiver",
            )
            jcli.add("mtrouter", type="DefaultRoute", connector="smppc(simsc)", rate="0.00")
            jcli.add("morouter", type="DefaultRoute", connector="smpps(tilfreds)")
            answer = jcli.run("smppccm -1 simsc")
            if "Successfully started" not in answer:
                raise RuntimeError(f"jcli could not start the connector: {answer}")
        finally:
            jcli.close()

    def stop(self) -> None:
        for proc in (self.proc, self.redis):
            processes.stop(proc)
        if self._log is not None:
            self._log.close()

    def log(self) -> str:
        return (self.folder / "jasmind.out").read_text(errors="replace")


@pytest.fixture(scope="session")
def jasmin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jasmin]:
    """Jasmin in front of an SMSC simulator, for the whole session (starting takes seconds)."""
    from tests.e2e.conftest import skip_unless_required

    missing = installed()
    if missing:
        skip_unless_required(missing, "TILFREDS_REQUIRE_PEERS")
    ports = Ports.from_base(PORT_BASE)
    smsc = Smsc(users={SMSC_USER: SMSC_PASSWORD}).start(port=ports.smsc)
    peer = Jasmin(tmp_path_factory.mktemp("jasmin"), smsc, ports)
    try:
        peer.start()
        yield peer
    finally:
        peer.stop()
        smsc.stop()
