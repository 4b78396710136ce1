using System.Globalization;
using Serilog.Events;
using Serilog.Formatting;
using Serilog.Formatting.Json;

namespace ConnMgr.Diagnostics;

/// <summary>
/// One JSON object per line in the compact log event format (CLEF), which
/// journald stores as one message and <c>jq</c> or a log shipper reads back:
/// <c>@t</c> UTC timestamp, <c>@mt</c> message template, <c>@m</c> rendered
/// message, <c>@l</c> level, <c>@x</c> exception, then the event's properties
/// (<c>SourceContext</c>, <c>EventId</c> and the template's named values).
/// </summary>
internal sealed class CompactJsonFormatter : ITextFormatter
{
    // "$type" marks a destructured object's type, as CLEF readers expect.
    private readonly JsonValueFormatter _values = new(typeTagName: "$type");

    public void Format(LogEvent logEvent, TextWriter output)
    {
        output.Write("{\"@t\":\"");
        output.Write(logEvent.Timestamp.UtcDateTime.ToString("O", CultureInfo.InvariantCulture));
        output.Write("\",\"@mt\":");
        JsonValueFormatter.WriteQuotedJsonString(logEvent.MessageTemplate.Text, output);
        output.Write(",\"@m\":");
        JsonValueFormatter.WriteQuotedJsonString(logEvent.RenderMessage(CultureInfo.InvariantCulture), output);
        output.Write(",\"@l\":\"");
        output.Write(logEvent.Level.ToString());
        output.Write('"');
        if (logEvent.Exception is not null)
        {
            output.Write(",\"@x\":");
            JsonValueFormatter.WriteQuotedJsonString(logEvent.Exception.ToString(), output);
        }
        foreach (KeyValuePair<string, LogEventPropertyValue> property in logEvent.Properties)
        {
            output.Write(',');
            // CLEF reserves names starting with '@'; a property of that name is escaped by doubling it.
            string name = property.Key.StartsWith('@') ? "@" + property.Key : property.Key;
            JsonValueFormatter.WriteQuotedJsonString(name, output);
            output.Write(':');
            _values.Format(property.Value, output);
        }
        output.Write("}\n");
    }
}
