using ConnMgr.Protocol.Link;
using NUnit.Framework;

namespace ConnMgr.Tests.Protocol.Link;

public sealed class StreamIdGeneratorTests
{
    [Test]
    public void IdsAreSafeUniqueAndPrefixed()
    {
        var generator = new StreamIdGenerator("edge-1.example");
        var ids = new HashSet<string>();
        for (var i = 0; i < 10_000; i++)
        {
            var id = generator.Next();
            Assert.That(id, Does.Match("^edge-1\\.example-[A-Za-z0-9]{8}[0-9a-z]+$"));
            Assert.That(StreamIdGenerator.IsSafe(id), Is.True, id);
            Assert.That(JavaStringHash.Compute(id), Is.Not.EqualTo(int.MinValue));
            Assert.That(ids.Add(id), Is.True, $"duplicate {id}");
        }
    }

    [Test]
    public void LongestNameStillGivesSafeIds()
    {
        var name = new string('a', StreamIdGenerator.MaxCmNameLength);
        var generator = new StreamIdGenerator(name, random => random.Fill('Z'), () => long.MaxValue);
        var id = generator.Next();
        Assert.That(id, Is.EqualTo(name + "-ZZZZZZZZ1y2p0ij32e8e7"));
        Assert.That(StreamIdGenerator.IsSafe(id), Is.True);
    }

    [Test]
    public void SkipsAnIdWhoseJavaHashIsMinValue()
    {
        // "cm1-Gqu8gcaC1" hashes to int.MinValue (found offline); the generator must move on.
        var randoms = new Queue<string>(["Gqu8gcaC", "AAAAAAAA"]);
        var counter = 0L;
        var generator = new StreamIdGenerator("cm1", random => randoms.Dequeue().CopyTo(random), () => ++counter);
        Assert.That(JavaStringHash.Compute("cm1-Gqu8gcaC1"), Is.EqualTo(int.MinValue));
        Assert.That(generator.Next(), Is.EqualTo("cm1-AAAAAAAA2"));
    }

    [TestCase("cm1", true)]
    [TestCase("edge-1.chat.example.com", true)]
    [TestCase("a", true)]
    [TestCase("0sups", true)]
    [TestCase("", false)]
    [TestCase(null, false)]
    [TestCase("CM1", false, TestName = "uppercase")]
    [TestCase("cm_1", false, TestName = "underscore")]
    [TestCase("cm 1", false, TestName = "space")]
    [TestCase("cm1/link", false, TestName = "slash")]
    [TestCase("-cm1", false, TestName = "leading hyphen")]
    [TestCase("cm1-", false, TestName = "trailing hyphen")]
    [TestCase("cm1.-x", false, TestName = "label starts with hyphen")]
    [TestCase(".cm1", false, TestName = "empty first label")]
    [TestCase("cm1.", false, TestName = "empty last label")]
    [TestCase("cm..1", false, TestName = "empty middle label")]
    [TestCase("\u00E9dge", false, TestName = "non-ASCII")]
    public void CmNames(string? name, bool valid)
    {
        Assert.That(StreamIdGenerator.IsValidCmName(name), Is.EqualTo(valid));
        if (!valid)
        {
            Assert.Throws<ArgumentException>(() => _ = new StreamIdGenerator(name!));
        }
    }

    [Test]
    public void CmNameLengthLimit()
    {
        Assert.That(StreamIdGenerator.IsValidCmName(new string('a', StreamIdGenerator.MaxCmNameLength)), Is.True);
        Assert.That(StreamIdGenerator.IsValidCmName(new string('a', StreamIdGenerator.MaxCmNameLength + 1)), Is.False);
    }

    [TestCase("cm1-q8ZkP0aT1f", true)]
    [TestCase("A.b_c-9", true)]
    [TestCase("4xk2n9w1pq", true)]
    [TestCase("", false)]
    [TestCase("cm1 x", false)]
    [TestCase("cm1&x", false)]
    [TestCase("cm1<x", false)]
    [TestCase("cm1'x", false)]
    [TestCase("cm1/x", false)]
    [TestCase("cm1\u00E9", false)]
    public void SafeIds(string id, bool safe)
        => Assert.That(StreamIdGenerator.IsSafe(id), Is.EqualTo(safe));

    [Test]
    public void SafeIdLengthLimit()
    {
        Assert.That(StreamIdGenerator.IsSafe(new string('a', StreamIdGenerator.MaxLength)), Is.True);
        Assert.That(StreamIdGenerator.IsSafe(new string('a', StreamIdGenerator.MaxLength + 1)), Is.False);
    }
}
