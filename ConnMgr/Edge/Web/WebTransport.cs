using System.Collections.Concurrent;
using System.Net;
using System.Net.WebSockets;
using ConnMgr.Edge.Streams;
using ConnMgr.Edge.Transport;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Primitives;
using MetricsTransport = ConnMgr.Diagnostics.ClientTransport;

namespace ConnMgr.Edge.Web;

/// <summary>
/// The web transports on the HTTP listener: XMPP over WebSocket at <c>/xmpp-websocket</c>
/// (RFC 7395). Each session runs the edge's one <see cref="ClientStream"/> state machine over a
/// <see cref="WebStreamConnection"/>; this class admits requests (origin, address, <c>Edge:MaxConnections</c>) and visits every
/// session once a second from one heartbeat, as the TCP transport visits its connections.
/// </summary>
internal sealed class WebTransport : IHeartbeatHandler, IAsyncDisposable
{
    public const string WebSocketPath = "/xmpp-websocket";

    public const string BoshPath = "/http-bind";

    /// <summary>RFC 7395 3.1: the WebSocket subprotocol of XMPP.</summary>
    public const string SubProtocol = "xmpp";

    private readonly Func<ClientStreamHandler?> _streams;
    private readonly ILogger _logger;
    private readonly CancellationToken _stopping;
    private readonly ConcurrentDictionary<long, WebStreamConnection> _sessions = new();
    private readonly Heartbeat _heartbeat;
    private readonly BoshEndpoint _bosh;
    private readonly ConnectionSlots? _slots;

    /// <param name="streams">The edge's stream layer; null until the edge has started (requests then get 503).</param>
    /// <param name="stopping">Fires when the daemon stops: every web stream then says system-shutdown.</param>
    /// <param name="slots"><c>Edge:MaxConnections</c>, shared with the TCP transport; null for no cap.</param>
    public WebTransport(WebSettings settings, Func<ClientStreamHandler?> streams, ILoggerFactory loggerFactory, CancellationToken stopping, ConnectionSlots? slots = null)
    {
        settings.Validate();
        Settings = settings;
        _streams = streams;
        _slots = slots;
        _logger = loggerFactory.CreateLogger<WebTransport>();
        _stopping = stopping;
        _bosh = new BoshEndpoint(this, _logger);
        _heartbeat = new Heartbeat(loggerFactory.CreateLogger<Heartbeat>());
        _heartbeat.Register(this);
        _heartbeat.Start();
    }

    public WebSettings Settings { get; }

    /// <summary>Web sessions open now (tests, diagnostics).</summary>
    public int SessionCount => _sessions.Count;

    /// <summary>BOSH sessions known by their <c>sid</c> (tests, diagnostics).</summary>
    public int BoshSessionCount => _bosh.SessionCount;

    /// <summary>Adds the routes and the WebSocket middleware to the HTTP listener.</summary>
    public void Map(WebApplication app)
    {
        // No keep-alive pings: ManagedWebSocket would arm a timer per socket; the stream layer pings idle clients.
        app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.Zero });
        app.Map(WebSocketPath, AcceptWebSocketAsync);
        app.Map(BoshPath, HandleBoshAsync);
        app.MapGet("/.well-known/host-meta", context => WriteHostMetaAsync(context, json: false));
        app.MapGet("/.well-known/host-meta.json", context => WriteHostMetaAsync(context, json: true));
    }

    public void OnHeartbeat(long timestamp)
    {
        foreach (var session in _sessions)
        {
            session.Value.OnHeartbeat(timestamp);
        }
        _bosh.OnHeartbeat(timestamp);
    }

    /// <summary>After the daemon's stopping token: BOSH streams get their heartbeat until they end, then the heartbeat stops.</summary>
    public async ValueTask DisposeAsync()
    {
        await _bosh.StopAsync(Settings.CloseTimeout);
        await _heartbeat.DisposeAsync();
    }

    private async Task AcceptWebSocketAsync(HttpContext context)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            await RespondAsync(context, StatusCodes.Status426UpgradeRequired, "XMPP over WebSocket (RFC 7395): send a WebSocket upgrade with the xmpp subprotocol\n");
            return;
        }
        if (!context.WebSockets.WebSocketRequestedProtocols.Contains(SubProtocol))
        {
            // RFC 7395 3.1: without the subprotocol there is no agreement on what the messages are.
            await RespondAsync(context, StatusCodes.Status400BadRequest, "the xmpp WebSocket subprotocol is required (RFC 7395 3.1)\n");
            return;
        }
        if (!Admit(context, out var handler))
        {
            return;
        }
        if (!TryTakeSlot())
        {
            // Before the upgrade there is no XMPP stream to carry an error: HTTP's own answer for a full server.
            context.Response.Headers.RetryAfter = "30";
            await RespondAsync(context, StatusCodes.Status503ServiceUnavailable, "too many connections (Edge:MaxConnections)\n");
            return;
        }
        WebSocket socket;
        Task run;
        try
        {
            socket = await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext { SubProtocol = SubProtocol, KeepAliveInterval = TimeSpan.Zero });
            var connection = CreateConnection(context, MetricsTransport.WebSocket, _ => socket.Abort());
            var stream = new ClientStream(handler, connection);
            connection.Stream = stream;
            run = RunAsync(connection, new WebSocketSession(socket, connection, stream, Settings, _logger).RunAsync(_stopping));
        }
        catch
        {
            // RunAsync returns the slot once it runs; before that, a failure returns it here.
            _slots?.Return();
            throw;
        }
        await run;
        socket.Dispose();
    }

    /// <summary>
    /// BOSH requests. Browsers post them from the page's origin with <c>text/xml</c>, which needs
    /// a CORS preflight: allowed origins get their answer, and the origin check applies as for
    /// WebSocket.
    /// </summary>
    private Task HandleBoshAsync(HttpContext context)
    {
        var origin = context.Request.Headers.Origin;
        if (!StringValues.IsNullOrEmpty(origin) && (Settings.AllowedOrigins.Count == 0 || IsAllowed(origin.ToString())))
        {
            context.Response.Headers.AccessControlAllowOrigin = origin;
            context.Response.Headers.Vary = "Origin";
        }
        if (HttpMethods.IsOptions(context.Request.Method))
        {
            context.Response.Headers.AccessControlAllowMethods = "POST, OPTIONS";
            context.Response.Headers.AccessControlAllowHeaders = "Content-Type";
            context.Response.Headers.AccessControlMaxAge = "86400";
            return Task.CompletedTask;
        }
        return _bosh.HandleAsync(context);
    }

    /// <summary>
    /// A new BOSH session's stream, admitted as a WebSocket's is; false when the request was answered
    /// with a refusal, or (<paramref name="atCapacity"/>) is to be answered with the cap's.
    /// </summary>
    internal bool TryCreateBoshSession(HttpContext context, long rid, TimeSpan wait, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out BoshSession? session, out bool atCapacity)
    {
        session = null;
        atCapacity = false;
        if (!Admit(context, out var handler))
        {
            return false;
        }
        if (!TryTakeSlot())
        {
            atCapacity = true;
            return false;
        }
        try
        {
            ClientStream? stream = null;
            // Cutting a BOSH session means ending its stream: there is no socket of its own to reset.
            var connection = CreateConnection(context, MetricsTransport.Bosh,
                reason => stream?.RequestClose(new CloseRequest(Protocol.Xml.StreamErrorCondition.None, reason, null, writeStreamEnd: false)));
            stream = new ClientStream(handler, connection);
            connection.Stream = stream;
            session = new BoshSession(BoshSession.NewSid(), rid, wait, Settings, connection, stream);
            session.Start(_stopping);
            session.Lifetime = RunAsync(connection, session.Completion, release: false);
            return true;
        }
        catch
        {
            // As for a WebSocket: the slot is RunAsync's to return once it runs.
            _slots?.Return();
            throw;
        }
    }

    private async Task RunAsync(WebStreamConnection connection, Task session, bool release = true)
    {
        _sessions[connection.Id] = connection;
        WebLog.Opened(_logger, connection.Id, connection.MetricsTransport.ToString(), connection.RemoteEndPoint.Address);
        try
        {
            await session;
        }
        catch (Exception e)
        {
            WebLog.SessionFailed(_logger, e, connection.Id);
            connection.Abort(CloseReason.InternalError);
        }
        finally
        {
            _sessions.TryRemove(connection.Id, out _);
            _slots?.Return();
            // A BOSH session's pipes stay readable for the request that carries its last words.
            if (release)
            {
                connection.Release();
            }
            WebLog.Closed(_logger, connection.Id, connection.CloseReason);
        }
    }

    /// <summary>
    /// A slot of <c>Edge:MaxConnections</c> for a new WebSocket or BOSH session: RunAsync returns it when the
    /// session ends, and the set-up between here and RunAsync returns it if it fails.
    /// </summary>
    private bool TryTakeSlot()
    {
        if (_slots is null || _slots.TryTake())
        {
            return true;
        }
        WebLog.Refused(_logger);
        _slots.Refused(_logger);
        return false;
    }

    /// <summary>The origin check, and the stream layer's presence; answers the request itself when it says no.</summary>
    private bool Admit(HttpContext context, out ClientStreamHandler handler)
    {
        handler = null!;
        var origin = context.Request.Headers.Origin;
        if (Settings.AllowedOrigins.Count > 0 && !StringValues.IsNullOrEmpty(origin) && !IsAllowed(origin.ToString()))
        {
            WebLog.OriginRefused(_logger, origin.ToString());
            context.Response.StatusCode = StatusCodes.Status403Forbidden;
            return false;
        }
        if (_streams() is not { } streams || _stopping.IsCancellationRequested)
        {
            context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            return false;
        }
        handler = streams;
        return true;
    }

    private bool IsAllowed(string origin)
    {
        foreach (var allowed in Settings.AllowedOrigins)
        {
            if (string.Equals(allowed, origin, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>
    /// The client's address and whether its session counts as encrypted (design.md): HTTPS, a
    /// peer on loopback (a TLS-terminating proxy on this host, whose <c>X-Forwarded-For</c> then
    /// names the client), or any peer when the operator says so.
    /// </summary>
    private WebStreamConnection CreateConnection(HttpContext context, MetricsTransport transport, Action<CloseReason> abort)
    {
        var peer = Normalize(context.Connection.RemoteIpAddress ?? IPAddress.Loopback);
        var loopback = IPAddress.IsLoopback(peer);
        var client = loopback && LastForwarded(context.Request.Headers["X-Forwarded-For"]) is { } forwarded ? forwarded : peer;
        var secure = context.Request.IsHttps || loopback || Settings.TrustAllAsSecure;
        return new WebStreamConnection(Settings, new IPEndPoint(client, context.Connection.RemotePort), secure, transport, abort);
    }

    /// <summary>The address the nearest proxy added: the last entry (earlier ones are the client's word).</summary>
    private static IPAddress? LastForwarded(StringValues header)
    {
        if (StringValues.IsNullOrEmpty(header))
        {
            return null;
        }
        var value = header[header.Count - 1].AsSpan();
        var comma = value.LastIndexOf(',');
        return IPAddress.TryParse(value[(comma + 1)..].Trim(), out var address) ? Normalize(address) : null;
    }

    private static IPAddress Normalize(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;

    /// <summary>
    /// XEP-0156 section 3: where this server's web transports are, as the client reached it
    /// (its <c>Host</c>; <c>wss</c>/<c>https</c> over HTTPS or behind a local TLS proxy that says
    /// <c>X-Forwarded-Proto: https</c>). Browsers fetch it from other origins: CORS allows any.
    /// </summary>
    private static Task WriteHostMetaAsync(HttpContext context, bool json)
    {
        var request = context.Request;
        var peer = context.Connection.RemoteIpAddress;
        var secure = request.IsHttps || (peer is not null && IPAddress.IsLoopback(Normalize(peer))
            && string.Equals(request.Headers["X-Forwarded-Proto"].ToString(), "https", StringComparison.OrdinalIgnoreCase));
        var host = request.Host.HasValue ? request.Host.Value : "localhost";
        var webSocket = $"{(secure ? "wss" : "ws")}://{host}{WebSocketPath}";
        var bosh = $"{(secure ? "https" : "http")}://{host}{BoshPath}";
        context.Response.Headers.AccessControlAllowOrigin = "*";
        if (json)
        {
            context.Response.ContentType = "application/json";
            return context.Response.WriteAsync(System.Text.Json.JsonSerializer.Serialize(new HostMeta(
            [
                new HostMetaLink("urn:xmpp:alt-connections:websocket", webSocket),
                new HostMetaLink("urn:xmpp:alt-connections:xbosh", bosh),
            ]), HostMetaJsonContext.Default.HostMeta), context.RequestAborted);
        }
        context.Response.ContentType = "application/xrd+xml; charset=utf-8";
        return context.Response.WriteAsync(
            "<?xml version='1.0' encoding='utf-8'?>\n<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n"
            + $"  <Link rel='urn:xmpp:alt-connections:websocket' href='{Protocol.Xml.XmlEscaping.EscapeAttribute(webSocket)}'/>\n"
            + $"  <Link rel='urn:xmpp:alt-connections:xbosh' href='{Protocol.Xml.XmlEscaping.EscapeAttribute(bosh)}'/>\n"
            + "</XRD>\n", context.RequestAborted);
    }

    private static Task RespondAsync(HttpContext context, int status, string text)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/plain; charset=utf-8";
        return context.Response.WriteAsync(text, context.RequestAborted);
    }
}

/// <summary>XEP-0156 section 3.3: the JSON form of host-meta (RFC 6415 JRD).</summary>
internal sealed record HostMeta([property: System.Text.Json.Serialization.JsonPropertyName("links")] IReadOnlyList<HostMetaLink> Links);

internal sealed record HostMetaLink(
    [property: System.Text.Json.Serialization.JsonPropertyName("rel")] string Rel,
    [property: System.Text.Json.Serialization.JsonPropertyName("href")] string Href);

[System.Text.Json.Serialization.JsonSerializable(typeof(HostMeta))]
internal sealed partial class HostMetaJsonContext : System.Text.Json.Serialization.JsonSerializerContext;
