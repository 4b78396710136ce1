using ConnMgr.Hosting;
using ConnMgr.Tests.Hosting;
using NUnit.Framework;

namespace ConnMgr.Tests.Edge.Web;

/// <summary>The web transports' option keys, validated with the daemon's start-up validation.</summary>
public sealed class WebOptionsTests
{
    [TestCase("Edge:HttpAllowedOrigins", "chat.example.com", "Edge:HttpAllowedOrigins must list origins such as https://chat.example.com, separated by commas (got \"chat.example.com\")")]
    [TestCase("Edge:HttpAllowedOrigins", "https://a.example, ftp://b.example", "(got \"ftp://b.example\")")]
    [TestCase("Edge:HttpAllowedOrigins", "https://a.example/path", "(got \"https://a.example/path\")")]
    [TestCase("Edge:HttpCountsAsEncrypted", "sometimes", "Edge:HttpCountsAsEncrypted must be true or false (got \"sometimes\")")]
    public void A_bad_value_is_reported_with_its_key(string key, string value, string expected)
    {
        var failures = Validate($"--{key}={value}");
        Assert.That(failures, Has.Some.Contains(expected));
        Assert.That(failures, Has.Count.EqualTo(1), string.Join("\n", failures));
    }

    [TestCase("Edge:HttpAllowedOrigins", "https://chat.example.com, http://localhost:8080")]
    [TestCase("Edge:HttpAllowedOrigins", "")]
    [TestCase("Edge:HttpCountsAsEncrypted", "true")]
    public void A_good_value_passes(string key, string value)
    {
        Assert.That(Validate($"--{key}={value}"), Is.Empty);
    }

    private static IReadOnlyList<string> Validate(params string[] args)
    {
        using var directory = new TempDirectory();
        using var host = DaemonHost.Build(["--DataDirectory=" + directory.Path, .. args]);
        return StartupValidation.Validate(host.Services);
    }
}
