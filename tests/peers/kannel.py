"""Debian's Kannel as a real peer: bearerbox and smsbox in front of the SMSC simulator (P3, P7).

``scripts/ensure-kannel`` installs the package; this module writes a configuration of its own
into a temporary folder (our ports, never Kannel's defaults): an ``smsc = smpp`` group bound to
the simulator as a transceiver, a sendsms user for tilfreds' Kannel adapter, and an MO service
whose ``get-url`` is tilfreds' inbound callback route. It then starts bearerbox and smsbox and
stops them at the end. The simulator sends its receipts half a second after the submit_sm_resp,
as a real SMSC does: Kannel only looks a receipt up once it has stored the submit's id.

Ports: ``TILFREDS_PEERS_PORT_BASE`` (27760) + 10 admin, + 11 smsbox link, + 12 sendsms,
+ 13 the simulator.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.peers import processes
from tests.peers.smsc import Smsc
from tilfreds.sms.kannel import MO_QUERY

PORT_BASE = int(os.environ.get("TILFREDS_PEERS_PORT_BASE", "27760"))
BEARERBOX = shutil.which("bearerbox") or "/usr/sbin/bearerbox"
SMSBOX = shutil.which("smsbox") or "/usr/sbin/smsbox"
USER, PASSWORD = "tilfreds", "ks-pass"
SMSC_USER, SMSC_PASSWORD = "kannel", "kn-pass"
SMSC_ID = "sim"


def installed() -> str | None:
    """Why Kannel cannot run here, or None."""
    if not (Path(BEARERBOX).exists() and Path(SMSBOX).exists()):
        return "Kannel is not installed (run scripts/ensure-kannel: apt-get install kannel)"
    return None


@dataclass(frozen=True)
class Ports:
    admin: int
    smsbox: int
    sendsms: int
    smsc: int

    @classmethod
    def from_base(cls, base: int) -> Ports:
        return cls(*(base + 10 + n for n in range(4)))


def _config(folder: Path, ports: Ports, inbound_url: str) -> str:
    get_url = f"{inbound_url}?{MO_QUERY}" if inbound_url else ""
    service = (
        f"group = sms-service\nkeyword = default\ncatch-all = true\nmax-messages = 0\n"
        f'get-url = "{get_url}"\n'
        if get_url
        else ""
    )
    return f"""\
group = core
admin-port = {ports.admin}
admin-interface = 127.0.0.1
admin-password = kannel-admin
status-password = kannel-admin
admin-allow-ip = 127.0.0.1
smsbox-port = {ports.smsbox}
box-allow-ip = 127.0.0.1
log-file = "{folder}/bearerbox.log"
log-level = 1
dlr-storage = internal

group = smsc
smsc = smpp
smsc-id = {SMSC_ID}
host = 127.0.0.1
port = {ports.smsc}
transceiver-mode = true
smsc-username = {SMSC_USER}
smsc-password = {SMSC_PASSWORD}
system-type = ""
source-addr-ton = 0
source-addr-npi = 1
dest-addr-ton = 1
dest-addr-npi = 1
msg-id-type = 0x03
reconnect-delay = 1
log-file = "{folder}/smsc.log"
log-level = 1

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {ports.smsbox}
sendsms-port = {ports.sendsms}
sendsms-interface = 127.0.0.1
log-file = "{folder}/smsbox.log"
log-level = 1
mo-recode = true

group = sendsms-user
username = {USER}
password = {PASSWORD}
max-messages = 10
concatenation = true

{service}"""


def _wait(check: object, what: str, procs: list[subprocess.Popen[bytes]], folder: Path) -> None:
    assert callable(check)
    deadline = time.monotonic() + 30
    while not check():
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            logs = "\n".join(p.read_text(errors="replace") for p in sorted(folder.glob("*.log")))
            raise RuntimeError(f"Kannel: {what} did not happen\n{logs[-5000:]}")
        time.sleep(0.1)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@dataclass
class Kannel:
    """bearerbox and smsbox in front of ``smsc``; MO messages go to ``inbound_url``."""

    folder: Path
    smsc: Smsc
    ports: Ports
    inbound_url: str = ""
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    started_in: float = 0.0

    username = USER
    password = PASSWORD
    smsc_id = SMSC_ID

    @property
    def sendsms_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.sendsms}/cgi-bin/sendsms"

    def start(self) -> Kannel:
        began = time.monotonic()
        config = self.folder / "kannel.conf"
        config.write_text(_config(self.folder, self.ports, self.inbound_url))
        binds = self.smsc.binds
        for box in (BEARERBOX, SMSBOX):
            self.procs.append(
                subprocess.Popen(
                    [box, str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
            )
            if box == BEARERBOX:  # smsbox gives up when bearerbox is not there yet
                _wait(lambda: _listening(self.ports.smsbox), "bearerbox", self.procs, self.folder)
        _wait(lambda: self.smsc.binds > binds, "the bind to the SMSC", self.procs, self.folder)
        _wait(lambda: _listening(self.ports.sendsms), "smsbox", self.procs, self.folder)
        self.started_in = time.monotonic() - began
        return self

    def stop(self) -> None:
        for proc in reversed(self.procs):
            processes.stop(proc)
        self.procs.clear()

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.folder.glob("*.log")))


def skip_unless_installed() -> None:
    missing = installed()
    if missing:
        if os.environ.get("TILFREDS_REQUIRE_PEERS") == "1":
            pytest.fail(f"{missing}, and TILFREDS_REQUIRE_PEERS=1 requires it")
        pytest.skip(missing)


def simulator() -> Smsc:
    """The SMSC simulator Kannel binds to, on its port (receipts half a second after the answer)."""
    smsc = Smsc(users={SMSC_USER: SMSC_PASSWORD}, receipt_delay=0.5)
    return smsc.start(port=Ports.from_base(PORT_BASE).smsc)


def start_kannel(folder: Path, smsc: Smsc, inbound_url: str = "") -> Kannel:
    skip_unless_installed()
    return Kannel(folder, smsc, Ports.from_base(PORT_BASE), inbound_url).start()
