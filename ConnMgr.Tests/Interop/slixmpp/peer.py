#!/usr/bin/python3
"""A slixmpp peer for another client's scenario (xmpp.js chat).

Logs in as --user, prints {"ready": FULL_JID} once available, waits for one
message from the account --peer (with any client), answers the full JID it came
from with --reply, then prints the usual closing JSON line.
"""

import json

from interop import Client, check, message_view, parse_args, run


async def scenario(args, observed):
    me = Client(args, args.user, "slixmpp-peer")
    await me.login()
    observed["jid"] = str(me.boundjid)
    print(json.dumps({"ready": str(me.boundjid)}), flush=True)
    received = await me.next_message(f"{args.peer}@{args.domain}")
    observed["received"] = message_view(received)
    me.send_message(mto=received["from"], mbody=args.reply, mtype="chat")
    await me.logout()

    check(received["to"].bare == me.bare, f"message addressed to {received['to']}")


if __name__ == "__main__":
    run(scenario, parse_args(lambda p: p.add_argument("--reply", required=True)))
