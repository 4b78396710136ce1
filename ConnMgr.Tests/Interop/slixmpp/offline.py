#!/usr/bin/python3
"""Offline storage (RFC 6121 section 8.5.2.1.1, XEP-0160) with a delay stamp (XEP-0203).

alice and bob subscribe to each other, so that alice learns from bob's
unavailable presence that the server has ended his session (rather than
guessing with a sleep). alice then writes --body to bob's bare JID; bob logs in
again and, on his initial presence, gets the message with a delay stamp.
"""

import datetime

from interop import Client, check, parse_args, message_view, run, subscribe_both

async def scenario(args, observed):
    alice = Client(args, args.user, "offline")
    bob = Client(args, args.peer, "offline")
    await alice.login()
    await bob.login()
    await subscribe_both(alice, bob, observed)

    await bob.logout()
    await alice.next_presence(bob.bare, ptype="unavailable")
    observed["sent_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
    alice.send_message(mto=bob.bare, mbody=args.body, mtype="chat")

    bob_again = Client(args, args.peer, "offline-again")
    await bob_again.login()
    observed["bob_received"] = message_view(await bob_again.next_message(alice.bare))
    await bob_again.logout()
    await alice.logout()

    got = observed["bob_received"]
    check(got["body"] == args.body, f"bob got {got['body']!r}")
    check(got["from"] == str(alice.boundjid), f"from {got['from']}")
    check(got.get("delay_stamp") is not None, "no XEP-0203 delay stamp on the stored message")


if __name__ == "__main__":
    run(scenario, parse_args(lambda p: p.add_argument("--body", required=True)))
