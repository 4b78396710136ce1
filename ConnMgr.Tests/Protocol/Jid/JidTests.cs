using System.Text;
using NUnit.Framework;
using Jid = ConnMgr.Protocol.Jid;

// Not "...Protocol.Jid": a namespace named Jid would hide the Jid type from every test under ConnMgr.Tests.Protocol.
namespace ConnMgr.Tests.Protocol.Jids;

public class JidTests
{
    private static readonly string Local1023 = new('a', 1023);
    private static readonly string Domain1023 = string.Join('.', Enumerable.Repeat(new string('d', 63), 16));
    private static readonly string Domain1024 = string.Join('.', Enumerable.Repeat("d", 512)) + "d";

    private static IEnumerable<TestCaseData> Valid()
    {
        // RFC 7622 section 3.5 (good examples) and everyday addresses: input, local, domain, resource.
        yield return Case("juliet@example.com", "juliet", "example.com", null);
        yield return Case("juliet@example.com/foo", "juliet", "example.com", "foo");
        yield return Case("juliet@example.com/foo bar", "juliet", "example.com", "foo bar");
        yield return Case("juliet@example.com/foo@bar", "juliet", "example.com", "foo@bar");
        yield return Case("foo\\20bar@example.com", "foo\\20bar", "example.com", null);
        yield return Case("fussball@example.com", "fussball", "example.com", null);
        yield return Case("fußball@example.com", "fußball", "example.com", null);
        yield return Case("π@example.com", "π", "example.com", null);
        yield return Case("Σ@example.com/foo", "σ", "example.com", "foo");
        yield return Case("σ@example.com/foo", "σ", "example.com", "foo");
        yield return Case("ς@example.com/foo", "ς", "example.com", "foo");
        yield return Case("king@example.com/♚", "king", "example.com", "♚");
        yield return Case("example.com", null, "example.com", null);
        yield return Case("example.com/foobar", null, "example.com", "foobar");
        yield return Case("a.example.com/b@example.net", null, "a.example.com", "b@example.net");
        yield return Case("a/b@c", null, "a", "b@c");
        yield return Case("User@EXAMPLE.COM/Resource", "user", "example.com", "Resource");
        yield return Case("example.com.", null, "example.com", null);
        yield return Case("juliet@example.com./r", "juliet", "example.com", "r");
        yield return Case("user@[::1]", "user", "[::1]", null);
        yield return Case("user@[2001:DB8:0:0::1]/r", "user", "[2001:db8::1]", "r");
        yield return Case("user@192.168.0.1", "user", "192.168.0.1", null);
        yield return Case("user@0.0.0.0", "user", "0.0.0.0", null);
        yield return Case("cm1/link-1", null, "cm1", "link-1");
        yield return Case("cm1/Connection Worker - 1", null, "cm1", "Connection Worker - 1");
        yield return Case("user@bücher.example", "user", "bücher.example", null);
        yield return Case("user@BÜCHER.example", "user", "bücher.example", null);
        yield return Case("user@xn--bcher-kva.example", "user", "bücher.example", null);
        yield return Case("user@XN--BCHER-KVA.example", "user", "bücher.example", null);
        yield return Case("ＪＵＬＩＥＴ@example.com", "juliet", "example.com", null);
        yield return Case("żółw@przykład.pl/łódź", "żółw", "przykład.pl", "łódź");
        yield return Case("用户@例子.中国", "用户", "例子.中国", null);
        yield return Case("a@b/\u3000x", "a", "b", " x");
        yield return Case("a@b/e\u0301", "a", "b", "é");
        yield return Case("e\u0301@b", "é", "b", null);
        yield return Case("a@under_score.example", "a", "under_score.example", null);
        yield return Case("a!#$%*+-.=?^_`{|}~@example.com", "a!#$%*+-.=?^_`{|}~", "example.com", null);
        yield return Case(Local1023 + "@example.com", Local1023, "example.com", null);
        yield return Case("a@example.com/" + new string('r', 1023), "a", "example.com", new string('r', 1023));
        yield return Case("a@example.com/" + string.Concat(Enumerable.Repeat("é", 511)) + "x", "a", "example.com", string.Concat(Enumerable.Repeat("é", 511)) + "x");
        yield return Case("a@" + Domain1023, "a", Domain1023, null);
        yield return Case("a@" + new string('l', 63) + ".example", "a", new string('l', 63) + ".example", null);

        static TestCaseData Case(string input, string? local, string domain, string? resource)
            => new TestCaseData(input, local, domain, resource).SetName($"Valid({Shorten(input)})");
    }

    private static IEnumerable<TestCaseData> Invalid()
    {
        // RFC 7622 section 3.5 (bad examples), separators, lengths and code point classes.
        string[] inputs =
        [
            "",
            "\"juliet\"@example.com",
            "foo bar@example.com",
            "henry\u2163@example.com",
            "♚@example.com",
            "juliet@",
            "/foobar",
            "@example.com",
            "@example.com/r",
            "example.com/",
            "a@example.com/",
            "a@b@c",
            "a@@b",
            "a..b",
            ".example.com",
            "example..com",
            "example.com..",
            ".",
            "a@b c",
            "a<b@example.com",
            "a&b@example.com",
            "a'b@example.com",
            "a:b@example.com",
            "a\tb@example.com",
            "a\u00A0b@example.com",
            "a\u200Db@example.com",
            "a\uD800b@example.com",
            "a@example.com/r\uDC00",
            "a@example.com/c\u0001",
            "a@example.com/c\u007F",
            "a@example.com/\u0085",
            "a@example.com/x\uFFFF",
            "a@exa\u0000mple.com",
            "a@exa!mple.com",
            "a@[::1",
            "a@[1.2.3.4]",
            "a@[fe80::1%eth0]",
            "a@[]",
            "a@[::1]x",
            "a@256.1.1.1",
            "a@1.2.3",
            "a@01.2.3.4",
            "a@1.2.3.4.5",
            "a@123",
            "a@" + new string('l', 64) + ".example",
            "a@xn--.example",
            "a@xn--zz-zzz.example",
            "a@xn--55555555.example",
            "a@xn--ls8h.example",
            "a@💩.example",
            Local1023 + "a@example.com",
            "a@example.com/" + new string('r', 1024),
            "a@example.com/" + string.Concat(Enumerable.Repeat("é", 512)),
            "a@" + Domain1024,
        ];
        foreach (var input in inputs)
            yield return new TestCaseData(input).SetName($"Invalid({Shorten(input)})");
    }

    private static string Shorten(string s)
    {
        var printable = new StringBuilder();
        foreach (var c in s.Length > 40 ? s[..20] + "…" + s.Length : s)
            printable.Append(char.IsControl(c) || char.IsSurrogate(c) || c > 0x7E ? $"\\u{(int)c:X4}" : c.ToString());
        return printable.ToString();
    }

    [TestCaseSource(nameof(Valid))]
    public void ParsesValidJids(string input, string? local, string domain, string? resource)
    {
        Assert.That(Jid.TryParse(input, out var jid), Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(jid!.Local, Is.EqualTo(local));
            Assert.That(jid.Domain, Is.EqualTo(domain));
            Assert.That(jid.Resource, Is.EqualTo(resource));
            Assert.That(jid.IsBare, Is.EqualTo(resource is null));
            Assert.That(Jid.IsValid(Encoding.UTF8.GetBytes(input)), Is.True);
            Assert.That(Jid.TryParse(Encoding.UTF8.GetBytes(input), out var fromUtf8) && fromUtf8 == jid, Is.True);
            Assert.That(Jid.Parse(jid.ToString()), Is.EqualTo(jid), "the prepared form parses to itself");
            Assert.That(Jid.Parse(jid.ToString()).ToString(), Is.EqualTo(jid.ToString()));
        }
    }

    [TestCaseSource(nameof(Invalid))]
    public void RejectsInvalidJids(string input)
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Jid.TryParse(input, out var jid), Is.False);
            Assert.That(jid, Is.Null);
            // UTF-8 cannot carry a lone surrogate (encoding turns it into U+FFFD), so skip those inputs there.
            if (Encoding.UTF8.GetString(Encoding.UTF8.GetBytes(input)) == input)
            {
                Assert.That(Jid.IsValid(Encoding.UTF8.GetBytes(input)), Is.False);
                Assert.That(Jid.TryParse(Encoding.UTF8.GetBytes(input), out _), Is.False);
            }
            Assert.Throws<FormatException>(() => Jid.Parse(input));
        }
    }

    [Test]
    public void InvalidUtf8IsNotAJid()
    {
        Assert.That(Jid.IsValid([0x61, 0x40, 0xC3]), Is.False);
        Assert.That(Jid.TryParse([0x61, 0x40, 0xFF, 0x62], out _), Is.False);
        Assert.That(Jid.IsValid(new byte[4000]), Is.False);
    }

    [Test]
    public void EqualityIsOnThePreparedForm()
    {
        var a = Jid.Parse("User@Example.COM/Home");
        var b = Jid.Parse("user@example.com/Home");
        var c = Jid.Parse("user@example.com/home");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(a, Is.EqualTo(b));
            Assert.That(a == b, Is.True);
            Assert.That(a.GetHashCode(), Is.EqualTo(b.GetHashCode()));
            Assert.That(a, Is.Not.EqualTo(c), "resources are case-sensitive");
            Assert.That(a != c, Is.True);
            Assert.That(a.Equals(null), Is.False);
            Assert.That(Jid.Parse("bücher.example"), Is.EqualTo(Jid.Parse("xn--bcher-kva.example")));
            Assert.That(Jid.Parse("example.com"), Is.Not.EqualTo(Jid.Parse("example.com/r")));
            Assert.That(Jid.Parse("a@example.com"), Is.Not.EqualTo(Jid.Parse("example.com")));
            var set = new HashSet<Jid> { a!, b!, c! };
            Assert.That(set, Has.Count.EqualTo(2));
        }
    }

    [Test]
    public void BareAndWithResource()
    {
        var full = Jid.Parse("juliet@example.com/balcony");
        var bare = full.Bare;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(bare.ToString(), Is.EqualTo("juliet@example.com"));
            Assert.That(bare.IsBare, Is.True);
            Assert.That(ReferenceEquals(full.Bare, bare), Is.True, "cached");
            Assert.That(ReferenceEquals(bare.Bare, bare), Is.True);
            Assert.That(bare.WithResource("chamber").ToString(), Is.EqualTo("juliet@example.com/chamber"));
            Assert.That(bare.WithResource("chamber") == full.Bare.WithResource("chamber"), Is.True);
            Assert.Throws<FormatException>(() => bare.WithResource(""));
            Assert.Throws<FormatException>(() => bare.WithResource("a\u0000b"));
        }
    }

    [Test]
    public void CreateFromParts()
    {
        Assert.That(Jid.Create("Juliet", "Example.com", "r").ToString(), Is.EqualTo("juliet@example.com/r"));
        Assert.That(Jid.Create(null, "example.com").ToString(), Is.EqualTo("example.com"));
        Assert.Throws<FormatException>(() => Jid.Create("a@b", "example.com"));
        Assert.Throws<FormatException>(() => Jid.Create("", "example.com"));
        Assert.Throws<FormatException>(() => Jid.Create("a", "exa mple.com"));
        Assert.Throws<FormatException>(() => Jid.Create("a", "example.com", ""));
    }

    [Test]
    public void IsValidDoesNotAllocateForAsciiAddresses()
    {
        var addresses = new[]
        {
            "juliet@example.com/balcony"u8.ToArray(),
            "Romeo@Example.NET"u8.ToArray(),
            "conference.example.com"u8.ToArray(),
            "user@192.168.0.1/r"u8.ToArray(),
            "bad@@example.com"u8.ToArray(),
        };
        long Run()
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            for (var i = 0; i < 100; i++)
            {
                foreach (var address in addresses)
                    Jid.IsValid(address);
            }
            return GC.GetAllocatedBytesForCurrentThread() - before;
        }
        Run();
        Assert.That(Run(), Is.Zero);
    }

    [Test]
    public void LengthLimitsCountBytesAfterPreparation()
    {
        Assert.That(Domain1023, Has.Length.EqualTo(1023));
        Assert.That(Domain1024, Has.Length.EqualTo(1024));
        Assert.That(Jid.TryParse("a@" + Domain1024[..^1], out _), Is.True);
        // 512 two-byte characters are 1024 bytes even though they are 512 chars.
        Assert.That(Jid.TryParse(string.Concat(Enumerable.Repeat("é", 512)) + "@example.com", out _), Is.False);
        Assert.That(Jid.TryParse(string.Concat(Enumerable.Repeat("é", 511)) + "@example.com", out _), Is.True);
        // Fullwidth letters are three bytes each but map to one-byte ASCII.
        Assert.That(Jid.TryParse(string.Concat(Enumerable.Repeat("Ａ", 1023)) + "@example.com", out var mapped), Is.True);
        Assert.That(mapped!.Local, Is.EqualTo(Local1023));
    }
}
