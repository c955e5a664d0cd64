"""A hospital's integration engine in miniature: sends HL7 over a real MLLP socket and reads the ACK.

Also builds the test messages, written from the HL7 v2 standard's segment definitions (MSH, EVN,
PID, PV1, DG1, PR1, NK1, IN1, MRG) in the versions hospitals send (2.3, 2.5.1, 2.8).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

START, END = b"\x0b", b"\x1c\x0d"


class MllpPeer:
    """One TCP connection to the listener; `send` frames a message and waits for one framed reply."""

    def __init__(self, host: str, port: int, timeout: float = 15.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self._pending = b""

    def __enter__(self) -> MllpPeer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, message: bytes | str) -> Ack:
        payload = message.encode("utf-8") if isinstance(message, str) else message
        self.send_raw(START + payload + END)
        return self.read_ack()

    def read_frame(self) -> bytes:
        while END not in self._pending:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the listener closed the connection")
            self._pending += chunk
        frame, _, self._pending = self._pending.partition(END)
        assert frame.startswith(START), frame[:20]
        return frame[1:]

    def read_ack(self, encoding: str = "utf-8") -> Ack:
        return Ack.parse(self.read_frame().decode(encoding))


@dataclass
class Ack:
    text: str
    segments: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Ack:
        segments = {}
        for line in text.strip("\r").split("\r"):
            fields = line.split("|")
            segments[fields[0]] = fields
        return cls(text=text, segments=segments)

    @property
    def code(self) -> str:
        return self.segments["MSA"][1]

    @property
    def control_id(self) -> str:
        return self.segments["MSA"][2]

    @property
    def note(self) -> str:
        msa = self.segments["MSA"]
        return msa[3] if len(msa) > 3 else ""

    @property
    def error_location(self) -> str:
        """ERR-2 (v2.5+), e.g. "PID^1^3"."""
        return self.segments["ERR"][2] if "ERR" in self.segments else ""

    @property
    def error_code(self) -> str:
        return self.segments["ERR"][3].split("^")[0] if "ERR" in self.segments else ""


def adt(
    event: str,
    control_id: str,
    *,
    version: str = "2.5.1",
    mrn: str | None = "MRN0001",
    authority: str = "HOSP",
    name: str = "Zhang^Wei",
    birth: str = "19650317",
    sex: str = "M",
    phone: str = "^PRN^PH^^86^138^00138000",
    language: str = "zh",
    visit: str | None = "V1001",
    patient_class: str = "I",
    location: str = "C3W^301^2",
    service: str = "CARD",
    doctor: str = "D042^Li^Ming",
    admit: str = "20261201083000",
    discharge: str = "",
    disposition: str = "",
    death: tuple[str, str] = ("", ""),
    diagnoses: tuple[str, ...] = ("I21.0^Acute transmural myocardial infarction^I10",),
    procedures: tuple[str, ...] = (),
    extra: tuple[str, ...] = (),
    sent: str = "20261201083500",
    recorded: str = "20261201083000",
    charset: str = "UNICODE UTF-8",
    facility: str = "HOSP",
    end: str = "\r",
) -> str:
    """An ADT message; `mrn=None` leaves PID-3 empty, `visit=None` leaves PV1-19 empty."""
    structure = {"A04": "ADT_A01", "A08": "ADT_A01", "A05": "ADT_A05", "A13": "ADT_A01"}.get(
        event, f"ADT_{event}"
    )
    msh = (
        f"MSH|^~\\&|HIS|{facility}|CARELOOP|CARELOOP|{sent}||ADT^{event}^{structure}|{control_id}|P|{version}"
    )
    msh += f"|||AL|NE|CHN|{charset}" if charset else ""
    pid3 = f"{mrn}^^^{authority}^MR" if mrn else ""
    segments = [
        msh,
        f"EVN|{event}|{recorded}",
        "|".join(
            ["PID", "1", "", pid3, "", name, "", birth, sex, "", "", "Renmin Rd 1^^Shanghai^^200000^CHN", ""]
            + [phone, "", language]
            + [""] * 13
            + list(death)
        ),
        "NK1|1|Zhang^Li|SPO^Spouse",
    ]
    if visit is not None or patient_class:
        pv1 = ["PV1", "1", patient_class, location, "", "", "", doctor, "", "", service]
        pv1 += [""] * 8 + [f"{visit}^^^{authority}" if visit else ""]
        pv1 += [""] * 16 + [disposition] + [""] * 7 + [admit, discharge]
        segments.append("|".join(pv1))
    segments += [f"DG1|{i + 1}||{dx}||{recorded}|F" for i, dx in enumerate(diagnoses)]
    segments += [f"PR1|{i + 1}||{px}||{recorded}" for i, px in enumerate(procedures)]
    segments += ["IN1|1|PLAN01|INS01|National Health Insurance", *extra]
    return end.join(segments) + end


def siu(
    event: str,
    control_id: str,
    *,
    filler: str = "20075",
    placer: str = "10345",
    start: str | None = "20261215093000",
    end: str = "",
    tq1: bool = True,
    duration: str = "30",
    reason: str = "047^Follow-up^HL70277",
    mrn: str = "MRN0001",
    name: str = "张^伟",
    phone: str = "^PRN^PH^^86^138^00138000",
    language: str = "zh",
    location: str = "CARD^^^MAIN^^^^^Cardiology clinic",
    doctor: str = "D042^Li^Ming",
    service: str = "CONSULT^Cardiology follow-up^L",
    charset: str = "UNICODE UTF-8",
    sent: str = "20261201083500",
) -> str:
    """An SIU message after the HL7 v2.5 standard's SIU_S12 example (SCH, TQ1, PID, PV1, RGS with AIS,
    AIL and AIP); `start=None` leaves both SCH-11.4 and TQ1-7 empty."""
    when = start or ""
    msh = f"MSH|^~\\&|HIS|HOSP|CARELOOP|CARELOOP|{sent}||SIU^{event}^SIU_S12|{control_id}|P|2.5.1"
    msh += f"|||AL|NE|CHN|{charset}" if charset else ""
    event_reason = "003^Cancelled by patient^HL70276" if event == "S15" else "001^New^HL70276"
    status = "Cancelled" if event == "S15" else "Booked"
    sch = (
        f"SCH|{placer}^HIS|{filler}^HOSP|||CARDCLINIC|{event_reason}|{reason}|ROUTINE^Routine^HL70276"
        f"|{duration}|min^minutes|^^{'M' + duration if duration else ''}^{when}^{end}||||||||||||||{status}"
    )
    segments = [msh, sch]
    if tq1:
        segments.append(f"TQ1|1|||||{duration + '^min' if duration else ''}|{when}|{end}")
    segments += [
        f"PID|1||{mrn}^^^HOSP^MR||{name}||19650317|M|||||{phone}||{language}",
        "PV1|1|O|CARD^^^MAIN||||D042^Li^Ming",
        "RGS|1|A",
        f"AIS|1|A|{service}|{when}|||{duration}|min",
        f"AIL|1|A|{location}|CLINIC",
        f"AIP|1|A|{doctor}|ATT^Attending",
    ]
    return "\r".join(segments) + "\r"
