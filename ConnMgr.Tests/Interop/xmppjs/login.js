// Login with SCRAM-SHA-1 over STARTTLS (xmpp://) or Direct TLS (xmpps://, XEP-0368).
// Observed: the bound JID, the mechanisms offered and used, whether the
// stream is encrypted and with which TLS version, and a roster get answered
// by the core.

import { check, createClient, login, parseArguments, run, xml } from "./interop.js";

async function scenario(args, observed) {
  const xmpp = createClient(args, "xmppjs-login");
  const address = await login(xmpp);
  observed.jid = String(address);
  observed.service = args.service;
  observed.offered_mechanisms = xmpp.offeredMechanisms ?? null;
  observed.mechanism = xmpp.mechanism ?? null;
  observed.secure = xmpp.isSecure();
  observed.tls_version = xmpp.socket?.socket?.getProtocol?.() ?? null;
  const roster = await xmpp.iqCaller.get(xml("query", "jabber:iq:roster"));
  observed.roster_items = roster.getChildren("item").length;
  await xmpp.stop();

  check(observed.jid.startsWith(`${xmpp.bare}/`), `bound ${observed.jid}, expected ${xmpp.bare}/...`);
  check(observed.mechanism === "SCRAM-SHA-1", `mechanism ${observed.mechanism}`);
  check(observed.secure, "the stream is not encrypted");
}

run(scenario, parseArguments());
