#!/usr/bin/python3
"""Roster and mutual subscription (RFC 6121 sections 2 and 3).

alice adds bob to her roster and asks to subscribe; bob approves and asks
back; alice approves. Observed: who saw which request, and both rosters as
the server returns them afterwards (a fresh roster get, not the cached pushes).
"""

from interop import Client, check, parse_args, run, subscribe_both


async def scenario(args, observed):
    alice = Client(args, args.user, "roster")
    bob = Client(args, args.peer, "roster")
    await alice.login()
    await bob.login()
    await subscribe_both(alice, bob, observed)
    observed["alice_roster"] = await alice.fetch_roster()
    observed["bob_roster"] = await bob.fetch_roster()
    await alice.logout()
    await bob.logout()

    bob_item = observed["alice_roster"].get(bob.bare)
    alice_item = observed["bob_roster"].get(alice.bare)
    check(bob_item is not None and bob_item["subscription"] == "both", f"alice's roster item for bob: {bob_item}")
    check(bob_item["name"] == "Bob", f"alice named bob \"Bob\", roster says {bob_item['name']}")
    check(alice_item is not None and alice_item["subscription"] == "both", f"bob's roster item for alice: {alice_item}")


if __name__ == "__main__":
    run(scenario, parse_args())
