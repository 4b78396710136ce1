using System.Buffers;
using System.Text;
using ConnMgr.Edge.Upstream;
using ConnMgr.Protocol.Xml;
using NUnit.Framework;

namespace ConnMgr.Tests.Edge.Upstream;

/// <summary>
/// The per-stanza paths allocate nothing in steady state (style: "prove it"). The pool runs on
/// an authenticated link object that is never connected; its sender writes to a null stream.
/// </summary>
[TestFixture]
public sealed class UpstreamAllocationTests
{
    private const int Stanzas = 10_000;

    [Test]
    public async Task Routing_a_client_stanza_allocates_nothing_per_stanza()
    {
        await using var rig = await Rig.CreateAsync();
        var stanza = new ReadOnlySequence<byte>("<message to=\"bob@example.com\" id=\"m1\"><body>hello</body></message>"u8.ToArray());
        for (var i = 0; i < 1000; i++)
        {
            await rig.Session.RouteAsync(stanza, CancellationToken.None);
        }

        // In batches that fit the link's buffer, letting the sender drain in between: steady
        // state, where pipe segments come back to the pool instead of the pipe growing.
        var synchronous = 0;
        long allocated = 0;
        for (var batch = 0; batch < Stanzas / 100; batch++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            for (var i = 0; i < 100; i++)
            {
                if (rig.Session.RouteAsync(stanza, CancellationToken.None).IsCompletedSuccessfully)
                {
                    synchronous++;
                }
            }
            allocated += GC.GetAllocatedBytesForCurrentThread() - before;
            while (rig.Link.Output.PendingBytes > 0)
            {
                await Task.Delay(1);
            }
        }
        var perStanza = allocated / (double)Stanzas;
        Assert.That(synchronous, Is.EqualTo(Stanzas));

        // Pipe segments (16 KiB each, hundreds of stanzas) are rented from the shared pool; a
        // single object per stanza would be 24 bytes or more.
        Assert.That(perStanza, Is.LessThan(4));
    }

    [TestCase("<route streamid=\"{0}\" from=\"example.com\" to=\"cm1\"><message from=\"bob@example.com/pc\" to=\"alice@example.com/phone\" type=\"chat\" id=\"m1\"><body>hello</body></message></route>")]
    [TestCase("<route from=\"example.com\" to=\"cm1\" streamid=\"{0}\">&lt;challenge xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"&gt;cj1mWXZZZ2F6c3RTeGw=&lt;/challenge&gt;</route>")]
    public async Task Delivering_a_routed_element_allocates_nothing_per_stanza(string template)
    {
        await using var rig = await Rig.CreateAsync();
        var route = Encoding.UTF8.GetBytes(string.Format(template, rig.Session.StreamId));
        for (var i = 0; i < 1000; i++)
        {
            rig.Pool.HandleRoute(rig.Link, new XmlElementReader(route, rig.Link.Scope));
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < Stanzas; i++)
        {
            rig.Pool.HandleRoute(rig.Link, new XmlElementReader(route, rig.Link.Scope));
        }
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.That(rig.Owner.Delivered, Is.EqualTo(Stanzas + 1000));
        Assert.That(allocated / (double)Stanzas, Is.LessThan(1));
    }

    /// <summary>A pool with one link marked authenticated, a session on it, a sender draining to nowhere.</summary>
    private sealed class Rig : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private Task _sender = Task.CompletedTask;

        private Rig(UpstreamPool pool, UpstreamLink link)
        {
            Pool = pool;
            Link = link;
        }

        public UpstreamPool Pool { get; }

        public UpstreamLink Link { get; }

        public CountingOwner Owner { get; } = new();

        public UpstreamSession Session { get; private set; } = null!;

        public static Task<Rig> CreateAsync()
        {
            var settings = new UpstreamSettings { Host = "127.0.0.1", Port = 1, Secret = "secret", CmName = "cm1", LinkOutputPauseBytes = 64 << 20 };
            var pool = new UpstreamPool(settings, new ListLogger<UpstreamPool>());
            var link = new UpstreamLink(pool, settings, "cm1/link-1");
            var rig = new Rig(pool, link);
            rig._sender = link.Output.RunSenderAsync(Stream.Null, rig._stop.Token);
            pool.OnLinkReady(link);
            rig.Session = pool.CreateSession(pool.NewStreamId(), rig.Owner, null);
            return Task.FromResult(rig);
        }

        public async ValueTask DisposeAsync()
        {
            Link.Output.Complete();
            await _sender;
            await Pool.DisposeAsync();
            _stop.Dispose();
        }
    }

    private sealed class CountingOwner : IUpstreamSessionOwner
    {
        public int Delivered;

        public void OnSessionCreated()
        {
        }

        public void OnSessionRefused(StanzaErrorCondition condition) => Assert.Fail("refused");

        public void Deliver(ReadOnlySpan<byte> stanza, DeliveryKind kind) => Delivered++;

        public void OnStreamError(StreamErrorCondition condition, string? text)
        {
        }

        public void OnClosedByServer() => Assert.Fail("closed");

        public void OnUpstreamLost()
        {
        }
    }
}
