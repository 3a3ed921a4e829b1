"""The driver's writes: a planned action as the VICI requests it is,
sent one call at a time (execute) or many steps pipelined on one session
(apply_many). A load's message is rendered only as it is sent.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterator
from functools import partial

from vpnd.plan.actions import (Action, Initiate, LoadConn, LoadShared, TerminateDuplicate,
    TerminateIke, UnloadConn, UnloadShared)
from vpnd.drivers.strongswan_clients import Clients
from vpnd.drivers.strongswan_mapping import not_started, with_initial_contact
from vpnd.drivers.vici_requests import initiate_request, terminate_request


class Writer:
    def __init__(self, clients: Clients):
        self.clients = clients

    def apply_many(self, namespace: str, steps) -> Iterator[str | None]:
        """Many steps' actions pipelined on one session, in order: charon
        works them one after another, so each connection's unload still
        comes before its load. One error text (the step's first, or None)
        per step, as its last answer arrives."""
        requests, ends = [], []
        for step in steps:
            for action in step.actions:
                requests += _requests(action)
            ends.append(len(requests))
        answers = self.clients.of(namespace).pipeline(requests)
        done = 0
        for end in ends:
            error = None
            for answer in itertools.islice(answers, end - done):
                error = error or answer
            done = end
            yield error

    def execute(self, namespace: str, action: Action) -> None:
        client = self.clients.of(namespace)
        match action:
            case LoadShared():
                client.load_shared(action.body())
            case LoadConn():
                client.load_conn(_conn_message(action))
            case UnloadConn():
                client.unload_conn(action.name)
            case TerminateIke():
                client.terminate_ike(action.name)
            case UnloadShared():
                client.unload_shared(action.secret_id)
            case TerminateDuplicate(kind="ike"):
                client.terminate_ike_id(action.uniqueid)
            case TerminateDuplicate(kind="child"):
                client.terminate_child_id(action.uniqueid)
            case Initiate():
                for child in action.children:
                    client.initiate(action.name, child)
            case _:
                raise TypeError(f"unknown action {action!r}")


def _requests(action: Action) -> list[tuple[str, object]]:
    """The VICI requests an action is, as ViciClient's one-call methods
    send them (a load's message rendered only as it is sent)."""
    match action:
        case LoadShared():
            return [("load-shared", action.body)]
        case LoadConn():
            return [("load-conn", partial(_conn_message, action))]
        case UnloadConn():
            return [("unload-conn", {"name": action.name})]
        case TerminateIke():
            return [("terminate", terminate_request({"ike": action.name}))]
        case UnloadShared():
            return [("unload-shared", {"id": action.secret_id})]
        case TerminateDuplicate():
            return [("terminate", terminate_request({f"{action.kind}-id": action.uniqueid}))]
        case Initiate():
            return [("initiate", initiate_request(action.name, c)) for c in action.children]
    raise TypeError(f"not a VICI action: {action!r}")


def _conn_message(action: LoadConn) -> dict:
    message = action.body()
    message = with_initial_contact(message) if action.initial_contact else message
    return message if action.start else not_started(message)
