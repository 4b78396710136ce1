"""Shared plumbing for the slixmpp interop scenarios.

Every scenario script takes the same arguments (where the server is, which
accounts to use), runs one bounded coroutine, and prints exactly one JSON line
on standard output: {"ok": bool, "observed": {...}, "error": str|null}.
It exits 0 only when its own checks passed; the NUnit test asserts again on
the observed values, so a script that lies cannot make a test pass.
slixmpp's own logging goes to standard error, which the test shows on failure.
"""

import argparse
import asyncio
import json
import logging
import ssl
import sys
import traceback

import slixmpp

# Slixmpp prefers the strongest mechanism the server offers; limiting it to
# SCRAM makes a server that offers only PLAIN fail the login instead of
# silently passing with a weaker mechanism.
SCRAM_MECHANISMS = {"SCRAM-SHA-256", "SCRAM-SHA-1"}

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_TIMEOUT = 2
EXIT_CRASHED = 3


class CheckFailed(Exception):
    """A value the scenario observed is not the one XMPP requires."""


def check(condition, message):
    if not condition:
        raise CheckFailed(message)


def parse_args(extra=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True, help="c2s port with STARTTLS")
    parser.add_argument("--domain", default="localhost")
    parser.add_argument("--user", required=True, help="first account's local part")
    parser.add_argument("--peer", help="second account's local part")
    parser.add_argument("--password", required=True, help="password of both accounts")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds for the whole scenario")
    parser.add_argument("--debug", action="store_true", help="log every stanza to standard error")
    if extra:
        extra(parser)
    return parser.parse_args()


_clients = []


class Client(slixmpp.ClientXMPP):
    """A slixmpp client that records what it receives in queues a scenario awaits."""

    def __init__(self, args, local, resource, password=None):
        _clients.append(self)
        super().__init__(
            f"{local}@{args.domain}/{resource}",
            password if password is not None else args.password,
            plugin_config={"feature_mechanisms": {"use_mechs": set(SCRAM_MECHANISMS)}},
        )
        self._args = args
        self.bare = f"{local}@{args.domain}"
        # The server's certificate is self-signed (generated for the domain).
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        # Scenarios answer subscription requests themselves, so that every
        # step of the handshake is visible rather than done by the library.
        self.roster.auto_authorize = None
        self.roster.auto_subscribe = False
        self.whitespace_keepalive = False
        self.register_plugin("xep_0203")  # delayed delivery stamps

        self.messages = asyncio.Queue()
        self.presences = asyncio.Queue()
        self.subscription_requests = asyncio.Queue()
        self.roster_pushes = asyncio.Queue()
        self._session = None
        self.auth_failures = []
        self.stream_errors = []

        self.add_event_handler("message", self.messages.put_nowait)
        self.add_event_handler("presence", self._on_presence)
        self.add_event_handler("presence_subscribe", self.subscription_requests.put_nowait)
        self.add_event_handler("roster_update", self.roster_pushes.put_nowait)
        self.add_event_handler("session_start", self._on_session_start)
        self.add_event_handler("failed_auth", self._on_failed_auth)
        self.add_event_handler("failed_all_auth", self._on_failed_all_auth)
        self.add_event_handler("stream_error", self._on_stream_error)
        self.add_event_handler("connection_failed", self._on_connection_failed)
        self.add_event_handler("disconnected", self._on_disconnected)

    async def login(self, send_presence=True):
        """Connects with STARTTLS required, authenticates, binds; fails rather than retries.

        Then does what a client does at start: gets its roster, which also makes
        this resource "interested" in roster pushes (RFC 6121 section 2.1.6), and
        sends initial presence.
        """
        self._session = asyncio.get_running_loop().create_future()
        self.connect((self._args.host, self._args.port), use_ssl=False, force_starttls=True)
        await self._session
        if send_presence:
            await self.get_roster(timeout=10)
            await self.announce()

    async def announce(self, **presence):
        """Sends initial presence and waits for the server to echo it back.

        RFC 6121 section 4.2.2: the server broadcasts a user's presence to all of
        that user's available resources, the sender's included. Once the echo is
        here the server has made this resource available, so a message to the
        bare JID reaches it instead of offline storage.
        """
        self.send_presence(**presence)
        while True:
            pres = await self.presences.get()
            if pres["from"] == self.boundjid and pres["type"] != "unavailable":
                return

    async def logout(self):
        await self.disconnect(wait=5)

    def tls_version(self):
        ssl_object = self.transport.get_extra_info("ssl_object") if self.transport else None
        return ssl_object.version() if ssl_object else None

    def mechanism(self):
        mech = self["feature_mechanisms"].mech
        return mech.name if mech else None

    async def next_message(self, sender_bare=None):
        while True:
            msg = await self.messages.get()
            if msg["type"] in ("chat", "normal") and msg["body"] and (
                sender_bare is None or msg["from"].bare == sender_bare
            ):
                return msg

    async def next_presence(self, sender_bare, ptype="available", status=None):
        while True:
            pres = await self.presences.get()
            if pres["from"].bare != sender_bare:
                continue
            is_available = pres["type"] != "unavailable"
            if (ptype == "available") != is_available:
                continue
            if status is not None and pres["status"] != status:
                continue
            return pres

    async def next_subscription_request(self, sender_bare):
        while True:
            pres = await self.subscription_requests.get()
            if pres["from"].bare == sender_bare:
                return pres

    async def fetch_roster(self):
        """The roster as the server stores it now: {jid: {subscription, ask, name}}."""
        # A plain get, without the version slixmpp adds to its own requests:
        # with it, a server that versions rosters (RFC 6121 section 2.6) may
        # answer "unchanged" with an empty result.
        iq = self.Iq(stype="get")
        iq.enable("roster")
        result = await iq.send(timeout=10)
        items = result["roster"]["items"]
        return {
            str(jid): {
                "subscription": item["subscription"],
                "ask": item["ask"] or None,
                "name": item["name"] or None,
            }
            for jid, item in items.items()
        }

    def _on_presence(self, pres):
        # Slixmpp reports an available presence's type as its <show/> value.
        if pres["type"] in ("available", "unavailable") or pres["type"] in pres.showtypes:
            self.presences.put_nowait(pres)

    def _on_session_start(self, _):
        if self._session and not self._session.done():
            self._session.set_result(None)

    def _fail_session(self, reason):
        if self._session and not self._session.done():
            self._session.set_exception(CheckFailed(f"{self.bare}: {reason}"))

    def _on_failed_auth(self, stanza):
        self.auth_failures.append(stanza["condition"] or stanza.xml.tag)

    def _on_failed_all_auth(self, _):
        self._fail_session(f"authentication failed: {self.auth_failures or 'no SCRAM mechanism offered'}")
        self.abort()

    def _on_stream_error(self, error):
        self.stream_errors.append(error["condition"])
        self._fail_session(f"stream error {error['condition']}: {error['text']}")

    def _on_connection_failed(self, error):
        self._fail_session(f"connection failed: {error}")
        self.abort()

    def _on_disconnected(self, reason):
        self._fail_session(f"disconnected before the session started: {reason}")


def presence_view(pres):
    return {
        "from": str(pres["from"]),
        "type": pres["type"],
        "show": pres["show"] or None,
        "status": pres["status"] or None,
    }


def message_view(msg):
    view = {
        "from": str(msg["from"]),
        "to": str(msg["to"]),
        "type": msg["type"],
        "body": msg["body"],
    }
    if msg.xml.find("{urn:xmpp:delay}delay") is not None:
        view["delay_stamp"] = msg["delay"]["stamp"].isoformat() if msg["delay"]["stamp"] else None
        view["delay_from"] = str(msg["delay"]["from"]) or None
    return view


async def subscribe_both(alice, bob, observed):
    """RFC 6121 section 3: alice adds bob and asks; bob approves and asks back; alice approves.

    Returns once both clients have the roster push saying "both"; records the
    requests each side saw in observed.
    """
    await alice.update_roster(bob.bare, name="Bob", timeout=10)
    alice.send_presence(pto=bob.bare, ptype="subscribe")
    request = await bob.next_subscription_request(alice.bare)
    observed["bob_got_request_from"] = str(request["from"])
    bob.send_presence(pto=alice.bare, ptype="subscribed")
    bob.send_presence(pto=alice.bare, ptype="subscribe")
    request = await alice.next_subscription_request(bob.bare)
    observed["alice_got_request_from"] = str(request["from"])
    alice.send_presence(pto=bob.bare, ptype="subscribed")
    await wait_for_subscription(alice, bob.bare, "both")
    await wait_for_subscription(bob, alice.bare, "both")


async def wait_for_subscription(client, contact, state):
    """Waits for the roster push (RFC 6121 section 2.1.6) that gives contact the state."""
    while client.client_roster[contact]["subscription"] != state:
        await client.roster_pushes.get()


def run(scenario, args):
    """Runs scenario(args, observed) within args.timeout seconds and prints the JSON line."""
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    observed = {}
    error = None
    code = EXIT_OK

    async def bounded():
        try:
            await asyncio.wait_for(scenario(args, observed), args.timeout)
        finally:
            # A failed scenario leaves clients connected; drop them without
            # waiting for the server, which may be the part that is stuck.
            for client in _clients:
                if client.transport:
                    client.abort()

    try:
        asyncio.run(bounded())
    except asyncio.TimeoutError:
        error = f"timed out after {args.timeout} s"
        code = EXIT_TIMEOUT
    except CheckFailed as e:
        error = str(e)
        code = EXIT_CHECK_FAILED
    except Exception as e:  # the test prints the traceback from standard error
        traceback.print_exc()
        error = f"{type(e).__name__}: {e}"
        code = EXIT_CRASHED
    print(json.dumps({"ok": code == EXIT_OK, "observed": observed, "error": error}), flush=True)
    sys.exit(code)
