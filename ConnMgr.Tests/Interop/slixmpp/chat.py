#!/usr/bin/python3
"""One-to-one chat both ways (RFC 6121 section 5), no subscription needed.

alice writes --body to bob's bare JID; bob answers --reply to the full JID
the message came from. The test chooses bodies with characters that must be
escaped in XML and some outside the Basic Multilingual Plane.
"""

from interop import Client, check, parse_args, message_view, run

async def scenario(args, observed):
    alice = Client(args, args.user, "chat")
    bob = Client(args, args.peer, "chat")
    await alice.login()
    await bob.login()

    alice.send_message(mto=bob.bare, mbody=args.body, mtype="chat")
    received = await bob.next_message(alice.bare)
    observed["bob_received"] = message_view(received)
    bob.send_message(mto=received["from"], mbody=args.reply, mtype="chat")
    observed["alice_received"] = message_view(await alice.next_message(bob.bare))
    await alice.logout()
    await bob.logout()

    check(observed["bob_received"]["body"] == args.body, f"bob got {observed['bob_received']['body']!r}")
    check(observed["bob_received"]["from"] == str(alice.boundjid), f"from {observed['bob_received']['from']}")
    check(observed["alice_received"]["body"] == args.reply, f"alice got {observed['alice_received']['body']!r}")
    check(observed["alice_received"]["from"] == str(bob.boundjid), f"from {observed['alice_received']['from']}")


if __name__ == "__main__":
    def options(parser):
        parser.add_argument("--body", required=True)
        parser.add_argument("--reply", required=True)

    run(scenario, parse_args(options))
