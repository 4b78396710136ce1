namespace ConnMgr.Protocol.Xml;

/// <summary>The defined stanza error conditions of RFC 6120 section 8.3.3.</summary>
public enum StanzaErrorCondition : byte
{
    BadRequest,
    Conflict,
    FeatureNotImplemented,
    Forbidden,
    Gone,
    InternalServerError,
    ItemNotFound,
    JidMalformed,
    NotAcceptable,
    NotAllowed,
    NotAuthorized,
    PolicyViolation,
    RecipientUnavailable,
    Redirect,
    RegistrationRequired,
    RemoteServerNotFound,
    RemoteServerTimeout,
    ResourceConstraint,
    ServiceUnavailable,
    SubscriptionRequired,
    UndefinedCondition,
    UnexpectedRequest,
}

/// <summary>The <c>type</c> attribute of a stanza error (RFC 6120 section 8.3.2).</summary>
public enum StanzaErrorType : byte { Auth, Cancel, Continue, Modify, Wait }

public static class StanzaErrorConditions
{
    private static readonly (string Name, StanzaErrorType DefaultType, int LegacyCode)[] s_table =
    [
        ("bad-request", StanzaErrorType.Modify, 400),
        ("conflict", StanzaErrorType.Cancel, 409),
        ("feature-not-implemented", StanzaErrorType.Cancel, 501),
        ("forbidden", StanzaErrorType.Auth, 403),
        ("gone", StanzaErrorType.Cancel, 302),
        ("internal-server-error", StanzaErrorType.Wait, 500),
        ("item-not-found", StanzaErrorType.Cancel, 404),
        ("jid-malformed", StanzaErrorType.Modify, 400),
        ("not-acceptable", StanzaErrorType.Modify, 406),
        ("not-allowed", StanzaErrorType.Cancel, 405),
        ("not-authorized", StanzaErrorType.Auth, 401),
        ("policy-violation", StanzaErrorType.Modify, 406),
        ("recipient-unavailable", StanzaErrorType.Wait, 404),
        ("redirect", StanzaErrorType.Modify, 302),
        ("registration-required", StanzaErrorType.Auth, 407),
        ("remote-server-not-found", StanzaErrorType.Cancel, 404),
        ("remote-server-timeout", StanzaErrorType.Wait, 504),
        ("resource-constraint", StanzaErrorType.Wait, 500),
        ("service-unavailable", StanzaErrorType.Cancel, 503),
        ("subscription-required", StanzaErrorType.Auth, 407),
        ("undefined-condition", StanzaErrorType.Cancel, 500),
        ("unexpected-request", StanzaErrorType.Wait, 400),
    ];

    public static string ToElementName(this StanzaErrorCondition condition) => s_table[(int)condition].Name;

    /// <summary>The usual error type for the condition (RFC 6120 examples, XEP-0086 table).</summary>
    public static StanzaErrorType DefaultType(this StanzaErrorCondition condition) => s_table[(int)condition].DefaultType;

    /// <summary>XEP-0086 legacy code; Openfire still writes it (spec 5.2).</summary>
    public static int LegacyCode(this StanzaErrorCondition condition) => s_table[(int)condition].LegacyCode;

    public static string ToAttributeValue(this StanzaErrorType type) => type switch
    {
        StanzaErrorType.Auth => "auth",
        StanzaErrorType.Cancel => "cancel",
        StanzaErrorType.Continue => "continue",
        StanzaErrorType.Modify => "modify",
        _ => "wait",
    };

    public static bool TryParse(ReadOnlySpan<char> elementName, out StanzaErrorCondition condition)
    {
        for (var i = 0; i < s_table.Length; i++)
        {
            if (elementName.SequenceEqual(s_table[i].Name))
            {
                condition = (StanzaErrorCondition)i;
                return true;
            }
        }
        condition = StanzaErrorCondition.UndefinedCondition;
        return false;
    }
}
