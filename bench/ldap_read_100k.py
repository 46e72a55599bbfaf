"""Benchmark: read 100,000 entries from a real slapd through the LDAP source.

Not a test: it starts a throwaway slapd (provisioner/sandbox/slapd.py, the
same launcher the tests use), loads the entries offline with slapadd, then
times `read_ldap` -- StartTLS, a size-limited reader bind, paged search,
attribute decoding and row validation -- and prints entries/s.

    python bench/ldap_read_100k.py [--entries N] [--page-size N]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time

from provisioner.config import LdapSourceSettings
from provisioner.sandbox.slapd import READER_DN, READER_PASSWORD, SUFFIX, start_slapd
from provisioner.sources.ldap_source import read_ldap


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=1000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        server = start_slapd(tmp, people=args.entries)
        print(f"slapd with {args.entries} entries loaded and started in {time.perf_counter() - started:.1f} s")
        try:
            os.environ["BENCH_LDAP_PASSWORD"] = READER_PASSWORD
            settings = LdapSourceSettings(
                type="ldap", url=server.url, ca_file=str(server.ca_file), bind_dn=READER_DN,
                password="env:BENCH_LDAP_PASSWORD", base_dn=f"ou=people,{SUFFIX}", preset="openldap",
                page_size=args.page_size, multi_valued=["mail"])
            started = time.perf_counter()
            result = read_ldap(settings)
            seconds = time.perf_counter() - started
        finally:
            server.stop()
    assert len(result.identities) == args.entries, (len(result.identities), result.rejected[:3])
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"read {len(result.identities)} entries in {seconds:.1f} s: "
          f"{len(result.identities) / seconds:,.0f} entries/s (page size {args.page_size}), "
          f"peak RSS {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
