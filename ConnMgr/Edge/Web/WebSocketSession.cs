using System.Buffers;
using System.IO.Pipelines;
using System.Net.WebSockets;
using ConnMgr.Edge.Streams;
using ConnMgr.Edge.Transport;
using ConnMgr.Protocol.Xml;
using Microsoft.Extensions.Logging;

namespace ConnMgr.Edge.Web;

/// <summary>
/// One client stream over WebSocket (RFC 7395): two loops between the socket and a
/// <see cref="WebStreamConnection"/>, and the <see cref="ClientStream"/> on it.
/// </summary>
/// <remarks>
/// <para>In: each text message is one element. <c>&lt;open/&gt;</c> becomes the stream header the
/// stream layer expects (with the stream and content namespaces, and the client's <c>to</c>,
/// <c>version</c> and <c>xml:lang</c>) and <c>&lt;close/&gt;</c> the stream's end tag; any
/// other message goes in as it came, straight into the input pipe as it arrives (a message is
/// never buffered whole), and the stream layer validates it as it validates TCP input: its
/// <c>Edge:MaxStanzaBytes</c> limit is the message size limit. A message is not checked to hold
/// exactly one element: the stream layer accepts elements however they are cut, as on TCP.</para>
/// <para>Out: one message per top-level element (<see cref="WebOutputFramer"/>): the header as
/// <c>&lt;open/&gt;</c>, elements with their namespace declared, the end as <c>&lt;close/&gt;</c>,
/// after which the WebSocket is closed.</para>
/// <para>Idle: between messages the receive loop waits with a zero-byte read, so an idle session
/// holds no receive buffer; there is no WebSocket keep-alive timer (the stream layer's XEP-0199
/// pings on the one heartbeat do that job).</para>
/// </remarks>
internal sealed class WebSocketSession
{
    private const int ReceiveBlockSize = 4096;

    private static ReadOnlySpan<byte> StreamEnd => "</stream:stream>"u8;

    private readonly WebSocket _socket;
    private readonly WebStreamConnection _connection;
    private readonly ClientStream _stream;
    private readonly WebSettings _settings;
    private readonly ILogger _logger;

    public WebSocketSession(WebSocket socket, WebStreamConnection connection, ClientStream stream, WebSettings settings, ILogger logger)
    {
        _socket = socket;
        _connection = connection;
        _stream = stream;
        _settings = settings;
        _logger = logger;
    }

    /// <summary>Runs the session to its end: the stream, its last words, the WebSocket close.</summary>
    public async Task RunAsync(CancellationToken stopping)
    {
        var receive = ReceiveLoopAsync();
        var send = SendLoopAsync();
        await _stream.RunAsync(stopping);
        _connection.CompleteOutput();
        // A client that does not read its last messages is cut by the heartbeat.
        _connection.SetDeadline(_settings.CloseTimeout, CloseReason.ServerClosed);
        await send;
        // The client answers our close frame with its own (RFC 6455 5.5.1), which ends the receive loop.
        await receive;
    }

    private async Task ReceiveLoopAsync()
    {
        var writer = _connection.InputWriter;
        try
        {
            while (true)
            {
                // Wait for a message before renting anything.
                var first = await _socket.ReceiveAsync(Memory<byte>.Empty, CancellationToken.None);
                if (first.MessageType == WebSocketMessageType.Close)
                {
                    _connection.TrySetCloseReason(CloseReason.ClientClosed);
                    return;
                }
                if (first.MessageType == WebSocketMessageType.Binary)
                {
                    Refuse(StreamErrorCondition.UnsupportedEncoding, "XMPP over WebSocket uses text messages only (RFC 7395 3.2)");
                    return;
                }
                if (first.EndOfMessage)
                {
                    continue;
                }
                if (!await ReceiveMessageAsync(writer))
                {
                    return;
                }
            }
        }
        catch (Exception e) when (e is WebSocketException or IOException or OperationCanceledException or ObjectDisposedException)
        {
            _connection.TrySetCloseReason(CloseReason.ClientReset);
        }
        finally
        {
            writer.Complete();
        }
    }

    /// <summary>One text message into the input pipe; false when the session is over.</summary>
    private async Task<bool> ReceiveMessageAsync(PipeWriter writer)
    {
        // The head of the message, enough to tell <open/> and <close/> from the rest.
        var head = ArrayPool<byte>.Shared.Rent(WebSettings.MaxFramingElementBytes);
        try
        {
            var count = 0;
            var end = false;
            while (!end && count < head.Length && !CanClassify(head.AsSpan(0, count)))
            {
                var result = await _socket.ReceiveAsync(head.AsMemory(count), CancellationToken.None);
                if (!Accept(result))
                {
                    return false;
                }
                count += result.Count;
                end = result.EndOfMessage;
            }

            var kind = Classify(head.AsSpan(0, count));
            if (kind != Framing.Other)
            {
                while (!end)
                {
                    if (count == head.Length)
                    {
                        Refuse(StreamErrorCondition.PolicyViolation, "an <open/> or <close/> message over 8 KiB");
                        return false;
                    }
                    var result = await _socket.ReceiveAsync(head.AsMemory(count), CancellationToken.None);
                    if (!Accept(result))
                    {
                        return false;
                    }
                    count += result.Count;
                    end = result.EndOfMessage;
                }
                if (!Translate(kind, head.AsSpan(0, count), writer))
                {
                    return false;
                }
            }
            else
            {
                writer.Write(head.AsSpan(0, count));
            }
            ArrayPool<byte>.Shared.Return(head);
            head = null;

            while (!end)
            {
                var flush = await writer.FlushAsync();
                if (flush.IsCompleted)
                {
                    return false;
                }
                var memory = writer.GetMemory(ReceiveBlockSize);
                var result = await _socket.ReceiveAsync(memory, CancellationToken.None);
                if (!Accept(result))
                {
                    return false;
                }
                writer.Advance(result.Count);
                end = result.EndOfMessage;
            }
            return !(await writer.FlushAsync()).IsCompleted;
        }
        finally
        {
            if (head is not null)
            {
                ArrayPool<byte>.Shared.Return(head);
            }
        }
    }

    /// <summary>Counts a read; false for the end of the session (a close frame, a binary message).</summary>
    private bool Accept(ValueWebSocketReceiveResult result)
    {
        if (result.MessageType == WebSocketMessageType.Close)
        {
            _connection.TrySetCloseReason(CloseReason.ClientClosed);
            return false;
        }
        if (result.MessageType == WebSocketMessageType.Binary)
        {
            Refuse(StreamErrorCondition.UnsupportedEncoding, "XMPP over WebSocket uses text messages only (RFC 7395 3.2)");
            return false;
        }
        _connection.OnReceived(result.Count);
        return true;
    }

    private void Refuse(StreamErrorCondition condition, string text)
    {
        WebLog.BadMessage(_logger, _connection.Id, text);
        _stream.RequestClose(new CloseRequest(condition, CloseReason.ProtocolError, text));
    }

    private enum Framing : byte
    {
        Other,
        Open,
        Close,
    }

    /// <summary>Enough of the message to see its first name (or that it is not a framing element).</summary>
    private static bool CanClassify(ReadOnlySpan<byte> head)
    {
        var start = head.IndexOfAnyExcept(" \t\r\n"u8);
        // "<close" and one byte after the name.
        return start >= 0 && head.Length - start >= 7;
    }

    private static Framing Classify(ReadOnlySpan<byte> head)
    {
        var start = head.IndexOfAnyExcept(" \t\r\n"u8);
        if (start < 0)
        {
            return Framing.Other;
        }
        head = head[start..];
        if (IsName(head, "<open"u8))
        {
            return Framing.Open;
        }
        return IsName(head, "<close"u8) ? Framing.Close : Framing.Other;
    }

    private static bool IsName(ReadOnlySpan<byte> head, ReadOnlySpan<byte> name)
        => head.Length > name.Length && head.StartsWith(name) && head[name.Length] is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n' or (byte)'/' or (byte)'>';

    /// <summary>
    /// RFC 7395 3.3.1 and 3.6: <c>&lt;open/&gt;</c> as a stream header, <c>&lt;close/&gt;</c> as the
    /// stream's end tag. The header is built, not copied: only <c>to</c>, <c>version</c> and
    /// <c>xml:lang</c> (RFC 6120 4.7) mean anything to the stream layer, which checks them.
    /// </summary>
    private bool Translate(Framing kind, ReadOnlySpan<byte> message, PipeWriter writer)
    {
        if (!XmlElementReader.TryCreate(message, default, out var element))
        {
            Refuse(StreamErrorCondition.NotWellFormed, "the message is not one well-formed element");
            return false;
        }
        if (!element.NamespaceIs(WebOutputFramer.FramingNamespace) || !element.IsEmptyElement && !element.InnerRaw.IsEmpty)
        {
            Refuse(StreamErrorCondition.InvalidNamespace, "<open/> and <close/> are empty elements in urn:ietf:params:xml:ns:xmpp-framing (RFC 7395 3.3.1)");
            return false;
        }
        if (kind == Framing.Close)
        {
            writer.Write(StreamEnd);
            return true;
        }
        element.TryGetAttribute("to"u8, out var to);
        element.TryGetAttribute("version"u8, out var version);
        element.TryGetAttribute("xml:lang"u8, out var lang);
        WriteStreamHeader(writer, to, version, lang);
        return true;
    }

    /// <summary>
    /// The stream header a web client's <c>&lt;open/&gt;</c> or BOSH session request stands for,
    /// with the attribute values as the client escaped them (empty = absent).
    /// </summary>
    internal static void WriteStreamHeader(System.Buffers.IBufferWriter<byte> output, ReadOnlySpan<byte> to, ReadOnlySpan<byte> version, ReadOnlySpan<byte> lang)
    {
        var header = new XmlBufferWriter(output);
        header.StartElement("stream:stream"u8, Protocol.XmppNamespaces.Client);
        header.NamespaceDeclaration("stream"u8, Protocol.XmppNamespaces.Stream);
        if (!to.IsEmpty)
        {
            header.RawAttribute("to"u8, to);
        }
        if (!version.IsEmpty)
        {
            header.RawAttribute("version"u8, version);
        }
        if (!lang.IsEmpty)
        {
            header.RawAttribute("xml:lang"u8, lang);
        }
        header.CloseStartTag();
    }

    private async Task SendLoopAsync()
    {
        var reader = _connection.OutputReader;
        var framer = new WebOutputFramer();
        var message = new PooledMessageBuffer();
        // After <close see-other-uri/> the stream's end has been said.
        var redirected = false;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync();
                var buffer = result.Buffer;
                var consumed = buffer.Start;
                var examined = buffer.End;
                while (true)
                {
                    var status = framer.Next(buffer, out var frameEnd, out var scanExamined, out var frame);
                    if (status == ScanStatus.NeedMoreData)
                    {
                        consumed = buffer.Start;
                        examined = scanExamined;
                        break;
                    }
                    if (status == ScanStatus.Error)
                    {
                        // Our own output or the core's: a bug, not the client's doing.
                        WebLog.OutputUnframed(_logger, _connection.Id, framer.ErrorText);
                        _connection.Abort(CloseReason.InternalError);
                        return;
                    }
                    switch (frame.Kind)
                    {
                        case XmlFrameKind.StreamHeader:
                            WebOutputFramer.WriteOpen(frame.Header!, message);
                            break;
                        case XmlFrameKind.Element when WebOutputFramer.TryWriteRedirect(frame.Bytes, message):
                            redirected = true;
                            break;
                        case XmlFrameKind.Element:
                            WebOutputFramer.WriteElement(frame.Bytes, message);
                            break;
                        case XmlFrameKind.StreamEnd when !redirected:
                            WebOutputFramer.WriteClose(message);
                            break;
                    }
                    if (message.WrittenCount > 0)
                    {
                        await _socket.SendAsync(message.WrittenMemory, WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None);
                        message.Reset();
                    }
                    _connection.OnSent(frame.Bytes.Length);
                    buffer = buffer.Slice(frameEnd);
                    consumed = examined = buffer.Start;
                }
                reader.AdvanceTo(consumed, examined);
                if (result.IsCompleted)
                {
                    break;
                }
            }
            if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
            }
        }
        catch (Exception e) when (e is WebSocketException or IOException or OperationCanceledException or ObjectDisposedException)
        {
            _connection.Abort(CloseReason.ClientReset);
        }
        finally
        {
            message.Reset();
        }
    }
}
