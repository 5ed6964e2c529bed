"""pymemcache, unchanged, against lanner. Usage: pymemcache_check.py PLAIN_ADDR ECHO_ADDR

PLAIN_ADDR runs with the default configuration, ECHO_ADDR with echo_full_key = true.
Prints one line per check; exits non-zero on the first failure.
"""
import sys
import time

from pymemcache.client.base import Client
from pymemcache.exceptions import MemcacheUnknownError


def connect(address, **options):
    host, port = address.rsplit(":", 1)
    return Client((host, int(port)), connect_timeout=5, timeout=10, **options)


def check(name, condition):
    if not condition:
        print(f"FAILED {name}")
        sys.exit(1)
    print(f"ok {name}")


def main(plain, echo):
    # Kestrel always answers a set; pymemcache's default noreply=True sends `noreply` and does
    # not read the STORED, so the next command reads it instead of its own reply.
    c = connect(plain)
    c.set("quirk", b"x")
    try:
        c.get("quirk")
        check("default noreply desynchronises", False)
    except MemcacheUnknownError:
        check("default noreply desynchronises", True)
    c.close()

    c = connect(plain, default_noreply=False)
    # That get still went out, and normally took "x" before pymemcache closed the connection
    # (the item is then lost); either way nothing else is disturbed.
    check("plain: after the desynchronised get", c.get("quirk") in (None, b"x"))
    check("plain: set", c.set("fifo", b"y") is True)
    check("plain: FIFO", c.set("fifo", b"z") is True and c.get("fifo") == b"y")
    check("plain: FIFO", c.get("fifo") == b"z")
    check("plain: set", c.set("work", b"hello") is True)
    check("plain: get", c.get("work") == b"hello")
    check("plain: miss", c.get("work") is None)
    # With options, lanner (like Kestrel) echoes the bare queue name, which pymemcache looks
    # up as the key it asked for and fails: the item is already taken.
    c.set("work", b"lost")
    try:
        c.get("work/t=100")
        check("plain: option keys fail the key lookup", False)
    except KeyError:
        check("plain: option keys fail the key lookup", True)
    c.close()

    c = connect(echo, default_noreply=False)
    c.set("work", b"a")
    check("echo: get t=", c.get("work/t=100") == b"a")
    started = time.monotonic()
    check("echo: blocking miss", c.get("work/t=200") is None)
    check("echo: waited", time.monotonic() - started >= 0.2)
    c.set("work", b"b")
    check("echo: open", c.get("work/open") == b"b")
    check("echo: close", c.get("work/close") is None)
    c.set("work", b"c")
    check("echo: open again", c.get("work/t=100/open") == b"c")
    check("echo: abort", c.get("work/abort") is None)
    check("echo: peek", c.get("work/peek") == b"c")
    check("echo: aborted item is back", c.get("work") == b"c")
    check("echo: delete", c.delete("work") is True)
    c.close()
    print("pymemcache: all checks passed")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
