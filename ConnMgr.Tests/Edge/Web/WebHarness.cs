using System.Net;
using System.Net.WebSockets;
using System.Text;
using ConnMgr.Edge.Streams;
using ConnMgr.Edge.Transport;
using ConnMgr.Edge.Web;
using ConnMgr.Tests.EndToEnd;
using ConnMgr.Tests.OpenfireDouble;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using NUnit.Framework;

namespace ConnMgr.Tests.Edge.Web;

/// <summary>
/// The edge (<see cref="EdgeHarness"/>: pool, stream layer, TCP transport, Openfire double) with the
/// web transport on a Kestrel listener on loopback, as the daemon's HTTP listener carries it.
/// </summary>
internal sealed class WebHarness : IAsyncDisposable
{
    private readonly CancellationTokenSource _stopping;

    private WebHarness(EdgeHarness edge, WebApplication app, WebTransport web, Uri baseUri, CancellationTokenSource stopping)
    {
        _stopping = stopping;
        Edge = edge;
        App = app;
        Web = web;
        BaseUri = baseUri;
    }

    public EdgeHarness Edge { get; }

    public WebApplication App { get; }

    public WebTransport Web { get; }

    public Uri BaseUri { get; }

    public Uri WebSocketUri => new($"ws://{BaseUri.Authority}{WebTransport.WebSocketPath}");

    /// <param name="transport">The TCP transport's settings; its <c>MaxConnections</c> caps the web sessions too, as in the daemon.</param>
    public static async Task<WebHarness> StartAsync(
        Func<StreamSettings, StreamSettings>? streams = null,
        Func<WebSettings, WebSettings>? web = null,
        OpenfireDoubleOptions? server = null,
        Func<TransportSettings, TransportSettings>? transport = null)
    {
        var edge = await EdgeHarness.StartAsync(server, streams, transport);
        var settings = new WebSettings { Domain = edge.Domain, MaxStanzaBytes = edge.Streams.Settings.MaxStanzaBytes };
        settings = web?.Invoke(settings) ?? settings;
        var stopping = new CancellationTokenSource();
        var webTransport = new WebTransport(settings, () => edge.Streams, new ProgressLoggerFactory(), stopping.Token, edge.Transport.Slots);

        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.Services.AddSingleton<ILoggerFactory>(NullLoggerFactory.Instance);
        builder.Services.AddRoutingCore();
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        webTransport.Map(app);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new WebHarness(edge, app, webTransport, new Uri(address), stopping);
    }

    /// <summary>A WebSocket client with the xmpp subprotocol (RFC 7395 3.1).</summary>
    public async Task<WsClient> ConnectAsync(Action<ClientWebSocketOptions>? configure = null)
    {
        var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol(WebTransport.SubProtocol);
        configure?.Invoke(socket.Options);
        await socket.ConnectAsync(WebSocketUri, CancellationToken.None).WaitAsync(XmppTestClient.Timeout);
        Assert.That(socket.SubProtocol, Is.EqualTo("xmpp"));
        return new WsClient(socket, Edge.Domain);
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        await App.StopAsync();
        await App.DisposeAsync();
        await Web.DisposeAsync();
        await Edge.DisposeAsync();
        _stopping.Dispose();
    }
}

/// <summary>An RFC 7395 client: one element per text message.</summary>
internal sealed class WsClient(ClientWebSocket socket, string domain) : IAsyncDisposable
{
    public const string Framing = "urn:ietf:params:xml:ns:xmpp-framing";

    public ClientWebSocket Socket { get; } = socket;

    public string? StreamId { get; private set; }

    public string? Jid { get; private set; }

    public string Open(string? to = null) => $"<open xmlns='{Framing}' to='{to ?? domain}' version='1.0'/>";

    public Task SendAsync(string text) => SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text);

    public async Task SendAsync(byte[] bytes, WebSocketMessageType type)
        => await Socket.SendAsync(bytes, type, endOfMessage: true, CancellationToken.None).WaitAsync(XmppTestClient.Timeout);

    /// <summary>The next message, or null once the server closed the WebSocket.</summary>
    public async Task<string?> NextAsync()
    {
        var buffer = new byte[64 * 1024];
        var message = new MemoryStream();
        while (true)
        {
            WebSocketReceiveResult result;
            try
            {
                result = await Socket.ReceiveAsync(buffer, CancellationToken.None).WaitAsync(XmppTestClient.Timeout);
            }
            catch (WebSocketException)
            {
                return null;
            }
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return null;
            }
            message.Write(buffer, 0, result.Count);
            if (result.EndOfMessage)
            {
                return Encoding.UTF8.GetString(message.ToArray());
            }
        }
    }

    public async Task<string> ExpectAsync(string? startsWith = null)
    {
        var message = await NextAsync();
        Assert.That(message, Is.Not.Null, $"the server closed instead of sending {startsWith ?? "a message"}");
        if (startsWith is not null)
        {
            Assert.That(message, Does.StartWith(startsWith));
        }
        return message!;
    }

    public async Task<List<string>> ReadToEndAsync()
    {
        var messages = new List<string>();
        while (await NextAsync() is { } message)
        {
            messages.Add(message);
        }
        return messages;
    }

    /// <summary>The stream closed with this error: the error element, then <c>&lt;close/&gt;</c>, then the WebSocket close.</summary>
    public async Task<List<string>> ExpectStreamErrorAsync(string condition)
    {
        var messages = await ReadToEndAsync();
        var error = messages.FirstOrDefault(m => m.StartsWith("<stream:error", StringComparison.Ordinal));
        Assert.That(error, Does.StartWith($"<stream:error xmlns:stream='http://etherx.jabber.org/streams'><{condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"),
            "messages: " + string.Join(" | ", messages));
        Assert.That(messages[^1], Is.EqualTo($"<close xmlns='{Framing}'/>"));
        return messages;
    }

    /// <summary><c>&lt;open/&gt;</c> and its answer; returns the features.</summary>
    public async Task<string> OpenStreamAsync()
    {
        await SendAsync(Open());
        var open = await ExpectAsync("<open ");
        Assert.That(open, Does.Contain($"xmlns='{Framing}'").And.Contain($"from='{domain}'").And.Contain("version='1.0'"));
        StreamId = System.Text.RegularExpressions.Regex.Match(open, "id='([^']+)'").Groups[1].Value;
        return await ExpectAsync("<stream:features");
    }

    /// <summary>PLAIN, the restart and bind; <paramref name="features"/> when the stream is already open.</summary>
    public async Task<string> LoginAsync(string user, string resource = "web", string? features = null)
    {
        features ??= await OpenStreamAsync();
        Assert.That(features, Does.Contain("<mechanism>PLAIN</mechanism>"), "loopback counts as encrypted");
        var response = Convert.ToBase64String(Encoding.UTF8.GetBytes($"\0{user}\0secret"));
        await SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{response}</auth>");
        Assert.That(await ExpectAsync("<success"), Does.Contain("urn:ietf:params:xml:ns:xmpp-sasl"));
        Assert.That(await OpenStreamAsync(), Does.Contain("<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"));
        await SendAsync($"<iq xmlns='jabber:client' type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>");
        var result = await ExpectAsync("<iq");
        Jid = System.Text.RegularExpressions.Regex.Match(result, "<jid>([^<]+)</jid>").Groups[1].Value;
        Assert.That(Jid, Is.Not.Empty, result);
        return Jid;
    }

    public async Task<string> NextMessageAsync(string text)
    {
        while (true)
        {
            var message = await ExpectAsync();
            if (message.StartsWith("<message", StringComparison.Ordinal) && message.Contains(text, StringComparison.Ordinal))
            {
                return message;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        Socket.Abort();
        Socket.Dispose();
        await Task.CompletedTask;
    }
}

/// <summary>Writes warnings and errors to the test's progress output, where a failing test shows them.</summary>
internal sealed class ProgressLoggerFactory : ILoggerFactory, ILogger
{
    public void AddProvider(ILoggerProvider provider)
    {
    }

    public ILogger CreateLogger(string categoryName) => this;

    public void Dispose()
    {
    }

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (IsEnabled(logLevel))
        {
            TestContext.Progress.WriteLine($"[{logLevel}] {eventId.Id} {formatter(state, exception)} {exception}");
        }
    }
}
