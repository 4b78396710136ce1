namespace ConnMgr.Options;

/// <summary>Section <c>Testing</c>: switches for in-process tests, not for deployments.</summary>
internal sealed class TestingOptions : SectionOptions
{
    internal const string Section = "Testing";

    internal override string? SectionName => Section;

    /// <summary>
    /// <c>Testing:EphemeralPorts</c>: every enabled listener binds a port chosen by
    /// the system instead of its configured one (a port set to 0 stays off), so
    /// that tests can run side by side. Find the ports in
    /// <see cref="ConnMgr.Hosting.ListenerEndpoints"/>. Default <c>false</c>.
    /// </summary>
    public bool EphemeralPorts { get; set; }
}

internal sealed class TestingOptionsValidator : SectionValidator<TestingOptions>
{
    // A bool has no invalid values; only unconvertible input is reported.
    protected override void Check(TestingOptions options, List<string> failures)
    {
    }
}
