using ConnMgr.Core;
using ConnMgr.Hosting;
using ConnMgr.Tests.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NUnit.Framework;

namespace ConnMgr.Tests.Core;

/// <summary>The embedded core inside the daemon host: wiring, endpoint, readiness, the generated link secret.</summary>
[TestFixture]
[CancelAfter(60_000)]
public class CoreServiceTests
{
    [Test]
    public async Task The_daemon_runs_the_core_on_its_port_and_reports_ready()
    {
        await using var daemon = await TestDaemon.StartAsync(["--Edge:Enabled=false"]);
        await daemon.Get<ReadinessGate>().Ready.WaitAsync(TestCmLink.Timeout);
        var endPoint = daemon.Endpoint(CoreService.EndpointKey);
        var secret = daemon.Get<LinkSecretProvider>().GetSecret();

        await using var link = await TestCmLink.OpenAsync(endPoint, secret);
        var created = await link.CreateAsync("cm1-hosted");
        Assert.That(created.Attribute("type")?.Value, Is.EqualTo("result"));
        Assert.That(File.Exists(Path.Combine(daemon.DataDirectory, ConnMgr.Core.Storage.XmppStore.DatabaseFileName)), Is.True);
    }

    [Test]
    public async Task Core_enabled_false_registers_nothing()
    {
        await using var daemon = await TestDaemon.StartAsync(["--Core:Enabled=false", "--Upstream:Secret=s3cret", "--Edge:HttpPort=0"]);
        Assert.That(daemon.Host.Services.GetServices<IHostedService>().OfType<CoreService>(), Is.Empty);
        Assert.That(daemon.Get<ListenerEndpoints>().TryGet(CoreService.EndpointKey, out _), Is.False);
    }
}
