using System.Text.Json;
using ConnMgr.Diagnostics;
using Microsoft.Extensions.Logging;
using NUnit.Framework;
using Serilog;
using Serilog.Core;
using Serilog.Events;
using Serilog.Parsing;

namespace ConnMgr.Tests.Diagnostics;

public class CompactJsonFormatterTests
{
    [Test]
    public void An_event_logged_through_microsoft_extensions_logging_is_one_json_object()
    {
        var sink = new FormattingSink();
        using (var factory = LoggerFactory.Create(logging => logging.AddSerilog(new LoggerConfiguration().MinimumLevel.Verbose().WriteTo.Sink(sink).CreateLogger(), dispose: true)))
        {
            Microsoft.Extensions.Logging.ILogger logger = factory.CreateLogger("ConnMgr.Edge.ClientConnection");
            var failure = new InvalidOperationException("broken\nacross lines");
            logger.Log(LogLevel.Warning, new EventId(42, "LoginFailed"), failure, "User {User} failed {Count} times", "alice \"a\"", 3);
        }

        string[] lines = sink.Output.Split('\n');
        Assert.That(lines, Has.Length.EqualTo(2), "one line, ending with a line feed");
        Assert.That(lines[1], Is.Empty);
        using JsonDocument document = JsonDocument.Parse(lines[0]);
        JsonElement e = document.RootElement;
        Assert.Multiple(() =>
        {
            Assert.That(e.GetProperty("@t").GetString(), Does.EndWith("Z"));
            Assert.That(DateTimeOffset.Parse(e.GetProperty("@t").GetString()!), Is.EqualTo(DateTimeOffset.UtcNow).Within(TimeSpan.FromMinutes(5)));
            Assert.That(e.GetProperty("@mt").GetString(), Is.EqualTo("User {User} failed {Count} times"));
            Assert.That(e.GetProperty("@m").GetString(), Is.EqualTo("User \"alice \\\"a\\\"\" failed 3 times"));
            Assert.That(e.GetProperty("@l").GetString(), Is.EqualTo("Warning"));
            Assert.That(e.GetProperty("@x").GetString(), Does.StartWith("System.InvalidOperationException: broken\nacross lines"));
            Assert.That(e.GetProperty("User").GetString(), Is.EqualTo("alice \"a\""));
            Assert.That(e.GetProperty("Count").GetInt32(), Is.EqualTo(3));
            Assert.That(e.GetProperty("SourceContext").GetString(), Is.EqualTo("ConnMgr.Edge.ClientConnection"));
            Assert.That(e.GetProperty("EventId").GetProperty("Id").GetInt32(), Is.EqualTo(42));
            Assert.That(e.GetProperty("EventId").GetProperty("Name").GetString(), Is.EqualTo("LoginFailed"));
        });
    }

    [Test]
    public void Information_has_no_exception_field_and_at_sign_properties_are_escaped()
    {
        var logEvent = new LogEvent(DateTimeOffset.UnixEpoch, LogEventLevel.Information, exception: null,
            new MessageTemplateParser().Parse("plain"),
            [new LogEventProperty("@odd", new ScalarValue(1)), new LogEventProperty("List", new SequenceValue([new ScalarValue("a"), new ScalarValue(2)]))]);
        var output = new StringWriter();
        new CompactJsonFormatter().Format(logEvent, output);

        using JsonDocument document = JsonDocument.Parse(output.ToString());
        JsonElement e = document.RootElement;
        Assert.Multiple(() =>
        {
            Assert.That(e.GetProperty("@t").GetString(), Is.EqualTo("1970-01-01T00:00:00.0000000Z"));
            Assert.That(e.GetProperty("@l").GetString(), Is.EqualTo("Information"));
            Assert.That(e.TryGetProperty("@x", out _), Is.False);
            Assert.That(e.GetProperty("@@odd").GetInt32(), Is.EqualTo(1));
            Assert.That(e.GetProperty("List").GetRawText(), Is.EqualTo("[\"a\",2]"));
        });
    }

    private sealed class FormattingSink : ILogEventSink
    {
        private readonly StringWriter _output = new();
        private readonly CompactJsonFormatter _formatter = new();

        public string Output => _output.ToString();

        public void Emit(LogEvent logEvent) => _formatter.Format(logEvent, _output);
    }
}
