using ConnMgr.Buffers;
using ConnMgr.Core.Stanzas;
using ConnMgr.Core.Storage;
using ConnMgr.Protocol;
using ConnMgr.Protocol.Xml;

namespace ConnMgr.Core.Sessions;

/// <summary>
/// Roster management (RFC 6121 2): get, set and remove, with a roster push to every interested
/// resource of the user after each change. No roster versioning (2.6): the configuration the
/// edge advertises does not include it.
/// </summary>
/// <remarks>
/// An incoming subscription request the user has not answered yet is kept as a roster row with
/// subscription none and the pending-in flag (the store's design), so it survives the user being
/// offline (RFC 6121 3.1.3). Such a row with no name and no group was created by the request
/// alone; RFC 6121 3.1.3 has no roster item for it, so it is hidden from roster results and
/// pushes until the user approves, names or groups it. (A contact the user added with neither
/// name nor group is hidden the same way while it has a request pending.)
/// </remarks>
internal sealed partial class SessionProcessor
{
    private static bool IsHidden(RosterItem item)
        => item.Subscription == Subscription.None && !item.AskSubscribe && item.PendingIn && item.Name is null && item.Groups.Count == 0;

    private async Task HandleRosterIqAsync(ClientSession session, ReadOnlyMemory<byte> bytes, IqType type)
    {
        var account = session.Account!;
        if (type == IqType.Get)
        {
            session.InterestedInRoster = true;
            var items = await SnapshotRosterAsync(account);
            WriteIqResult(session, bytes.Span, items, static (ref XmlBufferWriter writer, RosterItem[] roster) =>
            {
                writer.StartElement("query"u8, XmppNamespaces.Roster);
                foreach (var item in roster)
                {
                    if (!IsHidden(item))
                    {
                        WriteItem(ref writer, item, removed: false);
                    }
                }
                writer.EndElement();
            });
            return;
        }

        if (!TryReadRosterSet(bytes.Span, out var contact, out var remove, out var name, out var groups, out var error))
        {
            ReplyError(session, bytes.Span, error);
            return;
        }
        if (remove)
        {
            await RemoveRosterItemAsync(session, bytes, contact);
            return;
        }
        var (before, after) = await ModifyRosterAsync(account, contact.ToString(), existing =>
            (existing ?? new RosterItem(contact.ToString(), null, Subscription.None, false, false, [])) with { Name = name, Groups = groups });
        PushIfChanged(account, before, after);
        WriteIqResult(session, bytes.Span, 0, static (ref XmlBufferWriter _, int _) => { });
    }

    /// <summary>RFC 6121 2.3: one item, a bare JID, groups neither empty nor repeated.</summary>
    private static bool TryReadRosterSet(
        ReadOnlySpan<byte> bytes, out Jid contact, out bool remove, out string? name, out IReadOnlyList<string> groups, out StanzaErrorCondition error)
    {
        contact = null!;
        remove = false;
        name = null;
        groups = [];
        error = StanzaErrorCondition.BadRequest;
        var iq = new XmlElementReader(bytes, s_clientScope);
        var query = iq.FirstChild;
        var count = 0;
        XmlElementReader item = default;
        foreach (var child in query.Children)
        {
            if (count++ == 0)
            {
                item = child;
            }
        }
        if (count != 1 || !item.LocalName.SequenceEqual("item"u8))
        {
            return false;
        }
        if (!TryGetJid(item, "jid"u8, out var jid, out _) || jid is null || !jid.IsBare)
        {
            error = StanzaErrorCondition.JidMalformed;
            return false;
        }
        contact = jid;
        remove = item.AttributeEquals("subscription"u8, "remove"u8);
        var rawName = item.GetAttribute("name"u8);
        name = string.IsNullOrEmpty(rawName) ? null : rawName;
        var list = new List<string>();
        foreach (var child in item.Children)
        {
            if (!child.LocalName.SequenceEqual("group"u8))
            {
                continue;
            }
            var group = child.GetText();
            if (group.Length == 0)
            {
                // RFC 6121 2.3.3: an empty group name is not-acceptable.
                error = StanzaErrorCondition.NotAcceptable;
                return false;
            }
            if (list.Contains(group))
            {
                return false;
            }
            list.Add(group);
        }
        groups = list;
        return true;
    }

    /// <summary>
    /// RFC 6121 2.5.2: removing an item also cancels the subscriptions both ways, as if the user
    /// had sent unsubscribe and unsubscribed, and refuses a pending request.
    /// </summary>
    private async Task RemoveRosterItemAsync(ClientSession session, ReadOnlyMemory<byte> bytes, Jid contact)
    {
        var account = session.Account!;
        var (before, _) = await ModifyRosterAsync(account, contact.ToString(), static _ => null);
        if (before is null)
        {
            ReplyError(session, bytes.Span, StanzaErrorCondition.ItemNotFound);
            return;
        }
        PushRosterItem(account, before, removed: true);
        WriteIqResult(session, bytes.Span, 0, static (ref XmlBufferWriter _, int _) => { });
        if (contact.Domain != _domain || contact.Local is null)
        {
            return;
        }
        if (before.Subscription is Subscription.To or Subscription.Both || before.AskSubscribe)
        {
            await UnsubscribeAsync(account, contact, null, updateUserRoster: false);
        }
        if (before.Subscription is Subscription.From or Subscription.Both || before.PendingIn)
        {
            await CancelAsync(account, contact, null, updateUserRoster: false);
        }
    }

    /// <summary>The roster as an array, loaded on first use.</summary>
    private async Task<RosterItem[]> SnapshotRosterAsync(UserAccount account)
    {
        await account.RosterGate.WaitAsync();
        try
        {
            var roster = await LoadRosterAsync(account);
            var items = new RosterItem[roster.Count];
            roster.Values.CopyTo(items, 0);
            return items;
        }
        finally
        {
            account.RosterGate.Release();
        }
    }

    /// <summary>The roster item for one contact, or null.</summary>
    private async Task<RosterItem?> GetRosterItemAsync(UserAccount account, string contact)
    {
        await account.RosterGate.WaitAsync();
        try
        {
            var roster = await LoadRosterAsync(account);
            return roster.GetValueOrDefault(contact);
        }
        finally
        {
            account.RosterGate.Release();
        }
    }

    /// <summary>Call under the roster gate.</summary>
    private async Task<Dictionary<string, RosterItem>> LoadRosterAsync(UserAccount account)
    {
        if (account.Roster is { } cached)
        {
            return cached;
        }
        var items = await _store.GetRosterAsync(account.User);
        var roster = new Dictionary<string, RosterItem>(items.Count, StringComparer.Ordinal);
        foreach (var item in items)
        {
            roster[item.Jid] = item;
        }
        account.Roster = roster;
        return roster;
    }

    /// <summary>
    /// Read-modify-write of one roster item under the user's gate: <paramref name="change"/> gets
    /// the current item (or null) and returns the new one (or null to delete). The store is
    /// written, and the cache updated, only when the item changed.
    /// </summary>
    private async Task<(RosterItem? Before, RosterItem? After)> ModifyRosterAsync(UserAccount account, string contact, Func<RosterItem?, RosterItem?> change)
    {
        await account.RosterGate.WaitAsync();
        try
        {
            var roster = await LoadRosterAsync(account);
            var before = roster.GetValueOrDefault(contact);
            var after = change(before);
            if (after is null)
            {
                if (before is not null)
                {
                    await _store.RemoveRosterItemAsync(account.User, contact);
                    roster.Remove(contact);
                }
            }
            else if (!Same(before, after))
            {
                await _store.SetRosterItemAsync(account.User, after);
                roster[contact] = after;
            }
            return (before, after);
        }
        finally
        {
            account.RosterGate.Release();
        }
    }

    /// <summary>Records compare their group lists by reference; compare the contents.</summary>
    private static bool Same(RosterItem? a, RosterItem? b)
        => a is not null && b is not null && a.Jid == b.Jid && a.Name == b.Name && a.Subscription == b.Subscription
            && a.AskSubscribe == b.AskSubscribe && a.PendingIn == b.PendingIn && a.Groups.SequenceEqual(b.Groups);

    /// <summary>Roster push (RFC 6121 2.1.6) to each interested resource; hidden items are not pushed.</summary>
    private void PushRosterItem(UserAccount account, RosterItem item, bool removed)
    {
        if (!removed && IsHidden(item))
        {
            return;
        }
        using var query = PooledBufferWriter.Rent(256);
        {
            var writer = new XmlBufferWriter(query);
            writer.StartElement("query"u8, XmppNamespaces.Roster);
            WriteItem(ref writer, item, removed);
            writer.EndElement();
        }
        foreach (var resource in account.Resources)
        {
            if (!resource.InterestedInRoster)
            {
                continue;
            }
            var link = resource.CurrentLink();
            if (link is null)
            {
                continue;
            }
            using var scope = link.Output.Begin();
            var writer = new XmlBufferWriter(scope.Output);
            Links.LinkWriting.StartRoute(ref writer, resource.StreamId, _domain, resource.Group.Domain);
            writer.StartElement("iq"u8);
            writer.Attribute("type"u8, "set"u8);
            writer.Attribute("id"u8, _server.NextIqId());
            writer.Attribute("to"u8, resource.Jid!.ToString());
            writer.Raw(query.WrittenSpan);
            writer.EndElement();
            writer.EndElement();
            scope.Complete();
        }
    }

    private static void WriteItem(ref XmlBufferWriter writer, RosterItem item, bool removed)
    {
        writer.StartElement("item"u8);
        writer.Attribute("jid"u8, item.Jid);
        if (removed)
        {
            writer.Attribute("subscription"u8, "remove"u8);
            writer.EndElement();
            return;
        }
        writer.OptionalAttribute("name"u8, item.Name);
        writer.Attribute("subscription"u8, item.Subscription switch
        {
            Subscription.To => "to"u8,
            Subscription.From => "from"u8,
            Subscription.Both => "both"u8,
            _ => "none"u8,
        });
        if (item.AskSubscribe)
        {
            writer.Attribute("ask"u8, "subscribe"u8);
        }
        foreach (var group in item.Groups)
        {
            writer.StartElement("group"u8);
            writer.Text(group);
            writer.EndElement();
        }
        writer.EndElement();
    }
}
