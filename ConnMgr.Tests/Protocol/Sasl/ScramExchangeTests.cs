using System.Security.Cryptography;
using System.Text;
using ConnMgr.Protocol.Sasl;
using NUnit.Framework;

namespace ConnMgr.Tests.Protocol.Sasl;

public sealed class ScramExchangeTests
{
    public sealed record RfcExample(
        string Name, ScramHash Hash, string ClientNonce, string ServerNonce, string Salt,
        string ClientFirst, string ServerFirst, string ClientFinal, string ServerFinal)
    {
        public override string ToString() => Name;
    }

    /// <summary>RFC 5802 section 5 (SCRAM-SHA-1) and RFC 7677 section 3 (SCRAM-SHA-256), user "user", password "pencil".</summary>
    public static readonly RfcExample[] RfcExamples =
    [
        new("RFC 5802", ScramHash.Sha1, "fyko+d2lbbFgONRv9qkxdawL", "3rfcNHYJY1ZVvWVs7j", "QSXCR+Q6sek8bf92",
            "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
            "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
            "v=rmF9pqV8S7suAoZWja4dJRkFsKQ="),
        new("RFC 7677", ScramHash.Sha256, "rOprNGfwEbeRWgbNEkqO", "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0", "W22ZaJ0SNY7soEsUEjb6gQ==",
            "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
    ];

    private static readonly Dictionary<ScramHash, ScramCredential> s_pencil = new()
    {
        [ScramHash.Sha1] = ScramCredential.Derive("pencil", ScramHash.Sha1, Convert.FromBase64String("QSXCR+Q6sek8bf92"), 4096),
        [ScramHash.Sha256] = ScramCredential.Derive("pencil", ScramHash.Sha256, Convert.FromBase64String("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096),
    };

    private static byte[] Bytes(string s) => Encoding.UTF8.GetBytes(s);

    private static string Text(byte[]? b) => b is null ? "<null>" : Encoding.UTF8.GetString(b);

    [TestCaseSource(nameof(RfcExamples))]
    public void RfcExampleThroughServerAndClient(RfcExample example)
    {
        var credential = ScramCredential.Derive("pencil", example.Hash, Convert.FromBase64String(example.Salt), 4096);
        var server = new ScramServer(example.Hash, null, example.ServerNonce);
        var client = new ScramClient(example.Hash, "user", "pencil", example.ClientNonce);

        var clientFirst = client.ClientFirst();
        Assert.That(Text(clientFirst), Is.EqualTo(example.ClientFirst));

        Assert.That(server.ReceiveClientFirst(clientFirst, out var username), Is.EqualTo(SaslResult.Continue));
        Assert.That(username, Is.EqualTo("user"));
        var serverFirst = server.CreateServerFirst(credential);
        Assert.That(Text(serverFirst), Is.EqualTo(example.ServerFirst));

        Assert.That(client.ReceiveServerFirst(serverFirst, out var clientFinal), Is.EqualTo(SaslResult.Continue), client.Error);
        Assert.That(Text(clientFinal), Is.EqualTo(example.ClientFinal));

        Assert.That(server.ReceiveClientFinal(clientFinal!, out var serverFinal), Is.EqualTo(SaslResult.Success));
        Assert.That(Text(serverFinal), Is.EqualTo(example.ServerFinal));
        Assert.That(client.VerifyServerFinal(serverFinal!), Is.True, client.Error);
    }

    [TestCaseSource(nameof(RfcExamples))]
    public void ServerAcceptsTheRfcMessagesVerbatim(RfcExample example)
    {
        var server = new ScramServer(example.Hash, null, example.ServerNonce);
        Assert.That(server.ReceiveClientFirst(Bytes(example.ClientFirst), out _), Is.EqualTo(SaslResult.Continue));
        server.CreateServerFirst(s_pencil[example.Hash]);
        Assert.That(server.ReceiveClientFinal(Bytes(example.ClientFinal), out var serverFinal), Is.EqualTo(SaslResult.Success));
        Assert.That(Text(serverFinal), Is.EqualTo(example.ServerFinal));
    }

    [TestCase(ScramHash.Sha1)]
    [TestCase(ScramHash.Sha256)]
    public void RandomNoncesExchangeSucceeds(ScramHash hash)
    {
        var credential = ScramCredential.Derive("pencil", hash, 4096);
        var (result, server, client, serverFinal) = Run(hash, "user", "pencil", credential);
        Assert.That(result, Is.EqualTo(SaslResult.Success), server.Failure.ToString());
        Assert.That(client.VerifyServerFinal(serverFinal!), Is.True, client.Error);
    }

    [TestCase(ScramHash.Sha1)]
    [TestCase(ScramHash.Sha256)]
    public void WrongPasswordIsNotAuthorized(ScramHash hash)
    {
        var (result, server, _, serverFinal) = Run(hash, "user", "pencil2", s_pencil[hash]);
        Assert.That(result, Is.EqualTo(SaslResult.Failure));
        Assert.That(server.Failure, Is.EqualTo(SaslFailure.NotAuthorized));
        Assert.That(serverFinal, Is.Null);
    }

    [TestCaseSource(nameof(RfcExamples))]
    public void TamperedProofIsNotAuthorized(RfcExample example)
    {
        var server = new ScramServer(example.Hash, null, example.ServerNonce);
        server.ReceiveClientFirst(Bytes(example.ClientFirst), out _);
        server.CreateServerFirst(s_pencil[example.Hash]);

        var proofAt = example.ClientFinal.IndexOf(",p=", StringComparison.Ordinal) + 3;
        var proof = Convert.FromBase64String(example.ClientFinal[proofAt..]);
        proof[^1] ^= 1;
        var tampered = example.ClientFinal[..proofAt] + Convert.ToBase64String(proof);

        Assert.That(server.ReceiveClientFinal(Bytes(tampered), out var serverFinal), Is.EqualTo(SaslResult.Failure));
        Assert.That(server.Failure, Is.EqualTo(SaslFailure.NotAuthorized));
        Assert.That(serverFinal, Is.Null);
    }

    [TestCase(ScramHash.Sha1)]
    [TestCase(ScramHash.Sha256)]
    public void UnknownUserLooksLikeARealOneUntilTheEnd(ScramHash hash)
    {
        var options = new ScramServerOptions { UnknownUserKey = new byte[32] };
        string ServerFirstFor(string user, ScramCredential? credential)
        {
            var server = new ScramServer(hash, options, "SERVERNONCE");
            Assert.That(server.ReceiveClientFirst(Bytes($"n,,n={user},r=CLIENTNONCE"), out _), Is.EqualTo(SaslResult.Continue));
            return Text(server.CreateServerFirst(credential));
        }

        var real = ScramCredential.Derive("pencil", hash, 4096);
        var known = ServerFirstFor("user", real);
        var unknown = ServerFirstFor("nobody", null);
        const string shape = @"^r=CLIENTNONCESERVERNONCE,s=[A-Za-z0-9+/]{22}==,i=4096$";
        Assert.That(known, Does.Match(shape));
        Assert.That(unknown, Does.Match(shape));
        Assert.That(ServerFirstFor("nobody", null), Is.EqualTo(unknown), "an unknown name gets the same salt each time");
        Assert.That(ServerFirstFor("nobody2", null), Is.Not.EqualTo(unknown));

        // Even the right password of some other account cannot succeed.
        var (result, server, _, serverFinal) = Run(hash, "nobody", "pencil", null);
        Assert.That(result, Is.EqualTo(SaslResult.Failure));
        Assert.That(server.Failure, Is.EqualTo(SaslFailure.NotAuthorized));
        Assert.That(serverFinal, Is.Null);
    }

    [Test]
    public void UnknownUserSaltDependsOnTheServerKey()
    {
        string SaltWith(byte key)
        {
            var server = new ScramServer(ScramHash.Sha256, new ScramServerOptions { UnknownUserKey = Enumerable.Repeat(key, 32).ToArray() });
            server.ReceiveClientFirst("n,,n=nobody,r=abc"u8, out _);
            var serverFirst = Text(server.CreateServerFirst(null));
            return serverFirst[serverFirst.IndexOf(",s=", StringComparison.Ordinal)..];
        }
        Assert.That(SaltWith(1), Is.Not.EqualTo(SaltWith(2)));
    }

    [TestCase("")]
    [TestCase("n")]
    [TestCase("n,")]
    [TestCase("n,,")]
    [TestCase("x,,n=user,r=abc", TestName = "unknown gs2 flag")]
    [TestCase("p=tls-unique,,n=user,r=abc", TestName = "channel binding requested")]
    [TestCase("n,n=user,r=abc", TestName = "gs2 header without authzid field")]
    [TestCase("n,,n=user", TestName = "no nonce")]
    [TestCase("n,,r=abc,n=user", TestName = "attributes out of order")]
    [TestCase("n,,m=ext,n=user,r=abc", TestName = "mandatory extension")]
    [TestCase("n,,n=us=er,r=abc", TestName = "bare = in name")]
    [TestCase("n,,n=us=2cer,r=abc", TestName = "lowercase escape")]
    [TestCase("n,,n=user=2,r=abc", TestName = "truncated escape")]
    [TestCase("n,,n=,r=abc", TestName = "empty name")]
    [TestCase("n,,n=user,r=", TestName = "empty nonce")]
    [TestCase("n,,n=user,r=abc,", TestName = "trailing comma")]
    [TestCase("n,,n=user,r=ab\u007f", TestName = "non-printable nonce")]
    [TestCase("n,,n=user,r=ab\u00e9", TestName = "non-ASCII nonce")]
    [TestCase("n,a=,n=user,r=abc", TestName = "empty authzid")]
    [TestCase("n,b=x,n=user,r=abc", TestName = "not an authzid")]
    [TestCase("n,,n=user,r=abc,x", TestName = "extension without value")]
    [TestCase("n,,n=user,r=abc,x=", TestName = "extension with empty value")]
    [TestCase("n,,n=user,r=abc,r=def", TestName = "second nonce")]
    [TestCase("n,,n=user,r=abc,1=x", TestName = "extension name not a letter")]
    [TestCase("n,,n=us\u0007er,r=abc", TestName = "name fails SASLprep")]
    [TestCase("n,,n=\u00ad,r=abc", TestName = "name prepares to nothing")]
    [TestCase("N,,n=user,r=abc", TestName = "uppercase flag")]
    [TestCase(" n,,n=user,r=abc", TestName = "leading space")]
    public void MalformedClientFirst(string message)
        => AssertMalformedClientFirst(Bytes(message));

    [Test]
    public void ClientFirstWithInvalidUtf8NameIsMalformed()
        => AssertMalformedClientFirst([.. "n,,n=u"u8, 0xFF, .. ",r=abc"u8]);

    [Test]
    public void ClientFirstWithNulInNameIsMalformed()
        => AssertMalformedClientFirst([.. "n,,n=u"u8, 0x00, .. ",r=abc"u8]);

    [Test]
    public void OversizedClientFirstIsMalformed()
        => AssertMalformedClientFirst(Bytes("n,,n=user,r=" + new string('a', 5000)));

    private static void AssertMalformedClientFirst(byte[] message)
    {
        var server = new ScramServer(ScramHash.Sha256);
        Assert.That(server.ReceiveClientFirst(message, out var username), Is.EqualTo(SaslResult.Failure));
        Assert.That(server.Failure, Is.EqualTo(SaslFailure.MalformedRequest));
        Assert.That(username, Is.Null);
    }

    [TestCase("y,,n=user,r=abc", "user", TestName = "client supports channel binding, thinks we do not")]
    [TestCase("n,,n=user,r=abc,x=future", "user", TestName = "unknown optional extension ignored")]
    [TestCase("n,,n=us=2Cer=3D,r=abc", "us,er=", TestName = "escaped comma and equals")]
    [TestCase("n,,n=\u2168,r=abc", "IX", TestName = "name is SASLprep'd")]
    [TestCase("n,,n=us\u00e9r,r=!\"#$%&'()*+-./~", "us\u00e9r", TestName = "UTF-8 name and every kind of printable")]
    public void AcceptedClientFirst(string message, string expectedUser)
    {
        var server = new ScramServer(ScramHash.Sha256);
        Assert.That(server.ReceiveClientFirst(Bytes(message), out var username), Is.EqualTo(SaslResult.Continue));
        Assert.That(username, Is.EqualTo(expectedUser));
        Assert.That(server.Username, Is.EqualTo(expectedUser));
    }

    [TestCase("n,a=user@example.com,n=user,r=abc", "example.com", SaslResult.Continue)]
    [TestCase("n,a=USER@Example.COM,n=user,r=abc", "example.com", SaslResult.Continue)]
    [TestCase("n,a=admin@example.com,n=user,r=abc", "example.com", SaslResult.Failure)]
    [TestCase("n,a=user@example.org,n=user,r=abc", "example.com", SaslResult.Failure)]
    [TestCase("n,a=user@example.com/phone,n=user,r=abc", "example.com", SaslResult.Failure)]
    [TestCase("n,a=user,n=user,r=abc", "example.com", SaslResult.Failure)]
    [TestCase("n,a=user@example.com,n=user,r=abc", null, SaslResult.Failure)]
    [TestCase("n,,n=user,r=abc", null, SaslResult.Continue)]
    public void AuthzidPolicy(string message, string? domain, SaslResult expected)
    {
        var server = new ScramServer(ScramHash.Sha256, new ScramServerOptions { Domain = domain });
        Assert.That(server.ReceiveClientFirst(Bytes(message), out _), Is.EqualTo(expected));
        if (expected == SaslResult.Failure)
        {
            Assert.That(server.Failure, Is.EqualTo(SaslFailure.InvalidAuthzid));
        }
    }

    private const string ValidSha1Proof = "AAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    private const string Nonce = "fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j";

    [TestCase("c=biws,r=" + Nonce, TestName = "no proof")]
    [TestCase("c=biws,r=" + Nonce + ",p=", TestName = "empty proof")]
    [TestCase("c=biws,r=" + Nonce + ",p=!!!!AAAAAAAAAAAAAAAAAAAAAAAA", TestName = "proof not base64")]
    [TestCase("c=biws,r=" + Nonce + ",p=AAAAAAAAAAAAAAAAAAAAAA==", TestName = "proof too short")]
    [TestCase("c=biws,r=" + Nonce + ",p=AAAAAAAAAAAAAAAAAAAAAAAAAAA", TestName = "proof without padding")]
    [TestCase("r=" + Nonce + ",c=biws,p=" + ValidSha1Proof, TestName = "attributes out of order")]
    [TestCase("c=bi ws,r=" + Nonce + ",p=" + ValidSha1Proof, TestName = "channel binding not base64")]
    [TestCase("c=biws,r=" + Nonce + ",m=x,p=" + ValidSha1Proof, TestName = "mandatory extension")]
    [TestCase("c=biws,p=" + ValidSha1Proof, TestName = "no nonce")]
    [TestCase("c=biws,r=,p=" + ValidSha1Proof, TestName = "empty nonce")]
    [TestCase("c=biws,r=" + Nonce + ",p=" + ValidSha1Proof + ",x=y", TestName = "extension after proof")]
    [TestCase("", TestName = "empty")]
    public void MalformedClientFinal(string message)
        => AssertClientFinalFails(message, SaslFailure.MalformedRequest);

    [TestCase("c=eSws,r=" + Nonce + ",p=" + ValidSha1Proof, TestName = "binding says y but client-first said n")]
    [TestCase("c=biws,r=fyko+d2lbbFgONRv9qkxdawL,p=" + ValidSha1Proof, TestName = "server nonce missing")]
    [TestCase("c=biws,r=" + Nonce + "x,p=" + ValidSha1Proof, TestName = "nonce extended")]
    [TestCase("c=biws,r=" + Nonce + ",x=ignored,p=" + ValidSha1Proof, TestName = "valid syntax, wrong proof")]
    public void MismatchedClientFinal(string message)
        => AssertClientFinalFails(message, SaslFailure.NotAuthorized);

    private static void AssertClientFinalFails(string message, SaslFailure expected)
    {
        var example = RfcExamples[0];
        var server = new ScramServer(ScramHash.Sha1, null, example.ServerNonce);
        server.ReceiveClientFirst(Bytes(example.ClientFirst), out _);
        server.CreateServerFirst(s_pencil[ScramHash.Sha1]);
        Assert.That(server.ReceiveClientFinal(Bytes(message), out var serverFinal), Is.EqualTo(SaslResult.Failure));
        Assert.That(server.Failure, Is.EqualTo(expected));
        Assert.That(serverFinal, Is.Null);
    }

    /// <summary>Client side computed here from the RFC 5802 section 3 formulas, independently of ScramClient.</summary>
    [TestCase("y,,", TestName = "flag y")]
    [TestCase("n,a=user@example.com,", TestName = "with authzid")]
    public void ChannelBindingMustRepeatTheGs2Header(string gs2Header)
    {
        var credential = s_pencil[ScramHash.Sha256];
        var server = new ScramServer(ScramHash.Sha256, new ScramServerOptions { Domain = "example.com" }, "SNONCE");
        const string bare = "n=user,r=CNONCE";
        Assert.That(server.ReceiveClientFirst(Bytes(gs2Header + bare), out _), Is.EqualTo(SaslResult.Continue));
        var serverFirst = Text(server.CreateServerFirst(credential));

        var withoutProof = $"c={Convert.ToBase64String(Bytes(gs2Header))},r=CNONCESNONCE";
        var authMessage = Bytes($"{bare},{serverFirst},{withoutProof}");
        var salted = ScramCredential.SaltedPassword("pencil", ScramHash.Sha256, credential.Salt, credential.Iterations);
        var clientKey = HMACSHA256.HashData(salted, "Client Key"u8);
        var signature = HMACSHA256.HashData(SHA256.HashData(clientKey), authMessage);
        var proof = clientKey.Zip(signature, (a, b) => (byte)(a ^ b)).ToArray();

        Assert.That(server.ReceiveClientFinal(Bytes($"{withoutProof},p={Convert.ToBase64String(proof)}"), out var serverFinal),
            Is.EqualTo(SaslResult.Success));
        var expectedSignature = HMACSHA256.HashData(HMACSHA256.HashData(salted, "Server Key"u8), authMessage);
        Assert.That(Text(serverFinal), Is.EqualTo("v=" + Convert.ToBase64String(expectedSignature)));
    }

    [Test]
    public void StepsOutOfOrderThrow()
    {
        var server = new ScramServer(ScramHash.Sha1);
        Assert.Throws<InvalidOperationException>(() => server.CreateServerFirst(null));
        Assert.Throws<InvalidOperationException>(() => server.ReceiveClientFinal("c=biws"u8, out _));
        server.ReceiveClientFirst("n,,n=user,r=abc"u8, out _);
        Assert.Throws<InvalidOperationException>(() => server.ReceiveClientFirst("n,,n=user,r=abc"u8, out _));

        var failed = new ScramServer(ScramHash.Sha1);
        Assert.That(failed.ReceiveClientFirst("bad"u8, out _), Is.EqualTo(SaslResult.Failure));
        Assert.Throws<InvalidOperationException>(() => failed.CreateServerFirst(null));
    }

    [Test]
    public void CredentialForTheOtherHashIsRefused()
    {
        var server = new ScramServer(ScramHash.Sha1);
        server.ReceiveClientFirst("n,,n=user,r=abc"u8, out _);
        Assert.Throws<ArgumentException>(() => server.CreateServerFirst(s_pencil[ScramHash.Sha256]));
    }

    [TestCase("r=CNONCESNONCE,s=QSXCR+Q6sek8bf92", TestName = "no iteration count")]
    [TestCase("r=CNONCESNONCE,s=QSXCR+Q6sek8bf92,i=0", TestName = "zero iterations")]
    [TestCase("r=CNONCESNONCE,s=QSXCR+Q6sek8bf92,i=04096", TestName = "leading zero")]
    [TestCase("r=CNONCESNONCE,s=QSXCR+Q6sek8bf92,i=-1", TestName = "negative")]
    [TestCase("r=CNONCESNONCE,s=QSXCR+Q6sek8bf92,i=99999999999", TestName = "beyond int")]
    [TestCase("r=CNONCESNONCE,s=QSXCR+Q6sek8bf92,i=1000001", TestName = "above the client's cap")]
    [TestCase("r=CNONCESNONCE,s=,i=4096", TestName = "empty salt")]
    [TestCase("r=CNONCESNONCE,s=QSXCR+Q6sek8bf9,i=4096", TestName = "salt not whole base64")]
    [TestCase("r=CNONCE,s=QSXCR+Q6sek8bf92,i=4096", TestName = "server added no nonce")]
    [TestCase("r=OTHERSNONCE,s=QSXCR+Q6sek8bf92,i=4096", TestName = "nonce does not extend ours")]
    [TestCase("m=x,r=CNONCESNONCE,s=QSXCR+Q6sek8bf92,i=4096", TestName = "mandatory extension")]
    [TestCase("s=QSXCR+Q6sek8bf92,r=CNONCESNONCE,i=4096", TestName = "attributes out of order")]
    [TestCase("r=CNONCESNONCE,s=QSXCR+Q6sek8bf92,i=4096,c=x", TestName = "misplaced attribute")]
    public void ClientRejectsBadServerFirst(string serverFirst)
    {
        var client = new ScramClient(ScramHash.Sha1, "user", "pencil", "CNONCE");
        client.ClientFirst();
        Assert.That(client.ReceiveServerFirst(Bytes(serverFirst), out var clientFinal), Is.EqualTo(SaslResult.Failure));
        Assert.That(clientFinal, Is.Null);
        Assert.That(client.Error, Is.Not.Null);
    }

    [TestCase("e=invalid-proof", TestName = "server error")]
    [TestCase("v=smF9pqV8S7suAoZWja4dJRkFsKQ=", TestName = "wrong signature")]
    [TestCase("v=AAAA", TestName = "short signature")]
    [TestCase("v=", TestName = "empty signature")]
    [TestCase("x=rmF9pqV8S7suAoZWja4dJRkFsKQ=", TestName = "no verifier")]
    public void ClientRejectsBadServerFinal(string serverFinal)
    {
        var example = RfcExamples[0];
        var client = new ScramClient(ScramHash.Sha1, "user", "pencil", example.ClientNonce);
        client.ClientFirst();
        client.ReceiveServerFirst(Bytes(example.ServerFirst), out _);
        Assert.That(client.VerifyServerFinal(Bytes(serverFinal)), Is.False);
        Assert.That(client.Error, Is.Not.Null);
    }

    [Test]
    public void ClientEscapesItsName()
    {
        var client = new ScramClient(ScramHash.Sha256, "a,b=c", "pencil", "CNONCE");
        Assert.That(Text(client.ClientFirst()), Is.EqualTo("n,,n=a=2Cb=3Dc,r=CNONCE"));
    }

    [TestCase("", "pencil")]
    [TestCase("user", "")]
    [TestCase("user", "pen\u0007cil")]
    public void ClientRefusesUnpreparableCredentials(string username, string password)
        => Assert.Throws<ArgumentException>(() => _ = new ScramClient(ScramHash.Sha256, username, password));

    [Test]
    public void CachedSaltedPasswordIsDerivedOnce()
    {
        var cache = new ScramSaltedPasswordCache();
        var credential = s_pencil[ScramHash.Sha256];
        for (var i = 0; i < 3; i++)
        {
            var (result, _, client, serverFinal) = Run(ScramHash.Sha256, "user", "pencil", credential, cache);
            Assert.That(result, Is.EqualTo(SaslResult.Success));
            Assert.That(client.VerifyServerFinal(serverFinal!), Is.True);
        }
        Assert.That(cache.Count, Is.EqualTo(1));
        Assert.That(cache.GetOrDerive(ScramHash.Sha256, "pencil", credential.Salt, 4096),
            Is.SameAs(cache.GetOrDerive(ScramHash.Sha256, "pencil", credential.Salt, 4096)));
        Assert.That(cache.GetOrDerive(ScramHash.Sha256, "other", credential.Salt, 4096),
            Is.Not.EqualTo(cache.GetOrDerive(ScramHash.Sha256, "pencil", credential.Salt, 4096)));
    }

    private static (SaslResult Result, ScramServer Server, ScramClient Client, byte[]? ServerFinal) Run(
        ScramHash hash, string username, string password, ScramCredential? credential, ScramSaltedPasswordCache? cache = null)
    {
        var server = new ScramServer(hash);
        var client = new ScramClient(hash, username, password, cache);
        Assert.That(server.ReceiveClientFirst(client.ClientFirst(), out _), Is.EqualTo(SaslResult.Continue));
        var serverFirst = server.CreateServerFirst(credential);
        Assert.That(client.ReceiveServerFirst(serverFirst, out var clientFinal), Is.EqualTo(SaslResult.Continue), client.Error);
        var result = server.ReceiveClientFinal(clientFinal!, out var serverFinal);
        return (result, server, client, serverFinal);
    }
}
