using ConnMgr.Buffers;
using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ConnMgr.Core.Links;
using ConnMgr.Core.Stanzas;
using ConnMgr.Core.Storage;
using ConnMgr.Protocol;
using ConnMgr.Protocol.Xml;
using Microsoft.Extensions.Logging;

namespace ConnMgr.Core.Sessions;

/// <summary>
/// The XMPP server logic run for each session's queued work: SASL, resource binding, IQs,
/// message routing, presence and subscriptions, roster. One instance serves all sessions; it
/// holds no per-session state itself. Split over partial files by concern.
/// </summary>
internal sealed partial class SessionProcessor
{
    /// <summary>Route children carry no namespace or <c>jabber:client</c> (spec 6.1); read them as client stanzas.</summary>
    private static readonly XmlNamespaceScope s_clientScope = XmlNamespaceScope.Create(XmppNamespaces.Client);

    private readonly CoreServer _server;
    private readonly CoreServerOptions _options;
    private readonly XmppStore _store;
    private readonly SessionRegistry _registry;
    private readonly ILogger _logger;
    private readonly string _domain;

    public SessionProcessor(CoreServer server)
    {
        _server = server;
        _options = server.Options;
        _store = server.Store;
        _registry = server.Registry;
        _logger = server.Logger;
        _domain = server.Domain;
    }

    public async Task ProcessAsync(ClientSession session, SessionWork work)
    {
        switch (work.Kind)
        {
            case SessionWorkKind.Stanza:
                if (session.State != SessionState.Closed)
                {
                    await ProcessStanzaAsync(session, work.Stanza, work.Buffer.AsMemory(0, work.Length));
                }
                return;
            case SessionWorkKind.CmClose:
                var wasOpen = session.State != SessionState.Closed;
                if (wasOpen)
                {
                    await EndAsync(session, new TerminationRequest(SessionEndReason.ClosedByCm));
                }
                // Already gone (ended by the core first): the CM treats item-not-found as success (spec 5.3).
                ReplyToCm(session, work, wasOpen ? null : StanzaErrorCondition.ItemNotFound);
                return;
            case SessionWorkKind.CmFailed:
                await StoreFailedDeliveryAsync(session, work.Buffer.AsMemory(0, work.Length));
                ReplyToCm(session, work, null);
                return;
        }
    }

    private Task ProcessStanzaAsync(ClientSession session, StanzaKind kind, ReadOnlyMemory<byte> stanza)
    {
        switch (kind)
        {
            case StanzaKind.Auth:
                return HandleAuthAsync(session, stanza);
            case StanzaKind.Response:
                return HandleResponseAsync(session, stanza);
        }
        if (session.State == SessionState.Connected)
        {
            // RFC 6120 6.4 and 7.1: nothing but SASL before authentication.
            return Refuse(session, "stanza before authentication");
        }
        return kind switch
        {
            StanzaKind.Iq => HandleIqAsync(session, stanza),
            StanzaKind.Message => session.State == SessionState.Bound ? HandleMessageAsync(session, stanza) : Refuse(session, "message before resource binding"),
            _ => session.State == SessionState.Bound ? HandlePresenceAsync(session, stanza) : Refuse(session, "presence before resource binding"),
        };
    }

    /// <summary>
    /// RFC 6120 7.1: a stanza to anyone but the server or the account before binding closes the
    /// stream with <c>not-authorized</c>; the session never bound, so the close IQ follows (spec 5.4).
    /// </summary>
    private Task Refuse(ClientSession session, string why)
        => EndAsync(session, new TerminationRequest(SessionEndReason.NotAuthorized, StreamErrorCondition.NotAuthorized, why));

    public void OnProcessingFailed(ClientSession session, Exception exception)
        => CoreLog.SessionFailed(_logger, session.StreamId, exception);

    /// <summary>Runs a termination requested from outside the processor.</summary>
    public Task TerminateAsync(ClientSession session, TerminationRequest request) => EndAsync(session, request);

    /// <summary>
    /// Ends a session: the stream error as a raw-text route, then the close IQ for a session that
    /// never bound (spec 5.4, 0.1 point 1: a bound session gets only the error, and the CM closes
    /// the client on it), unavailable presence to everyone who had its presence, and the resource
    /// and account released.
    /// </summary>
    private async Task EndAsync(ClientSession session, TerminationRequest request)
    {
        try
        {
            if (session.State == SessionState.Closed)
            {
                return;
            }
            var wasBound = session.State == SessionState.Bound;
            session.State = SessionState.Closed;
            _registry.Remove(session);
            session.Group.Sessions.TryRemove(new KeyValuePair<string, ClientSession>(session.StreamId, session));

            if (request.Error != StreamErrorCondition.None)
            {
                using var error = PooledBufferWriter.Rent(256);
                XmppElements.WriteStreamError(error, request.Error, request.Text, includeStreamNamespaceDeclaration: true);
                DeliverRawText(session, error.WrittenSpan);
            }
            if (!wasBound && request.Reason is not (SessionEndReason.ClosedByCm or SessionEndReason.CmGone or SessionEndReason.Shutdown))
            {
                SendCloseIq(session);
            }
            var account = session.Account;
            if (account is not null)
            {
                try
                {
                    if (wasBound)
                    {
                        account.Unbind(session);
                        if (request.Reason != SessionEndReason.Shutdown)
                        {
                            await BroadcastEndOfPresenceAsync(session);
                        }
                    }
                }
                finally
                {
                    session.Account = null;
                    _registry.Release(account);
                }
            }
            CoreLog.SessionEnded(_logger, session.StreamId, session.Jid?.ToString() ?? "(not bound)", request.Reason, request.Text ?? "");
        }
        finally
        {
            request.Complete();
        }
    }

    /// <summary>Spec 5.5: the CM could not deliver a message; keep it for the next login (XEP-0160).</summary>
    private async Task StoreFailedDeliveryAsync(ClientSession session, ReadOnlyMemory<byte> iqBytes)
    {
        string? owner;
        ReadOnlyMemory<byte> message;
        {
            var iq = new XmlElementReader(iqBytes.Span, s_clientScope);
            var failed = FindFailedMessage(iq, out var offset, out var length);
            if (!failed)
            {
                return;
            }
            message = iqBytes.Slice(offset, length);
            var stanza = new XmlElementReader(message.Span, s_clientScope);
            if (!IsStorable(stanza))
            {
                return;
            }
            owner = TryGetJid(stanza, "to"u8, out var to, out _) && to is { Local: not null } && to.Domain == _domain
                ? to.Local
                : session.Account?.User;
        }
        if (owner is not null)
        {
            var result = await _store.StoreOfflineAsync(owner, message, DateTimeOffset.UtcNow);
            CoreLog.FailedDeliveryStored(_logger, session.StreamId, owner, result);
        }
    }

    private static bool FindFailedMessage(scoped in XmlElementReader iq, out int offset, out int length)
    {
        offset = length = 0;
        if (!iq.TryGetFirstChild(out var session))
        {
            return false;
        }
        foreach (var action in session.Children)
        {
            if (action.LocalName.SequenceEqual("failed"u8) && action.TryGetFirstChild(out var message))
            {
                // The message's place inside the IQ's bytes, so it can be used after an await.
                offset = OffsetOf(iq.Raw, message.Raw);
                length = message.Raw.Length;
                return true;
            }
        }
        return false;
    }

    private static int OffsetOf(ReadOnlySpan<byte> outer, ReadOnlySpan<byte> inner)
        => (int)Unsafe.ByteOffset(ref MemoryMarshal.GetReference(outer), ref MemoryMarshal.GetReference(inner));

    private void ReplyToCm(ClientSession session, SessionWork work, StanzaErrorCondition? condition)
    {
        var link = work.Link is { IsClosed: false } l ? l : session.Group.PickLink(session.StreamId);
        if (link is null)
        {
            return;
        }
        var iq = new XmlElementReader(work.Bytes, s_clientScope);
        link.WriteIqReply(iq, condition);
    }

    // ---- output ----

    /// <summary>Writes a stanza to a client in an element-form route (spec 6.2).</summary>
    private void Deliver(ClientSession target, ReadOnlySpan<byte> stanza)
    {
        var link = target.CurrentLink();
        if (link is null || target.IsTerminating)
        {
            return;
        }
        using var scope = link.Output.Begin();
        var writer = new XmlBufferWriter(scope.Output);
        LinkWriting.StartRoute(ref writer, target.StreamId, _domain, target.Group.Domain);
        writer.Raw(stanza);
        writer.EndElement();
        scope.Complete();
    }

    /// <summary>
    /// Writes what Openfire sends with <c>deliverRawText</c> (SASL elements, stream errors): as
    /// escaped text or as elements, per <see cref="CoreServerOptions.RawTextRoutes"/> (spec 6.2).
    /// </summary>
    private void DeliverRawText(ClientSession target, ReadOnlySpan<byte> xml)
    {
        var link = target.CurrentLink();
        if (link is null)
        {
            return;
        }
        using var scope = link.Output.Begin();
        var writer = new XmlBufferWriter(scope.Output);
        LinkWriting.StartRoute(ref writer, target.StreamId, _domain, target.Group.Domain);
        if (_options.RawTextRoutes == RawTextRouteForm.EscapedText)
        {
            writer.Text(xml);
        }
        else
        {
            writer.Raw(xml);
        }
        writer.EndElement();
        scope.Complete();
    }

    private void SendCloseIq(ClientSession session)
    {
        var link = session.CurrentLink();
        if (link is null)
        {
            return;
        }
        using var scope = link.Output.Begin();
        LinkWriting.WriteCloseIq(scope.Output, _server.NextIqId(), _domain, session.Group.Domain, session.StreamId);
        scope.Complete();
    }

    /// <summary>Renders into a pooled buffer, writes to the client, returns the buffer.</summary>
    private void DeliverRendered<TState>(ClientSession target, TState state, RenderAction<TState> render)
    {
        using var buffer = PooledBufferWriter.Rent();
        render(buffer, state);
        Deliver(target, buffer.WrittenSpan);
    }

    private delegate void RenderAction<in TState>(IBufferWriter<byte> output, TState state);

    /// <summary>Answers a client stanza with an error (RFC 6120 8.3), unless it is an error itself (8.3.1).</summary>
    private void ReplyError(ClientSession session, ReadOnlySpan<byte> stanzaBytes, StanzaErrorCondition condition, bool includeContent = true, string? text = null)
    {
        var stanza = new XmlElementReader(stanzaBytes, s_clientScope);
        if (stanza.AttributeEquals("type"u8, "error"u8))
        {
            return;
        }
        using var buffer = PooledBufferWriter.Rent(stanzaBytes.Length + 256);
        StanzaWriting.WriteErrorReply(buffer, stanza, SenderAddress(session), condition, includeContent, text);
        Deliver(session, buffer.WrittenSpan);
    }

    /// <summary>The session's full JID once bound, its bare JID between SASL and binding.</summary>
    private static string? SenderAddress(ClientSession session)
        => session.Jid?.ToString() ?? session.Account?.BareJidText;

    // ---- reading ----

    /// <summary>
    /// Reads a JID attribute. False when absent (<paramref name="present"/> false) or not a valid JID
    /// (<paramref name="present"/> true): the caller answers <c>jid-malformed</c>.
    /// </summary>
    private static bool TryGetJid(scoped in XmlElementReader stanza, ReadOnlySpan<byte> attribute, out Jid? jid, out bool present)
    {
        jid = null;
        present = stanza.TryGetAttribute(attribute, out var raw);
        if (!present)
        {
            return false;
        }
        if (raw.IndexOf((byte)'&') < 0)
        {
            return Jid.TryParse(raw, out jid);
        }
        try
        {
            return Jid.TryParse(XmlEscaping.UnescapeAttributeToString(raw), out jid);
        }
        catch (FormatException)
        {
            return false;
        }
    }

    /// <summary>XEP-0160: chat and normal messages with a body are worth keeping for an offline user.</summary>
    private static bool IsStorable(scoped in XmlElementReader message)
    {
        var type = MessageTypes.Of(message);
        return type is MessageType.Normal or MessageType.Chat && HasChild(message, "body"u8);
    }

    private static bool HasChild(scoped in XmlElementReader element, ReadOnlySpan<byte> localName)
    {
        foreach (var child in element.Children)
        {
            if (child.LocalName.SequenceEqual(localName))
            {
                return true;
            }
        }
        return false;
    }
}
