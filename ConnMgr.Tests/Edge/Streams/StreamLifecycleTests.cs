using System.Diagnostics.Metrics;
using ConnMgr.Diagnostics;
using ConnMgr.Tests.Diagnostics;
using ConnMgr.Tests.EndToEnd;
using Microsoft.Extensions.DependencyInjection;
using NUnit.Framework;

namespace ConnMgr.Tests.Edge.Streams;

/// <summary>How streams end as a whole: shutdown, and what every close leaves in the metrics.</summary>
public sealed class StreamLifecycleTests
{
    [Test]
    public async Task Stopping_the_transport_tells_every_client_system_shutdown_and_closes_its_session_upstream()
    {
        await using var edge = await EdgeHarness.StartAsync();
        await using var alice = await edge.LoginAsync("alice");
        await using var early = await edge.ConnectAsync();
        await early.OpenStreamAsync();
        var streamIds = new[] { alice.StreamId!, early.StreamId! };

        var stopping = edge.Transport.ShutdownAsync(TimeSpan.FromSeconds(10));
        await alice.ExpectStreamErrorAsync("system-shutdown");
        await early.ExpectStreamErrorAsync("system-shutdown");
        await stopping.WaitAsync(XmppTestClient.Timeout);

        // The pool is still up: each stream sent its own <close/>.
        await edge.Server.WaitForAsync(s => streamIds.All(id => s.FindSession(id) is null), description: "sessions closed upstream");
        Assert.That(edge.Server.EndedSessions.Where(e => streamIds.Contains(e.StreamId)).Select(e => e.Reason), Is.All.EqualTo("cm-close"));
        edge.AssertLinksIntact();
    }

    [Test]
    public async Task Closes_are_counted_by_reason_and_logins_by_outcome()
    {
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var metrics = new ConnMgrMetrics(services.GetRequiredService<IMeterFactory>());
        using var exporter = new PrometheusExporter(metrics);
        await using var edge = await EdgeHarness.StartAsync(metrics: metrics);

        await using (var alice = await edge.LoginAsync("alice"))
        {
            await alice.SendAsync("<foo/>");
            await alice.ExpectStreamErrorAsync("unsupported-stanza-type");
        }
        await using (var bob = await edge.ConnectAsync(directTls: true))
        {
            await bob.OpenStreamAsync();
            await bob.SendAsync("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGJvYgB3cm9uZw==</auth>");
            await bob.ExpectAsync("<failure");
            await bob.SendAsync("</stream:stream>");
            await bob.ReadToEndAsync();
        }

        var samples = await WaitForAsync(exporter, s => s.TryGetValue("connmgr_client_closes_total{reason=\"ClientClosed\"}", out var closed) && closed == 1);
        Assert.That(samples["connmgr_client_closes_total{reason=\"ProtocolError\"}"], Is.EqualTo(1));
        Assert.That(samples["connmgr_client_logins_total"], Is.EqualTo(1));
        Assert.That(samples["connmgr_client_login_failures_total"], Is.EqualTo(1));
        Assert.That(samples["connmgr_client_connections{state=\"established\",transport=\"tcp\"}"], Is.Zero);
        Assert.That(samples["connmgr_client_connections{state=\"negotiating\",transport=\"tls\"}"], Is.Zero);
        Assert.That(samples["connmgr_client_stanzas_total{direction=\"in\"}"], Is.GreaterThanOrEqualTo(1), "the bind request");
        Assert.That(samples["connmgr_client_bytes_total{direction=\"in\"}"], Is.GreaterThan(0));
    }

    private static async Task<IReadOnlyDictionary<string, double>> WaitForAsync(PrometheusExporter exporter, Func<IReadOnlyDictionary<string, double>, bool> condition)
    {
        var deadline = DateTime.UtcNow + XmppTestClient.Timeout;
        while (true)
        {
            var samples = PrometheusText.Parse(exporter.Render()).Samples;
            if (condition(samples) || DateTime.UtcNow > deadline)
            {
                return samples;
            }
            await Task.Delay(20);
        }
    }
}
