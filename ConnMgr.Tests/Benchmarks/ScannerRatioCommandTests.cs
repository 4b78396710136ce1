using ConnMgr.Benchmarks.Scanner;
using NUnit.Framework;

namespace ConnMgr.Tests.Benchmarks;

[TestFixture]
public sealed class ScannerRatioCommandTests
{
    [TestCase("--rounds", "5")]
    [TestCase("--seconds", "0")]
    [TestCase("--seconds", "x")]
    [TestCase("--seconds")]
    public void Bad_arguments_are_refused_with_the_one_named(params string[] args)
    {
        var error = Assert.Throws<ArgumentException>(() => ScannerRatioCommand.Run(args));
        Assert.That(error!.Message, Does.Contain($"'{args[0]}'").And.Contain("--seconds N"));
    }

    [Test]
    public void A_short_run_prints_every_subject_and_no_allocation_per_stanza()
    {
        var output = new StringWriter();
        var original = Console.Out;
        Console.SetOut(output);
        try
        {
            Assert.That(ScannerRatioCommand.Run(["--seconds", "0.2"]), Is.EqualTo(0));
        }
        finally
        {
            Console.SetOut(original);
        }
        var text = output.ToString();
        Assert.That(text, Does.Contain("| XmlReader |").And.Contain("| Scanner |").And.Contain("| Scanner, 4 KiB segments |"));
        Assert.That(text, Does.Contain("scanner allocated 0.00 bytes per stanza"), text);
    }
}
