using System.Buffers.Binary;
using System.Net;
using System.Text;
using ConnMgr.Tests.OpenfireDouble;
using NUnit.Framework;

namespace ConnMgr.Tests.EndToEnd;

/// <summary>What the core does to a client's session, as the client sees it, and the client address the core is given.</summary>
public sealed class UpstreamEventTests
{
    [Test]
    public async Task A_blocked_address_is_refused_with_not_authorized_as_openfire_does()
    {
        await using var edge = await EdgeHarness.StartAsync(new OpenfireDoubleOptions { BlockedAddresses = ["127.0.0.1"] });
        await using var client = await edge.ConnectAsync();

        await client.OpenStreamAsync();
        var frames = await client.ExpectStreamErrorAsync("not-authorized");
        Assert.That(string.Join("", frames), Does.Contain("not allowed"));
        Assert.That(edge.Server.Counters.SessionsRefused, Is.EqualTo(1));
    }

    [Test]
    public async Task A_wrong_password_is_answered_by_the_core_and_the_client_may_try_again()
    {
        await using var edge = await EdgeHarness.StartAsync();
        await using var client = await edge.ConnectAsync(directTls: true);
        await client.OpenStreamAsync();

        var wrong = Convert.ToBase64String(Encoding.UTF8.GetBytes("\0alice\0wrong"));
        await client.SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{wrong}</auth>");
        Assert.That(await client.ExpectAsync(), Is.EqualTo("<failure xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"><not-authorized/></failure>"));

        Assert.That(await client.AuthenticateAsync("alice", "secret"), Does.Contain("bind"));
        Assert.That(await client.BindAsync("second-try"), Is.EqualTo("alice@example.com/second-try"));
    }

    [Test]
    public async Task A_second_login_with_the_same_resource_ends_the_first_with_conflict()
    {
        await using var edge = await EdgeHarness.StartAsync();
        await using var first = await edge.LoginAsync("alice", "phone");
        await using var second = await edge.LoginAsync("alice", "phone");

        await first.ExpectStreamErrorAsync("conflict");
        await using var bob = await edge.LoginAsync("bob");
        await EdgeHarness.ExchangeAsync(bob, second, "to-the-new-session");
        edge.AssertLinksIntact();
    }

    [Test]
    public async Task A_session_the_core_closes_ends_with_a_plain_stream_end()
    {
        await using var edge = await EdgeHarness.StartAsync();
        await using var alice = await edge.ConnectAsync();
        await alice.OpenStreamAsync();

        // The edge answers the stream header before its create IQ has reached the core (spec 7.3).
        await edge.Server.WaitForSessionAsync(alice.StreamId!);

        // Openfire sends its close IQ only for sessions that never bound (spec 0.1 point 1).
        Assert.That(await edge.Server.CloseSessionAsync(alice.StreamId!), Is.True);
        Assert.That(await alice.ReadToEndAsync(), Is.EqualTo(new[] { "</stream:stream>" }));
    }

    [Test]
    public async Task A_stream_error_inside_the_cores_close_reaches_the_client()
    {
        await using var edge = await EdgeHarness.StartAsync();
        await using var alice = await edge.ConnectAsync();
        await alice.OpenStreamAsync();

        await edge.Server.WaitForSessionAsync(alice.StreamId!);

        // The OF-2414 form, with the stream error inside the close IQ (spec 5.4).
        Assert.That(await edge.Server.SendCloseIqAsync(alice.StreamId!, "policy-violation"), Is.True);
        await alice.ExpectStreamErrorAsync("policy-violation");
    }

    [Test]
    public async Task Losing_every_link_ends_clients_with_remote_connection_failed()
    {
        await using var edge = await EdgeHarness.StartAsync(links: 1);
        await using var alice = await edge.LoginAsync("alice");

        Assert.That(edge.Server.DropLink("edge1/link-1"), Is.True);
        var frames = await alice.ExpectStreamErrorAsync("remote-connection-failed");
        Assert.That(string.Join("", frames), Does.Contain("lost its link"));
    }

    [Test]
    public async Task A_client_arriving_while_no_link_is_up_is_told_so()
    {
        await using var edge = await EdgeHarness.StartAsync(links: 1);
        await edge.Server.DisposeAsync();
        await WaitAsync(() => edge.Pool.LinksUp == 0);

        await using var client = await edge.ConnectAsync();
        await client.SendAsync(XmppTestClient.Header("example.com"));
        await client.ExpectStreamErrorAsync("remote-connection-failed");
    }

    [TestCase(1)]
    [TestCase(2)]
    public async Task The_address_from_the_proxy_protocol_header_reaches_the_core(int version)
    {
        await using var edge = await EdgeHarness.StartAsync(transport: t => t with { ProxyProtocol = true });
        var source = version == 1 ? IPAddress.Parse("203.0.113.7") : IPAddress.Parse("198.51.100.9");
        var header = version == 1
            ? Encoding.ASCII.GetBytes($"PROXY TCP4 {source} 127.0.0.1 40000 {edge.ClientEndPoint.Port}\r\n")
            : ProxyV2(source, IPAddress.Loopback, 40000, (ushort)edge.ClientEndPoint.Port);
        await using var client = await edge.ConnectAsync(proxyHeader: header);

        await client.LoginAsync("alice");

        var session = edge.Server.FindSession(client.StreamId!);
        Assert.That(session!.HostAddress, Is.EqualTo(source.ToString()), "<host address> in the create (spec 5.2)");
        var create = edge.Server.ReceivedElements.Single(e => e.Xml.Contains("<create", StringComparison.Ordinal) && e.Xml.Contains(client.StreamId!, StringComparison.Ordinal));
        Assert.That(create.Xml, Does.Contain($"address=\"{source}\""));
    }

    /// <summary>A PROXY protocol v2 header (HAProxy's proxy-protocol.txt, section 2.2): PROXY command, TCP over IPv4.</summary>
    private static byte[] ProxyV2(IPAddress source, IPAddress destination, ushort sourcePort, ushort destinationPort)
    {
        byte[] signature = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];
        var header = new byte[16 + 12];
        signature.CopyTo(header, 0);
        header[12] = 0x21;
        header[13] = 0x11;
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(14), 12);
        source.TryWriteBytes(header.AsSpan(16), out _);
        destination.TryWriteBytes(header.AsSpan(20), out _);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(24), sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(26), destinationPort);
        return header;
    }

    private static async Task WaitAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + XmppTestClient.Timeout;
        while (!condition())
        {
            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), "condition not reached in time");
            await Task.Delay(20);
        }
    }
}
