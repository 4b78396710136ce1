using System.Net;
using NUnit.Framework;

namespace ConnMgr.Tests.Interop;

/// <summary>How the interop fixture reads the daemon's listeners from its JSON "Ready" log event.</summary>
public sealed class DaemonProcessTests
{
    private const string ReadyLine = """{"@t":"2026-11-22T02:07:36.8186191Z","@mt":"Ready; listening: {Listeners}","@l":"Information","Listeners":"Core:Port 127.0.0.1:40004, Edge:ClientPort 127.0.0.1:40001, Edge:DirectTlsPort [::1]:40002, Edge:HttpPort 127.0.0.1:40003","EventId":{"Id":102,"Name":"Ready"},"SourceContext":"ConnMgr.Hosting.ReadinessGate"}""";

    [Test]
    public void Reads_every_listener_of_the_ready_event()
    {
        IReadOnlyDictionary<string, IPEndPoint> listeners = DaemonProcess.ParseListeners(ReadyLine);

        Assert.That(listeners, Is.EquivalentTo(new Dictionary<string, IPEndPoint>
        {
            ["Core:Port"] = new(IPAddress.Loopback, 40004),
            ["Edge:ClientPort"] = new(IPAddress.Loopback, 40001),
            ["Edge:DirectTlsPort"] = new(IPAddress.IPv6Loopback, 40002),
            ["Edge:HttpPort"] = new(IPAddress.Loopback, 40003),
        }));
    }

    [Test]
    public void Names_a_listener_it_cannot_read()
    {
        string line = ReadyLine.Replace("127.0.0.1:40001", "nowhere", StringComparison.Ordinal);

        Assert.That(() => DaemonProcess.ParseListeners(line),
            Throws.TypeOf<FormatException>().With.Message.Contains("\"Edge:ClientPort nowhere\""));
    }

    [TestCase(ReadyLine, ExpectedResult = true)]
    [TestCase("""{"@mt":"Ready; listening: {Listeners}","EventId":{"Id":101}}""", ExpectedResult = false)]
    [TestCase("""{"EventId":{"Id":102,"Name":"Ready"}}""", ExpectedResult = false)]
    [TestCase("Ready; listening: Edge:HttpPort 127.0.0.1:1", ExpectedResult = false)]
    [TestCase("{not json", ExpectedResult = false)]
    public bool Recognises_only_the_ready_event(string line) => DaemonProcess.IsReadyEvent(line);
}
