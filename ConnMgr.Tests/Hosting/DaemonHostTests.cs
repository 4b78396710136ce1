using System.Net;
using System.Security.Cryptography.X509Certificates;
using ConnMgr.Diagnostics;
using ConnMgr.Hosting;
using ConnMgr.Http;
using ConnMgr.Tests.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NUnit.Framework;

namespace ConnMgr.Tests.Hosting;

public class DaemonHostTests
{
    private static readonly HttpClient s_http = new() { Timeout = TimeSpan.FromSeconds(30) };

    [Test]
    public async Task Health_is_503_without_an_upstream_link()
    {
        // No core here, and nothing listens on port 1: the edge has no link.
        await using TestDaemon daemon = await TestDaemon.StartAsync(["--Core:Enabled=false", "--Upstream:Secret=s3cret", "--Upstream:Port=1"]);
        using HttpResponseMessage response = await s_http.GetAsync(Url(daemon, "/health"));
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
        Assert.That(await response.Content.ReadAsStringAsync(), Is.EqualTo("no upstream link\n"));
    }

    [Test]
    public async Task Health_is_200_ok_while_a_link_is_up()
    {
        var upstream = new FakeUpstreamHealth { LinksUp = 1 };
        await using TestDaemon daemon = await TestDaemon.StartAsync(extra: (services, _) => services.AddSingleton<IUpstreamHealth>(upstream));

        using (HttpResponseMessage up = await s_http.GetAsync(Url(daemon, "/health")))
        {
            Assert.That(up.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(up.Content.Headers.ContentType?.MediaType, Is.EqualTo("text/plain"));
            Assert.That((await up.Content.ReadAsStringAsync()).Trim(), Is.EqualTo("ok"));
        }
        upstream.LinksUp = 0;
        using HttpResponseMessage down = await s_http.GetAsync(Url(daemon, "/health"));
        Assert.That(down.StatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
    }

    [Test]
    public async Task Metrics_are_served_in_the_prometheus_text_format()
    {
        // No upstream link, so that the link gauge is only what the test sets.
        await using TestDaemon daemon = await TestDaemon.StartAsync(["--Core:Enabled=false", "--Upstream:Secret=s3cret", "--Upstream:Port=1"]);
        ConnMgrMetrics metrics = daemon.Get<ConnMgrMetrics>();
        metrics.LoginSucceeded();
        metrics.LoginSucceeded();
        metrics.UpstreamLinkUp();

        using HttpResponseMessage response = await s_http.GetAsync(Url(daemon, "/metrics"));
        string body = await response.Content.ReadAsStringAsync();

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(response.Content.Headers.ContentType?.ToString(), Is.EqualTo("text/plain; version=0.0.4; charset=utf-8"));
        PrometheusText parsed = PrometheusText.Parse(body);
        Assert.That(parsed.Samples["connmgr_client_logins_total"], Is.EqualTo(2));
        Assert.That(parsed.Samples["connmgr_upstream_links"], Is.EqualTo(1));
    }

    [Test]
    public async Task Unknown_path_is_404()
    {
        await using TestDaemon daemon = await TestDaemon.StartAsync();
        using HttpResponseMessage response = await s_http.GetAsync(Url(daemon, "/nothing-here"));
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
    }

    [Test]
    public async Task Another_component_can_add_routes()
    {
        await using TestDaemon daemon = await TestDaemon.StartAsync(extra: (services, _) =>
            services.AddSingleton<IHttpEndpointContributor, HelloEndpoint>());
        using HttpResponseMessage response = await s_http.GetAsync(Url(daemon, "/hello"));
        Assert.That(await response.Content.ReadAsStringAsync(), Is.EqualTo("hello from a contributor"));
    }

    [Test]
    public async Task Oversized_request_head_is_refused()
    {
        await using TestDaemon daemon = await TestDaemon.StartAsync();
        using var request = new HttpRequestMessage(HttpMethod.Get, Url(daemon, "/health"));
        request.Headers.Add("X-Padding", new string('a', 20 * 1024));
        using HttpResponseMessage response = await s_http.SendAsync(request);
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.RequestHeaderFieldsTooLarge));
    }

    [Test]
    public async Task Http_port_0_means_no_listener()
    {
        await using TestDaemon daemon = await TestDaemon.StartAsync(["--Edge:HttpPort=0"]);
        await daemon.Get<ReadinessGate>().Ready.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.That(daemon.Get<ListenerEndpoints>().TryGet(HttpEndpointService.ListenerKey, out _), Is.False);
        Assert.That(daemon.Get<ListenerEndpoints>().All.Select(pair => pair.Key), Is.EqualTo(new[] { "Core:Port", "Edge:ClientPort", "Edge:DirectTlsPort" }));
    }

    [Test]
    public async Task Https_port_serves_the_same_routes_with_the_edges_certificate()
    {
        await using TestDaemon daemon = await TestDaemon.StartAsync(["--Edge:HttpsPort=5281"]);
        await daemon.Get<ReadinessGate>().Ready.WaitAsync(TimeSpan.FromSeconds(30));
        X509Certificate2? presented = null;
        using var handler = new SocketsHttpHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, _) =>
        {
            presented = certificate is null ? null : X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
            return true;
        };
        using var https = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(30) };

        using HttpResponseMessage hostMeta = await https.GetAsync($"https://localhost:{daemon.Endpoint(HttpEndpointService.HttpsListenerKey).Port}/.well-known/host-meta");
        string body = await hostMeta.Content.ReadAsStringAsync();

        Assert.Multiple(() =>
        {
            Assert.That(hostMeta.StatusCode, Is.EqualTo(HttpStatusCode.OK), body);
            Assert.That(body, Does.Contain("wss://").And.Contain("/xmpp-websocket"), "links for a browser on HTTPS are secure");
            Assert.That(presented?.GetNameInfo(X509NameType.DnsName, false), Is.EqualTo("localhost"), "the XMPP certificate for Xmpp:Domain");
            Assert.That(daemon.Get<ListenerEndpoints>().TryGet(HttpEndpointService.ListenerKey, out _), Is.True, "plain HTTP stays on");
        });
    }

    [Test]
    public async Task Https_port_is_off_by_default()
    {
        await using TestDaemon daemon = await TestDaemon.StartAsync();
        await daemon.Get<ReadinessGate>().Ready.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.That(daemon.Get<ListenerEndpoints>().TryGet(HttpEndpointService.HttpsListenerKey, out _), Is.False);
    }

    [Test]
    public async Task Http_listener_is_off_when_the_edge_is()
    {
        await using TestDaemon daemon = await TestDaemon.StartAsync(["--Edge:Enabled=false"]);
        Assert.That(daemon.Get<ListenerEndpoints>().TryGet(HttpEndpointService.ListenerKey, out _), Is.False);
    }

    [Test]
    public async Task Ready_waits_for_every_registered_listener()
    {
        var slow = new SlowListener();
        await using TestDaemon daemon = await TestDaemon.StartAsync(extra: (services, _) =>
            services.AddHostedService(provider => slow.Attach(provider.GetRequiredService<ReadinessGate>())));
        ReadinessGate gate = daemon.Get<ReadinessGate>();

        // The edge's client listeners open once it has linked to the embedded core.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (gate.Pending.Count > 1 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }
        Assert.That(gate.Ready.IsCompleted, Is.False);
        Assert.That(gate.Pending, Is.EqualTo(new[] { "slow listener" }));

        slow.Open();
        await gate.Ready.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.That(gate.Pending, Is.Empty);
        Assert.That(gate.DescribeListeners(), Does.Contain("Edge:HttpPort 127.0.0.1:"));
        Assert.Throws<InvalidOperationException>(() => gate.Register("too late"));
    }

    [Test]
    public async Task Host_stops_within_its_shutdown_timeout_setting()
    {
        await using TestDaemon daemon = await TestDaemon.StartAsync(["--Edge:ShutdownDrainSeconds=7"]);
        var options = daemon.Get<Microsoft.Extensions.Options.IOptions<HostOptions>>().Value;
        Assert.That(options.ShutdownTimeout, Is.EqualTo(TimeSpan.FromSeconds(12)));
    }

    [Test]
    public async Task Listener_is_closed_after_stop()
    {
        TestDaemon daemon = await TestDaemon.StartAsync();
        Uri url = Url(daemon, "/health");
        await daemon.DisposeAsync();
        Assert.ThrowsAsync<HttpRequestException>(() => s_http.GetAsync(url));
    }

    private static Uri Url(TestDaemon daemon, string path) =>
        new($"http://{daemon.Endpoint(HttpEndpointService.ListenerKey)}{path}");

    private sealed class FakeUpstreamHealth : IUpstreamHealth
    {
        public int LinksUp { get; set; }
    }

    private sealed class HelloEndpoint : IHttpEndpointContributor
    {
        public void Configure(WebApplication app) =>
            app.MapGet("/hello", context => context.Response.WriteAsync("hello from a contributor"));
    }

    private sealed class SlowListener : IHostedService
    {
        private ReadinessGate? _gate;
        private ReadinessToken? _token;

        public SlowListener Attach(ReadinessGate gate)
        {
            _gate = gate;
            return this;
        }

        public void Open() => _token!.SetReady();

        public Task StartAsync(CancellationToken cancellationToken)
        {
            _token = _gate!.Register("slow listener");
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
