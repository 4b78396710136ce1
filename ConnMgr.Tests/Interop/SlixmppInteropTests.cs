using NUnit.Framework;

namespace ConnMgr.Tests.Interop;

/// <summary>
/// slixmpp (Debian's python3-slixmpp) against the daemon over STARTTLS: each
/// test runs one scenario script under slixmpp/ and asserts on its exit status
/// and on what it observed.
/// </summary>
public sealed class SlixmppInteropTests : InteropFixture
{
    [SetUp]
    public Task RequireSlixmpp() => ClientScripts.RequireSlixmppAsync();

    [Test]
    public async Task Login_over_starttls_uses_scram_sha_256_and_binds_a_resource()
    {
        await Daemon.AddUserAsync("login", Password);

        ScriptResult result = await ClientScripts.RunSlixmppAsync("login.py", Daemon.ClientEndPoint,
            "--user", "login", "--password", Password);

        Assert.That(result.ExitCode, Is.Zero, result.ToString());
        Assert.Multiple(() =>
        {
            Assert.That(result.Text("jid"), Is.EqualTo(Bare("login") + "/login"), result.ToString());
            // The strongest mechanism slixmpp and the core share (RFC 7677).
            Assert.That(result.Text("mechanism"), Is.EqualTo("SCRAM-SHA-256"), result.ToString());
            Assert.That(result.Text("tls_version"), Is.AnyOf("TLSv1.2", "TLSv1.3"), result.ToString());
            Assert.That(result.Keys("roster"), Is.Empty, "a new account's roster is empty");
        });
    }

    [Test]
    public async Task Wrong_password_fails_with_not_authorized()
    {
        await Daemon.AddUserAsync("wrongpw", Password);

        ScriptResult result = await ClientScripts.RunSlixmppAsync("login.py", Daemon.ClientEndPoint,
            "--user", "wrongpw", "--password", Password, "--wrong-password");

        Assert.That(result.ExitCode, Is.Zero, result.ToString());
        Assert.Multiple(() =>
        {
            Assert.That(result.Flag("logged_in"), Is.False, result.ToString());
            // One refusal per SCRAM mechanism slixmpp tries (it falls back from SHA-256 to SHA-1).
            Assert.That(result.Texts("auth_failures"), Is.Not.Empty.And.All.EqualTo("not-authorized"), result.ToString());
        });
    }

    [Test]
    public async Task Mutual_subscription_leaves_both_rosters_at_both()
    {
        (string alice, string bob) = await AddUsersAsync("alice-roster", "bob-roster");

        ScriptResult result = await ClientScripts.RunSlixmppAsync("roster.py", Daemon.ClientEndPoint,
            "--user", alice, "--peer", bob, "--password", Password);

        Assert.That(result.ExitCode, Is.Zero, result.ToString());
        Assert.Multiple(() =>
        {
            Assert.That(result.Text("bob_got_request_from"), Is.EqualTo(Bare(alice)), result.ToString());
            Assert.That(result.Text("alice_got_request_from"), Is.EqualTo(Bare(bob)), result.ToString());
            Assert.That(result.Text("alice_roster", Bare(bob), "subscription"), Is.EqualTo("both"), result.ToString());
            Assert.That(result.Text("alice_roster", Bare(bob), "name"), Is.EqualTo("Bob"), result.ToString());
            Assert.That(result.Text("alice_roster", Bare(bob), "ask"), Is.Null, result.ToString());
            Assert.That(result.Text("bob_roster", Bare(alice), "subscription"), Is.EqualTo("both"), result.ToString());
            Assert.That(result.Text("bob_roster", Bare(alice), "ask"), Is.Null, result.ToString());
        });
    }

    [Test]
    public async Task Presence_is_seen_both_ways_and_on_leaving()
    {
        (string alice, string bob) = await AddUsersAsync("alice-presence", "bob-presence");

        ScriptResult result = await ClientScripts.RunSlixmppAsync("presence.py", Daemon.ClientEndPoint,
            "--user", alice, "--peer", bob, "--password", Password);

        Assert.That(result.ExitCode, Is.Zero, result.ToString());
        Assert.Multiple(() =>
        {
            Assert.That(result.Text("bob_saw", "from"), Is.EqualTo(Bare(alice) + "/presence"), result.ToString());
            Assert.That(result.Text("bob_saw", "show"), Is.EqualTo("chat"), result.ToString());
            Assert.That(result.Text("bob_saw", "status"), Is.EqualTo("alice is here"), result.ToString());
            Assert.That(result.Text("alice_saw", "from"), Is.EqualTo(Bare(bob) + "/presence"), result.ToString());
            Assert.That(result.Text("alice_saw", "show"), Is.EqualTo("away"), result.ToString());
            Assert.That(result.Text("alice_saw", "status"), Is.EqualTo("bob is away"), result.ToString());
            Assert.That(result.Text("bob_saw_leave", "from"), Is.EqualTo(Bare(alice) + "/presence"), result.ToString());
            Assert.That(result.Text("bob_saw_leave", "type"), Is.EqualTo("unavailable"), result.ToString());
        });
    }

    [Test]
    public async Task Chat_goes_both_ways_with_escaped_and_astral_characters()
    {
        (string alice, string bob) = await AddUsersAsync("alice-chat", "bob-chat");
        const string toBob = "Hello bob <b>&amp; \"friends\"</b> \u00e9t\u00e9 \U0001F600";
        const string toAlice = "Hi alice, 'quoted' & <escaped> ]]> \u4f60\u597d";

        ScriptResult result = await ClientScripts.RunSlixmppAsync("chat.py", Daemon.ClientEndPoint,
            "--user", alice, "--peer", bob, "--password", Password, "--body", toBob, "--reply", toAlice);

        Assert.That(result.ExitCode, Is.Zero, result.ToString());
        Assert.Multiple(() =>
        {
            Assert.That(result.Text("bob_received", "body"), Is.EqualTo(toBob), result.ToString());
            Assert.That(result.Text("bob_received", "from"), Is.EqualTo(Bare(alice) + "/chat"), result.ToString());
            Assert.That(result.Text("bob_received", "to"), Is.EqualTo(Bare(bob)), result.ToString());
            Assert.That(result.Text("bob_received", "type"), Is.EqualTo("chat"), result.ToString());
            Assert.That(result.Text("alice_received", "body"), Is.EqualTo(toAlice), result.ToString());
            Assert.That(result.Text("alice_received", "from"), Is.EqualTo(Bare(bob) + "/chat"), result.ToString());
            Assert.That(result.Text("alice_received", "to"), Is.EqualTo(Bare(alice) + "/chat"), result.ToString());
            Assert.That(result.At("bob_received", "delay_stamp"), Is.Null, "a message to an online user is not delayed");
        });
    }

    [Test]
    public async Task Message_to_an_offline_user_arrives_at_next_login_with_a_delay_stamp()
    {
        (string alice, string bob) = await AddUsersAsync("alice-offline", "bob-offline");
        const string body = "Stored while you were away \u2709 <&>";

        ScriptResult result = await ClientScripts.RunSlixmppAsync("offline.py", Daemon.ClientEndPoint,
            "--user", alice, "--peer", bob, "--password", Password, "--body", body);

        Assert.That(result.ExitCode, Is.Zero, result.ToString());
        Assert.Multiple(() =>
        {
            Assert.That(result.Text("bob_received", "body"), Is.EqualTo(body), result.ToString());
            Assert.That(result.Text("bob_received", "from"), Is.EqualTo(Bare(alice) + "/offline"), result.ToString());
            // XEP-0203 makes 'from' optional; when given, it is the server that stored the message.
            Assert.That(result.Text("bob_received", "delay_from"), Is.Null.Or.EqualTo(ClientScripts.Domain), result.ToString());
        });
        // XEP-0203: the stamp says when the server stored the message, to the
        // second; the script noted when alice sent it. A wide margin: this
        // checks the meaning of the stamp, not the server's speed.
        DateTimeOffset stamp = DateTimeOffset.Parse(result.Text("bob_received", "delay_stamp")!, System.Globalization.CultureInfo.InvariantCulture);
        DateTimeOffset sent = DateTimeOffset.Parse(result.Text("sent_at")!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.That(stamp, Is.EqualTo(sent).Within(TimeSpan.FromMinutes(1)), result.ToString());
    }
}
