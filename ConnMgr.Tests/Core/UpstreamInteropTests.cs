using System.Net;
using ConnMgr.Edge.Upstream;
using ConnMgr.Protocol.Sasl;
using ConnMgr.Protocol.Xml;
using ConnMgr.Tests.Edge.Upstream;
using NUnit.Framework;

namespace ConnMgr.Tests.Core;

/// <summary>
/// The edge's own link pool (<see cref="UpstreamPool"/>) against the embedded core: the same
/// code that talks to Openfire must work unchanged here (design: the edge never knows which
/// core it talks to).
/// </summary>
[TestFixture]
[CancelAfter(60_000)]
public class UpstreamInteropTests
{
    private CoreTestServer _core = null!;
    private UpstreamPool _pool = null!;

    [SetUp]
    public async Task Start()
    {
        _core = CoreTestServer.Start();
        await _core.AddUsersAsync("alice", "bob");
        _pool = await UpstreamTestSupport.StartPoolAsync(new UpstreamSettings
        {
            Host = "127.0.0.1",
            Port = _core.EndPoint.Port,
            Secret = CoreTestServer.Secret,
            CmName = "edge1",
            Links = 2,
        });
    }

    [TearDown]
    public async Task Stop()
    {
        await _pool.DisposeAsync();
        await _core.DisposeAsync();
    }

    private async Task<(UpstreamSession Session, RecordingOwner Owner)> CreateAsync()
    {
        var owner = new RecordingOwner();
        var session = _pool.CreateSession(_pool.NewStreamId(), owner, IPAddress.Loopback);
        await owner.WaitForAsync(o => o.Events.Any(e => e.Kind == "created"), "created");
        return (session, owner);
    }

    private async Task<(UpstreamSession Session, RecordingOwner Owner)> LoginAsync(string user, string resource)
    {
        var (session, owner) = await CreateAsync();
        await session.RouteAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{Convert.ToBase64String(SaslPlain.Encode(null, user, CoreTestServer.Password))}</auth>");
        await owner.WaitForAsync(o => o.Deliveries.Any(d => d.DeliveryKind == DeliveryKind.SaslSuccess), "SASL success");
        await session.RouteAsync($"<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>");
        await owner.WaitForAsync(o => o.Deliveries.Any(d => d.Xml!.Contains($"<jid>{user}@localhost/{resource}</jid>")), "bind result");
        return (session, owner);
    }

    [Test]
    public void The_pool_reads_the_cores_configuration()
    {
        var configuration = _pool.Configuration!;
        Assert.Multiple(() =>
        {
            Assert.That(_pool.LinksUp, Is.EqualTo(2).Or.EqualTo(1));
            Assert.That(configuration.TlsRequired, Is.True);
            Assert.That(configuration.Mechanisms, Is.EqualTo(new[] { "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN" }));
            Assert.That(configuration.CompressionOffered || configuration.IqAuth || configuration.Register, Is.False);
        });
    }

    [Test]
    public async Task Scram_challenges_and_success_arrive_with_their_delivery_kinds()
    {
        var (session, owner) = await CreateAsync();
        var scram = new ScramClient(ScramHash.Sha256, "alice", CoreTestServer.Password);
        await session.RouteAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>{Convert.ToBase64String(scram.ClientFirst())}</auth>");
        await owner.WaitForAsync(o => o.Deliveries.Count == 1, "the challenge");
        Assert.That(owner.Deliveries[0].DeliveryKind, Is.EqualTo(DeliveryKind.SaslChallenge));
        var challenge = TestCmLink.Parse(owner.Deliveries[0].Xml!).Value;
        Assert.That(scram.ReceiveServerFirst(Convert.FromBase64String(challenge), out var final), Is.EqualTo(SaslResult.Continue));
        await session.RouteAsync($"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{Convert.ToBase64String(final!)}</response>");
        await owner.WaitForAsync(o => o.Deliveries.Count == 2, "the success");
        Assert.That(owner.Deliveries[1].DeliveryKind, Is.EqualTo(DeliveryKind.SaslSuccess));
        Assert.That(scram.VerifyServerFinal(Convert.FromBase64String(TestCmLink.Parse(owner.Deliveries[1].Xml!).Value)), Is.True);
    }

    [Test]
    public async Task Two_sessions_exchange_a_message_and_a_replaced_resource_gets_conflict()
    {
        var (alice, aliceOwner) = await LoginAsync("alice", "phone");
        var (_, bobOwner) = await LoginAsync("bob", "desk");
        await alice.RouteAsync("<message to='bob@localhost/desk' type='chat'><body>via the pool</body></message>");
        await bobOwner.WaitForAsync(o => o.Deliveries.Any(d => d.Xml!.Contains("via the pool") && d.Xml.Contains("from='alice@localhost/phone'")), "the message");

        await LoginAsync("alice", "phone");
        await aliceOwner.WaitForAsync(o => o.Events.Any(e => e.Kind == "stream-error" && e.StreamError == StreamErrorCondition.Conflict), "conflict");
    }

    [Test]
    public async Task Three_wrong_passwords_end_the_session_with_not_authorized()
    {
        var (session, owner) = await CreateAsync();
        for (var i = 0; i < 3; i++)
        {
            await session.RouteAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{Convert.ToBase64String(SaslPlain.Encode(null, "alice", "wrong"))}</auth>");
        }
        await owner.WaitForAsync(o => o.Ended, "the end of the session");
        Assert.That(owner.Deliveries.Count(d => d.DeliveryKind == DeliveryKind.SaslFailure), Is.EqualTo(3));
        Assert.That(owner.Events.Any(e => e.Kind == "stream-error" && e.StreamError == StreamErrorCondition.NotAuthorized), Is.True);
    }

    [Test]
    public async Task Stopping_the_pool_closes_every_session_on_the_core()
    {
        await LoginAsync("alice", "a");
        await LoginAsync("bob", "b");
        Assert.That(_core.Server.Registry.Count, Is.EqualTo(2));
        await _pool.StopAsync(CancellationToken.None);
        Assert.That(() => _core.Server.Registry.Count, Is.Zero.After(10_000, 50));
    }
}
