namespace ConnMgr.Protocol.Xml;

/// <summary>The defined stream error conditions of RFC 6120 section 4.9.3.</summary>
public enum StreamErrorCondition : byte
{
    None = 0,
    BadFormat,
    BadNamespacePrefix,
    Conflict,
    ConnectionTimeout,
    HostGone,
    HostUnknown,
    ImproperAddressing,
    InternalServerError,
    InvalidFrom,
    InvalidNamespace,
    InvalidXml,
    NotAuthorized,
    NotWellFormed,
    PolicyViolation,
    RemoteConnectionFailed,
    Reset,
    ResourceConstraint,
    RestrictedXml,
    SeeOtherHost,
    SystemShutdown,
    UndefinedCondition,
    UnsupportedEncoding,
    UnsupportedFeature,
    UnsupportedStanzaType,
    UnsupportedVersion,
}

public static class StreamErrorConditions
{
    private static readonly string[] s_names =
    [
        "", "bad-format", "bad-namespace-prefix", "conflict", "connection-timeout", "host-gone",
        "host-unknown", "improper-addressing", "internal-server-error", "invalid-from",
        "invalid-namespace", "invalid-xml", "not-authorized", "not-well-formed", "policy-violation",
        "remote-connection-failed", "reset", "resource-constraint", "restricted-xml", "see-other-host",
        "system-shutdown", "undefined-condition", "unsupported-encoding", "unsupported-feature",
        "unsupported-stanza-type", "unsupported-version",
    ];

    /// <summary>The element name of the condition, e.g. <c>not-well-formed</c>.</summary>
    public static string ToElementName(this StreamErrorCondition condition) => s_names[(int)condition];

    public static bool TryParse(ReadOnlySpan<char> elementName, out StreamErrorCondition condition)
    {
        for (var i = 1; i < s_names.Length; i++)
        {
            if (elementName.SequenceEqual(s_names[i]))
            {
                condition = (StreamErrorCondition)i;
                return true;
            }
        }
        condition = StreamErrorCondition.None;
        return false;
    }
}
