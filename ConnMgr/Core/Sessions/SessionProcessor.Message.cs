using ConnMgr.Buffers;
using ConnMgr.Core.Stanzas;
using ConnMgr.Core.Storage;
using ConnMgr.Protocol;
using ConnMgr.Protocol.Xml;

namespace ConnMgr.Core.Sessions;

/// <summary>
/// Message delivery, RFC 6121 8.5 for a server with one domain and no server-to-server links.
/// </summary>
/// <remarks>
/// Bare JID with available resources (8.5.2.1.1): chat and normal go to the "most available"
/// resources, read as all available resources that share the highest non-negative priority
/// (option (a) of the RFC for chat; the same for normal, which it also allows); headline goes
/// to every available resource with non-negative priority; groupchat is refused
/// (service-unavailable); error is dropped. A user whose resources all have negative priority
/// counts as having none (8.5.2.1). With no available resource (8.5.2.2): chat and normal
/// messages with a body are stored (XEP-0160) and the store's commit is awaited before the
/// session's next stanza; others are dropped, or refused for groupchat.
/// Full JID (8.5.3): delivered to that connected resource, available or not; when it is not
/// connected, chat and normal fall back to the bare-JID rules, headline is dropped, groupchat
/// refused. No such user: service-unavailable (8.5.1). Another domain: remote-server-not-found.
/// </remarks>
internal sealed partial class SessionProcessor
{
    private async Task HandleMessageAsync(ClientSession session, ReadOnlyMemory<byte> bytes)
    {
        MessageType type;
        Jid? to;
        bool storable;
        {
            var message = new XmlElementReader(bytes.Span, s_clientScope);
            type = MessageTypes.Of(message);
            if (type == MessageType.Invalid)
            {
                ReplyError(session, bytes.Span, StanzaErrorCondition.BadRequest);
                return;
            }
            if (!TryGetJid(message, "to"u8, out to, out var present) && present)
            {
                ReplyError(session, bytes.Span, StanzaErrorCondition.JidMalformed);
                return;
            }
            storable = IsStorable(message);
        }
        // RFC 6120 10.3.1: no 'to' means the sender's own bare JID.
        to ??= session.Account!.BareJid;
        if (to.Domain != _domain)
        {
            ReplyError(session, bytes.Span, StanzaErrorCondition.RemoteServerNotFound);
            return;
        }
        if (to.Local is null)
        {
            // The server itself takes no messages (RFC 6120 10.3.1 leaves it to the server).
            ReplyError(session, bytes.Span, StanzaErrorCondition.ServiceUnavailable);
            return;
        }

        using var stamped = new PooledBufferWriter(bytes.Length + 128);
        StanzaWriting.WriteStamped(stamped, new XmlElementReader(bytes.Span, s_clientScope), session.Jid!.ToString(), to: null);
        var account = _registry.FindAccount(to.Local);

        if (to.Resource is not null)
        {
            var target = account?.FindResource(to.Resource);
            if (target is not null)
            {
                Deliver(target, stamped.WrittenSpan);
                return;
            }
            if (type is MessageType.Headline or MessageType.Error)
            {
                return;
            }
            if (type == MessageType.Groupchat)
            {
                ReplyError(session, bytes.Span, StanzaErrorCondition.ServiceUnavailable);
                return;
            }
        }

        if (type == MessageType.Error)
        {
            DeliverToBareJid(account, stamped.WrittenSpan, highestOnly: true);
            return;
        }
        if (type == MessageType.Groupchat)
        {
            ReplyError(session, bytes.Span, StanzaErrorCondition.ServiceUnavailable);
            return;
        }
        if (DeliverToBareJid(account, stamped.WrittenSpan, highestOnly: type != MessageType.Headline))
        {
            return;
        }

        // No available resource with non-negative priority (RFC 6121 8.5.2.2).
        if (storable)
        {
            var result = await _store.StoreOfflineAsync(to.Local, stamped.WrittenMemory, DateTimeOffset.UtcNow);
            if (result != OfflineStoreResult.Stored)
            {
                // Unknown user (8.5.1), or over its offline quota (XEP-0160 3).
                ReplyError(session, bytes.Span, StanzaErrorCondition.ServiceUnavailable);
            }
            return;
        }
        if (account is null && !await _store.UserExistsAsync(to.Local))
        {
            ReplyError(session, bytes.Span, StanzaErrorCondition.ServiceUnavailable);
        }
    }

    /// <summary>
    /// Delivers to the available resources with non-negative priority: only those sharing the
    /// highest priority when <paramref name="highestOnly"/>. False when there is none.
    /// </summary>
    private bool DeliverToBareJid(UserAccount? account, ReadOnlySpan<byte> stanza, bool highestOnly)
    {
        if (account is null)
        {
            return false;
        }
        var resources = account.Resources;
        var highest = -1;
        foreach (var resource in resources)
        {
            if (resource.Presence is { } presence && presence.Priority > highest)
            {
                highest = presence.Priority;
            }
        }
        if (highest < 0)
        {
            return false;
        }
        foreach (var resource in resources)
        {
            if (resource.Presence is { } presence && presence.Priority >= 0 && (!highestOnly || presence.Priority == highest))
            {
                Deliver(resource, stanza);
            }
        }
        return true;
    }
}
