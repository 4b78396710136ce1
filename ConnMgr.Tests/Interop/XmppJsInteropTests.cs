using System.Net;
using NUnit.Framework;

namespace ConnMgr.Tests.Interop;

/// <summary>
/// xmpp.js (npm @xmpp/client 0.14, pinned in xmppjs/package-lock.json)
/// against the daemon: SCRAM-SHA-1 over STARTTLS and over Direct TLS
/// (XEP-0368), over WebSocket (RFC 7395), and chat with a slixmpp client
/// through the same daemon.
/// </summary>
public sealed class XmppJsInteropTests : InteropFixture
{
    [SetUp]
    public Task RequireXmppJs() => ClientScripts.RequireXmppJsAsync();

    [Test]
    public async Task Login_over_starttls_with_scram_sha_1()
    {
        await Daemon.AddUserAsync("js-starttls", Password);

        ScriptResult result = await ClientScripts.RunXmppJsAsync("login.js", Service("xmpp", Daemon.ClientEndPoint),
            "--user", "js-starttls", "--password", Password);

        AssertLoggedIn(result, "js-starttls");
    }

    [Test]
    public async Task Login_over_direct_tls_with_scram_sha_1()
    {
        await Daemon.AddUserAsync("js-directtls", Password);

        ScriptResult result = await ClientScripts.RunXmppJsAsync("login.js", Service("xmpps", Daemon.DirectTlsEndPoint),
            "--user", "js-directtls", "--password", Password);

        AssertLoggedIn(result, "js-directtls");
    }

    [Test]
    public async Task Chat_with_a_slixmpp_client_goes_both_ways()
    {
        await ClientScripts.RequireSlixmppAsync();
        (string js, string py) = await AddUsersAsync("js-chat", "py-chat");
        const string toPy = "xmpp.js says hello <&> \u00fcml\u00e4uts \U0001F680";
        const string toJs = "slixmpp answers 'ok' & <done> \u00a7";

        (ScriptResult jsResult, ScriptResult pyResult) = await ChatWithSlixmppPeerAsync(
            Service("xmpp", Daemon.ClientEndPoint), js, py, toPy, toJs);

        AssertChatBothWays(jsResult, pyResult, js, py, toPy, toJs, checkTo: true);
    }

    [Test]
    public async Task Login_over_websocket_with_scram_sha_1()
    {
        await Daemon.AddUserAsync("js-websocket", Password);

        ScriptResult result = await ClientScripts.RunXmppJsAsync("login.js", WebSocketService(),
            "--user", "js-websocket", "--password", Password);

        Assert.That(result.ExitCode, Is.Zero, result.ToString());
        Assert.Multiple(() =>
        {
            Assert.That(result.Text("jid"), Is.EqualTo(Bare("js-websocket") + "/xmppjs-login"), result.ToString());
            Assert.That(result.Text("mechanism"), Is.EqualTo("SCRAM-SHA-1"), result.ToString());
            Assert.That(result.Text("roster_items"), Is.EqualTo("0"), result.ToString());
        });
    }

    [Test]
    public async Task Chat_over_websocket_with_a_slixmpp_client_on_tcp_goes_both_ways()
    {
        await ClientScripts.RequireSlixmppAsync();
        (string js, string py) = await AddUsersAsync("js-ws-chat", "py-ws-chat");
        const string toPy = "from the browser <&> \u00fcml\u00e4uts \U0001F680";
        const string toJs = "slixmpp over TCP answers 'ok' & <done>";

        (ScriptResult jsResult, ScriptResult pyResult) = await ChatWithSlixmppPeerAsync(WebSocketService(), js, py, toPy, toJs);

        AssertChatBothWays(jsResult, pyResult, js, py, toPy, toJs, checkTo: false);
    }

    /// <summary>A slixmpp peer on TCP comes online and answers; xmpp.js on <paramref name="service"/> sends and waits for the answer.</summary>
    private async Task<(ScriptResult Js, ScriptResult Py)> ChatWithSlixmppPeerAsync(string service, string js, string py, string toPy, string toJs)
    {
        await using ChildProcess peer = ClientScripts.StartSlixmpp("peer.py", Daemon.ClientEndPoint,
            "--user", py, "--peer", js, "--password", Password, "--reply", toJs);
        try
        {
            await peer.WaitForLineAsync(line => line.StartsWith("{\"ready\"", StringComparison.Ordinal), TimeSpan.FromSeconds(60));
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException)
        {
            Assert.Fail($"the slixmpp peer did not come online: {e.Message}\n{peer.Transcript()}");
        }
        ScriptResult jsResult = await ClientScripts.RunXmppJsAsync("chat.js", service,
            "--user", js, "--password", Password, "--peer", py, "--body", toPy, "--expect", toJs);
        ScriptResult pyResult = await ClientScripts.CompleteAsync(peer);
        return (jsResult, pyResult);
    }

    /// <summary>Each side got the other's body from the other's full JID (and, with <paramref name="checkTo"/>, xmpp.js's own).</summary>
    private static void AssertChatBothWays(ScriptResult jsResult, ScriptResult pyResult, string js, string py, string toPy, string toJs, bool checkTo)
    {
        Assert.That(jsResult.ExitCode, Is.Zero, jsResult.ToString());
        Assert.That(pyResult.ExitCode, Is.Zero, pyResult.ToString());
        Assert.Multiple(() =>
        {
            Assert.That(pyResult.Text("received", "body"), Is.EqualTo(toPy), pyResult.ToString());
            Assert.That(pyResult.Text("received", "from"), Is.EqualTo(Bare(js) + "/xmppjs-chat"), pyResult.ToString());
            Assert.That(jsResult.Text("received", "body"), Is.EqualTo(toJs), jsResult.ToString());
            Assert.That(jsResult.Text("received", "from"), Is.EqualTo(Bare(py) + "/slixmpp-peer"), jsResult.ToString());
            if (checkTo)
            {
                Assert.That(jsResult.Text("received", "to"), Is.EqualTo(Bare(js) + "/xmppjs-chat"), jsResult.ToString());
            }
        });
    }

    private static string Service(string scheme, IPEndPoint endPoint) => $"{scheme}://{endPoint}";

    private string WebSocketService() => $"ws://{Daemon.Listener(DaemonProcess.HttpPortKey)}/xmpp-websocket";

    private static void AssertLoggedIn(ScriptResult result, string user)
    {
        Assert.That(result.ExitCode, Is.Zero, result.ToString());
        Assert.Multiple(() =>
        {
            Assert.That(result.Text("jid"), Is.EqualTo(Bare(user) + "/xmppjs-login"), result.ToString());
            Assert.That(result.Text("mechanism"), Is.EqualTo("SCRAM-SHA-1"), result.ToString());
            Assert.That(result.Texts("offered_mechanisms"), Does.Contain("SCRAM-SHA-1"), result.ToString());
            Assert.That(result.Flag("secure"), Is.True, result.ToString());
            Assert.That(result.Text("tls_version"), Is.AnyOf("TLSv1.2", "TLSv1.3"), result.ToString());
            Assert.That(result.Text("roster_items"), Is.EqualTo("0"), result.ToString());
        });
    }
}
