"""A real OpenLDAP server for the LDAP sign-in tests: Debian's slapd on a free loopback port, with its own
configuration and mdb database in a temporary directory (never the system's), the memberof overlay, and a
small hospital directory loaded with ldapadd. Optionally StartTLS with a self-signed certificate made here."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SUFFIX = "dc=hospital,dc=test"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "root-secret-for-tests"
SERVICE_DN = f"cn=careloop,ou=services,{SUFFIX}"
SERVICE_PASSWORD = "service-secret-for-tests"
STAFF_BASE = f"ou=staff,{SUFFIX}"
GROUP_BASE = f"ou=groups,{SUFFIX}"
PASSWORDS = {
    "nurse.li": "nurse-li-directory-pw",
    "head.wang": "head-wang-directory-pw",
    "dr.tran": "dr-tran-directory-pw",
    "it.chen": "it-chen-directory-pw",
    "visitor.x": "visitor-directory-pw",
}
NAMES = {
    "nurse.li": "Li Na",
    "head.wang": "Wang Fang",
    "dr.tran": "Trần Văn An",
    "it.chen": "Chen Jie",
    "visitor.x": "Visitor X",
}
# group -> members (a groupOfNames needs one member at least: the placeholder keeps emptied groups valid)
GROUPS = {
    "nurses": ["nurse.li", "head.wang"],
    "managers": ["head.wang"],
    "doctors": ["dr.tran"],
    "it-admins": ["it.chen"],
    "cardiology": ["nurse.li", "head.wang", "dr.tran"],
    "visitors": ["visitor.x"],
}
PLACEHOLDER = f"cn=placeholder,{SUFFIX}"


def group_dn(name: str) -> str:
    return f"cn={name},{GROUP_BASE}"


def user_dn(uid: str) -> str:
    return f"uid={uid},{STAFF_BASE}"


def _ldif() -> str:
    parts = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Hospital\ndc: hospital\n",
        *(
            f"dn: ou={ou},{SUFFIX}\nobjectClass: organizationalUnit\nou: {ou}\n"
            for ou in ("staff", "groups", "services")
        ),
        f"dn: {SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
        f"cn: careloop\nuserPassword: {SERVICE_PASSWORD}\n",
    ]
    for uid, password in PASSWORDS.items():
        parts.append(
            f"dn: {user_dn(uid)}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\n"
            f"displayName:: {_b64(NAMES[uid])}\nuserPassword: {password}\n"
        )
    for name, members in GROUPS.items():
        lines = "".join(f"member: {user_dn(m)}\n" for m in members)
        parts.append(
            f"dn: {group_dn(name)}\nobjectClass: groupOfNames\ncn: {name}\n{lines}member: {PLACEHOLDER}\n"
        )
    return "\n".join(parts)


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1 (it is its own CA) and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


@dataclass
class Slapd:
    directory: Path
    port: int
    process: subprocess.Popen[bytes]
    cert_file: Path | None

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    def modify(self, ldif: str) -> None:
        """An LDIF change applied as the directory's root (a group losing a member, say)."""
        _ldap_tool("ldapmodify", self.url, ldif)

    def remove_member(self, group: str, uid: str) -> None:
        self.modify(f"dn: {group_dn(group)}\nchangetype: modify\ndelete: member\nmember: {user_dn(uid)}\n")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _ldap_tool(tool: str, url: str, ldif: str) -> None:
    done = subprocess.run(
        [tool, "-x", "-H", url, "-D", ROOT_DN, "-w", ROOT_PASSWORD],
        input=ldif.encode(),
        capture_output=True,
        timeout=30,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{tool} failed: {done.stderr.decode()[-500:]}")


def available() -> bool:
    return shutil.which("slapd") is not None or Path("/usr/sbin/slapd").exists()


def start(directory: Path, *, tls: bool = False) -> Slapd:
    """slapd on a free port with `directory` holding its configuration and database, the hospital's
    entries loaded; returns once it answers."""
    data = directory / "db"
    data.mkdir()
    cert_file = key_file = None
    if tls:
        cert_file, key_file = make_certificate(directory)
    tls_lines = f"TLSCertificateFile {cert_file}\nTLSCertificateKeyFile {key_file}\n" if tls else ""
    config = directory / "slapd.conf"
    config.write_text(
        "include /etc/ldap/schema/core.schema\n"
        "include /etc/ldap/schema/cosine.schema\n"
        "include /etc/ldap/schema/inetorgperson.schema\n"
        "modulepath /usr/lib/ldap\n"
        "moduleload back_mdb\n"
        "moduleload memberof\n"
        f"pidfile {directory / 'slapd.pid'}\n"
        f"{tls_lines}"
        "database mdb\n"
        f'suffix "{SUFFIX}"\n'
        f'rootdn "{ROOT_DN}"\n'
        f"rootpw {ROOT_PASSWORD}\n"
        f"directory {data}\n"
        "maxsize 10485760\n"
        "overlay memberof\n"
    )
    port = _free_port()
    slapd = shutil.which("slapd") or "/usr/sbin/slapd"
    url = f"ldap://127.0.0.1:{port}"
    # -d keeps slapd in the foreground (it is our child, stopped by its pid); 0 asks for no debug output
    log = directory / "slapd.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [slapd, "-d", "0", "-h", url, "-f", str(config)], stdout=out, stderr=subprocess.STDOUT
        )
    server = Slapd(directory, port, process, cert_file)
    deadline = time.monotonic() + 15
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"slapd exited: {log.read_text(errors='replace')[-800:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if time.monotonic() > deadline:
                server.stop()
                raise RuntimeError("slapd did not start listening") from None
            time.sleep(0.05)
    _ldap_tool("ldapadd", url, _ldif())
    return server
