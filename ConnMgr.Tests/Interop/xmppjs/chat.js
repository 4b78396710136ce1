// Chat both ways with another client (the slixmpp peer, ../slixmpp/peer.py):
// this client writes --body to the peer's bare JID, the peer answers --expect
// to the full JID the message came from. The test starts this script once the peer has
// announced itself available.

import { check, createClient, login, messageView, nextMessage, parseArguments, run, xml } from "./interop.js";

async function scenario(args, observed) {
  const peer = `${args.peer}@${args.domain}`;
  const xmpp = createClient(args, "xmppjs-chat");
  const address = await login(xmpp);
  observed.jid = String(address);
  await xmpp.send(xml("message", { to: peer, type: "chat" }, xml("body", {}, args.body)));
  observed.received = messageView(await nextMessage(xmpp, peer));
  await xmpp.stop();

  check(observed.received.from.startsWith(`${peer}/`), `reply from ${observed.received.from}`);
  check(observed.received.to === observed.jid, `reply to ${observed.received.to}`);
  check(observed.received.body === args.expect, `reply body ${JSON.stringify(observed.received.body)}`);
}

run(scenario, parseArguments({ peer: { type: "string" }, body: { type: "string" }, expect: { type: "string" } }));
