using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using ConnMgr.Protocol;
using ConnMgr.Protocol.Sasl;
using ConnMgr.Protocol.Xml;

namespace ConnMgr.Benchmarks.Load;

/// <summary>
/// One simulated XMPP client: TCP connect, STARTTLS, SASL, bind, initial presence, then it receives chat
/// messages (measuring their latency) and sends the ones the heartbeat asks for.
/// </summary>
/// <remarks>
/// <para>Two loops, as in the daemon: the receive loop reads the stream through a <see cref="PipeReader"/>
/// with zero-byte reads (an idle client holds no read buffer) and frames it with
/// <see cref="XmppStreamScanner"/>; the send loop drains an output <see cref="Pipe"/> into the socket or the
/// <see cref="SslStream"/>. Whoever writes (the receive loop during login, the heartbeat for chat) takes the
/// write lock, writes into the pipe and flushes, which never waits: the pipe has no pause threshold, and the
/// client bounds its unsent bytes itself (<see cref="MaxPendingBytes"/>) by dropping chat messages.</para>
/// <para>Login runs inside the receive loop as a state machine driven by the server's elements, so a
/// login and the chat that follows share one task and one read buffer.</para>
/// </remarks>
internal sealed class XmppLoadClient
{
    /// <summary>
    /// Unsent output past which chat messages are dropped (counted as send-backlog): 64 KiB is about 260
    /// messages of 250 bytes, minutes of this client's chat; more means the server stopped reading.
    /// </summary>
    internal const int MaxPendingBytes = 64 * 1024;

    /// <summary>Largest SASL payload read from a challenge or success, base64 included (SCRAM messages are ~100 bytes).</summary>
    private const int MaxSaslText = 2048;

    private enum Phase
    {
        Connecting, TlsFeatures, TlsProceed, TlsHandshake, AuthFeatures, AuthChallenge, AuthSuccess,
        BindFeatures, Bind, Session, Online, Closed,
    }

    private enum LoopOutcome { StartTls, Ended }

    private readonly LoadRun _run;
    private readonly XmppStreamScanner _scanner = new(XmlScannerOptions.Client);
    private readonly Lock _writeLock = new();
    private readonly int _number;
    private Socket? _socket;
    private NetworkStream? _network;
    private SslStream? _ssl;
    private volatile Stream? _transport;
    private Pipe? _output;
    private Task? _sendTask;
    private Task? _runTask;
    private XmlNamespaceScope _scope;
    private ScramClient? _scram;
    private long _startedAt;
    private long _onlineAt;
    private long _pendingBytes;
    private volatile Phase _phase;
    private volatile bool _closing;
    private int _failed;
    private bool _sessionRequired;

    public XmppLoadClient(LoadRun run, int number)
    {
        _run = run;
        _number = number;
    }

    /// <summary>The user's number (the <c>%d</c> of its name).</summary>
    public int Number => _number;

    public bool IsOnline => _phase == Phase.Online && !_closing;

    /// <summary>Starts the client's receive loop; it runs until the connection ends.</summary>
    public void Start(long now)
    {
        _startedAt = now;
        _runTask = RunAsync();
    }

    /// <summary>Completes when the client's connection is over and its resources released.</summary>
    public Task Completion => _runTask ?? Task.CompletedTask;

    /// <summary>Called by the heartbeat: fails a login that outlived <c>--login-timeout</c>.</summary>
    public void CheckLoginTimeout(long now, long timeoutTicks)
    {
        var phase = _phase;
        if (phase != Phase.Online && phase != Phase.Closed && _runTask is not null && now - _startedAt > timeoutTicks)
            Fail(LoadError.LoginTimeout, $"not logged in after {Stopwatch.GetElapsedTime(_startedAt, now).TotalSeconds:0} s (stuck in {phase})");
    }

    /// <summary>
    /// Sends one chat message to user <paramref name="toNumber"/> (heartbeat thread). False when the client is
    /// not online any more, which takes it off the chat schedule.
    /// </summary>
    public bool TrySendChat(int toNumber)
    {
        if (!IsOnline)
            return false;
        var counters = _run.Counters;
        lock (_writeLock)
        {
            if (_closing || _phase != Phase.Online)
                return false;
            if (Interlocked.Read(ref _pendingBytes) > MaxPendingBytes)
            {
                Interlocked.Increment(ref counters.MessagesDropped);
                counters.Error(LoadError.SendBacklog, $"more than {MaxPendingBytes} bytes unsent: the server is not reading");
                return true;
            }
            var written = _run.Stanzas.WriteChat(_output!.Writer, toNumber, Stopwatch.GetTimestamp());
            Flush(written);
        }
        Interlocked.Increment(ref counters.MessagesSent);
        return true;
    }

    /// <summary>Ends the stream politely (RFC 6120 4.4); the receive loop ends when the server closes its side.</summary>
    public void BeginClose()
    {
        lock (_writeLock)
        {
            if (_closing)
                return;
            _closing = true;
            if (_output is not null && _phase != Phase.Closed)
            {
                _output.Writer.Write(_run.Stanzas.StreamEnd);
                Flush(_run.Stanzas.StreamEnd.Length);
            }
        }
    }

    /// <summary>Closes the socket at once: after <see cref="BeginClose"/> timed out, or on a failure.</summary>
    public void Abort()
    {
        _closing = true;
        _socket?.Dispose();
    }

    private async Task RunAsync()
    {
        var counters = _run.Counters;
        counters.LoginStarted();
        Interlocked.Increment(ref counters.Connecting);
        var connecting = true;
        var connected = false;
        PipeReader? reader = null;
        try
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            _socket = socket;
            var source = _run.NextSource();
            if (source is not null)
            {
                // IP_BIND_ADDRESS_NO_PORT (Linux 4.2, value 24): bind only the address now and pick the port at
                // connect time, so the port need only be unique per (source, destination), not per source.
                socket.SetRawSocketOption(0, 24, [1, 0, 0, 0]);
                socket.Bind(new IPEndPoint(source, 0));
            }
            await socket.ConnectAsync(_run.ServerEndPointFor(_number)).ConfigureAwait(false);
            Interlocked.Decrement(ref counters.Connecting);
            connecting = false;
            Interlocked.Increment(ref counters.Connected);
            connected = true;

            _network = new NetworkStream(socket, ownsSocket: true);
            _transport = _network;
            _output = new Pipe(_run.OutputPipeOptions);
            _sendTask = SendLoopAsync(_output.Reader);
            _phase = _run.Options.Tls ? Phase.TlsFeatures : Phase.AuthFeatures;
            Write(_run.Stanzas.Header);

            reader = PipeReader.Create(_network, _run.ReaderOptions);
            if (await ReadLoopAsync(reader).ConfigureAwait(false) != LoopOutcome.StartTls)
                return;

            // Nothing may follow <proceed/> before the TLS handshake (RFC 6120 5.4.2.3).
            var leftover = reader.TryRead(out var rest) && !rest.Buffer.IsEmpty;
            await reader.CompleteAsync().ConfigureAwait(false);
            reader = null;
            if (leftover)
            {
                Fail(LoadError.StartTls, "data after <proceed/>");
                return;
            }
            _phase = Phase.TlsHandshake;
            _ssl = new SslStream(_network, leaveInnerStreamOpen: false);
            try
            {
                await _ssl.AuthenticateAsClientAsync(_run.TlsOptions).ConfigureAwait(false);
            }
            catch (Exception e) when (e is AuthenticationException or IOException)
            {
                Fail(LoadError.TlsHandshake, e.Message);
                return;
            }
            _transport = _ssl;
            _scanner.Restart();
            _phase = Phase.AuthFeatures;
            Write(_run.Stanzas.Header);
            reader = PipeReader.Create(_ssl, _run.ReaderOptions);
            await ReadLoopAsync(reader).ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            Fail(Classify(e, connected), $"{e.Message} (in {_phase})");
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException or FormatException)
        {
            Fail(e is FormatException ? LoadError.Protocol : LoadError.Io, $"{e.Message} (in {_phase})");
        }
        finally
        {
            var wasOnline = _phase == Phase.Online;
            _phase = Phase.Closed;
            if (connecting)
                Interlocked.Decrement(ref counters.Connecting);
            if (connected)
                Interlocked.Decrement(ref counters.Connected);
            if (wasOnline)
                Interlocked.Decrement(ref counters.LoggedIn);
            else
                Interlocked.Increment(ref counters.LoginsFailed);
            if (reader is not null)
                await reader.CompleteAsync().ConfigureAwait(false);
            lock (_writeLock)
                _output?.Writer.Complete();
            if (_sendTask is not null)
                await _sendTask.ConfigureAwait(false);
            _ssl?.Dispose();
            _network?.Dispose();
            _socket?.Dispose();
        }
    }

    private static LoadError Classify(SocketException e, bool connected) => e.SocketErrorCode switch
    {
        _ when connected => LoadError.Io,
        SocketError.ConnectionRefused => LoadError.ConnectRefused,
        SocketError.AddressNotAvailable or SocketError.AddressAlreadyInUse => LoadError.SourcePortsExhausted,
        SocketError.TooManyOpenSockets => LoadError.FileDescriptors,
        _ => LoadError.Connect,
    };

    private async Task<LoopOutcome> ReadLoopAsync(PipeReader reader)
    {
        while (true)
        {
            var result = await reader.ReadAsync().ConfigureAwait(false);
            var buffer = result.Buffer;
            var consumed = buffer.Start;
            var examined = buffer.End;
            var step = Step.Continue;
            try
            {
                while (step == Step.Continue)
                {
                    var status = _scanner.Scan(buffer, out consumed, out examined, out var frame);
                    if (status == ScanStatus.NeedMoreData)
                        break;
                    if (status == ScanStatus.Error)
                    {
                        Fail(LoadError.Protocol, $"server XML: {_scanner.ErrorCondition} ({_scanner.ErrorText})");
                        return LoopOutcome.Ended;
                    }
                    buffer = buffer.Slice(consumed);
                    step = HandleFrame(frame);
                }
            }
            finally
            {
                reader.AdvanceTo(consumed, examined);
            }
            if (step == Step.StartTls)
                return LoopOutcome.StartTls;
            if (step == Step.Stop)
                return LoopOutcome.Ended;
            if (result.IsCompleted)
            {
                if (!_closing)
                    Fail(LoadError.ClosedByServer, $"connection closed by the server in phase {_phase}");
                return LoopOutcome.Ended;
            }
        }
    }

    private enum Step { Continue, StartTls, Stop }

    private Step HandleFrame(in XmlFrame frame)
    {
        switch (frame.Kind)
        {
            case XmlFrameKind.StreamHeader:
                var header = frame.Header!;
                _scope = XmlNamespaceScope.Create(header.DefaultNamespace, header.NamespaceDeclarations);
                return Step.Continue;
            case XmlFrameKind.Whitespace:
                return Step.Continue;
            case XmlFrameKind.StreamEnd:
                if (!_closing)
                    Fail(LoadError.ClosedByServer, $"the server ended the stream in phase {_phase}");
                return Step.Stop;
        }

        var bytes = frame.Bytes;
        if (bytes.IsSingleSegment)
            return HandleElement(bytes.FirstSpan);
        var length = (int)bytes.Length;
        var rented = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            bytes.CopyTo(rented);
            return HandleElement(rented.AsSpan(0, length));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private Step HandleElement(ReadOnlySpan<byte> element)
    {
        var stanza = new XmlElementReader(element, _scope);
        var phase = _phase;
        if (phase == Phase.Online)
        {
            if (stanza.NameIs("message"u8, XmppNamespaces.Client))
                OnMessage(stanza);
            else if (stanza.NameIs("iq"u8, XmppNamespaces.Client))
                OnIq(stanza);
            else if (stanza.NameIs("error"u8, XmppNamespaces.Stream))
                return StreamError(stanza);
            return Step.Continue;
        }
        if (stanza.NameIs("error"u8, XmppNamespaces.Stream))
            return StreamError(stanza);

        switch (phase)
        {
            case Phase.TlsFeatures:
                if (!IsFeatures(stanza))
                    return Unexpected(stanza);
                if (!stanza.TryGetChild("starttls"u8, XmppNamespaces.Tls, out _))
                    return Failed(LoadError.StartTls, "the server offers no STARTTLS (use --no-tls for a plaintext server)");
                _phase = Phase.TlsProceed;
                Write(_run.Stanzas.StartTls);
                return Step.Continue;

            case Phase.TlsProceed:
                if (stanza.NameIs("proceed"u8, XmppNamespaces.Tls))
                    return Step.StartTls;
                return Failed(LoadError.StartTls, "STARTTLS refused: " + Describe(stanza));

            case Phase.AuthFeatures:
                if (!IsFeatures(stanza))
                    return Unexpected(stanza);
                if (!OffersMechanism(stanza))
                    return Failed(LoadError.Mechanism, $"the server does not offer {_run.Options.MechanismName}");
                return StartAuth();

            case Phase.AuthChallenge:
                if (!stanza.NameIs("challenge"u8, XmppNamespaces.Sasl))
                    return SaslFailure(stanza);
                return ContinueScram(stanza);

            case Phase.AuthSuccess:
                if (!stanza.NameIs("success"u8, XmppNamespaces.Sasl))
                    return SaslFailure(stanza);
                return CompleteAuth(stanza);

            case Phase.BindFeatures:
                if (!IsFeatures(stanza))
                    return Unexpected(stanza);
                if (!stanza.TryGetChild("bind"u8, XmppNamespaces.Bind, out _))
                    return Failed(LoadError.Bind, "the server offers no resource binding");
                // RFC 6121 drops session establishment; servers that still list it mark it <optional/>
                // (draft-cridland-xmpp-session-01); only a mandatory one is sent.
                _sessionRequired = stanza.TryGetChild("session"u8, XmppNamespaces.Session, out var session)
                    && !session.TryGetChild("optional"u8, XmppNamespaces.Session, out _);
                _phase = Phase.Bind;
                Write(_run.Stanzas.Bind);
                return Step.Continue;

            case Phase.Bind:
            case Phase.Session:
                if (!stanza.NameIs("iq"u8, XmppNamespaces.Client))
                    return Step.Continue;
                if (!stanza.AttributeEquals("type"u8, "result"u8))
                    return Failed(LoadError.Bind, (phase == Phase.Bind ? "bind: " : "session: ") + Describe(stanza));
                if (phase == Phase.Bind && _sessionRequired)
                {
                    _phase = Phase.Session;
                    Write(_run.Stanzas.Session);
                    return Step.Continue;
                }
                GoOnline();
                return Step.Continue;

            default:
                return Unexpected(stanza);
        }
    }

    private static bool IsFeatures(in XmlElementReader stanza) => stanza.NameIs("features"u8, XmppNamespaces.Stream);

    private bool OffersMechanism(in XmlElementReader features)
    {
        if (!features.TryGetChild("mechanisms"u8, XmppNamespaces.Sasl, out var mechanisms))
            return false;
        Span<byte> name = stackalloc byte[64];
        foreach (var mechanism in mechanisms.Children)
        {
            if (mechanism.LocalName.SequenceEqual("mechanism"u8)
                && mechanism.TryCopyText(name, out var written)
                && name[..written].SequenceEqual(_run.Stanzas.Mechanism))
                return true;
        }
        return false;
    }

    private Step StartAuth()
    {
        var options = _run.Options;
        byte[] initial;
        if (options.Mechanism == LoadMechanism.Plain)
        {
            initial = SaslPlain.Encode(null, options.UserName(_number), options.Password(_number));
            _phase = Phase.AuthSuccess;
        }
        else
        {
            _scram = new ScramClient(options.ScramHash, options.UserName(_number), options.Password(_number), _run.ScramCache);
            initial = _scram.ClientFirst();
            _phase = Phase.AuthChallenge;
        }
        lock (_writeLock)
        {
            var writer = _output!.Writer;
            var before = writer.UnflushedBytes;
            ClientStanzas.WriteSasl(writer, "auth"u8, _run.Stanzas.Mechanism, initial);
            Flush((int)(writer.UnflushedBytes - before));
        }
        return Step.Continue;
    }

    private Step ContinueScram(in XmlElementReader challenge)
    {
        Span<byte> text = stackalloc byte[MaxSaslText];
        if (!challenge.TryCopyText(text, out var length) || !SaslBase64.TryDecode(text[..length], out var payload))
            return Failed(LoadError.Auth, "challenge is not base64");
        byte[]? final;
        using (payload)
        {
            if (_scram!.ReceiveServerFirst(payload.Span, out final) != SaslResult.Continue)
                return Failed(LoadError.Auth, _scram.Error ?? "server-first-message refused");
        }
        _phase = Phase.AuthSuccess;
        lock (_writeLock)
        {
            var writer = _output!.Writer;
            var before = writer.UnflushedBytes;
            ClientStanzas.WriteSasl(writer, "response"u8, default, final);
            Flush((int)(writer.UnflushedBytes - before));
        }
        return Step.Continue;
    }

    private Step CompleteAuth(in XmlElementReader success)
    {
        if (_scram is not null)
        {
            // RFC 6120 6.4.6: the additional data of <success/> carries server-final-message.
            Span<byte> text = stackalloc byte[MaxSaslText];
            if (!success.TryCopyText(text, out var length) || !SaslBase64.TryDecode(text[..length], out var payload))
                return Failed(LoadError.Auth, "success data is not base64");
            using (payload)
            {
                if (!payload.IsPresent || !_scram.VerifyServerFinal(payload.Span))
                    return Failed(LoadError.Auth, _scram.Error ?? "no server-final-message in <success/>");
            }
            _scram = null;
        }
        // RFC 6120 6.4.6: both sides restart the stream after SASL success.
        _scanner.Restart();
        _phase = Phase.BindFeatures;
        Write(_run.Stanzas.Header);
        return Step.Continue;
    }

    private void GoOnline()
    {
        Write(_run.Stanzas.Presence);
        _onlineAt = Stopwatch.GetTimestamp();
        _phase = Phase.Online;
        _run.Counters.LoginSucceeded(Microseconds(_onlineAt - _startedAt));
        _run.OnOnline(this);
    }

    private void OnMessage(in XmlElementReader message)
    {
        var counters = _run.Counters;
        if (message.AttributeEquals("type"u8, "error"u8))
        {
            counters.Error(LoadError.MessageError, Describe(message));
            return;
        }
        if (!message.TryGetChild("body"u8, XmppNamespaces.Client, out var body)
            || !ClientStanzas.TryReadTimestamp(body.InnerRaw, out var sent))
            return;
        Interlocked.Increment(ref counters.MessagesReceived);
        // Sent before this client was online (stored offline, then delivered at login), or marked delayed
        // (XEP-0203): not a relay latency.
        if (sent < _onlineAt || message.TryGetChild("delay"u8, XmppNamespaces.Delay, out _))
        {
            Interlocked.Increment(ref counters.MessagesOffline);
            return;
        }
        counters.RecordLatency(Microseconds(Stopwatch.GetTimestamp() - sent));
    }

    /// <summary>Answers a server's IQ get or set (a ping, a roster push) with an empty result (RFC 6120 8.2.3).</summary>
    private void OnIq(in XmlElementReader iq)
    {
        if (!iq.AttributeEquals("type"u8, "get"u8) && !iq.AttributeEquals("type"u8, "set"u8))
            return;
        lock (_writeLock)
        {
            if (_closing)
                return;
            var output = _output!.Writer;
            var before = output.UnflushedBytes;
            var writer = new XmlBufferWriter(output);
            writer.StartElement("iq"u8);
            writer.Attribute("type"u8, "result"u8);
            if (iq.TryGetAttribute("id"u8, out var id))
                writer.RawAttribute("id"u8, id);
            if (iq.TryGetAttribute("from"u8, out var from))
                writer.RawAttribute("to"u8, from);
            writer.EndElement();
            Flush((int)(output.UnflushedBytes - before));
        }
    }

    private Step StreamError(in XmlElementReader error)
        => Failed(LoadError.StreamError, $"stream error in phase {_phase}: {Describe(error)}");

    private Step SaslFailure(in XmlElementReader element)
        => Failed(LoadError.Auth, "SASL: " + Describe(element));

    private Step Unexpected(in XmlElementReader element)
        => Failed(LoadError.Protocol, $"unexpected <{System.Text.Encoding.UTF8.GetString(element.LocalName)}> in phase {_phase}");

    private Step Failed(LoadError kind, string text)
    {
        Fail(kind, text);
        return Step.Stop;
    }

    /// <summary>Records the first failure of this client (later ones are consequences) and closes the socket.</summary>
    private void Fail(LoadError kind, string text)
    {
        if (_closing)
        {
            Abort();
            return;
        }
        if (Interlocked.Exchange(ref _failed, 1) == 0)
            _run.Counters.Error(kind, text);
        Abort();
    }

    /// <summary>An element's name and first child, e.g. <c>failure/not-authorized</c>, for error texts.</summary>
    private static string Describe(in XmlElementReader element)
    {
        var name = System.Text.Encoding.UTF8.GetString(element.LocalName);
        foreach (var child in element.Children)
        {
            var childName = System.Text.Encoding.UTF8.GetString(child.LocalName);
            if (childName == "error")
            {
                foreach (var condition in child.Children)
                    return $"{name}/error/{System.Text.Encoding.UTF8.GetString(condition.LocalName)}";
            }
            return $"{name}/{childName}";
        }
        return name;
    }

    private void Write(byte[] bytes)
    {
        lock (_writeLock)
        {
            _output!.Writer.Write(bytes);
            Flush(bytes.Length);
        }
    }

    /// <summary>Publishes what was written to the send loop. Caller holds the write lock.</summary>
    private void Flush(int bytes)
    {
        Interlocked.Add(ref _pendingBytes, bytes);
        var flush = _output!.Writer.FlushAsync();
        // The pipe has no pause threshold, so a flush completes at once.
        if (!flush.IsCompletedSuccessfully)
            throw new InvalidOperationException("an unbounded pipe's flush did not complete synchronously");
        _ = flush.Result;
    }

    private async Task SendLoopAsync(PipeReader output)
    {
        try
        {
            while (true)
            {
                var result = await output.ReadAsync().ConfigureAwait(false);
                var buffer = result.Buffer;
                var transport = _transport!;
                if (buffer.IsSingleSegment)
                    await transport.WriteAsync(buffer.First).ConfigureAwait(false);
                else
                    await WriteGatheredAsync(transport, buffer).ConfigureAwait(false);
                Interlocked.Add(ref _pendingBytes, -buffer.Length);
                output.AdvanceTo(buffer.End);
                if (result.IsCompleted)
                    break;
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or SocketException or InvalidOperationException)
        {
            Fail(LoadError.Io, $"send: {e.Message} (in {_phase})");
        }
        finally
        {
            await output.CompleteAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Writes a multi-segment buffer through one pooled array, so TLS makes few records, not one per segment.</summary>
    private static async ValueTask WriteGatheredAsync(Stream transport, ReadOnlySequence<byte> buffer)
    {
        // 16 KiB: the largest TLS record payload (RFC 8446 5.1).
        var gather = ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            while (!buffer.IsEmpty)
            {
                var length = (int)Math.Min(buffer.Length, gather.Length);
                buffer.Slice(0, length).CopyTo(gather);
                buffer = buffer.Slice(length);
                await transport.WriteAsync(gather.AsMemory(0, length)).ConfigureAwait(false);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(gather);
        }
    }

    private static long Microseconds(long stopwatchTicks) => stopwatchTicks * 1_000_000 / Stopwatch.Frequency;
}
