"""A throwaway OpenLDAP slapd on 127.0.0.1, for the tests and bench/ldap_read_100k.py.

    server = start_slapd(tmp_dir, people=5000, ad_people=20)
    try: ... server.url, server.ldaps_url, server.ca_file ... finally: server.stop()

Everything lives in `tmp_dir`: a slapd.conf (`-f`, no cn=config), an mdb
database, a self-signed CA and server certificate (openssl CLI) for StartTLS
and ldaps://. Entries are loaded offline with `slapadd -q` before slapd
starts, which takes seconds for 100,000 entries where LDAP adds would take
minutes. slapd runs as the current user on free ports of its own, so a
system slapd on 389 (Debian's postinst starts one) is neither needed nor
disturbed.

The directory: `ou=people,<suffix>` holds `people` inetOrgPerson entries
(uid pNNNNNN, employeeNumber ENNNNNN, every 10th with two `mail` values) and
`ou=ad,<suffix>` holds `ad_people` AD-shaped entries using Debian's
msuser.schema (objectClass user, plus securityPrincipal, which that file lacks, sAMAccountName, userAccountControl with bit 2
set on every 4th, a binary objectGUID). A non-root reader (READER_DN /
READER_PASSWORD) is subject to SIZE_LIMIT, so reading more entries than that
only works with paged results; the root DN is not limited. A second reader
(LIMITED_DN, same password) has the paged-search limits a tight server sets:
pages of at most LIMITED_PAGE entries (size.pr), LIMITED_TOTAL in all
(size.prtotal).
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from .ports import free_port

SUFFIX = "dc=example,dc=org"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "root-secret-4f7a"
READER_DN = f"cn=reader,{SUFFIX}"
READER_PASSWORD = "reader-secret-9c2e"
SIZE_LIMIT = 1000
LIMITED_DN = f"cn=limited-reader,{SUFFIX}"
LIMITED_PAGE = 200
LIMITED_TOTAL = 500
SCHEMA_DIR = Path("/etc/ldap/schema")
SCHEMAS = ("core", "cosine", "inetorgperson", "nis", "msuser")


@dataclass
class Slapd:
    process: subprocess.Popen
    port: int
    ldaps_port: int
    ca_file: Path
    directory: Path

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.ldaps_port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def person_dn(n: int) -> str:
    return f"uid=p{n:06d},ou=people,{SUFFIX}"


def ad_guid(n: int) -> uuid.UUID:
    return uuid.UUID(int=(0x5EED << 96) | n)


def start_slapd(directory: Path, people: int = 0, ad_people: int = 0) -> Slapd:
    if not Path(_bin("slapd")).exists():
        raise RuntimeError("slapd is not installed: apt-get install slapd ldap-utils (.ci/run does)")
    directory = Path(directory)
    (directory / "db").mkdir(parents=True, exist_ok=True)
    ca_file, cert, key = _certificates(directory)
    conf = directory / "slapd.conf"
    conf.write_text(_config(directory, ca_file, cert, key))
    ldif = directory / "entries.ldif"
    with ldif.open("w") as out:
        _write_entries(out, people, ad_people)
    _run([_bin("slapadd"), "-q", "-f", str(conf), "-l", str(ldif)])
    port, ldaps_port = free_port(), free_port()
    log = (directory / "slapd.log").open("w")
    process = subprocess.Popen(
        [_bin("slapd"), "-d", "0", "-f", str(conf),
         "-h", f"ldap://127.0.0.1:{port}/ ldaps://127.0.0.1:{ldaps_port}/"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = Slapd(process, port, ldaps_port, ca_file, directory)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"slapd exited: {(directory / 'slapd.log').read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return server
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError("slapd did not start listening within 15 s")


def _bin(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr[-2000:]}")



def _config(directory: Path, ca_file: Path, cert: Path, key: Path) -> str:
    includes = "\n".join(f"include {SCHEMA_DIR / name}.schema" for name in SCHEMAS)
    # msuser.schema has AD's user class but not securityPrincipal, which
    # carries sAMAccountName in AD; this one line stands in for it
    principal = directory / "principal.schema"
    principal.write_text("objectclass ( 1.3.6.1.4.1.4203.666.11.8.1 NAME 'securityPrincipal' "
                         "SUP top AUXILIARY MAY ( sAMAccountName $ objectSid ) )\n")
    includes += f"\ninclude {principal}"
    return f"""{includes}
pidfile {directory}/slapd.pid
argsfile {directory}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCACertificateFile {ca_file}
TLSCertificateFile {cert}
TLSCertificateKeyFile {key}
sizelimit size.soft={SIZE_LIMIT} size.hard={SIZE_LIMIT} size.prtotal=unlimited
access to * by * read

database mdb
maxsize 2147483648
suffix "{SUFFIX}"
rootdn "{ROOT_DN}"
rootpw {ROOT_PASSWORD}
directory {directory}/db
index objectClass eq
limits dn.exact="{LIMITED_DN}" size.soft={SIZE_LIMIT} size.hard={SIZE_LIMIT} size.pr={LIMITED_PAGE} size.prtotal={LIMITED_TOTAL}
"""


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    ca_key, ca = directory / "ca.key", directory / "ca.pem"
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.pem"
    ext = directory / "server.ext"
    ext.write_text("subjectAltName = IP:127.0.0.1, DNS:localhost\n")
    _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
          "-subj", "/CN=provisioner test CA", "-keyout", str(ca_key), "-out", str(ca)])
    _run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
          "-keyout", str(key), "-out", str(csr)])
    _run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
          "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert)])
    os.chmod(key, 0o600)
    return ca, cert, key


def _write_entries(out, people: int, ad_people: int) -> None:
    out.write(f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n"
              f"dn: {READER_DN}\nobjectClass: applicationProcess\nobjectClass: simpleSecurityObject\n"
              f"cn: reader\nuserPassword: {READER_PASSWORD}\n\n"
              f"dn: {LIMITED_DN}\nobjectClass: applicationProcess\nobjectClass: simpleSecurityObject\n"
              f"cn: limited-reader\nuserPassword: {READER_PASSWORD}\n\n"
              f"dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n\n"
              f"dn: ou=ad,{SUFFIX}\nobjectClass: organizationalUnit\nou: ad\n\n")
    for n in range(1, people + 1):
        second = f"mail: p{n:06d}.alias@example.org\n" if n % 10 == 0 else ""
        out.write(f"dn: {person_dn(n)}\nobjectClass: inetOrgPerson\nuid: p{n:06d}\n"
                  f"cn: Person {n}\nsn: Number{n}\ngivenName: Person\nemployeeNumber: E{n:06d}\n"
                  f"mail: p{n:06d}@example.org\n{second}telephoneNumber: +1 555 {n:07d}\n\n")
    for n in range(1, ad_people + 1):
        guid = base64.b64encode(ad_guid(n).bytes_le).decode()
        control = 514 if n % 4 == 0 else 512  # 0x2 = ACCOUNTDISABLE
        out.write(f"dn: cn=AD User {n},ou=ad,{SUFFIX}\nobjectClass: user\nobjectClass: securityPrincipal\ncn: AD User {n}\n"
                  f"sn: User{n}\ngivenName: AD\nsAMAccountName: aduser{n}\n"
                  f"userAccountControl: {control}\nobjectGUID:: {guid}\nemployeeNumber: A{n:04d}\n"
                  f"mail: aduser{n}@corp.example.org\ninstanceType: 4\nnTSecurityDescriptor:: AQAEgA==\n"
                  f"objectCategory: cn=Person,cn=Schema,cn=Configuration,{SUFFIX}\n\n")
