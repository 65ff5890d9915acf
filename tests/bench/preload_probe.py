#!/usr/bin/env python3
"""The stall probe of scripts/bench.sh preload: GET PATH again and again, one
request at a time, on one keep-alive connection (HTTP/1.1, over TLS with
--tls) for SECONDS, and print the per-request latency as key=value lines.
One connection is one worker of nginx: a snapshot that stalls that worker
shows up as one slow request."""
import argparse
import http.client
import ssl
import sys
import time


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("port", type=int)
    p.add_argument("seconds", type=float)
    p.add_argument("--path", default="/index.html")
    p.add_argument("--tls", action="store_true")
    a = p.parse_args()
    if a.tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # the run's throwaway certificate
        conn = http.client.HTTPSConnection("127.0.0.1", a.port, context=ctx, timeout=30)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=30)
    conn.connect()
    latencies = []
    end = time.monotonic() + a.seconds
    while time.monotonic() < end:
        t0 = time.perf_counter()
        conn.request("GET", a.path)
        r = conn.getresponse()
        r.read()
        latencies.append(time.perf_counter() - t0)
        if r.status != 200 or r.getheader("Connection", "").lower() == "close":
            # A new connection would be a new worker's, maybe: the run is void.
            print(f"probe: request {len(latencies)}: status {r.status}, "
                  f"connection {r.getheader('Connection')}", file=sys.stderr)
            return 1
    latencies.sort()
    ms = [x * 1000 for x in latencies]
    print(f"requests={len(ms)}")
    print(f"p50_ms={ms[len(ms) // 2]:.3f}")
    print(f"p99_ms={ms[min(len(ms) - 1, len(ms) * 99 // 100)]:.3f}")
    print(f"max_ms={ms[-1]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
