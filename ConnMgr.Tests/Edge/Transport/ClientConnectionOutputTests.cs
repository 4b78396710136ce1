using System.Buffers;
using System.Net.Sockets;
using System.Text;
using ConnMgr.Edge.Transport;
using NUnit.Framework;

namespace ConnMgr.Tests.Edge.Transport;

public class ClientConnectionOutputTests
{
    [Test]
    public async Task A_client_that_never_reads_is_cut_with_OutputOverflow_and_TryWrite_never_waits()
    {
        var settings = new TransportSettings { MaxStanzaBytes = 16 * 1024, MaxPendingOutputBytes = 256 * 1024 };
        var outcome = new TaskCompletionSource<(long Queued, int Calls)>();
        var closed = CancellationToken.None;
        await using var host = TransportHost.Start(async (connection, _) =>
        {
            closed = connection.Closed;
            await Kit.ReadLineAsync(connection.Input);
            // A delivery thread: queues 16 KiB stanzas as fast as it can, never awaiting.
            var stanza = new byte[16 * 1024];
            long queued = 0;
            var calls = 0;
            while (connection.TryWrite(stanza))
            {
                queued += stanza.Length;
                calls++;
            }
            outcome.SetResult((queued, calls));
            await Kit.DrainInputAsync(connection);
        }, settings);
        using var client = await host.ConnectAsync();
        await client.SendAsync(Kit.Ascii("go, I will not read\n"));

        var (queued, calls) = await outcome.Task.WaitAsync(Kit.Timeout);
        var connection = await host.Handler.NextFinishedAsync();

        Assert.That(connection.CloseReason, Is.EqualTo(CloseReason.OutputOverflow));
        Assert.That(closed.IsCancellationRequested, Is.True, "the Closed token taken earlier fired");
        Assert.That(calls, Is.GreaterThan(0));
        // Pending bytes never exceed what was queued, so a refusal means the cap was really reached.
        Assert.That(queued + (16 * 1024), Is.GreaterThan(settings.MaxPendingOutputBytes), "refused only at the cap");
        Assert.That(connection.TryWrite("late"u8), Is.False, "nothing is queued after the cut");
        TestContext.Out.WriteLine($"{queued} bytes queued before the cut");
    }

    [Test]
    public async Task TryWrite_from_many_threads_keeps_each_stanza_whole()
    {
        const int writers = 8;
        const int stanzasPerWriter = 500;
        await using var host = TransportHost.Start(async (connection, _) =>
        {
            await Task.WhenAll(Enumerable.Range(0, writers).Select(w => Task.Run(() =>
            {
                var line = Encoding.ASCII.GetBytes($"<message from='{w}'>{new string('x', 40)}</message>\n");
                for (var i = 0; i < stanzasPerWriter; i++)
                {
                    Assert.That(connection.TryWrite(line), Is.True);
                }
            })));
            await Kit.DrainInputAsync(connection);
        });
        using var client = await host.ConnectAsync();
        using var reader = new StreamReader(new NetworkStream(client), Encoding.ASCII);

        var lines = new List<string>();
        for (var i = 0; i < writers * stanzasPerWriter; i++)
        {
            lines.Add((await reader.ReadLineAsync().WaitAsync(Kit.Timeout))!);
        }

        Assert.That(lines, Has.All.Match(@"^<message from='\d'>x{40}</message>$"));
        Assert.That(lines.GroupBy(l => l).Select(g => g.Count()), Has.All.EqualTo(stanzasPerWriter));
    }

    [Test]
    public async Task TryWrite_allocates_nothing_per_stanza()
    {
        const int stanzas = 500;
        var allocated = new TaskCompletionSource<long>();
        await using var host = TransportHost.Start(async (connection, _) =>
        {
            var stanza = Kit.Ascii("<message to='a@b'><body>hi</body></message>");
            // One at a time, letting the send loop drain in between, so that every write has to
            // wake it: the wake-up is part of the delivery path. The first round is a warm-up.
            var bytes = 0L;
            for (var round = 0; round < 2; round++)
            {
                var before = GC.GetAllocatedBytesForCurrentThread();
                for (var i = 0; i < stanzas; i++)
                {
                    connection.TryWrite(stanza);
                    SpinWait.SpinUntil(() => connection.PendingOutputBytes == 0, Kit.Timeout);
                }
                bytes = GC.GetAllocatedBytesForCurrentThread() - before;
            }
            allocated.SetResult(bytes);
            await Kit.DrainInputAsync(connection);
        });
        using var client = await host.ConnectAsync();
        var sink = new byte[64 * 1024];
        var reading = Task.Run(async () =>
        {
            try
            {
                while (await client.ReceiveAsync(sink.AsMemory()) > 0)
                {
                }
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
            {
                // The server may close first once this side shuts down; only the count above matters.
            }
        });

        var bytes = await allocated.Task.WaitAsync(Kit.Timeout);

        // Allowance for a pipe segment or two on the delivering thread, never one per stanza.
        Assert.That(bytes, Is.LessThan(stanzas), $"{bytes} bytes allocated by {stanzas} TryWrite calls");
        client.Shutdown(SocketShutdown.Both);
        await reading.WaitAsync(Kit.Timeout);
    }

    [Test]
    public async Task Output_and_TryWrite_share_one_ordered_queue()
    {
        await using var host = TransportHost.Start(async (connection, _) =>
        {
            connection.Output.Write("one\n"u8);
            await connection.Output.FlushAsync();
            connection.TryWrite("two\n"u8);
            connection.Output.Write("three\n"u8);
            connection.TryWrite(new ReadOnlySequence<byte>(Kit.Ascii("four (queued before three: three is not flushed yet)\n")));
            await connection.Output.FlushAsync();
            await Kit.DrainInputAsync(connection);
        });
        using var client = await host.ConnectAsync();
        await using var stream = new NetworkStream(client);

        var lines = new List<string?>();
        for (var i = 0; i < 4; i++)
        {
            lines.Add(await Kit.ReadLineAsync(stream));
        }

        Assert.That(lines, Is.EqualTo(new[] { "one", "two", "four (queued before three: three is not flushed yet)", "three" }));
    }

    [Test]
    public async Task A_multi_segment_sequence_is_written_whole()
    {
        var first = new Segment(Kit.Ascii("<iq type='get'>"));
        var last = first.Append(Kit.Ascii("<ping/>")).Append(Kit.Ascii("</iq>\n"));
        var stanza = new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
        await using var host = TransportHost.Start(async (connection, _) =>
        {
            connection.TryWrite(stanza);
            await Kit.DrainInputAsync(connection);
        });
        using var client = await host.ConnectAsync();

        Assert.That(await Kit.ReadLineAsync(new NetworkStream(client)), Is.EqualTo("<iq type='get'><ping/></iq>"));
    }

    [Test]
    public async Task The_stream_layers_flush_waits_for_a_slow_client_instead_of_overflowing()
    {
        // 32 MiB through Output with the default 5 MiB cap: only possible if the flushes wait
        // for the client; without that wait the queue would pass the cap and the client be cut.
        const int total = 32 * 1024 * 1024;
        var chunk = new byte[64 * 1024];
        var flushWaited = new TaskCompletionSource();
        await using var host = TransportHost.Start(async (connection, _) =>
        {
            for (var written = 0; written < total; written += chunk.Length)
            {
                connection.Output.Write(chunk);
                var flush = connection.Output.FlushAsync();
                if (!flush.IsCompleted)
                {
                    flushWaited.TrySetResult();
                }
                var result = await flush;
                Assert.That(result.IsCompleted, Is.False, "the connection stays open");
            }
            await Kit.DrainInputAsync(connection);
        });
        using var client = await host.ConnectAsync();

        await flushWaited.Task.WaitAsync(Kit.Timeout);
        var sink = new byte[256 * 1024];
        long received = 0;
        while (received < total)
        {
            var count = await client.ReceiveAsync(sink.AsMemory()).AsTask().WaitAsync(Kit.Timeout);
            Assert.That(count, Is.GreaterThan(0), "the server did not close");
            received += count;
        }

        Assert.That(received, Is.EqualTo(total));
        Assert.That(host.Transport.GetConnections().Single().CloseReason, Is.EqualTo(CloseReason.None));
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory) => Memory = memory;

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory) { RunningIndex = RunningIndex + Memory.Length };
            Next = next;
            return next;
        }
    }
}
