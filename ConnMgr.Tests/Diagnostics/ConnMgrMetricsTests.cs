using System.Diagnostics.Metrics;
using ConnMgr.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using NUnit.Framework;

namespace ConnMgr.Tests.Diagnostics;

public class ConnMgrMetricsTests
{
    [Test]
    public void Calls_on_the_relay_path_allocate_nothing_while_exported()
    {
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var metrics = new ConnMgrMetrics(services.GetRequiredService<IMeterFactory>());
        using var exporter = new PrometheusExporter(metrics);
        Counter<long> extra = metrics.Meter.CreateCounter<long>("connmgr.test.extra");
        var tag = new KeyValuePair<string, object?>("direction", "in");
        const string Reason = "client_closed";

        void Burst(int count)
        {
            for (int i = 0; i < count; i++)
            {
                metrics.ConnectionOpened(ClientTransport.Tls);
                metrics.ConnectionEstablished(ClientTransport.Tls);
                metrics.StanzaReceived();
                metrics.StanzaSent();
                metrics.BytesReceived(512);
                metrics.BytesSent(512);
                metrics.PendingOutputChanged(512);
                metrics.PendingOutputChanged(-512);
                metrics.LoginSucceeded();
                metrics.ConnectionClosed(ClientTransport.Tls, ClientConnectionState.Established, Reason);
                extra.Add(1, tag);
            }
        }

        Burst(10);
        exporter.Render();
        long before = GC.GetAllocatedBytesForCurrentThread();
        Burst(10_000);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.That(allocated, Is.Zero);
        Assert.That(PrometheusText.Parse(exporter.Render()).Samples["connmgr_test_extra_total{direction=\"in\"}"], Is.EqualTo(10_010));
    }
}
