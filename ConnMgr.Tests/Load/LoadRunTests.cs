using System.Net;
using System.Net.Sockets;
using ConnMgr.Benchmarks.Load;
using NUnit.Framework;

namespace ConnMgr.Tests.Load;

/// <summary>The generator's clients against <see cref="FakeChatServer"/> over real loopback sockets.</summary>
public sealed class LoadRunTests
{
    private static LoadOptions Options(int port, params string[] extra)
    {
        var args = new List<string> { "--port", port.ToString(), "--clients", "12", "--rate", "1000", "--hold", "1500ms", "--interval", "200ms", "--neighbours", "4" };
        args.AddRange(extra);
        var options = LoadOptions.Parse(args, out var error);
        Assert.That(error, Is.Null);
        return options!;
    }

    [Test]
    public async Task ClientsLogInChatAndRecordLatency()
    {
        await using var server = new FakeChatServer("pass");
        var run = new LoadRun(Options(server.Port));
        await run.RunAsync(CancellationToken.None);

        var c = run.Counters;
        Assert.Multiple(() =>
        {
            Assert.That(c.TotalErrors, Is.Zero, () => string.Join("; ", Enum.GetValues<LoadError>().Select(k => $"{k}: {c.FirstErrorText(k)}").Where(s => !s.EndsWith(": "))));
            Assert.That(c.LoginsSucceeded, Is.EqualTo(12));
            Assert.That(c.LoginTime.Count, Is.EqualTo(12));
            Assert.That(c.LoggedIn, Is.Zero, "every client closed");
            Assert.That(c.Connected, Is.Zero);
            Assert.That(c.MessagesSent, Is.GreaterThan(0));
            // A message relayed after its recipient sent its stream end is never read.
            Assert.That(c.MessagesReceived, Is.GreaterThan(0).And.LessThanOrEqualTo(server.Relayed));
            Assert.That(server.Relayed, Is.LessThanOrEqualTo(c.MessagesSent));
            Assert.That(c.Latency.Count, Is.EqualTo(c.MessagesReceived - c.MessagesOffline));
            Assert.That(run.Phase, Is.EqualTo(RunPhase.Done));
        });
    }

    [Test]
    public async Task WrongPasswordIsAnAuthErrorForEveryClient()
    {
        await using var server = new FakeChatServer("pass");
        var run = new LoadRun(Options(server.Port, "--password", "wrong", "--interval", "0"));
        await run.RunAsync(CancellationToken.None);
        Assert.That(run.Counters.LoginsSucceeded, Is.Zero);
        Assert.That(run.Counters.LoginsFailed, Is.EqualTo(12));
        Assert.That(run.Counters.ErrorCount(LoadError.Auth), Is.EqualTo(12));
        Assert.That(run.Counters.FirstErrorText(LoadError.Auth), Does.Contain("not-authorized"));
    }

    [Test]
    public async Task RefusedConnectionsAreCountedByKind()
    {
        // A port that was just free: nothing listens on it.
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();

        var run = new LoadRun(Options(port, "--hold", "0", "--interval", "0"));
        await run.RunAsync(CancellationToken.None);
        Assert.That(run.Counters.ErrorCount(LoadError.ConnectRefused), Is.EqualTo(12));
        Assert.That(run.Counters.LoginsFailed, Is.EqualTo(12));
        Assert.That(run.Counters.Connecting, Is.Zero);
    }

    [Test]
    public async Task ClientsSpreadOverSourceAddresses()
    {
        await using var server = new FakeChatServer("pass");
        var run = new LoadRun(Options(server.Port, "--sources", "127.0.0.2-127.0.0.3", "--interval", "0", "--hold", "200ms"));
        var seen = new HashSet<string>();
        for (var i = 0; i < 4; i++)
            seen.Add(run.NextSource()!.ToString());
        Assert.That(seen, Is.EquivalentTo(new[] { "127.0.0.2", "127.0.0.3" }));
        await run.RunAsync(CancellationToken.None);
        Assert.That(run.Counters.LoginsSucceeded, Is.EqualTo(12), run.Counters.FirstErrorText(LoadError.Connect));
        Assert.That(server.ClientAddresses.Select(a => a.ToString()).Distinct(), Is.EquivalentTo(new[] { "127.0.0.2", "127.0.0.3" }));
    }

    [Test]
    public void SaltsOfThisProcessUsersAreDerivedBeforeTheRun()
    {
        var path = Path.GetTempFileName();
        try
        {
            // user1..user12 are this run's; user99 is another worker's and must be skipped.
            File.WriteAllLines(path, [
                "user1 c2FsdDE= 16 pass",
                "user2 c2FsdDI= 16 pass",
                "",
                "user99 c2FsdDk= 16 pass",
            ]);
            var run = new LoadRun(Options(1, "--salts", path));
            Assert.That(run.PreloadSalts(), Is.EqualTo(2));
            Assert.That(run.ScramCache.Count, Is.EqualTo(2));

            File.WriteAllLines(path, ["user1 c2FsdDE= many pass"]);
            Assert.That(() => new LoadRun(Options(1, "--salts", path)).PreloadSalts(),
                Throws.InstanceOf<FormatException>().With.Message.Contains(":1: expected NAME SALT_BASE64 ITERATIONS PASSWORD"));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void SaltsOfTheWarmupUsersAreDerivedInTheSamePassAndShared()
    {
        var path = Path.GetTempFileName();
        try
        {
            // user1..user12 are measured, user13..user14 warm up first; user99 is nobody's here.
            File.WriteAllLines(path, ["user1 c2FsdDE= 16 pass", "user13 c2FsdDM= 16 pass", "user99 c2FsdDk= 16 pass"]);
            var run = new LoadRun(Options(1, "--salts", path, "--warmup", "2"));
            Assert.That(run.PreloadSalts(), Is.EqualTo(2));
            var warm = new LoadRun(run.Options.ForWarmup(), run.ScramCache);
            Assert.That(warm.ScramCache, Is.SameAs(run.ScramCache));
            Assert.That(warm.ScramCache.Count, Is.EqualTo(2));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public async Task UsersAreSpreadOverSeveralEdgePortsTheSameWayInEveryProcess()
    {
        await using var first = new FakeChatServer("pass");
        await using var second = new FakeChatServer("pass");
        var options = Options(first.Port, "--port", $"{first.Port},{second.Port}", "--interval", "0", "--hold", "200ms");
        var run = new LoadRun(options);
        Assert.That(run.ServerEndPointFor(1).Port, Is.EqualTo(first.Port));
        Assert.That(run.ServerEndPointFor(2).Port, Is.EqualTo(second.Port));
        Assert.That(run.ServerEndPointFor(3).Port, Is.EqualTo(first.Port));
        // A worker with a later share still maps user 2 to the second edge.
        var worker = LoadOptions.Parse(options.WorkerArguments(1, 2, "w.json")[1..], out var error)!;
        Assert.That(error, Is.Null);
        Assert.That(new LoadRun(worker).ServerEndPointFor(2).Port, Is.EqualTo(second.Port));

        await run.RunAsync(CancellationToken.None);
        Assert.That(run.Counters.LoginsSucceeded, Is.EqualTo(12), run.Counters.FirstErrorText(LoadError.Connect));
        Assert.That(first.ClientAddresses, Has.Count.EqualTo(6));
        Assert.That(second.ClientAddresses, Has.Count.EqualTo(6));
    }
}
