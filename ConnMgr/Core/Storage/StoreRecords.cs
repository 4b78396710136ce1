using ConnMgr.Protocol.Sasl;

namespace ConnMgr.Core.Storage;

/// <summary>What the SASL server needs to verify a login, for both SCRAM hashes; never the password.</summary>
internal sealed record UserCredentials(string User, ScramCredential Sha1, ScramCredential Sha256);

/// <summary>The subscription states of RFC 6121 section 2.1.2.5.</summary>
internal enum Subscription { None, To, From, Both }

/// <summary>
/// One contact in a user's roster (RFC 6121 section 2.1.2). <see cref="Jid"/> is the contact's
/// bare JID, already normalised by the caller. <see cref="AskSubscribe"/> is the
/// <c>ask='subscribe'</c> flag of an outgoing request still pending; <see cref="PendingIn"/>
/// records an incoming subscription request the user has not answered yet (RFC 6121
/// section 3.1.3), so it can be presented again at the next login.
/// </summary>
internal sealed record RosterItem(string Jid, string? Name, Subscription Subscription, bool AskSubscribe, bool PendingIn, IReadOnlyList<string> Groups);

/// <summary>A stanza stored for a user who was offline, oldest first by <see cref="Id"/>.</summary>
internal sealed record OfflineMessage(long Id, DateTimeOffset Stamp, ReadOnlyMemory<byte> Stanza);

internal enum OfflineStoreResult
{
    /// <summary>Committed to disk: the sender may be told the message was accepted.</summary>
    Stored,

    /// <summary>No such user (perhaps just removed by the CLI).</summary>
    UnknownUser,

    /// <summary>
    /// The user already has <see cref="XmppStoreOptions.MaxOfflineMessagesPerUser"/> messages
    /// waiting; the core answers the sender with service-unavailable (XEP-0160).
    /// </summary>
    QuotaExceeded,
}

/// <summary>
/// Outcome of <see cref="XmppStore.ImportUsersAsync"/>. <see cref="SkippedExisting"/> counts users
/// that already existed, including a name repeated in the input; <see cref="Invalid"/> counts
/// entries whose name or password was rejected by <see cref="UserNames"/>.
/// </summary>
internal sealed record ImportResult(int Added, int SkippedExisting, int Invalid);
