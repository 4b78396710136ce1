using ConnMgr.Buffers;
using System.Security.Cryptography;
using ConnMgr.Core.Sasl;
using ConnMgr.Core.Stanzas;
using ConnMgr.Core.Storage;
using ConnMgr.Protocol;
using ConnMgr.Protocol.Sasl;
using ConnMgr.Protocol.Xml;

namespace ConnMgr.Core.Sessions;

/// <summary>
/// SASL (RFC 6120 6) as Openfire runs it for CM-hosted sessions (spec 7.3): the CM relays
/// <c>&lt;auth/&gt;</c> and <c>&lt;response/&gt;</c> in routes, the core answers with challenge,
/// success and failure as raw-text routes (spec 6.2). Credentials are read from the store at
/// every attempt, so a password set or a user removed with the CLI applies to the next login.
/// </summary>
internal sealed partial class SessionProcessor
{
    private async Task HandleAuthAsync(ClientSession session, ReadOnlyMemory<byte> bytes)
    {
        if (!TryReadSaslElement(bytes.Span, isAuth: true, out var mechanism, out var data, out var failure))
        {
            await FailAuthAsync(session, failure);
            return;
        }
        if (session.State != SessionState.Connected)
        {
            // RFC 6120 6.4.6: no second authentication on a stream.
            SendSaslFailure(session, SaslFailure.NotAuthorized);
            return;
        }
        // A new <auth/> replaces an exchange left half-done (spec 7.1, SASL abort).
        if (mechanism == SaslMechanism.Plain)
        {
            session.Sasl = new SaslExchange(mechanism, null);
            if (data is null)
            {
                // No initial response: ask for it with an empty challenge (RFC 6120 6.4.2).
                SendSasl(session, "challenge"u8, null);
                return;
            }
            await PlainAsync(session, data);
            return;
        }
        var scram = new ScramServer(mechanism == SaslMechanism.ScramSha1 ? ScramHash.Sha1 : ScramHash.Sha256, _server.ScramOptions);
        session.Sasl = new SaslExchange(mechanism, scram);
        if (data is null)
        {
            SendSasl(session, "challenge"u8, null);
            return;
        }
        await ScramFirstAsync(session, session.Sasl, data);
    }

    private async Task HandleResponseAsync(ClientSession session, ReadOnlyMemory<byte> bytes)
    {
        if (!TryReadSaslElement(bytes.Span, isAuth: false, out _, out var data, out var failure))
        {
            await FailAuthAsync(session, failure);
            return;
        }
        var exchange = session.Sasl;
        if (exchange is null || session.State != SessionState.Connected)
        {
            // A response with no auth before it (spec 0.1 point 4).
            await FailAuthAsync(session, SaslFailure.NotAuthorized);
            return;
        }
        data ??= [];
        if (exchange.Mechanism == SaslMechanism.Plain)
        {
            await PlainAsync(session, data);
        }
        else if (!exchange.AwaitingFinal)
        {
            await ScramFirstAsync(session, exchange, data);
        }
        else
        {
            await ScramFinalAsync(session, exchange, data);
        }
    }

    /// <summary>
    /// Checks the namespace (an <c>auth</c> or <c>response</c> outside the SASL namespace fails with
    /// <c>not-authorized</c>, spec 0.1 point 4), the mechanism, and decodes the base64 payload:
    /// <paramref name="data"/> is null when the element was empty (no data), empty for <c>=</c>.
    /// </summary>
    private static bool TryReadSaslElement(ReadOnlySpan<byte> bytes, bool isAuth, out SaslMechanism mechanism, out byte[]? data, out SaslFailure failure)
    {
        mechanism = default;
        data = null;
        failure = default;
        var element = new XmlElementReader(bytes, s_clientScope);
        if (!element.NamespaceIs(XmppNamespaces.Sasl))
        {
            failure = SaslFailure.NotAuthorized;
            return false;
        }
        if (isAuth && (!element.TryGetAttribute("mechanism"u8, out var name) || !SaslMechanisms.TryParse(name, out mechanism)))
        {
            failure = SaslFailure.InvalidMechanism;
            return false;
        }
        if (!SaslBase64.TryDecode(element.InnerRaw, out var payload))
        {
            failure = SaslFailure.IncorrectEncoding;
            return false;
        }
        using (payload)
        {
            data = payload.IsPresent ? payload.Span.ToArray() : null;
        }
        return true;
    }

    private async Task PlainAsync(ClientSession session, byte[] message)
    {
        string? authzid, authcid, password;
        try
        {
            if (!SaslPlain.TryParse(message, out authzid, out authcid, out password))
            {
                await FailAuthAsync(session, SaslFailure.MalformedRequest);
                return;
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(message);
        }
        if (!SaslAuthzid.IsAcceptable(authzid, authcid, _domain))
        {
            await FailAuthAsync(session, SaslFailure.InvalidAuthzid);
            return;
        }
        UserCredentials? credentials;
        try
        {
            credentials = await _store.GetCredentialsAsync(authcid);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            CoreLog.CredentialLookupFailed(_logger, session.StreamId, e);
            await FailAuthAsync(session, SaslFailure.TemporaryAuthFailure);
            return;
        }
        if (credentials is null)
        {
            // An unknown user costs one PBKDF2 run too, so the answer's timing does not tell them apart.
            _server.UnknownUserCredential.Matches(password);
        }
        if (credentials is null || !credentials.Sha256.Matches(password))
        {
            await FailAuthAsync(session, SaslFailure.NotAuthorized);
            return;
        }
        await SucceedAsync(session, credentials!.User, null);
    }

    private async Task ScramFirstAsync(ClientSession session, SaslExchange exchange, byte[] clientFirst)
    {
        var scram = exchange.Scram!;
        if (scram.ReceiveClientFirst(clientFirst, out var username) == SaslResult.Failure)
        {
            await FailAuthAsync(session, scram.Failure);
            return;
        }
        UserCredentials? credentials;
        try
        {
            credentials = await _store.GetCredentialsAsync(username!);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            CoreLog.CredentialLookupFailed(_logger, session.StreamId, e);
            await FailAuthAsync(session, SaslFailure.TemporaryAuthFailure);
            return;
        }
        var credential = credentials is null ? null : scram.Hash == ScramHash.Sha1 ? credentials.Sha1 : credentials.Sha256;
        var serverFirst = scram.CreateServerFirst(credential);
        exchange.User = credentials?.User;
        exchange.AwaitingFinal = true;
        SendSasl(session, "challenge"u8, serverFirst);
    }

    private async Task ScramFinalAsync(ClientSession session, SaslExchange exchange, byte[] clientFinal)
    {
        var scram = exchange.Scram!;
        if (scram.ReceiveClientFinal(clientFinal, out var serverFinal) == SaslResult.Failure)
        {
            await FailAuthAsync(session, scram.Failure);
            return;
        }
        await SucceedAsync(session, exchange.User!, serverFinal);
    }

    private async Task SucceedAsync(ClientSession session, string user, byte[]? additionalData)
    {
        session.Sasl = null;
        Jid bare;
        try
        {
            bare = Jid.Create(user, _domain);
        }
        catch (FormatException e)
        {
            // The store accepted a name that is not a valid localpart: it cannot have an address.
            CoreLog.UserNotAddressable(_logger, user, e.Message);
            await FailAuthAsync(session, SaslFailure.NotAuthorized);
            return;
        }
        session.Account = _registry.Acquire(bare);
        session.State = SessionState.Authenticated;
        // PLAIN has no additional data: an empty <success/>, as Openfire sends (spec 7.3).
        SendSasl(session, "success"u8, additionalData);
        CoreLog.Authenticated(_logger, session.StreamId, bare.ToString());
    }

    /// <summary>
    /// Sends the failure; at <see cref="CoreServerOptions.MaxAuthFailures"/> failures (Openfire's
    /// <c>xmpp.auth.retries</c>, 3) the session ends with <c>not-authorized</c> and the close IQ
    /// (spec 5.4; RFC 6120 6.4.5 allows 2 to 5 retries).
    /// </summary>
    private async Task FailAuthAsync(ClientSession session, SaslFailure failure)
    {
        session.Sasl = null;
        SendSaslFailure(session, failure);
        if (failure == SaslFailure.TemporaryAuthFailure)
        {
            return;
        }
        if (++session.AuthFailures >= _options.MaxAuthFailures)
        {
            await EndAsync(session, new TerminationRequest(SessionEndReason.AuthFailures, StreamErrorCondition.NotAuthorized,
                $"{session.AuthFailures} failed authentication attempts"));
        }
    }

    private void SendSaslFailure(ClientSession session, SaslFailure failure)
    {
        using var buffer = PooledBufferWriter.Rent(128);
        var writer = new XmlBufferWriter(buffer);
        writer.StartElement("failure"u8, XmppNamespaces.Sasl);
        writer.StartElement(System.Text.Encoding.ASCII.GetBytes(failure.ToElementName()));
        writer.EndElement();
        writer.EndElement();
        DeliverRawText(session, buffer.WrittenSpan);
    }

    /// <summary><c>&lt;challenge/&gt;</c> or <c>&lt;success/&gt;</c>: empty without data, else base64 ("=" for zero bytes, RFC 6120 6.4.2).</summary>
    private void SendSasl(ClientSession session, ReadOnlySpan<byte> name, byte[]? data)
    {
        using var buffer = PooledBufferWriter.Rent(256);
        var writer = new XmlBufferWriter(buffer);
        writer.StartElement(name, XmppNamespaces.Sasl);
        if (data is not null)
        {
            writer.CloseStartTag();
            SaslBase64.Encode(data, buffer);
        }
        writer.EndElement();
        DeliverRawText(session, buffer.WrittenSpan);
    }
}
