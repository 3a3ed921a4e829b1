"""A bounded, self-healing VICI session to one charon.

Thin on purpose: one method per command, bytes converted to str here, the
binding's exceptions mapped to ours, and no VICI dictionaries leak past the
driver. Every call is bounded by a socket timeout so that a hung charon
never hangs vpnd; after any transport error the session is thrown away
(a timeout mid-message leaves it out of sync) and the next call reconnects.
"""
from __future__ import annotations

import itertools
import socket
import time
from collections import deque
from collections.abc import Iterator

import vici
import vici.exception
from vici.protocol import Message, Packet

from vpnd.base.bounds import VICI_MESSAGE_MAX
from vpnd.base.errors import CharonNotAnswering, DriverError, DriverUnavailable
from vpnd.base.live import ChildSa, IkeSa, LiveState


def decode(value):
    """VICI answers in bytes; the rest of vpnd speaks str."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


class DeadlineSocket:
    """A socket whose every send and receive counts against one deadline
    for the whole call. The vici binding clears the socket's timeout after
    a message's first byte (Transport._recvall), so a charon stopped mid-
    answer would otherwise hold vpnd forever; here its settimeout() does
    nothing and the deadline decides."""

    def __init__(self, sock: socket.socket):
        self._sock = sock
        self.deadline: float | None = None

    def _arm(self) -> None:
        if self.deadline is None:
            self._sock.settimeout(None)
            return
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("deadline passed")
        self._sock.settimeout(left)

    def recv(self, n: int) -> bytes:
        self._arm()
        return self._sock.recv(n)

    def sendall(self, data: bytes) -> None:
        self._arm()
        self._sock.sendall(data)

    def settimeout(self, value) -> None:
        pass  # the binding's, ignored: the deadline rules

    def gettimeout(self):
        return None

    def shutdown(self, how) -> None:
        self._sock.shutdown(how)

    def close(self) -> None:
        self._sock.close()

    def fileno(self) -> int:
        return self._sock.fileno()


# charon gives up on a terminate after TERMINATE_MS and forces the IKE_SA
# down; the socket waits a little longer than that.
TERMINATE_MS = 3000

# Answers that mean the request's aim is already met: a connection not
# loaded is unloaded, an SA that is gone is terminated.
ALREADY_DONE = {"unload-conn": "not found", "terminate": "no matching SAs"}


# Requests a pipeline keeps in flight at most (topped up when half are
# answered), and how much one read of answers takes.
PIPELINE_WINDOW = 512
RECV_BYTES = 256 * 1024


def terminate_request(request: dict) -> dict:
    """A terminate bounded by charon itself, then forced."""
    return {**request, "timeout": str(TERMINATE_MS), "force": "yes"}


def initiate_request(name: str, child: str) -> dict:
    # timeout -1: return at once. An unbounded initiate would block vpnd
    # and tie up a charon worker; the outcome arrives as events.
    return {"ike": name, "child": child, "timeout": "-1", "init-limits": "no"}


def _already_done(command: str, error: str) -> bool:
    done = ALREADY_DONE.get(command)
    return done is not None and done in error


class ViciClient:
    def __init__(self, socket_path: str, timeout: float = 10.0):
        self.socket_path = socket_path
        self.timeout = timeout
        self.writes = 0  # VICI commands that change charon's state
        self.sessions = 0  # connections made: a new one may be a new charon
        self._sock: socket.socket | None = None
        self._session: vici.Session | None = None

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = self._session = None

    def _connect(self) -> vici.Session:
        if self._session is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(self.socket_path)
            except OSError as e:
                sock.close()
                raise DriverUnavailable(f"cannot reach charon at {self.socket_path}: "
                                        f"{e.strerror or e}") from None
            self._sock = DeadlineSocket(sock)
            self._session = vici.Session(self._sock)
            self.sessions += 1
        return self._session

    def _call(self, what: str, fn, write: bool = False, timeout: float | None = None):
        session = self._connect()
        if write:
            self.writes += 1
        # One deadline for the whole request and answer (a streamed one too).
        self._sock.deadline = time.monotonic() + (timeout or self.timeout)
        try:
            return fn(session)
        except vici.exception.CommandException as e:
            raise DriverError(f"{what}: {e}") from None
        except socket.timeout:
            self.close()  # a half-read answer leaves the session out of step
            raise CharonNotAnswering(f"{what}: charon at {self.socket_path} did not "
                                     f"answer within {timeout or self.timeout:g}s") from None
        except (OSError, vici.exception.SessionException, ValueError) as e:
            # A charon that went away.
            self.close()
            raise DriverUnavailable(f"{what}: charon at {self.socket_path} "
                                    f"did not answer ({e or type(e).__name__})") from None
        finally:
            if self._sock is not None:
                self._sock.deadline = None

    # --- reads -----------------------------------------------------------

    def version(self) -> dict:
        return decode(self._call("version", lambda s: s.version()))

    def plugins(self) -> list[str]:
        """The plugins charon loaded (from `stats`)."""
        return decode(self._call("stats", lambda s: s.stats())).get("plugins", [])

    def algorithms(self) -> dict[str, set[str]]:
        answer = decode(self._call("get-algorithms", lambda s: s.get_algorithms()))
        return {category: set(algs) for category, algs in answer.items()
                if isinstance(algs, dict)}

    def sas_of(self, names) -> tuple[IkeSa, ...]:
        """The SAs of some connections only (list-sas filtered by name),
        all asked in one write."""
        names = list(names)
        if not names:
            return ()
        answers = self._query("list-sas", [("list-sas", {"ike": n}, "list-sa") for n in names])
        return tuple(sa for _, events in answers for sa in _ike_sas(decode(events)))

    def live_state(self) -> LiveState:
        """get-conns, get-shared and list-sas, asked in one write."""
        (conns, _), (shared, _), (_, sas) = self._query("live state", [
            ("get-conns", None, None), ("get-shared", None, None),
            ("list-sas", None, "list-sa")])
        return LiveState(conns=frozenset(decode(conns.get("conns", []))),
                         shared=frozenset(decode(shared.get("keys", []))),
                         sas=tuple(_ike_sas(decode(sas))))

    def _query(self, what: str, requests: list[tuple[str, dict | None, str | None]]
               ) -> list[tuple[dict, list[dict]]]:
        """Read-only requests (command, message, the event it streams or
        None) sent in one write, with the registrations for their streams
        before them and the unregistrations after: one round trip, where the
        binding makes three for each streamed command. charon works them in
        order, so a streamed event belongs to the request whose answer
        follows it. Returns (answer, streamed events) per request; errors
        are mapped as _call maps them."""
        self._connect()
        streams = sorted({event for _, _, event in requests if event})
        packets = [Packet.register_event(e) for e in streams]
        packets += [Packet.request(c, None if m is None else Message.serialize(m))
                    for c, m, _ in requests]
        packets += [Packet.unregister_event(e) for e in streams]
        frames = _Frames(self._sock)
        self._sock.deadline = time.monotonic() + self.timeout
        try:
            self._sock.sendall(b"".join(len(p).to_bytes(4, "big") + p for p in packets))
            for _ in streams:
                _confirmed(Packet.parse(frames.next()), what)
            answers = []
            for command, _, _ in requests:
                events = []
                while (packet := Packet.parse(frames.next())).response_type == Packet.EVENT:
                    events.append(Message.deserialize(packet.payload))
                if packet.response_type != Packet.CMD_RESPONSE:
                    raise vici.exception.SessionException(f"unexpected answer to {command}")
                answers.append((Message.deserialize(packet.payload), events))
            for _ in streams:
                _confirmed(Packet.parse(frames.next()), what)
            if frames.left():
                self.close()  # more than was asked for: the session is out of step
        except socket.timeout:
            self.close()
            raise CharonNotAnswering(f"{what}: charon at {self.socket_path} did not "
                                     f"answer within {self.timeout:g}s") from None
        except (OSError, vici.exception.SessionException, ValueError) as e:
            self.close()
            raise DriverUnavailable(f"{what}: charon at {self.socket_path} "
                                    f"did not answer ({e or type(e).__name__})") from None
        finally:
            if self._sock is not None:
                self._sock.deadline = None
        for (command, _, _), (answer, _) in zip(requests, answers):
            if answer.get("success", b"yes") != b"yes":
                error = answer.get("errmsg", b"failed").decode("utf-8", "replace")
                raise DriverError(f"{what}: {command}: {error}")
        return answers

    # --- writes ----------------------------------------------------------

    def pipeline(self, requests: list[tuple[str, object]]) -> Iterator[str | None]:
        """Send many write requests ahead of their answers.

        charon works the requests of one VICI connection one after another,
        in order, so N requests cost one round trip's latency instead of N
        and keep their order (an unload before its load): this is what lets
        a cold start of 1000 connections beat swanctl, and a burst of
        changes land at charon's own pace. Up to PIPELINE_WINDOW requests
        are in flight, sent many to a write; answers are read many to a
        read. Yields, as each answer arrives, None for a success (or an aim
        already met, ALREADY_DONE), else charon's error text (never a
        request's content: a load-shared holds a PSK); the caller's work on
        one answer overlaps charon's on the next ones. A message that cannot
        be encoded is that request's error alone: it is never sent, and the
        others go on. The session carries nothing else until every answer
        is read; a caller that stops early loses the session (closed,
        reconnected on next use).
        """
        self._connect()
        self.writes += len(requests)
        frames = _Frames(self._sock)
        todo = iter(requests)
        # What was sent, in order: a command awaiting charon's answer, or
        # (a command, an error) for a request that was never sent.
        in_flight: deque = deque()
        more = True
        try:
            while True:
                if more and len(in_flight) <= PIPELINE_WINDOW // 2:
                    more = self._send_some(todo, PIPELINE_WINDOW - len(in_flight), in_flight)
                if not in_flight:
                    break
                head = in_flight.popleft()
                if isinstance(head, tuple):  # never sent
                    yield f"{head[0]}: {head[1]}"
                    continue
                # Each answer within the timeout of the one before: a batch
                # of thousands may take longer than one call, a stopped
                # charon does not get longer than one.
                self._sock.deadline = time.monotonic() + self.timeout
                yield _answer(head, Packet.parse(frames.next()))
            if frames.left():
                self.close()  # more than was asked for: the session is out of step
        except socket.timeout:
            self.close()
            raise CharonNotAnswering(f"pipelined requests: charon at {self.socket_path} did "
                                     f"not answer within {self.timeout:g}s") from None
        except (OSError, ValueError) as e:
            self.close()
            raise DriverUnavailable(f"pipelined requests: charon at {self.socket_path} "
                                    f"did not answer ({e or type(e).__name__})") from None
        except GeneratorExit:
            if any(not isinstance(c, tuple) for c in in_flight):
                self.close()  # answers still in flight would desynchronise it
            raise
        finally:
            if self._sock is not None:
                self._sock.deadline = None

    def _send_some(self, todo, count: int, in_flight: deque) -> bool:
        """Send up to `count` more requests in one write; False once none are left."""
        packets, taken = [], 0
        for command, message in itertools.islice(todo, count):
            taken += 1
            try:
                # A message may come as a function that renders it: each
                # is then garbage as soon as it is sent.
                body = message() if callable(message) else message
                packet = Packet.request(command, Message.serialize(body))
            except (UnicodeError, TypeError, ValueError) as e:
                in_flight.append((command, f"not sent: {_unencodable(e)}"))
                continue
            if len(packet) > VICI_MESSAGE_MAX:
                # charon would drop the whole session, and every request
                # behind this one with it. Validation's bounds keep any
                # connection far below; this is the last guard.
                in_flight.append((command, f"not sent: {len(packet)} bytes, more than "
                                           f"the {VICI_MESSAGE_MAX} charon accepts"))
                continue
            packets.append(len(packet).to_bytes(4, "big") + packet)
            in_flight.append(command)
        if packets:
            self._sock.deadline = time.monotonic() + self.timeout
            self._sock.sendall(b"".join(packets))
        return taken == count

    def reload_settings(self) -> None:
        self._call("reload-settings", lambda s: s.reload_settings(), write=True)

    def load_conn(self, message: dict) -> None:
        self._call(f"load-conn {', '.join(message)}", lambda s: s.load_conn(message),
                   write=True)

    def unload_conn(self, name: str) -> None:
        try:
            self._call(f"unload-conn {name}", lambda s: s.unload_conn({"name": name}),
                       write=True)
        except DriverError as e:
            if not _already_done("unload-conn", str(e)):
                raise

    def load_shared(self, message: dict) -> None:
        # The message holds the PSK: never let it into an error text.
        self._call(f"load-shared {message.get('id')}",
                   lambda s: s.load_shared(message), write=True)

    def unload_shared(self, secret_id: str) -> None:
        self._call(f"unload-shared {secret_id}",
                   lambda s: s.unload_shared({"id": secret_id}), write=True)

    def initiate(self, name: str, child: str) -> None:
        request = initiate_request(name, child)
        self._call(f"initiate {name}", lambda s: list(s.initiate(request)), write=True)

    def terminate_ike(self, name: str) -> None:
        self._terminate(f"terminate {name}", {"ike": name})

    def terminate_ike_id(self, uniqueid: str) -> None:
        self._terminate(f"terminate ike-id {uniqueid}", {"ike-id": uniqueid})

    def terminate_child_id(self, uniqueid: str) -> None:
        self._terminate(f"terminate child-id {uniqueid}", {"child-id": uniqueid})

    def _terminate(self, what: str, request: dict) -> None:
        request = terminate_request(request)
        try:
            self._call(what, lambda s: list(s.terminate(request)), write=True)
        except DriverError as e:
            # Already gone is what we wanted.
            if not _already_done("terminate", str(e)):
                raise


class _Frames:
    """VICI packets (a 4-byte length, then the packet) read from a socket
    in large reads: a pipeline's thousands of answers are a few reads, not
    two reads each."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.at = 0

    def next(self) -> bytes:
        while True:
            if len(self.buf) - self.at >= 4:
                length = int.from_bytes(self.buf[self.at:self.at + 4], "big")
                end = self.at + 4 + length
                if len(self.buf) >= end:
                    packet = self.buf[self.at + 4:end]
                    self.at = end
                    return packet
            chunk = self.sock.recv(RECV_BYTES)
            if not chunk:
                raise ConnectionError("charon closed the connection")
            self.buf = self.buf[self.at:] + chunk
            self.at = 0

    def left(self) -> int:
        return len(self.buf) - self.at


def _confirmed(packet, what: str) -> None:
    if packet.response_type != Packet.EVENT_CONFIRM:
        raise vici.exception.SessionException(f"{what}: charon refused an event registration")


def _answer(command: str, response) -> str | None:
    if response.response_type != Packet.CMD_RESPONSE:
        return f"{command}: unexpected answer"
    answer = Message.deserialize(response.payload)
    if answer.get("success") == b"yes":
        return None
    error = answer.get("errmsg", b"failed").decode("utf-8", "replace")
    return None if _already_done(command, error) else f"{command}: {error}"


def _unencodable(error: Exception) -> str:
    """Why a message could not be encoded, without quoting any of it (it
    may be a PSK)."""
    if isinstance(error, UnicodeError):
        return "a value is not valid UTF-8 (a lone surrogate, say)"
    return f"a value cannot be encoded ({type(error).__name__})"


def _ike_sas(entries: list[dict]) -> list[IkeSa]:
    """list-sas streams one {name: sa} dict per IKE_SA."""
    result = []
    for entry in entries:
        for name, sa in entry.items():
            children = tuple(_child_sa(c) for c in (sa.get("child-sas") or {}).values())
            result.append(IkeSa(
                name=name, uniqueid=sa.get("uniqueid", ""), state=sa.get("state", ""),
                children=children, spi_i=sa.get("initiator-spi", ""),
                spi_r=sa.get("responder-spi", ""), age=_int(sa.get("established")),
                algorithms=_algorithms(sa), version=sa.get("version", "")))
    return result


def _child_sa(c: dict) -> ChildSa:
    return ChildSa(
        name=c.get("name", ""), uniqueid=c.get("uniqueid", ""), state=c.get("state", ""),
        spi_in=c.get("spi-in", ""), spi_out=c.get("spi-out", ""),
        age=_int(c.get("install-time")),
        bytes_in=_int(c.get("bytes-in")), bytes_out=_int(c.get("bytes-out")),
        packets_in=_int(c.get("packets-in")), packets_out=_int(c.get("packets-out")),
        local_ts=tuple(c.get("local-ts") or ()), remote_ts=tuple(c.get("remote-ts") or ()),
        algorithms=_algorithms(c))


def _algorithms(sa: dict) -> str:
    """As swanctl --list-sas prints them: AES_CBC-128/HMAC_SHA2_256_128/..."""
    enc = sa.get("encr-alg", "")
    if enc and sa.get("encr-keysize"):
        enc = f"{enc}-{sa['encr-keysize']}"
    parts = [enc, sa.get("integ-alg", ""), sa.get("prf-alg", ""), sa.get("dh-group", "")]
    return "/".join(p for p in parts if p)


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
