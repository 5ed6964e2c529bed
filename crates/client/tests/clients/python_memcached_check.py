"""python-memcached, unchanged, against lanner. Usage: python_memcached_check.py ADDR

It never checks the key of a single-key get, so the default configuration is enough.
Prints one line per check; exits non-zero on the first failure.
"""
import sys
import time

import memcache


def check(name, condition):
    if not condition:
        print(f"FAILED {name}")
        sys.exit(1)
    print(f"ok {name}")


def main(address):
    # socket_timeout must exceed the longest t= used, or a blocking get times out on the
    # client side and the server is marked dead for dead_retry seconds.
    m = memcache.Client([address], socket_timeout=10, dead_retry=1)
    check("set", m.set("work", b"hello") is True)
    check("set str", m.set("work", "text") is True)
    check("get", m.get("work") == b"hello")
    check("get str comes back as bytes", m.get("work") == b"text")
    check("miss", m.get("work") is None)
    m.set("work", b"a")
    check("get t=", m.get("work/t=100") == b"a")
    started = time.monotonic()
    check("blocking miss", m.get("work/t=200") is None)
    check("waited", time.monotonic() - started >= 0.2)
    m.set("work", b"b")
    check("open", m.get("work/open") == b"b")
    check("close", m.get("work/close") is None)
    m.set("work", b"c")
    check("open again", m.get("work/t=100/open") == b"c")
    check("abort", m.get("work/abort") is None)
    check("peek", m.get("work/peek") == b"c")
    check("aborted item is back", m.get("work") == b"c")
    check("binary item", m.set("work", b"\x00\xff\r\nEND\r\n") and m.get("work") == b"\x00\xff\r\nEND\r\n")
    check("delete", m.delete("work") != 0)
    print("python-memcached: all checks passed")


if __name__ == "__main__":
    main(sys.argv[1])
