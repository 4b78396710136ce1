using System.Buffers;
using System.Net;
using System.Text;
using ConnMgr.Edge.Upstream;
using NUnit.Framework;

namespace ConnMgr.Tests.Edge.Upstream;

/// <summary>The link's outbound buffer: batching, backpressure, stall detection, closing.</summary>
[TestFixture]
public sealed class LinkOutputTests
{
    [Test]
    public async Task Elements_written_while_the_sender_is_busy_go_out_in_one_batch_with_one_flush()
    {
        var output = new LinkOutput(pauseBytes: 1 << 20);
        for (var i = 0; i < 100; i++)
        {
            Write(output, $"<route streamid=\"s\"><message id=\"{i}\"/></route>");
        }
        var stream = new RecordingStream();

        var sender = output.RunSenderAsync(stream, CancellationToken.None);
        await WaitUntilAsync(() => output.PendingBytes == 0);
        output.Complete();
        await sender;

        Assert.That(stream.Flushes, Is.EqualTo(1));
        Assert.That(stream.Text, Does.StartWith("<route streamid=\"s\"><message id=\"0\"/></route><route").And.EndWith("<message id=\"99\"/></route>"));
    }

    [Test]
    public async Task The_pending_count_matches_what_the_sender_takes_over_a_long_run()
    {
        // 20 MiB through a 64-KiB threshold: any drift in the count would leave writers waiting
        // for a drain that never comes, or let the backlog grow unchecked.
        var output = new LinkOutput(pauseBytes: 64 * 1024);
        var sender = output.RunSenderAsync(Stream.Null, CancellationToken.None);
        var element = new byte[100];
        for (var i = 0; i < 200_000; i++)
        {
            if (output.IsOverThreshold)
            {
                await output.WaitForDrainAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5));
            }
            using var scope = output.Begin();
            scope.Write(element);
        }
        await WaitUntilAsync(() => output.PendingBytes == 0);
        output.Complete();
        await sender;
    }

    [Test]
    public async Task Writers_wait_over_the_threshold_and_resume_below_half()
    {
        var output = new LinkOutput(pauseBytes: 1000);
        var stream = new RecordingStream { Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) };
        var sender = output.RunSenderAsync(stream, CancellationToken.None);

        Write(output, new string('a', 1500));
        Assert.That(output.IsOverThreshold, Is.True);
        var wait = output.WaitForDrainAsync(CancellationToken.None);
        await Task.Delay(50);
        Assert.That(wait.IsCompleted, Is.False, "the socket has not taken the bytes");
        Assert.That(output.IsStalled(Environment.TickCount64 + 10_000, limitMs: 5_000), Is.True);

        stream.Gate.SetResult();
        await wait.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.That(output.IsOverThreshold, Is.False);
        Assert.That(output.IsStalled(Environment.TickCount64 + 10_000, limitMs: 5_000), Is.False);
        output.Complete();
        await sender;
    }

    [Test]
    public async Task Closing_releases_waiters_and_discards_later_writes()
    {
        var output = new LinkOutput(pauseBytes: 10);
        Write(output, "<route streamid=\"s\"><message/></route>");
        var wait = output.WaitForDrainAsync(CancellationToken.None);

        output.Complete();

        await wait.WaitAsync(TimeSpan.FromSeconds(5));
        using var scope = output.Begin();
        Assert.That(scope.IsOpen, Is.False);
        scope.Write("ignored"u8);
    }

    [Test]
    public void The_create_iq_names_the_stream_and_the_client_address()
    {
        var buffer = new ArrayBufferWriter<byte>();
        LinkWire.Create(buffer, "cm1-abc", IPAddress.Parse("2001:db8::7"));
        Assert.That(Encoding.UTF8.GetString(buffer.WrittenSpan), Is.EqualTo(
            "<iq type=\"set\" id=\"create-cm1-abc\"><session xmlns=\"http://jabber.org/protocol/connectionmanager\" id=\"cm1-abc\">"
            + "<create><host name=\"2001:db8::7\" address=\"2001:db8::7\"/></create></session></iq>"));
    }

    [Test]
    public void A_route_declares_only_the_extra_prefixes_with_escaped_uris()
    {
        var start = LinkWire.RouteStart("cm1-abc",
            [new("", "jabber:client"), new("stream", "http://etherx.jabber.org/streams"), new("xml", "http://www.w3.org/XML/1998/namespace"), new("p", "urn:a&b\"c")]);
        Assert.That(Encoding.UTF8.GetString(start), Is.EqualTo("<route streamid=\"cm1-abc\" xmlns:p=\"urn:a&amp;b&quot;c\">"));
    }

    [Test]
    public void A_failed_message_without_a_namespace_is_written_in_jabber_client()
    {
        var buffer = new ArrayBufferWriter<byte>();
        LinkWire.Failed(buffer, "cm1-abc", "<message to=\"a@b\"><body>x</body></message>"u8, messageHasXmlns: false);
        Assert.That(Encoding.UTF8.GetString(buffer.WrittenSpan), Does.Contain("<failed><message xmlns=\"jabber:client\" to=\"a@b\"><body>x</body></message></failed>"));
    }

    private static void Write(LinkOutput output, string text)
    {
        using var scope = output.Begin();
        scope.Write(Encoding.UTF8.GetBytes(text));
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (!condition())
        {
            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), "timed out");
            await Task.Delay(5);
        }
    }

    /// <summary>A socket stand-in: keeps what is written, counts flushes, can hold writes back.</summary>
    private sealed class RecordingStream : Stream
    {
        private readonly MemoryStream _written = new();

        public TaskCompletionSource? Gate { get; init; }

        public int Flushes { get; private set; }

        public string Text => Encoding.UTF8.GetString(_written.ToArray());

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => _written.Length;
        public override long Position { get => _written.Position; set => throw new NotSupportedException(); }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (Gate is not null)
            {
                await Gate.Task.WaitAsync(cancellationToken);
            }
            _written.Write(buffer.Span);
        }

        public override Task FlushAsync(CancellationToken cancellationToken)
        {
            Flushes++;
            return Task.CompletedTask;
        }

        public override void Flush() => Flushes++;
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => _written.Write(buffer, offset, count);
    }
}
