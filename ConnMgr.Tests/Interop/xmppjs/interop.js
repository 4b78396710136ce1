// Shared plumbing for the xmpp.js interop scenarios, the counterpart of
// ../slixmpp/interop.py: the same arguments, one bounded run, and exactly one
// JSON line on standard output: {"ok": bool, "observed": {...}, "error": str|null}.
// The exit status is 0 only when the script's own checks passed.
//
// The daemon's certificate is self-signed and xmpp.js has no TLS options:
// the test runs these scripts with NODE_TLS_REJECT_UNAUTHORIZED=0.

import { parseArgs } from "node:util";
import { client, xml } from "@xmpp/client";

export { xml };

export const EXIT_OK = 0;
export const EXIT_CHECK_FAILED = 1;
export const EXIT_TIMEOUT = 2;
export const EXIT_CRASHED = 3;

export class CheckFailed extends Error {}

export function check(condition, message) {
  if (!condition) throw new CheckFailed(message);
}

/** @param extra further string options, every one of them required */
export function parseArguments(extra = {}) {
  const { values } = parseArgs({
    options: {
      service: { type: "string" }, // xmpp://host:port (STARTTLS) or xmpps://host:port (Direct TLS)
      domain: { type: "string", default: "localhost" },
      user: { type: "string" },
      password: { type: "string" },
      timeout: { type: "string", default: "30" },
      debug: { type: "boolean", default: false },
      ...extra,
    },
  });
  for (const name of ["service", "user", "password", ...Object.keys(extra)]) {
    if (!values[name]) throw new Error(`--${name} is required`);
  }
  values.timeout = Number(values.timeout);
  return values;
}

const clients = [];

/**
 * A client that only uses SCRAM-SHA-1 (xmpp.js has no SCRAM-SHA-256) and never
 * reconnects by itself; its stanzas queue up for the scenario to await.
 */
export function createClient(args, resource) {
  const xmpp = client({
    service: args.service,
    domain: args.domain,
    resource,
    // Each step (stream open, SASL round trip, iq) waits this long; the 2 s
    // default fails on a loaded box while SCRAM's key derivation runs in JS.
    timeout: 20_000,
    credentials: async (authenticate, mechanisms) => {
      xmpp.offeredMechanisms = mechanisms;
      if (!mechanisms.includes("SCRAM-SHA-1")) {
        throw new CheckFailed(`SCRAM-SHA-1 not offered (offered: ${mechanisms.join(", ")})`);
      }
      xmpp.mechanism = "SCRAM-SHA-1";
      await authenticate({ username: args.user, password: args.password }, "SCRAM-SHA-1");
    },
  });
  xmpp.reconnect.stop();
  xmpp.bare = `${args.user}@${args.domain}`;
  xmpp.inbox = new Inbox();
  xmpp.errors = [];
  xmpp.on("stanza", (stanza) => xmpp.inbox.put(stanza));
  xmpp.on("error", (error) => xmpp.errors.push(String(error?.condition ?? error)));
  if (args.debug) {
    xmpp.on("send", (element) => console.error(`SEND ${element}`));
    xmpp.on("element", (element) => console.error(`RECV ${element}`));
  }
  clients.push(xmpp);
  return xmpp;
}

/** Received stanzas, taken by predicate in arrival order. */
class Inbox {
  #items = [];
  #waiters = [];

  put(stanza) {
    const waiter = this.#waiters.find((w) => w.predicate(stanza));
    if (waiter) {
      this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
      waiter.resolve(stanza);
    } else {
      this.#items.push(stanza);
    }
  }

  take(predicate) {
    const index = this.#items.findIndex(predicate);
    if (index >= 0) return Promise.resolve(this.#items.splice(index, 1)[0]);
    return new Promise((resolve) => this.#waiters.push({ predicate, resolve }));
  }
}

export function bareOf(jid) {
  return String(jid).split("/")[0];
}

/** Starts the session, then sends initial presence and waits for its echo (RFC 6121 section 4.2.2). */
export async function login(xmpp) {
  const address = await xmpp.start();
  await xmpp.send(xml("presence"));
  await xmpp.inbox.take(
    (s) => s.is("presence") && s.attrs.from === String(address) && s.attrs.type !== "unavailable",
  );
  return address;
}

export function messageView(stanza) {
  const delay = stanza.getChild("delay", "urn:xmpp:delay");
  const view = {
    from: stanza.attrs.from ?? null,
    to: stanza.attrs.to ?? null,
    type: stanza.attrs.type ?? null,
    body: stanza.getChildText("body"),
  };
  if (delay) {
    view.delay_stamp = delay.attrs.stamp ?? null;
    view.delay_from = delay.attrs.from ?? null;
  }
  return view;
}

export function nextMessage(xmpp, fromBare) {
  return xmpp.inbox.take(
    (s) => s.is("message") && s.getChildText("body") !== null && bareOf(s.attrs.from) === fromBare,
  );
}

/** Runs scenario(args, observed) within args.timeout seconds, prints the JSON line and exits. */
export async function run(scenario, args) {
  const observed = {};
  let error = null;
  let code = EXIT_OK;
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`timed out after ${args.timeout} s`)), args.timeout * 1000);
  });
  try {
    await Promise.race([scenario(args, observed), timeout]);
  } catch (e) {
    if (e instanceof TimeoutError) {
      code = EXIT_TIMEOUT;
    } else if (e instanceof CheckFailed) {
      code = EXIT_CHECK_FAILED;
    } else {
      console.error(e);
      code = EXIT_CRASHED;
    }
    error = e instanceof TimeoutError || e instanceof CheckFailed ? e.message : `${e?.name}: ${e?.message ?? e}`;
  } finally {
    clearTimeout(timer);
  }
  if (code !== EXIT_OK) {
    observed.client_errors = clients.flatMap((c) => c.errors);
  }
  process.stdout.write(`${JSON.stringify({ ok: code === EXIT_OK, observed, error })}\n`, () => {
    // Sockets a failed scenario left open must not keep the process alive.
    process.exit(code);
  });
}

class TimeoutError extends Error {}
