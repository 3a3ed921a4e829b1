"""What vpnd asks of charon and how it reads the verdict: bounded initiate
and terminate requests, a request encoded as a packet (refused, never
quoted, when it cannot be sent), and a command's answer as None or an
error text, where an aim already met counts as done.

Shared by the one-call methods, the pipeline and the driver's writer, so
that a request means the same whichever way it goes.
"""
from __future__ import annotations

from vici.protocol import Message, Packet

from vpnd.base.bounds import VICI_MESSAGE_MAX

# charon gives up on a terminate after TERMINATE_MS and forces the IKE_SA
# down; the socket waits a little longer than that.
TERMINATE_MS = 3000

# Answers that mean the request's aim is already met: a connection not
# loaded is unloaded, an SA that is gone is terminated.
ALREADY_DONE = {"unload-conn": "not found", "terminate": "no matching SAs"}


def terminate_request(request: dict) -> dict:
    """A terminate bounded by charon itself, then forced."""
    return {**request, "timeout": str(TERMINATE_MS), "force": "yes"}


def initiate_request(name: str, child: str) -> dict:
    # timeout -1: return at once. An unbounded initiate would block vpnd
    # and tie up a charon worker; the outcome arrives as events.
    return {"ike": name, "child": child, "timeout": "-1", "init-limits": "no"}


def already_done(command: str, error: str) -> bool:
    done = ALREADY_DONE.get(command)
    return done is not None and done in error


def encoded(command: str, message) -> tuple[bytes | None, str | None]:
    """(the request packet, None), or (None, why it is not sent). A
    message may come as a function that renders it: it is then garbage as
    soon as it is sent."""
    try:
        body = message() if callable(message) else message
        packet = Packet.request(command, Message.serialize(body))
    except (UnicodeError, TypeError, ValueError) as e:
        return None, f"not sent: {_unencodable(e)}"
    if len(packet) > VICI_MESSAGE_MAX:
        # charon would drop the whole session, and every request behind
        # this one with it. Validation's bounds keep any connection far
        # below; this is the last guard.
        return None, (f"not sent: {len(packet)} bytes, more than "
                      f"the {VICI_MESSAGE_MAX} charon accepts")
    return packet, None


def answer_error(command: str, response) -> str | None:
    """A parsed answer packet as None (done) or `command: charon's error`
    (never a request's content: a load-shared holds a PSK)."""
    if response.response_type != Packet.CMD_RESPONSE:
        return f"{command}: unexpected answer"
    answer = Message.deserialize(response.payload)
    if answer.get("success") == b"yes":
        return None
    error = answer.get("errmsg", b"failed").decode("utf-8", "replace")
    return None if already_done(command, error) else f"{command}: {error}"


def _unencodable(error: Exception) -> str:
    """Why a message could not be encoded, without quoting any of it (it
    may be a PSK)."""
    if isinstance(error, UnicodeError):
        return "a value is not valid UTF-8 (a lone surrogate, say)"
    return f"a value cannot be encoded ({type(error).__name__})"
