namespace ConnMgr.Options;

/// <summary>Section <c>Core</c>: the embedded core server.</summary>
internal sealed class CoreOptions : SectionOptions
{
    internal const string Section = "Core";

    internal override string? SectionName => Section;

    /// <summary>
    /// <c>Core:Enabled</c>: run the embedded core in this process. Default
    /// <c>true</c>; false when the edge links to Openfire or to a core on another box.
    /// </summary>
    public bool Enabled { get; set; } = true;

    /// <summary><c>Core:Port</c>: TCP port of the embedded core's link listener. Default <c>5262</c>, Openfire's.</summary>
    public int Port { get; set; } = 5262;

    /// <summary>
    /// <c>Core:ListenAddress</c>: local address of the link listener. Default
    /// <c>127.0.0.1</c>: only edges on this machine can link. To serve edges on
    /// other machines, bind a private address and firewall the port: anyone
    /// holding the secret can act for every user (spec section 3.6).
    /// </summary>
    public string ListenAddress { get; set; } = "127.0.0.1";

    /// <summary>
    /// <c>Core:RequireClientTls</c>: the configuration the core sends each edge says
    /// <c>&lt;starttls&gt;&lt;required/&gt;</c> (spec section 3.7), and the edge then
    /// refuses SASL on unencrypted client streams. Default <c>true</c>; false still
    /// offers TLS to clients, without requiring it.
    /// </summary>
    public bool RequireClientTls { get; set; } = true;
}

internal sealed class CoreOptionsValidator(UnvalidatedOptions<EdgeOptions> edge) : SectionValidator<CoreOptions>
{
    protected override void Check(CoreOptions o, List<string> failures)
    {
        Port(failures, o, nameof(o.Port), o.Port);
        IpAddress(failures, o, nameof(o.ListenAddress), o.ListenAddress);
        EdgeOptions edgeOptions = edge.Create();
        if (!o.Enabled && !edgeOptions.Enabled)
        {
            failures.Add($"{o.Key(nameof(o.Enabled))} and {edgeOptions.Key(nameof(edgeOptions.Enabled))} are both false: nothing to run");
        }
    }
}
