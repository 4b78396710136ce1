using ConnMgr.Buffers;
using System.Globalization;
using ConnMgr.Core.Stanzas;
using ConnMgr.Core.Storage;
using ConnMgr.Protocol;
using ConnMgr.Protocol.Xml;

namespace ConnMgr.Core.Sessions;

/// <summary>
/// Presence (RFC 6121 4) and subscriptions (RFC 6121 3). Every user is local, so the "user's
/// server" and the "contact's server" of the RFC are both this core: a subscription stanza
/// updates the sender's roster, then the recipient's, each under its own gate, and is
/// delivered to the recipient's available resources. A request for a recipient who is offline
/// is kept as the pending-in flag and presented again at their next initial presence.
/// </summary>
internal sealed partial class SessionProcessor
{
    /// <summary>Offline messages taken from the store per round trip; bounds the memory of one take.</summary>
    private const int OfflineBatch = 100;

    private async Task HandlePresenceAsync(ClientSession session, ReadOnlyMemory<byte> bytes)
    {
        PresenceType type;
        Jid? to;
        var priority = 0;
        {
            var presence = new XmlElementReader(bytes.Span, s_clientScope);
            type = PresenceTypes.Of(presence);
            if (type == PresenceType.Invalid)
            {
                ReplyError(session, bytes.Span, StanzaErrorCondition.BadRequest, includeContent: false);
                return;
            }
            if (!TryGetJid(presence, "to"u8, out to, out var present) && present)
            {
                ReplyError(session, bytes.Span, StanzaErrorCondition.JidMalformed, includeContent: false);
                return;
            }
            if (!TryReadPriority(presence, out priority))
            {
                ReplyError(session, bytes.Span, StanzaErrorCondition.BadRequest, includeContent: false);
                return;
            }
        }

        if (to is null)
        {
            switch (type)
            {
                case PresenceType.Available:
                    await BroadcastAvailableAsync(session, bytes, priority);
                    break;
                case PresenceType.Unavailable:
                    await BroadcastUnavailableAsync(session, bytes);
                    break;
            }
            // Subscription states and probes need an address; errors without one go nowhere.
            return;
        }
        if (to.Domain != _domain)
        {
            ReplyError(session, bytes.Span, StanzaErrorCondition.RemoteServerNotFound, includeContent: false);
            return;
        }
        if (to.Local is null)
        {
            // Presence to the server itself: nothing to do.
            return;
        }
        var account = session.Account!;
        var contact = to.Bare;
        switch (type)
        {
            case PresenceType.Subscribe when contact != account.BareJid:
                await SubscribeAsync(account, contact, bytes);
                break;
            case PresenceType.Subscribed:
                await ApproveAsync(account, contact, bytes);
                break;
            case PresenceType.Unsubscribe:
                await UnsubscribeAsync(account, contact, bytes, updateUserRoster: true);
                break;
            case PresenceType.Unsubscribed:
                await CancelAsync(account, contact, bytes, updateUserRoster: true);
                break;
            case PresenceType.Probe:
                await AnswerProbeAsync(session, contact);
                break;
            case PresenceType.Available or PresenceType.Unavailable:
                await SendDirectedAsync(session, bytes, to, type == PresenceType.Available);
                break;
            case PresenceType.Error:
                RouteDirected(session, bytes.Span, to);
                break;
        }
    }

    /// <summary>RFC 6121 4.7.2.3: an integer from -128 to 127; absent is 0.</summary>
    private static bool TryReadPriority(scoped in XmlElementReader presence, out int priority)
    {
        priority = 0;
        foreach (var child in presence.Children)
        {
            if (child.LocalName.SequenceEqual("priority"u8))
            {
                return int.TryParse(child.GetText().Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out priority)
                    && priority is >= sbyte.MinValue and <= sbyte.MaxValue;
            }
        }
        return true;
    }

    // ---- broadcast presence ----

    /// <summary>
    /// RFC 6121 4.2.2 and 4.4.2: to every contact with a subscription from/both, and to the user's
    /// own available resources including this one. An initial presence (4.2) also gets the
    /// presence of the user's other available resources, probes the
    /// contacts the user is subscribed to (answered at once: their current presence, 4.2.3),
    /// presents unanswered subscription requests (3.1.3) and delivers offline messages
    /// (XEP-0160 4, unless the priority is negative).
    /// </summary>
    private async Task BroadcastAvailableAsync(ClientSession session, ReadOnlyMemory<byte> bytes, int priority)
    {
        var account = session.Account!;
        var initial = session.Presence is null;
        byte[] stamped;
        using (var buffer = PooledBufferWriter.Rent(bytes.Length + 128))
        {
            StanzaWriting.WriteStampedWithoutTo(buffer, new XmlElementReader(bytes.Span, s_clientScope), session.Jid!.ToString());
            stamped = buffer.WrittenSpan.ToArray();
        }
        session.Presence = new PresenceSnapshot(stamped, priority);

        var roster = await SnapshotRosterAsync(account);
        foreach (var item in roster)
        {
            if (item.Subscription is Subscription.From or Subscription.Both)
            {
                SendPresenceTo(stamped, FindLocalAccount(item.Jid), item.Jid);
            }
        }
        SendPresenceTo(stamped, account, account.BareJidText);

        if (!initial)
        {
            return;
        }
        var fullJid = session.Jid.ToString();
        // A user is subscribed to itself both ways (RFC 6121 4.2.2): the new resource learns of the others.
        foreach (var resource in account.Resources)
        {
            if (resource != session && resource.Presence is { } own)
            {
                DeliverAddressed(session, own.Stanza, fullJid);
            }
        }
        foreach (var item in roster)
        {
            if (item.Subscription is Subscription.To or Subscription.Both && FindLocalAccount(item.Jid) is { } contact)
            {
                foreach (var resource in contact.Resources)
                {
                    if (resource.Presence is { } presence)
                    {
                        DeliverAddressed(session, presence.Stanza, fullJid);
                    }
                }
            }
            if (item.PendingIn)
            {
                DeliverRendered(session, (From: item.Jid, To: account.BareJidText), static (output, state) =>
                    WritePresence(output, state.From, state.To, "subscribe"u8));
            }
        }
        if (priority >= 0)
        {
            await DeliverOfflineMessagesAsync(session);
        }
    }

    private async Task DeliverOfflineMessagesAsync(ClientSession session)
    {
        var user = session.Account!.User;
        while (true)
        {
            var messages = await _store.TakeOfflineAsync(user, OfflineBatch);
            foreach (var message in messages)
            {
                using var buffer = PooledBufferWriter.Rent(message.Stanza.Length + 128);
                StanzaWriting.WriteWithDelay(buffer, new XmlElementReader(message.Stanza.Span, s_clientScope), _domain, message.Stamp);
                Deliver(session, buffer.WrittenSpan);
            }
            if (messages.Count < OfflineBatch)
            {
                return;
            }
        }
    }

    private Task BroadcastUnavailableAsync(ClientSession session, ReadOnlyMemory<byte> bytes)
    {
        byte[] stamped;
        using (var buffer = PooledBufferWriter.Rent(bytes.Length + 128))
        {
            StanzaWriting.WriteStampedWithoutTo(buffer, new XmlElementReader(bytes.Span, s_clientScope), session.Jid!.ToString());
            stamped = buffer.WrittenSpan.ToArray();
        }
        return BroadcastUnavailableAsync(session, stamped);
    }

    /// <summary>When a bound session ends for any reason, everyone who had its presence learns it is gone (RFC 6121 4.5.2).</summary>
    private Task BroadcastEndOfPresenceAsync(ClientSession session)
    {
        if (session.Presence is null && session.DirectedPresence is not { Count: > 0 })
        {
            return Task.CompletedTask;
        }
        using var buffer = PooledBufferWriter.Rent(256);
        WritePresence(buffer, session.Jid!.ToString(), null, "unavailable"u8);
        return BroadcastUnavailableAsync(session, buffer.WrittenSpan.ToArray());
    }

    /// <summary>RFC 6121 4.5.2: to the contacts with from/both, the user's other available resources, and every directed-presence recipient (4.6.3).</summary>
    private async Task BroadcastUnavailableAsync(ClientSession session, byte[] stamped)
    {
        var account = session.Account!;
        var wasAvailable = session.Presence is not null;
        session.Presence = null;
        if (wasAvailable)
        {
            var roster = await SnapshotRosterAsync(account);
            foreach (var item in roster)
            {
                if (item.Subscription is Subscription.From or Subscription.Both)
                {
                    SendPresenceTo(stamped, FindLocalAccount(item.Jid), item.Jid);
                }
            }
            SendPresenceTo(stamped, account, account.BareJidText);
        }
        if (session.DirectedPresence is { } directed)
        {
            session.DirectedPresence = null;
            foreach (var jid in directed)
            {
                RouteDirectedStamped(stamped, jid);
            }
        }
    }

    // ---- directed presence and probes ----

    /// <summary>
    /// RFC 6121 4.6: presence to one entity, remembered while available so that it gets unavailable
    /// when the user goes (contacts with a from/both subscription get that anyway and are not remembered).
    /// </summary>
    private async Task SendDirectedAsync(ClientSession session, ReadOnlyMemory<byte> bytes, Jid to, bool available)
    {
        RouteDirected(session, bytes.Span, to);
        var item = await GetRosterItemAsync(session.Account!, to.Bare.ToString());
        if (item is { Subscription: Subscription.From or Subscription.Both })
        {
            return;
        }
        if (available)
        {
            (session.DirectedPresence ??= []).Add(to);
        }
        else
        {
            session.DirectedPresence?.Remove(to);
        }
    }

    private void RouteDirected(ClientSession session, ReadOnlySpan<byte> bytes, Jid to)
    {
        using var buffer = PooledBufferWriter.Rent(bytes.Length + 128);
        StanzaWriting.WriteStamped(buffer, new XmlElementReader(bytes, s_clientScope), session.Jid!.ToString(), to: null);
        RouteDirectedStamped(buffer.WrittenSpan, to);
    }

    /// <summary>Presence to a full JID goes to that resource if connected (RFC 6121 8.5.3.1), to a bare JID to all available resources (8.5.2.1.2).</summary>
    private void RouteDirectedStamped(ReadOnlySpan<byte> stamped, Jid to)
    {
        var account = to.Domain == _domain && to.Local is not null ? _registry.FindAccount(to.Local) : null;
        if (account is null)
        {
            return;
        }
        if (to.Resource is not null)
        {
            if (account.FindResource(to.Resource) is { } target)
            {
                Deliver(target, stamped);
            }
            return;
        }
        foreach (var resource in account.Resources)
        {
            if (resource.Presence is not null)
            {
                Deliver(resource, stamped);
            }
        }
    }

    /// <summary>
    /// RFC 6121 4.3.2: a probe from a subscriber gets the contact's current presence, one stanza
    /// per available resource, or unavailable when there is none; anyone else gets unsubscribed.
    /// </summary>
    private async Task AnswerProbeAsync(ClientSession session, Jid contact)
    {
        var account = _registry.Acquire(contact);
        try
        {
            var item = await GetRosterItemAsync(account, session.Account!.BareJidText);
            var prober = session.Jid!.ToString();
            var contactJid = account.BareJidText;
            if (item is not { Subscription: Subscription.From or Subscription.Both })
            {
                DeliverRendered(session, (From: contactJid, To: prober), static (output, state) =>
                    WritePresence(output, state.From, state.To, "unsubscribed"u8));
                return;
            }
            var any = false;
            foreach (var resource in account.Resources)
            {
                if (resource.Presence is { } presence)
                {
                    DeliverAddressed(session, presence.Stanza, prober);
                    any = true;
                }
            }
            if (!any)
            {
                DeliverRendered(session, (From: contactJid, To: prober), static (output, state) =>
                    WritePresence(output, state.From, state.To, "unavailable"u8));
            }
        }
        finally
        {
            _registry.Release(account);
        }
    }

    // ---- subscriptions (RFC 6121 3) ----

    /// <summary>RFC 6121 3.1: the user asks to see the contact's presence.</summary>
    private async Task SubscribeAsync(UserAccount user, Jid contact, ReadOnlyMemory<byte> original)
    {
        var contactText = contact.ToString();
        var (before, after) = await ModifyRosterAsync(user, contactText, item =>
        {
            item ??= new RosterItem(contactText, null, Subscription.None, false, false, []);
            return item.Subscription is Subscription.To or Subscription.Both ? item : item with { AskSubscribe = true };
        });
        PushIfChanged(user, before, after);

        var recipient = _registry.Acquire(contact);
        try
        {
            if (recipient.Resources.Length == 0 && !await _store.UserExistsAsync(contact.Local!))
            {
                // No such user: answer for them with unsubscribed, which clears the pending ask (RFC 6121 3.1.3 lets the server refuse).
                await ReceiveUnsubscribedAsync(user, recipient, null);
                return;
            }
            var item = await GetRosterItemAsync(recipient, user.BareJidText);
            if (item is { Subscription: Subscription.From or Subscription.Both })
            {
                // Already approved: the contact's server answers subscribed on the contact's behalf (RFC 6121 3.1.3).
                await ReceiveSubscribedAsync(user, recipient, null);
                return;
            }
            await ModifyRosterAsync(recipient, user.BareJidText, existing =>
                (existing ?? new RosterItem(user.BareJidText, null, Subscription.None, false, false, [])) with { PendingIn = true });
            DeliverSubscriptionStanza(recipient, user, original, "subscribe"u8);
        }
        finally
        {
            _registry.Release(recipient);
        }
    }

    /// <summary>RFC 6121 3.1.5: the user approves the contact's request; ignored without one.</summary>
    private async Task ApproveAsync(UserAccount user, Jid contact, ReadOnlyMemory<byte> original)
    {
        var (before, after) = await ModifyRosterAsync(user, contact.ToString(), item => item is { PendingIn: true }
            ? item with
            {
                PendingIn = false,
                Subscription = item.Subscription is Subscription.To or Subscription.Both ? Subscription.Both : Subscription.From,
            }
            : item);
        if (before is not { PendingIn: true })
        {
            return;
        }
        PushIfChanged(user, before, after);
        var recipient = _registry.Acquire(contact);
        try
        {
            await ReceiveSubscribedAsync(recipient, user, original);
        }
        finally
        {
            _registry.Release(recipient);
        }
    }

    /// <summary>RFC 6121 3.3: the user stops seeing the contact's presence.</summary>
    private async Task UnsubscribeAsync(UserAccount user, Jid contact, ReadOnlyMemory<byte>? original, bool updateUserRoster)
    {
        if (updateUserRoster)
        {
            var (before, after) = await ModifyRosterAsync(user, contact.ToString(), WithoutToSubscription);
            if (before is null || (before.Subscription is Subscription.None or Subscription.From && !before.AskSubscribe))
            {
                return;
            }
            PushIfChanged(user, before, after);
        }
        var recipient = _registry.Acquire(contact);
        try
        {
            var (before, after) = await ModifyRosterAsync(recipient, user.BareJidText, WithoutFromSubscription);
            if (before is null)
            {
                return;
            }
            PushIfChanged(recipient, before, after);
            DeliverSubscriptionStanza(recipient, user, original, "unsubscribe"u8);
            // RFC 6121 3.3.3: the user no longer sees the contact.
            SendUnavailableFrom(recipient, user);
        }
        finally
        {
            _registry.Release(recipient);
        }
    }

    /// <summary>RFC 6121 3.2: the user cancels the contact's subscription, or refuses its request.</summary>
    private async Task CancelAsync(UserAccount user, Jid contact, ReadOnlyMemory<byte>? original, bool updateUserRoster)
    {
        if (updateUserRoster)
        {
            var (before, after) = await ModifyRosterAsync(user, contact.ToString(), WithoutFromSubscription);
            if (before is null || (before.Subscription is Subscription.None or Subscription.To && !before.PendingIn))
            {
                return;
            }
            PushIfChanged(user, before, after);
        }
        var recipient = _registry.Acquire(contact);
        try
        {
            await ReceiveUnsubscribedAsync(recipient, user, original);
        }
        finally
        {
            _registry.Release(recipient);
        }
    }

    /// <summary>
    /// <paramref name="recipient"/> learns that <paramref name="approver"/> approved its request
    /// (RFC 6121 3.1.6): only if it had asked; then it gets the approver's current presence (3.1.5).
    /// </summary>
    private async Task ReceiveSubscribedAsync(UserAccount recipient, UserAccount approver, ReadOnlyMemory<byte>? original)
    {
        var (before, after) = await ModifyRosterAsync(recipient, approver.BareJidText, item => item is { AskSubscribe: true }
            ? item with
            {
                AskSubscribe = false,
                Subscription = item.Subscription is Subscription.From or Subscription.Both ? Subscription.Both : Subscription.To,
            }
            : item);
        if (before is not { AskSubscribe: true })
        {
            return;
        }
        PushIfChanged(recipient, before, after);
        DeliverSubscriptionStanza(recipient, approver, original, "subscribed"u8);
        foreach (var resource in approver.Resources)
        {
            if (resource.Presence is { } presence)
            {
                SendPresenceTo(presence.Stanza, recipient, recipient.BareJidText);
            }
        }
    }

    /// <summary><paramref name="recipient"/> loses its subscription to <paramref name="canceller"/>, or its request is refused (RFC 6121 3.2.3).</summary>
    private async Task ReceiveUnsubscribedAsync(UserAccount recipient, UserAccount canceller, ReadOnlyMemory<byte>? original)
    {
        var (before, after) = await ModifyRosterAsync(recipient, canceller.BareJidText, WithoutToSubscription);
        if (before is null || (before.Subscription is Subscription.None or Subscription.From && !before.AskSubscribe))
        {
            return;
        }
        PushIfChanged(recipient, before, after);
        DeliverSubscriptionStanza(recipient, canceller, original, "unsubscribed"u8);
        // RFC 6121 3.2.2: the recipient no longer sees the canceller.
        SendUnavailableFrom(canceller, recipient);
    }

    /// <summary>The owner stops seeing the contact (RFC 6121 3.2, 3.3): the "to" half and any request of the owner's go.</summary>
    private static RosterItem? WithoutToSubscription(RosterItem? item) => item is null ? null : item with
    {
        AskSubscribe = false,
        Subscription = item.Subscription switch
        {
            Subscription.Both => Subscription.From,
            Subscription.To => Subscription.None,
            var s => s,
        },
    };

    /// <summary>The contact stops seeing the owner (RFC 6121 3.2, 3.3): the "from" half and any request from the contact go.</summary>
    private static RosterItem? WithoutFromSubscription(RosterItem? item) => item is null ? null : Orphaned(item, item with
    {
        PendingIn = false,
        Subscription = item.Subscription switch
        {
            Subscription.Both => Subscription.To,
            Subscription.From => Subscription.None,
            var s => s,
        },
    });

    /// <summary>A row that only a pending request had created goes away with the request.</summary>
    private static RosterItem? Orphaned(RosterItem before, RosterItem after)
        => IsHidden(before) && after is { Subscription: Subscription.None, AskSubscribe: false, PendingIn: false } ? null : after;

    private void PushIfChanged(UserAccount account, RosterItem? before, RosterItem? after)
    {
        if (after is null)
        {
            if (before is not null && !IsHidden(before))
            {
                PushRosterItem(account, before, removed: true);
            }
            return;
        }
        if (!Same(before, after))
        {
            PushRosterItem(account, after, removed: false);
        }
    }

    /// <summary>
    /// A subscription stanza to the recipient's available resources, <c>from</c> the sender's bare
    /// JID (RFC 6121 3.1.2): the client's own stanza (its status or nick kept) or a plain one.
    /// </summary>
    private void DeliverSubscriptionStanza(UserAccount recipient, UserAccount sender, ReadOnlyMemory<byte>? original, ReadOnlySpan<byte> type)
    {
        using var buffer = PooledBufferWriter.Rent(original?.Length + 128 ?? 256);
        if (original is { } bytes)
        {
            StanzaWriting.WriteStamped(buffer, new XmlElementReader(bytes.Span, s_clientScope), sender.BareJidText, recipient.BareJidText);
        }
        else
        {
            WritePresence(buffer, sender.BareJidText, recipient.BareJidText, type);
        }
        foreach (var resource in recipient.Resources)
        {
            if (resource.Presence is not null)
            {
                Deliver(resource, buffer.WrittenSpan);
            }
        }
    }

    /// <summary>Unavailable presence from each of <paramref name="watched"/>'s available resources to <paramref name="watcher"/>.</summary>
    private void SendUnavailableFrom(UserAccount watched, UserAccount watcher)
    {
        foreach (var resource in watched.Resources)
        {
            if (resource.Presence is null)
            {
                continue;
            }
            using var buffer = PooledBufferWriter.Rent(256);
            WritePresence(buffer, resource.Jid!.ToString(), watcher.BareJidText, "unavailable"u8);
            SendPresenceTo(buffer.WrittenSpan, watcher, watcher.BareJidText, alreadyAddressed: true);
        }
    }

    // ---- helpers ----

    private UserAccount? FindLocalAccount(string bareJid)
    {
        var at = bareJid.IndexOf('@');
        if (at <= 0 || !bareJid.AsSpan(at + 1).SequenceEqual(_domain))
        {
            return null;
        }
        return _registry.FindAccount(bareJid.AsSpan(0, at));
    }

    /// <summary>A stamped presence (no <c>to</c>) to each available resource of an account, addressed to <paramref name="to"/>.</summary>
    private void SendPresenceTo(ReadOnlySpan<byte> stanza, UserAccount? account, string to, bool alreadyAddressed = false)
    {
        if (account is null)
        {
            return;
        }
        PooledBufferWriter? buffer = null;
        try
        {
            foreach (var resource in account.Resources)
            {
                if (resource.Presence is null)
                {
                    continue;
                }
                if (!alreadyAddressed && buffer is null)
                {
                    buffer = PooledBufferWriter.Rent(stanza.Length + 128);
                    StanzaWriting.WriteAddressed(buffer, new XmlElementReader(stanza, s_clientScope), to);
                }
                Deliver(resource, buffer is null ? stanza : buffer.WrittenSpan);
            }
        }
        finally
        {
            buffer?.Dispose();
        }
    }

    private void DeliverAddressed(ClientSession target, ReadOnlySpan<byte> stanza, string to)
    {
        using var buffer = PooledBufferWriter.Rent(stanza.Length + 128);
        StanzaWriting.WriteAddressed(buffer, new XmlElementReader(stanza, s_clientScope), to);
        Deliver(target, buffer.WrittenSpan);
    }

    private static void WritePresence(System.Buffers.IBufferWriter<byte> output, string from, string? to, ReadOnlySpan<byte> type)
    {
        var writer = new XmlBufferWriter(output);
        writer.StartElement("presence"u8);
        writer.Attribute("from"u8, from);
        writer.OptionalAttribute("to"u8, to);
        writer.Attribute("type"u8, type);
        writer.EndElement();
    }
}
