"""Real SIP peers on 127.0.0.1 for the SIP gateway's tests: kamailio as the trunk (proxy, registrar,
digest auth) and baresip as the patient's phone (auto-answers, plays a WAV, sends RFC 4733 keys
when told over its TCP control socket).

The proxy asks every INVITE for credentials (407) and routes by the number dialled: `+...` numbers
and `patient` to the phone's auto-answering account, `ringing` to an account that rings and never
answers, `short` to one that hangs up when its short WAV ends, `mulaw` to one that takes PCMU only;
`busy` and `decline` get 486 and 603 from the proxy itself, as a carrier's switch would send them, and
a call from caller id `barred` gets 403.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from voice_ai.audio import TELEPHONE_RATE, read_wav, resample, silence, write_wav
from voice_ai.gateway_sip import SipTrunk
from voice_ai.sip_message import Codec

PASSWORD = "trunk-secret"
# Debian puts them under the architecture's triplet (x86_64-linux-gnu, aarch64-linux-gnu, ...).
KAMAILIO_MODULES = next((str(p) + "/" for p in Path("/usr/lib").glob("*/kamailio/modules")), "")
needs_sip_peers = pytest.mark.skipif(
    shutil.which("kamailio") is None or shutil.which("baresip") is None or shutil.which("espeak-ng") is None,
    reason="make system-deps installs kamailio, baresip and espeak-ng",
)

KAMAILIO_CFG = """#!KAMAILIO
debug=2
log_stderror=yes
children=2
auto_aliases=no
listen=udp:127.0.0.1:{port}
alias="127.0.0.1:{port}"
mpath="{modules}"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "auth.so"
modparam("usrloc", "db_mode", 0)

request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (has_totag()) {{
        if (loose_route()) {{ t_relay(); exit; }}
        if (is_method("ACK")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
        sl_send_reply("404", "Not here"); exit;
    }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
    if (is_method("REGISTER")) {{ save("location"); exit; }}
    if (is_method("INVITE")) {{
        if (!pv_proxy_authenticate("$fd", "{password}", "0")) {{
            proxy_challenge("$fd", "0");
            exit;
        }}
        consume_credentials();
        if ($fU == "barred") {{ sl_send_reply("403", "Forbidden"); exit; }}
        if ($rU == "busy") {{ sl_send_reply("486", "Busy Here"); exit; }}
        if ($rU == "decline") {{ sl_send_reply("603", "Decline"); exit; }}
        if ($(rU{{s.substr,0,1}}) == "+") {{ $rU = "patient"; }}
    }}
    record_route();
    if (!lookup("location")) {{ sl_send_reply("404", "Not Found"); exit; }}
    t_relay();
}}
"""

BARESIP_CFG = """poll_method epoll
call_max_calls 64
sip_listen 127.0.0.1:{sip_port}
audio_source aufile,{long_wav}
audio_alert aufile,{long_wav}
rtp_ports {rtp_low}-{rtp_high}
module_path /usr/lib/baresip/modules
module g711.so
module aufile.so
module sndfile.so
module_app account.so
module_app menu.so
module_app ctrl_tcp.so
ctrl_tcp_listen 127.0.0.1:{ctrl_port}
snd_path {snd_path}
"""


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spoken_wav(path: Path, text: str, trailing_ms: int) -> Path:
    """espeak-ng's `text` at 8 kHz, then silence (baresip hangs up when its WAV ends)."""
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-w", str(raw), text], check=True, timeout=30)
    pcm, rate = read_wav(raw.read_bytes())
    path.write_bytes(
        write_wav(resample(pcm, rate, TELEPHONE_RATE) + silence(trailing_ms, TELEPHONE_RATE), 8000)
    )
    return path


@dataclass
class Phone:
    """baresip, reached through the proxy."""

    proxy_port: int
    ctrl_port: int
    log: Path
    dumps: Path  # sndfile's WAVs of what the phone heard (-dec) and said (-enc), per call

    def trunk(
        self,
        *,
        password: str = PASSWORD,
        caller_id: str = "careloop",
        codecs: tuple[Codec, ...] = (Codec.PCMA, Codec.PCMU),
    ) -> SipTrunk:
        return SipTrunk(
            host="127.0.0.1",
            port=self.proxy_port,
            username="careloop",
            password=password,
            domain="127.0.0.1",
            caller_id=caller_id,
            rtp_ports=(30000, 30200),
            codecs=codecs,
            answer_timeout=3.0,
        )

    def command(self, command: str, params: str = "") -> dict[str, object]:
        """One ctrl_tcp command (netstring-framed JSON), e.g. sndcode with keys to send as RFC 4733."""
        body = json.dumps({"command": command, "params": params, "token": "t"}).encode()
        with socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=5) as conn:
            conn.sendall(str(len(body)).encode() + b":" + body + b",")
            reply = conn.recv(4096)
        _, _, rest = reply.partition(b":")
        return dict(json.loads(rest.rstrip(b",")))


def _wait_for(predicate: object, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes]) -> None:
    # baresip's first SIGTERM waits to unregister; a second one makes it go at once.
    for _ in range(2):
        process.terminate()
        try:
            process.wait(timeout=2)
            return
        except subprocess.TimeoutExpired:
            pass
    process.kill()
    process.wait(timeout=5)


@contextmanager
def running_peers(root: Path, phone_rtp_ports: int = 20) -> Iterator[Phone]:
    """kamailio on a free port, baresip registered to it with the accounts the module docstring names;
    both stopped on the way out."""
    proxy_port, phone_port, ctrl_port = free_udp_port(), free_udp_port(), free_tcp_port()
    cfg = root / "kamailio.cfg"
    cfg.write_text(KAMAILIO_CFG.format(port=proxy_port, modules=KAMAILIO_MODULES, password=PASSWORD))
    run_dir = root / "run"
    run_dir.mkdir()
    kamailio_log = (root / "kamailio.log").open("wb")
    kamailio = subprocess.Popen(
        ["kamailio", "-DD", "-E", "-f", str(cfg), "-Y", str(run_dir)],
        stdout=kamailio_log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    conf = root / "baresip"
    conf.mkdir()
    dumps = root / "dumps"
    dumps.mkdir()
    long_wav = spoken_wav(root / "yes-long.wav", "yes", 120_000)
    short_wav = spoken_wav(root / "yes-short.wav", "yes", 1_500)
    # baresip's own RTP range, apart from the gateway's (30000-30200) and from other test workers'
    low = 40000 + os.getpid() % 250 * 80
    (conf / "config").write_text(
        BARESIP_CFG.format(
            sip_port=phone_port,
            long_wav=long_wav,
            rtp_low=low,
            rtp_high=low + phone_rtp_ports - 1,
            ctrl_port=ctrl_port,
            snd_path=dumps,
        )
    )
    registrar = f"127.0.0.1:{proxy_port};transport=udp"
    (conf / "accounts").write_text(
        f"<sip:patient@{registrar}>;auth_pass=x;answermode=auto;regint=600\n"
        f"<sip:ringing@{registrar}>;auth_pass=x;answermode=manual;regint=600\n"
        f"<sip:short@{registrar}>;auth_pass=x;answermode=auto;regint=600;audio_source=aufile,{short_wav}\n"
        f"<sip:mulaw@{registrar}>;auth_pass=x;answermode=auto;regint=600;audio_codecs=PCMU\n"
    )
    phone_log = root / "baresip.log"
    baresip = subprocess.Popen(
        ["baresip", "-f", str(conf)],
        stdout=phone_log.open("wb"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        _wait_for(
            lambda: phone_log.read_text(errors="replace").count("200 OK") >= 4, "baresip's four registrations"
        )
        yield Phone(proxy_port, ctrl_port, phone_log, dumps)
    finally:
        _stop(baresip)
        _stop(kamailio)
        kamailio_log.close()


@pytest.fixture(scope="module")
def sip_phone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Phone]:
    with running_peers(tmp_path_factory.mktemp("sip")) as phone:
        yield phone
