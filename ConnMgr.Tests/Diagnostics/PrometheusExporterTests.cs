using System.Diagnostics.Metrics;
using ConnMgr.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using NUnit.Framework;

namespace ConnMgr.Tests.Diagnostics;

public class PrometheusExporterTests
{
    private ServiceProvider _services = null!;
    private ConnMgrMetrics _metrics = null!;
    private PrometheusExporter _exporter = null!;

    [SetUp]
    public void SetUp()
    {
        _services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        _metrics = new ConnMgrMetrics(_services.GetRequiredService<IMeterFactory>());
        _exporter = new PrometheusExporter(_metrics);
    }

    [TearDown]
    public void TearDown()
    {
        _exporter.Dispose();
        _services.Dispose();
    }

    [Test]
    public void Every_instrument_is_rendered_with_help_and_type()
    {
        PrometheusText text = PrometheusText.Parse(_exporter.Render());
        Assert.That(text.Types, Is.EqualTo(new Dictionary<string, string>
        {
            ["connmgr_client_bytes_total"] = "counter",
            ["connmgr_client_connections"] = "gauge",
            ["connmgr_client_login_failures_total"] = "counter",
            ["connmgr_client_logins_total"] = "counter",
            ["connmgr_client_pending_output_bytes"] = "gauge",
            ["connmgr_client_stanzas_total"] = "counter",
            ["connmgr_upstream_links"] = "gauge",
        }));
        Assert.That(text.Help.Keys, Is.EquivalentTo(text.Types.Keys));
        Assert.That(text.Help.Values, Has.All.Not.Empty);
        Assert.That(text.Rows.Where(r => r.Name == "connmgr_client_connections"), Has.Exactly(8).Items);
    }

    [Test]
    public void Values_follow_the_calls()
    {
        _metrics.ConnectionOpened(ClientTransport.Tcp);
        _metrics.ConnectionOpened(ClientTransport.Tcp);
        _metrics.ConnectionOpened(ClientTransport.WebSocket);
        _metrics.ConnectionEstablished(ClientTransport.Tcp);
        _metrics.ConnectionClosed(ClientTransport.Tcp, ClientConnectionState.Negotiating, "timeout");
        _metrics.ConnectionClosed(ClientTransport.Tcp, ClientConnectionState.Established, "client_closed");
        _metrics.ConnectionClosed(ClientTransport.WebSocket, ClientConnectionState.Negotiating, "timeout");
        _metrics.LoginSucceeded();
        _metrics.LoginFailed();
        _metrics.LoginFailed();
        _metrics.StanzaReceived();
        _metrics.StanzaSent();
        _metrics.StanzaSent();
        _metrics.BytesReceived(100);
        _metrics.BytesSent(250);
        _metrics.PendingOutputChanged(4096);
        _metrics.PendingOutputChanged(-1024);
        _metrics.UpstreamLinkUp();
        _metrics.UpstreamLinkUp();
        _metrics.UpstreamLinkDown();
        _metrics.ConnectionOpened(ClientTransport.Bosh);
        _metrics.ConnectionEstablished(ClientTransport.Bosh);

        Dictionary<string, double> samples = PrometheusText.Parse(_exporter.Render()).Samples;
        Assert.Multiple(() =>
        {
            Assert.That(samples["connmgr_client_connections{state=\"negotiating\",transport=\"tcp\"}"], Is.EqualTo(0));
            Assert.That(samples["connmgr_client_connections{state=\"established\",transport=\"tcp\"}"], Is.EqualTo(0));
            Assert.That(samples["connmgr_client_connections{state=\"negotiating\",transport=\"websocket\"}"], Is.EqualTo(0));
            Assert.That(samples["connmgr_client_connections{state=\"established\",transport=\"bosh\"}"], Is.EqualTo(1));
            Assert.That(samples["connmgr_client_closes_total{reason=\"timeout\"}"], Is.EqualTo(2));
            Assert.That(samples["connmgr_client_closes_total{reason=\"client_closed\"}"], Is.EqualTo(1));
            Assert.That(samples["connmgr_client_logins_total"], Is.EqualTo(1));
            Assert.That(samples["connmgr_client_login_failures_total"], Is.EqualTo(2));
            Assert.That(samples["connmgr_client_stanzas_total{direction=\"in\"}"], Is.EqualTo(1));
            Assert.That(samples["connmgr_client_stanzas_total{direction=\"out\"}"], Is.EqualTo(2));
            Assert.That(samples["connmgr_client_bytes_total{direction=\"in\"}"], Is.EqualTo(100));
            Assert.That(samples["connmgr_client_bytes_total{direction=\"out\"}"], Is.EqualTo(250));
            Assert.That(samples["connmgr_client_pending_output_bytes"], Is.EqualTo(3072));
            Assert.That(samples["connmgr_upstream_links"], Is.EqualTo(1));
        });
    }

    [Test]
    public void Label_values_and_help_are_escaped()
    {
        const string Awkward = "back\\slash \"quoted\"\nnext line";
        Counter<long> counter = _metrics.Meter.CreateCounter<long>("connmgr.test.escapes", description: "Help with \\ and\na newline.");
        counter.Add(3, new KeyValuePair<string, object?>("path", Awkward));

        string rendered = _exporter.Render();
        Assert.That(rendered, Does.Contain("connmgr_test_escapes_total{path=\"back\\\\slash \\\"quoted\\\"\\nnext line\"} 3\n"));
        Assert.That(rendered, Does.Contain("# HELP connmgr_test_escapes_total Help with \\\\ and\\na newline.\n"));
        PrometheusText text = PrometheusText.Parse(rendered);
        Assert.That(text.Rows.Single(r => r.Name == "connmgr_test_escapes_total").Labels["path"], Is.EqualTo(Awkward));
        Assert.That(text.Help["connmgr_test_escapes_total"], Is.EqualTo("Help with \\ and\na newline."));
    }

    [Test]
    public void Instruments_added_by_other_components_are_exported_by_kind()
    {
        Counter<long> counter = _metrics.Meter.CreateCounter<long>("connmgr.core.messages_stored");
        UpDownCounter<int> sessions = _metrics.Meter.CreateUpDownCounter<int>("connmgr.core.sessions");
        Gauge<double> ratio = _metrics.Meter.CreateGauge<double>("connmgr.core.cache.hit-ratio");
        Histogram<double> latency = _metrics.Meter.CreateHistogram<double>("connmgr.core.latency");
        counter.Add(2, new KeyValuePair<string, object?>("server.address", "a"), new KeyValuePair<string, object?>("kind", 1));
        counter.Add(5, new KeyValuePair<string, object?>("kind", 1), new KeyValuePair<string, object?>("server.address", "a"));
        counter.Add(1, new KeyValuePair<string, object?>("kind", 2), new KeyValuePair<string, object?>("server.address", "a"));
        sessions.Add(4);
        sessions.Add(-1);
        ratio.Record(0.25);
        ratio.Record(0.5);
        latency.Record(1.5);

        PrometheusText text = PrometheusText.Parse(_exporter.Render());
        Assert.Multiple(() =>
        {
            Assert.That(text.Samples["connmgr_core_messages_stored_total{kind=\"1\",server_address=\"a\"}"], Is.EqualTo(7), "same label set in another order");
            Assert.That(text.Samples["connmgr_core_messages_stored_total{kind=\"2\",server_address=\"a\"}"], Is.EqualTo(1));
            Assert.That(text.Types["connmgr_core_sessions"], Is.EqualTo("gauge"));
            Assert.That(text.Samples["connmgr_core_sessions"], Is.EqualTo(3));
            Assert.That(text.Samples["connmgr_core_cache_hit_ratio"], Is.EqualTo(0.5));
            Assert.That(text.Types.Keys, Has.None.Contains("latency"));
        });
    }

    [Test]
    public void Special_values_are_written_as_the_format_spells_them()
    {
        Gauge<double> gauge = _metrics.Meter.CreateGauge<double>("connmgr.test.special");
        gauge.Record(double.PositiveInfinity, new KeyValuePair<string, object?>("v", "pinf"));
        gauge.Record(double.NegativeInfinity, new KeyValuePair<string, object?>("v", "ninf"));
        gauge.Record(double.NaN, new KeyValuePair<string, object?>("v", "nan"));
        gauge.Record(1e21, new KeyValuePair<string, object?>("v", "big"));

        string rendered = _exporter.Render();
        Assert.That(rendered, Does.Contain("connmgr_test_special{v=\"pinf\"} +Inf\n"));
        Assert.That(rendered, Does.Contain("connmgr_test_special{v=\"ninf\"} -Inf\n"));
        Assert.That(rendered, Does.Contain("connmgr_test_special{v=\"nan\"} NaN\n"));
        Assert.That(PrometheusText.Parse(rendered).Samples["connmgr_test_special{v=\"big\"}"], Is.EqualTo(1e21));
    }

    [Test]
    public void Close_reasons_are_bounded()
    {
        for (int i = 0; i < ConnMgrMetrics.MaxCloseReasons + 10; i++)
        {
            _metrics.ConnectionOpened(ClientTransport.Tcp);
            _metrics.ConnectionClosed(ClientTransport.Tcp, ClientConnectionState.Negotiating, "reason" + i);
        }
        var closes = PrometheusText.Parse(_exporter.Render()).Rows.Where(r => r.Name == "connmgr_client_closes_total").ToList();
        Assert.That(closes, Has.Count.LessThanOrEqualTo(ConnMgrMetrics.MaxCloseReasons + 1));
        Assert.That(closes.Sum(r => r.Value), Is.EqualTo(ConnMgrMetrics.MaxCloseReasons + 10));
        Assert.That(closes.Single(r => r.Labels["reason"] == ConnMgrMetrics.OtherReason).Value, Is.GreaterThan(0));
    }

    [Test]
    public void Only_its_own_meter_is_exported()
    {
        using var otherServices = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var other = new ConnMgrMetrics(otherServices.GetRequiredService<IMeterFactory>());
        other.LoginSucceeded();
        other.Meter.CreateCounter<long>("connmgr.other.only").Add(1);

        PrometheusText text = PrometheusText.Parse(_exporter.Render());
        Assert.That(text.Samples["connmgr_client_logins_total"], Is.EqualTo(0));
        Assert.That(text.Types.Keys, Has.None.EqualTo("connmgr_other_only_total"));
    }

    [TestCase("connmgr.client.bytes", "connmgr_client_bytes")]
    [TestCase("a-b/c d", "a_b_c_d")]
    [TestCase("9lives", "_9lives")]
    [TestCase("ns:metric", "ns:metric")]
    public void Names_are_mapped_to_the_allowed_characters(string instrument, string expected)
    {
        Assert.That(PrometheusExporter.MetricName(instrument), Is.EqualTo(expected));
    }

    [TestCase("server.address", "server_address")]
    [TestCase("__reserved", "tag__reserved")]
    [TestCase("a:b", "a_b")]
    public void Label_names_are_mapped_to_the_allowed_characters(string tag, string expected)
    {
        Assert.That(PrometheusExporter.LabelName(tag), Is.EqualTo(expected));
    }

    [Test]
    public void Observable_series_no_longer_reported_disappear()
    {
        var reported = new List<Measurement<long>> { new(1, new KeyValuePair<string, object?>("peer", "a")), new(2, new KeyValuePair<string, object?>("peer", "b")) };
        _metrics.Meter.CreateObservableGauge("connmgr.test.peers", () => reported.ToArray());

        Assert.That(PrometheusText.Parse(_exporter.Render()).Rows.Count(r => r.Name == "connmgr_test_peers"), Is.EqualTo(2));
        reported.RemoveAt(0);
        Assert.That(PrometheusText.Parse(_exporter.Render()).Rows.Where(r => r.Name == "connmgr_test_peers").Select(r => r.Labels["peer"]),
            Is.EqualTo(new[] { "b" }));
    }
}
