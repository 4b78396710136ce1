using System.Net;
using ConnMgr.Benchmarks.Load;
using NUnit.Framework;

namespace ConnMgr.Tests.Load;

public sealed class LoadOptionsTests
{
    private static LoadOptions Parse(params string[] args)
    {
        var options = LoadOptions.Parse(args, out var error);
        Assert.That(error, Is.Null);
        return options!;
    }

    private static string Error(params string[] args)
    {
        Assert.That(LoadOptions.Parse(args, out var error), Is.Null);
        return error!;
    }

    [Test]
    public void DefaultsFollowAmocsOneToOneModel()
    {
        var o = Parse();
        Assert.Multiple(() =>
        {
            Assert.That(o.Host, Is.EqualTo(IPAddress.Loopback));
            Assert.That(o.Port, Is.EqualTo(5222));
            Assert.That(o.Domain, Is.EqualTo("localhost"));
            Assert.That(o.Mechanism, Is.EqualTo(LoadMechanism.ScramSha1));
            Assert.That(o.Interval, Is.EqualTo(TimeSpan.FromSeconds(20)));
            Assert.That(o.Neighbours, Is.EqualTo(8));
            Assert.That(o.BodySize, Is.EqualTo(150));
            Assert.That(o.Tls, Is.True);
            Assert.That(o.UserName(42), Is.EqualTo("user42"));
            Assert.That(o.PopulationFirst, Is.EqualTo(1));
            Assert.That(o.PopulationCount, Is.EqualTo(100));
        });
    }

    [Test]
    public void EveryOptionIsRead()
    {
        var o = Parse("--host", "127.0.0.2", "--port=5322", "--domain", "example.test", "--clients", "2_000", "--first", "10",
            "--users", "u%dx", "--password", "pw%d", "--resource", "r", "--mech", "scram-sha-256", "--rate", "12.5",
            "--hold", "2m", "--interval", "500ms", "--neighbours", "4", "--body", "300", "--login-timeout", "30",
            "--sources", "127.0.0.1-127.0.0.3,127.0.1.9", "--server-pid", "10,11", "--processes", "2", "--seed", "9",
            "--out", "r.json", "--md", "r.md", "--label", "prosody", "--no-tls", "--tls-resume");
        Assert.Multiple(() =>
        {
            Assert.That(o.Host, Is.EqualTo(IPAddress.Parse("127.0.0.2")));
            Assert.That(o.Port, Is.EqualTo(5322));
            Assert.That(o.Domain, Is.EqualTo("example.test"));
            Assert.That(o.Clients, Is.EqualTo(2000));
            Assert.That(o.UserName(7), Is.EqualTo("u7x"));
            Assert.That(o.Password(7), Is.EqualTo("pw7"));
            Assert.That(o.MechanismName, Is.EqualTo("SCRAM-SHA-256"));
            Assert.That(o.Rate, Is.EqualTo(12.5));
            Assert.That(o.Hold, Is.EqualTo(TimeSpan.FromMinutes(2)));
            Assert.That(o.Interval, Is.EqualTo(TimeSpan.FromMilliseconds(500)));
            Assert.That(o.LoginTimeout, Is.EqualTo(TimeSpan.FromSeconds(30)));
            Assert.That(o.Sources.Select(a => a.ToString()), Is.EqualTo(new[] { "127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.1.9" }));
            Assert.That(o.ServerPids, Is.EqualTo(new[] { 10, 11 }));
            Assert.That(o.Processes, Is.EqualTo(2));
            Assert.That(o.Tls, Is.False);
            Assert.That(o.TlsResume, Is.True);
            Assert.That(o.Label, Is.EqualTo("prosody"));
            Assert.That(o.PopulationFirst, Is.EqualTo(10));
        });
    }

    [TestCase("--host", "10.0.0.1", "not a loopback address")]
    [TestCase("--sources", "127.0.0.1-192.168.0.1", "not a loopback address")]
    [TestCase("--sources", "127.0.0.9-127.0.0.1", "ends before it starts")]
    [TestCase("--port", "70000", "--port must be a whole number from 1 to 65535")]
    [TestCase("--users", "user", "must contain %d")]
    [TestCase("--users", "a@b%d", "not a plain localpart pattern")]
    [TestCase("--mech", "DIGEST-MD5", "SCRAM-SHA-1, SCRAM-SHA-256 or PLAIN")]
    [TestCase("--hold", "soon", "takes a duration")]
    [TestCase("--login-timeout", "0", "above zero")]
    [TestCase("--interval", "5ms", "at least 10 ms")]
    [TestCase("--frobnicate", "1", "unknown option '--frobnicate'")]
    public void BadValuesAreNamed(string option, string value, string message)
        => Assert.That(Error(option, value), Does.Contain(message));

    [Test]
    public void MissingValueIsNamed()
        => Assert.That(Error("--clients"), Is.EqualTo("--clients needs a value"));

    [Test]
    public void MoreProcessesThanClientsIsRefused()
        => Assert.That(Error("--clients", "2", "--processes", "3"), Does.Contain("at least as many clients"));

    [Test]
    public void WorkerSharesCoverTheUsersOnceAndSplitTheSources()
    {
        var o = Parse("--clients", "10", "--first", "5", "--processes", "3", "--rate", "30", "--sources", "127.0.0.1-127.0.0.7");
        var users = new List<int>();
        var sources = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            var w = Parse(o.WorkerArguments(i, 3, $"w{i}.json").Skip(1).ToArray());
            Assert.That(w.Worker, Is.True);
            Assert.That(w.Rate, Is.EqualTo(10));
            Assert.That(w.PopulationFirst, Is.EqualTo(5));
            Assert.That(w.PopulationCount, Is.EqualTo(10));
            Assert.That(w.OutPath, Is.EqualTo($"w{i}.json"));
            Assert.That(w.Interval, Is.EqualTo(o.Interval));
            users.AddRange(Enumerable.Range(w.First, w.Clients));
            sources.AddRange(w.Sources.Select(a => a.ToString()));
        }
        Assert.That(users, Is.EqualTo(Enumerable.Range(5, 10)));
        Assert.That(sources, Is.EquivalentTo(o.Sources.Select(a => a.ToString())));
    }

    [Test]
    public void WarmupUsersFollowTheMeasuredOnesAndAreSplitOverWorkers()
    {
        var o = Parse("--clients", "10", "--first", "5", "--warmup", "7", "--processes", "3", "--hold", "60s", "--out", "r.json");
        Assert.That(o.WarmupFirst, Is.EqualTo(15), "right after users 5..14");
        var warmUsers = new List<int>();
        for (var i = 0; i < 3; i++)
        {
            var w = Parse(o.WorkerArguments(i, 3, $"w{i}.json").Skip(1).ToArray());
            var warm = w.ForWarmup();
            Assert.That(warm.PopulationFirst, Is.EqualTo(warm.First));
            Assert.That(warm.PopulationCount, Is.EqualTo(warm.Clients));
            Assert.That(warm.Hold, Is.EqualTo(LoadOptions.WarmupHold));
            Assert.That(warm.Warmup, Is.Zero, "a warm-up has no warm-up of its own");
            Assert.That(warm.OutPath, Is.Null, "its results are not written");
            Assert.That(w.OutPath, Is.EqualTo($"w{i}.json"), "the measured run's are");
            warmUsers.AddRange(Enumerable.Range(warm.First, warm.Clients));
        }
        Assert.That(warmUsers, Is.EqualTo(Enumerable.Range(15, 7)));
    }

    [Test]
    public void WarmupFirstCanBeGiven()
        => Assert.That(Parse("--clients", "10", "--warmup", "3", "--warmup-first", "1000").ForWarmup().First, Is.EqualTo(1000));

    [Test]
    public void FewerSourcesThanProcessesAreShared()
    {
        var o = Parse("--clients", "10", "--processes", "2", "--sources", "127.0.0.5");
        Assert.That(o.SourceShare(1, 2).Select(a => a.ToString()), Is.EqualTo(new[] { "127.0.0.5" }));
    }

    [Test]
    public void HelpSaysTheCertificateIsNotVerified()
        => Assert.That(LoadOptions.HelpText, Does.Contain("certificate is NOT verified"));
}
