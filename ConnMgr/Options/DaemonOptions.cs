namespace ConnMgr.Options;

/// <summary>Top-level keys (no section).</summary>
internal sealed class DaemonOptions : SectionOptions
{
    internal override string? SectionName => null;

    /// <summary>
    /// <c>DataDirectory</c>: where the embedded core keeps its SQLite database and
    /// where the generated certificate and link secret are written. A relative
    /// path is taken from the current directory (systemd: <c>WorkingDirectory</c>).
    /// Default <c>data</c>.
    /// </summary>
    public string DataDirectory { get; set; } = "data";

    /// <summary><see cref="DataDirectory"/> as an absolute path.</summary>
    public string DataDirectoryFullPath => Path.GetFullPath(DataDirectory);
}

internal sealed class DaemonOptionsValidator : SectionValidator<DaemonOptions>
{
    protected override void Check(DaemonOptions options, List<string> failures)
    {
        string key = options.Key(nameof(DaemonOptions.DataDirectory));
        if (string.IsNullOrWhiteSpace(options.DataDirectory))
        {
            failures.Add($"{key} must be a directory path (got \"{options.DataDirectory}\")");
        }
        else if (options.DataDirectory.IndexOfAny(Path.GetInvalidPathChars()) >= 0)
        {
            failures.Add($"{key} contains a character not allowed in a path (got \"{options.DataDirectory}\")");
        }
        else if (File.Exists(options.DataDirectory))
        {
            failures.Add($"{key} must be a directory, but {options.DataDirectoryFullPath} is a file");
        }
    }
}
