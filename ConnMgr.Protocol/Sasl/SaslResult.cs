namespace ConnMgr.Protocol.Sasl;

/// <summary>What a SASL step produced: send a challenge and wait, succeed, or fail.</summary>
public enum SaslResult : byte { Continue, Success, Failure }

/// <summary>The SASL failure conditions of RFC 6120 section 6.5, one per child of <c>&lt;failure/&gt;</c>.</summary>
public enum SaslFailure : byte
{
    Aborted,
    AccountDisabled,
    CredentialsExpired,
    EncryptionRequired,
    IncorrectEncoding,
    InvalidAuthzid,
    InvalidMechanism,
    MalformedRequest,
    MechanismTooWeak,
    NotAuthorized,
    TemporaryAuthFailure,
}

public static class SaslFailures
{
    private static readonly string[] s_names =
    [
        "aborted", "account-disabled", "credentials-expired", "encryption-required",
        "incorrect-encoding", "invalid-authzid", "invalid-mechanism", "malformed-request",
        "mechanism-too-weak", "not-authorized", "temporary-auth-failure",
    ];

    /// <summary>The element name of the condition, e.g. <c>not-authorized</c>.</summary>
    public static string ToElementName(this SaslFailure failure) => s_names[(int)failure];

    public static bool TryParse(ReadOnlySpan<char> elementName, out SaslFailure failure)
    {
        for (var i = 0; i < s_names.Length; i++)
        {
            if (elementName.SequenceEqual(s_names[i]))
            {
                failure = (SaslFailure)i;
                return true;
            }
        }
        failure = SaslFailure.NotAuthorized;
        return false;
    }
}
