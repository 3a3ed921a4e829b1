"""What a scrape asks and what it is answered (pure): where a request head
ends, which answer its request line gets, and the head of that answer.
Apart from the server (metrics_server.py), so that the HTTP it speaks
reads as a table and is tested as one."""
from __future__ import annotations

from typing import NamedTuple


class Answer(NamedTuple):
    status: str  # "200 OK": the metrics
    head_only: bool = False  # HEAD


OK = "200 OK"
NOT_HERE = b"metrics are at /metrics\n"


def head_end(data: bytes) -> int:
    """Where the request head ends (after its blank line), or -1."""
    ends = [i + len(sep) for sep in (b"\r\n\r\n", b"\n\n") if (i := data.find(sep)) >= 0]
    return min(ends, default=-1)


def route(head: bytes) -> Answer:
    """What to answer a request head (only its request line matters)."""
    parts = head.split(b"\n", 1)[0].rstrip(b"\r").split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        return Answer("400 Bad Request")
    method, target, _ = parts
    head_only = method == b"HEAD"
    if method not in (b"GET", b"HEAD"):
        return Answer("405 Method Not Allowed")
    if target.split(b"?", 1)[0] not in (b"/", b"/metrics"):
        return Answer("404 Not Found", head_only)
    return Answer(OK, head_only)


def response_head(status: str, content_type: str, length: int) -> bytes:
    """One answer a connection: a scraper connects for each scrape."""
    return (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {length}\r\nConnection: close\r\n\r\n").encode()
