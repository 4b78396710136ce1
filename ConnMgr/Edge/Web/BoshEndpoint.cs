using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ConnMgr.Edge.Streams;
using ConnMgr.Protocol.Xml;
using Microsoft.AspNetCore.Http;
using ConnMgr.Protocol;
using Microsoft.Extensions.Logging;

namespace ConnMgr.Edge.Web;

/// <summary>
/// <c>POST /http-bind</c>: BOSH (XEP-0124) carrying XMPP (XEP-0206). Parses the client's
/// <c>&lt;body/&gt;</c>, creates or finds its <see cref="BoshSession"/>, and writes the response.
/// Errors are terminal binding conditions (XEP-0124 17.2) in a <c>type='terminate'</c> body,
/// with HTTP 400 for a request that is not a body and 404 for an unknown session, as the legacy
/// clients of XEP-0124 17.3 also understand.
/// </summary>
internal sealed class BoshEndpoint(WebTransport transport, ILogger logger)
{
    public const string HttpBindNamespace = "http://jabber.org/protocol/httpbind";

    public const string XboshNamespace = "urn:xmpp:xbosh";

    private readonly ConcurrentDictionary<string, BoshSession> _sessions = new(StringComparer.Ordinal);

    public int SessionCount => _sessions.Count;

    public async Task HandleAsync(HttpContext context)
    {
        if (!HttpMethods.IsPost(context.Request.Method))
        {
            // XEP-0124 2: requests are POSTs; a GET is a person with a browser.
            context.Response.StatusCode = StatusCodes.Status405MethodNotAllowed;
            context.Response.Headers.Allow = "POST";
            return;
        }
        var limit = transport.Settings.MaxStanzaBytes + WebSettings.BoshWrapperBytes;
        var read = await ReadBodyAsync(context, limit);
        if (read is not { } body)
        {
            await TerminateAsync(context, StatusCodes.Status413RequestEntityTooLarge, "policy-violation");
            return;
        }
        try
        {
            await HandleBodyAsync(context, body.AsMemory());
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(body.Array!);
        }
    }

    private async Task HandleBodyAsync(HttpContext context, ReadOnlyMemory<byte> bytes)
    {
        if (!TryParse(bytes, out var request, out var sid, out var wait))
        {
            WebLog.BadMessage(logger, 0, "a BOSH request that is not a <body/> in " + HttpBindNamespace);
            await TerminateAsync(context, StatusCodes.Status400BadRequest, "bad-request");
            return;
        }

        BoshSession? session;
        if (sid is null)
        {
            if (!transport.TryCreateBoshSession(context, request.Rid, Clamp(wait), out session, out var atCapacity))
            {
                if (atCapacity)
                {
                    await RefuseAtCapacityAsync(context);
                }
                return;
            }
            _sessions[session.Sid] = session;
        }
        else if (!_sessions.TryGetValue(sid, out session))
        {
            await TerminateAsync(context, StatusCodes.Status404NotFound, "item-not-found");
            return;
        }

        var response = new PooledMessageBuffer();
        try
        {
            BoshOutcome outcome;
            try
            {
                outcome = await session.HandleAsync(request, response, context.RequestAborted);
            }
            catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
            {
                // The client gave up on this request while it waited for its turn; the session goes on.
                return;
            }
            if (outcome == BoshOutcome.ItemNotFound)
            {
                // XEP-0124 14.3: a rid out of the window ends the session.
                session.Connection.Abort(Transport.CloseReason.ProtocolError);
                await TerminateAsync(context, StatusCodes.Status404NotFound, "item-not-found");
                return;
            }
            if (session.IsOver)
            {
                _sessions.TryRemove(session.Sid, out _);
            }
            context.Response.ContentType = "text/xml; charset=utf-8";
            context.Response.ContentLength = response.WrittenCount;
            try
            {
                await context.Response.Body.WriteAsync(response.WrittenMemory, context.RequestAborted);
            }
            catch (Exception e) when (e is OperationCanceledException or IOException)
            {
                // The connection died under a held request: what it carried is in the replay cache
                // for the client's retry of the same rid (XEP-0124 14.3).
            }
        }
        finally
        {
            response.Reset();
        }
    }

    /// <summary>Waits for the streams of the sessions still open (they end with the daemon's stopping token), within <paramref name="timeout"/>.</summary>
    public async Task StopAsync(TimeSpan timeout)
    {
        var lifetimes = new List<Task>();
        foreach (var session in _sessions.Values)
        {
            if (session.Lifetime is { } lifetime)
            {
                lifetimes.Add(lifetime);
            }
        }
        try
        {
            await Task.WhenAll(lifetimes).WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            // Streams stuck on a congested upstream link: the pool's shutdown ends them.
        }
    }

    /// <summary>Once a second: holds, inactivity, and the removal of sessions whose stream is over.</summary>
    public void OnHeartbeat(long timestamp)
    {
        foreach (var (sid, session) in _sessions)
        {
            if (session.OnHeartbeat(timestamp))
            {
                _sessions.TryRemove(sid, out _);
            }
        }
    }

    private TimeSpan Clamp(long wait)
    {
        var max = transport.Settings.BoshMaxWait;
        return wait <= 0 || wait > max.TotalSeconds ? max : TimeSpan.FromSeconds(wait);
    }

    /// <summary>The whole request body into a pooled array, or null when it is over the limit.</summary>
    private static async Task<ArraySegment<byte>?> ReadBodyAsync(HttpContext context, int limit)
    {
        var reader = context.Request.BodyReader;
        while (true)
        {
            ReadResult result;
            try
            {
                result = await reader.ReadAsync(context.RequestAborted);
            }
            catch (BadHttpRequestException)
            {
                return null;
            }
            if (result.Buffer.Length > limit)
            {
                reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
                return null;
            }
            if (result.IsCompleted)
            {
                var length = (int)result.Buffer.Length;
                var array = ArrayPool<byte>.Shared.Rent(Math.Max(length, 1));
                result.Buffer.CopyTo(array);
                reader.AdvanceTo(result.Buffer.End);
                return new ArraySegment<byte>(array, 0, length);
            }
            reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }
    }

    /// <summary>XEP-0124 7.1 and 9, XEP-0206 5: the attributes that matter and the payload.</summary>
    private static bool TryParse(ReadOnlyMemory<byte> bytes, out BoshRequest request, out string? sid, out long wait)
    {
        request = null!;
        sid = null;
        wait = 0;
        if (!XmlElementReader.TryCreate(bytes.Span, default, out var body)
            || !body.LocalName.SequenceEqual("body"u8) || !body.NamespaceIs(HttpBindNamespace)
            || !long.TryParse(body.GetAttribute("rid"u8), NumberStyles.None, CultureInfo.InvariantCulture, out var rid))
        {
            return false;
        }
        sid = body.GetAttribute("sid"u8);
        if (long.TryParse(body.GetAttribute("wait"u8), NumberStyles.None, CultureInfo.InvariantCulture, out var w))
        {
            wait = w;
        }
        var pause = long.TryParse(body.GetAttribute("pause"u8), NumberStyles.None, CultureInfo.InvariantCulture, out var p) ? TimeSpan.FromSeconds(p) : TimeSpan.Zero;
        // The payload's offset in the request: the stanzas go to the stream as the client wrote them.
        var inner = body.InnerRaw;
        var offset = inner.IsEmpty ? 0 : (int)Unsafe.ByteOffset(ref MemoryMarshal.GetReference(bytes.Span), ref MemoryMarshal.GetReference(inner));
        request = new BoshRequest(
            rid,
            bytes.Slice(offset, inner.Length),
            Restart: sid is null || AttributeIs(body, "xmpp:restart"u8, XboshNamespace, "true"u8),
            Terminate: body.AttributeEquals("type"u8, "terminate"u8),
            Pause: pause,
            To: Raw(body, "to"u8),
            Version: RawPrefixed(body, "version"u8, XboshNamespace),
            Lang: Raw(body, "xml:lang"u8));
        return true;
    }

    private static byte[] Raw(in XmlElementReader body, ReadOnlySpan<byte> name)
        => body.TryGetAttribute(name, out var raw) ? raw.ToArray() : [];

    /// <summary>An attribute in the xbosh namespace, under whatever prefix the client bound it to (usually <c>xmpp</c>).</summary>
    private static byte[] RawPrefixed(in XmlElementReader body, ReadOnlySpan<byte> localName, string namespaceUri)
    {
        foreach (var declaration in body.NamespaceDeclarations)
        {
            if (declaration.QualifiedName.StartsWith("xmlns:"u8) && declaration.ValueEquals(namespaceUri))
            {
                Span<byte> qualified = stackalloc byte[declaration.LocalName.Length + 1 + localName.Length];
                declaration.LocalName.CopyTo(qualified);
                qualified[declaration.LocalName.Length] = (byte)':';
                localName.CopyTo(qualified[(declaration.LocalName.Length + 1)..]);
                return body.TryGetAttribute(qualified, out var raw) ? raw.ToArray() : [];
            }
        }
        return [];
    }

    private static bool AttributeIs(in XmlElementReader body, ReadOnlySpan<byte> qualifiedName, string namespaceUri, ReadOnlySpan<byte> value)
    {
        var colon = qualifiedName.IndexOf((byte)':');
        var raw = RawPrefixed(body, qualifiedName[(colon + 1)..], namespaceUri);
        return raw.AsSpan().SequenceEqual(value);
    }

    /// <summary>
    /// A session refused at <c>Edge:MaxConnections</c>: the stream error a TCP client gets
    /// (<c>resource-constraint</c>, RFC 6120 4.9.3.17), carried as XEP-0206 carries a stream error, in
    /// a body terminated with <c>remote-stream-error</c> (XEP-0124 17.2).
    /// </summary>
    private static Task RefuseAtCapacityAsync(HttpContext context)
    {
        context.Response.Headers.RetryAfter = "30";
        return TerminateAsync(context, StatusCodes.Status200OK, "remote-stream-error",
            $"<stream:error xmlns:stream='{XmppNamespaces.Stream}'><resource-constraint xmlns='{XmppNamespaces.Streams}'/>"
            + $"<text xmlns='{XmppNamespaces.Streams}'>too many connections (Edge:MaxConnections)</text></stream:error>");
    }

    private static Task TerminateAsync(HttpContext context, int status, string condition, string? content = null)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/xml; charset=utf-8";
        var body = content is null
            ? $"<body xmlns='{HttpBindNamespace}' type='terminate' condition='{condition}'/>"
            : $"<body xmlns='{HttpBindNamespace}' type='terminate' condition='{condition}'>{content}</body>";
        return context.Response.WriteAsync(body, context.RequestAborted);
    }
}
