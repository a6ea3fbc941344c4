"""Drives the unmodified PyPI client mCSSMapi 0.2 against a smartlic manager on loopback.

The client hard-codes https://cloudsso.cisco.com and https://swapi.cisco.com. Only inside this
process, those two names resolve to 127.0.0.1:PORT (socket.getaddrinfo is wrapped); TLS still
checks the real names (SNI, certificate) against REQUESTS_CA_BUNDLE. Prints one JSON object
with each call's result dictionary, as the client returns it.

Usage: SMARTLIC_CLIENT_SECRET=... run_mcssmapi.py --port P --client-id ID --domain D --va NAME
       [--request-code CODE --tag TAG]   (also calls reserve_license)
"""

import argparse
import importlib.metadata
import json
import os
import socket
import sys

ORIGINAL_HOSTS = ("cloudsso.cisco.com", "swapi.cisco.com")


def map_original_hosts(port):
    """Sends the original manager's host names to the loopback manager; others are unchanged."""
    real = socket.getaddrinfo

    def getaddrinfo(host, service, *args, **kwargs):
        if isinstance(host, bytes):
            host = host.decode("ascii")
        if host in ORIGINAL_HOSTS:
            return real("127.0.0.1", port, *args, **kwargs)
        return real(host, service, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo


def call(fn, *args):
    """The client's result dictionary, or the exception it raised (its own code does not catch)."""
    try:
        return fn(*args)
    except Exception as e:  # noqa: BLE001 - reported to the Rust test, which decides
        return {"exception": f"{type(e).__name__}: {e}"}


def session(client_id, secret, args):
    from mcssmapi.licensing import Licensing

    client = Licensing(client_id, secret)
    out = {
        "bearer_update": call(client.bearer_update),
        "smart_license_usage": call(client.smart_license_usage, args.domain, 50, 0, args.va),
    }
    if args.request_code:
        licenses = [{"entitlementTag": args.tag, "quantity": 1}]
        out["reserve_license"] = call(client.reserve_license, args.domain, args.va, args.request_code, licenses)
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--domain", required=True)
    parser.add_argument("--va", required=True)
    parser.add_argument("--request-code")
    parser.add_argument("--tag")
    args = parser.parse_args()
    secret = os.environ["SMARTLIC_CLIENT_SECRET"]

    map_original_hosts(args.port)
    summary = {
        "client_version": importlib.metadata.version("mCSSMapi"),
        "right_secret": session(args.client_id, secret, args),
        "wrong_secret": session(args.client_id, secret + "-wrong", args),
    }
    json.dump(summary, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
