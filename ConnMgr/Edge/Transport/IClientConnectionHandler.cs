namespace ConnMgr.Edge.Transport;

/// <summary>What runs on a client connection: the XMPP stream layer. The transport knows no XMPP.</summary>
internal interface IClientConnectionHandler
{
    /// <summary>
    /// Runs one client's stream until it ends. Called after the PROXY header and, on Direct TLS,
    /// after the TLS handshake. When it returns the transport flushes what is queued (within
    /// <see cref="TransportSettings.CloseTimeout"/>) and closes the socket; the handler must not
    /// dispose the connection. <paramref name="stopping"/> fires when the daemon shuts down: the
    /// handler should then say goodbye (system-shutdown) and return before the drain deadline.
    /// </summary>
    Task RunAsync(ClientConnection connection, CancellationToken stopping);

    /// <summary>
    /// Called instead of <see cref="RunAsync"/> for a plain-TCP connection accepted over the
    /// connection cap (<see cref="ClientConnection.CloseReason"/> is already
    /// <see cref="CloseReason.ConnectionCap"/>), so the stream layer can write a short
    /// resource-constraint stream error before the transport closes it. Direct TLS connections over
    /// the cap are closed without a handshake: the cap exists to save that CPU.
    /// </summary>
    Task RejectAsync(ClientConnection connection, CancellationToken stopping) => Task.CompletedTask;
}
