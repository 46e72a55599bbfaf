"""A SCIM server that answers GET /Users from pages rendered before it listens.

For bench/plan_100k_http.py: it costs next to nothing per request, so a plan
against it measures the client. It serves `--accounts` users (1 % of the
source's people missing, titles as the source has them), a
ServiceProviderConfig announcing filter.maxResults = 1000, and any
startIndex/count (pages at count=1000 are pre-rendered, others built on
demand). It prints its port on stdout once it listens, and stops when its
stdin closes (the bench process ending, however it ends).

    python bench/scim_pages_server.py --accounts 100000
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PAGE = 1000
USER = "urn:ietf:params:scim:schemas:core:2.0:User"


def accounts(n: int) -> list[dict]:
    docs = []
    for i in range(n):
        if i % 100 == 11:
            continue                                               # 1 % missing -> create
        docs.append({"schemas": [USER], "id": f"acct-{i}", "userName": f"USER{i}@example.com",
                     "active": True, "name": {"givenName": f"Zoë{i}", "familyName": f"Ōtsuka{i}"},
                     "emails": [{"value": f"user{i}@example.com"}], "title": "Agent",
                     "meta": {"resourceType": "User", "location": f"/Users/acct-{i}"}})
    return docs


def page(docs: list[dict], start: int, count: int) -> bytes:
    chunk = docs[start - 1:start - 1 + count]
    return json.dumps({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                       "totalResults": len(docs), "startIndex": start, "itemsPerPage": len(chunk),
                       "Resources": chunk}, ensure_ascii=False).encode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=100_000)
    docs = accounts(parser.parse_args().accounts)
    pages = {start: page(docs, start, PAGE) for start in range(1, len(docs) + 1, PAGE)}
    config = json.dumps({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
                         "patch": {"supported": True}, "filter": {"supported": True, "maxResults": PAGE},
                         "bulk": {"supported": False}}).encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            if url.path.endswith("/ServiceProviderConfig"):
                body = config
            elif url.path.endswith("/Users"):
                start = max(1, int(query.get("startIndex", ["1"])[0]))
                count = min(PAGE, int(query.get("count", [str(PAGE)])[0]))
                body = pages.get(start) if count == PAGE else None
                body = body or page(docs, start, count)
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/scim+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_address[1], flush=True)
    sys.stdin.read()  # until the bench closes our stdin or ends


if __name__ == "__main__":
    main()
