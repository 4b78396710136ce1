#!/usr/bin/python3
"""Presence between subscribed contacts (RFC 6121 section 4), both ways.

After a mutual subscription each client broadcasts a presence with its own
status text; each must see the other's, from the other's full JID. Then alice
leaves, and bob must see her unavailable presence.
"""

from interop import Client, check, parse_args, presence_view, run, subscribe_both


async def scenario(args, observed):
    alice = Client(args, args.user, "presence")
    bob = Client(args, args.peer, "presence")
    await alice.login()
    await bob.login()
    await subscribe_both(alice, bob, observed)

    alice.send_presence(pshow="chat", pstatus="alice is here")
    bob.send_presence(pshow="away", pstatus="bob is away")
    observed["bob_saw"] = presence_view(await bob.next_presence(alice.bare, status="alice is here"))
    observed["alice_saw"] = presence_view(await alice.next_presence(bob.bare, status="bob is away"))

    alice_full = str(alice.boundjid)
    await alice.logout()
    observed["bob_saw_leave"] = presence_view(await bob.next_presence(alice.bare, ptype="unavailable"))
    await bob.logout()

    check(observed["bob_saw"]["from"] == alice_full, f"bob saw alice's presence from {observed['bob_saw']['from']}")
    check(observed["bob_saw"]["show"] == "chat", f"show {observed['bob_saw']['show']}")
    check(observed["alice_saw"]["from"] == str(bob.boundjid), f"alice saw bob's presence from {observed['alice_saw']['from']}")
    check(observed["alice_saw"]["show"] == "away", f"show {observed['alice_saw']['show']}")
    check(observed["bob_saw_leave"]["from"] == alice_full, f"unavailable from {observed['bob_saw_leave']['from']}")


if __name__ == "__main__":
    run(scenario, parse_args())
