using System.Text;
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
            if (type is MessageType.Chat or MessageType.Normal or MessageType.Headline && TryDeliverDirectly(session, message, type))
            {
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

        using var stamped = PooledBufferWriter.Rent(bytes.Length + 128);
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
    /// The relay fast path, without building a <see cref="Jid"/>: when <c>to</c> is plain ASCII
    /// already in prepared form (a valid JID with no upper case in its localpart, no escapes) in
    /// this domain, and a resource it names is connected or the user has an available resource,
    /// the stamped message is delivered here. False sends the message down the general path,
    /// which also handles every error and offline storage.
    /// </summary>
    private bool TryDeliverDirectly(ClientSession session, scoped in XmlElementReader message, MessageType type)
    {
        if (!message.TryGetAttribute("to"u8, out var to) || to.Length > 512 || !Ascii.IsValid(to)
            || to.IndexOf((byte)'&') >= 0 || !Jid.IsValid(to))
        {
            return false;
        }
        var slash = to.IndexOf((byte)'/');
        var head = slash < 0 ? to : to[..slash];
        var at = head.IndexOf((byte)'@');
        if (at <= 0 || head[..at].IndexOfAnyInRange((byte)'A', (byte)'Z') >= 0 || !Ascii.Equals(head[(at + 1)..], _domain))
        {
            return false;
        }
        Span<char> chars = stackalloc char[to.Length];
        Ascii.ToUtf16(to, chars, out _);
        var account = _registry.FindAccount(chars[..at]);
        if (account is null)
        {
            return false;
        }
        var target = slash < 0 ? null : account.FindResource(chars[(slash + 1)..]);
        if (slash >= 0 && target is null)
        {
            return false;
        }
        using var stamped = PooledBufferWriter.Rent(message.Raw.Length + 128);
        StanzaWriting.WriteStamped(stamped, message, session.Jid!.ToString(), to: null);
        if (target is not null)
        {
            Deliver(target, stamped.WrittenSpan);
            return true;
        }
        return DeliverToBareJid(account, stamped.WrittenSpan, highestOnly: type != MessageType.Headline);
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
