namespace ConnMgr.Core.Sessions;

/// <summary>The route children the core accepts (spec 6.1.1), by local name.</summary>
internal enum StanzaKind : byte
{
    Unknown,
    Auth,
    Response,
    Iq,
    Message,
    Presence,
}

internal static class StanzaKinds
{
    /// <summary>Dispatch is by local name only, whatever the namespace, as Openfire does (spec 0.1 point 4).</summary>
    public static StanzaKind FromLocalName(ReadOnlySpan<byte> localName) => localName switch
    {
        _ when localName.SequenceEqual("message"u8) => StanzaKind.Message,
        _ when localName.SequenceEqual("presence"u8) => StanzaKind.Presence,
        _ when localName.SequenceEqual("iq"u8) => StanzaKind.Iq,
        _ when localName.SequenceEqual("auth"u8) => StanzaKind.Auth,
        _ when localName.SequenceEqual("response"u8) => StanzaKind.Response,
        _ => StanzaKind.Unknown,
    };
}
