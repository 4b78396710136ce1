#!/usr/bin/python3
"""Login over STARTTLS with SCRAM (RFC 6120 sections 5, 6 and 7).

Observed: the bound full JID, the SASL mechanism used, the TLS version, and
the roster fetched right after (a first round trip through the core).
With --wrong-password: the SASL failure condition, and no session.
"""

from interop import Client, CheckFailed, check, parse_args, run


async def scenario(args, observed):
    if args.wrong_password:
        client = Client(args, args.user, "login", password=args.password + "-wrong")
        try:
            await client.login(send_presence=False)
            observed["logged_in"] = True
        except CheckFailed:
            observed["logged_in"] = False
        observed["auth_failures"] = client.auth_failures
        observed["mechanism"] = client.mechanism()
        check(not observed["logged_in"], "a wrong password was accepted")
        # Slixmpp moves on to the next offered SCRAM mechanism after a failure,
        # so a server offering SCRAM-SHA-256 and SCRAM-SHA-1 refuses it twice.
        check(1 <= len(client.auth_failures) <= 2
              and all(f == "not-authorized" for f in client.auth_failures),
              f"expected the SASL failure not-authorized, got {client.auth_failures}")
        return

    client = Client(args, args.user, "login")
    await client.login()
    observed["jid"] = str(client.boundjid)
    observed["mechanism"] = client.mechanism()
    observed["tls_version"] = client.tls_version()
    observed["roster"] = await client.fetch_roster()
    await client.logout()

    check(client.boundjid.bare == client.bare, f"bound {client.boundjid}, expected {client.bare}/...")
    check(client.boundjid.resource != "", "no resource bound")
    check(observed["mechanism"] in ("SCRAM-SHA-256", "SCRAM-SHA-1"), f"mechanism {observed['mechanism']}")
    check(observed["tls_version"] is not None, "the stream is not encrypted")


if __name__ == "__main__":
    run(scenario, parse_args(lambda p: p.add_argument("--wrong-password", action="store_true")))
