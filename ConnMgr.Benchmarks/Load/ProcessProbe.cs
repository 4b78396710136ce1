using System.Globalization;
using System.Runtime.InteropServices;

namespace ConnMgr.Benchmarks.Load;

/// <summary>
/// Reads one process's resident memory (<c>VmRSS</c> of /proc/PID/status) and CPU time (utime + stime of
/// /proc/PID/stat, in clock ticks), once a second; proc(5) documents both files.
/// </summary>
internal sealed class ProcessProbe(string procDirectory)
{
    public static ProcessProbe Self { get; } = new("/proc/self");

    public static ProcessProbe ForPid(int pid) => new($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}");

    /// <summary>Clock ticks per second of the CPU times in /proc (sysconf(_SC_CLK_TCK), 100 on Linux).</summary>
    public static readonly double ClockTicksPerSecond = ReadClockTicks();

    /// <summary>RSS in bytes and CPU time in clock ticks; (-1, -1) once the process is gone.</summary>
    public (long RssBytes, long CpuTicks) Read()
    {
        try
        {
            return (ParseRss(File.ReadAllText(procDirectory + "/status")), ParseCpuTicks(File.ReadAllText(procDirectory + "/stat")));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return (-1, -1);
        }
    }

    /// <summary>The <c>VmRSS:   1234 kB</c> line, in bytes.</summary>
    internal static long ParseRss(string status)
    {
        foreach (var line in status.AsSpan().EnumerateLines())
        {
            if (!line.StartsWith("VmRSS:"))
                continue;
            var value = line["VmRSS:".Length..].Trim();
            var space = value.IndexOf(' ');
            return long.Parse(space < 0 ? value : value[..space], NumberStyles.Integer, CultureInfo.InvariantCulture) * 1024;
        }
        throw new FormatException("no VmRSS line");
    }

    /// <summary>utime + stime: fields 14 and 15 of /proc/PID/stat, counted after the parenthesised command name.</summary>
    internal static long ParseCpuTicks(string stat)
    {
        var close = stat.LastIndexOf(')');
        if (close < 0)
            throw new FormatException("no command name in stat");
        // After ") " come field 3 (state), 4, 5...: utime is the 12th of them, stime the 13th.
        var fields = stat[(close + 2)..].Split(' ');
        if (fields.Length < 13)
            throw new FormatException("stat has too few fields");
        return long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Kernel memory held by TCP sockets machine-wide and the TCP sockets in use, from /proc/net/sockstat
    /// (<c>TCP: inuse N orphan N tw N alloc N mem PAGES</c>); mem counts pages.
    /// </summary>
    public static (long MemoryBytes, long InUse) ReadTcpSockstat()
    {
        try
        {
            return ParseSockstat(File.ReadAllText("/proc/net/sockstat"), Environment.SystemPageSize);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return (-1, -1);
        }
    }

    internal static (long MemoryBytes, long InUse) ParseSockstat(string sockstat, int pageSize)
    {
        foreach (var line in sockstat.Split('\n'))
        {
            if (!line.StartsWith("TCP:", StringComparison.Ordinal))
                continue;
            var words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            long memory = -1, inUse = -1;
            for (var i = 1; i + 1 < words.Length; i += 2)
            {
                var value = long.Parse(words[i + 1], CultureInfo.InvariantCulture);
                if (words[i] == "mem")
                    memory = value * pageSize;
                else if (words[i] == "inuse")
                    inUse = value;
            }
            return (memory, inUse);
        }
        throw new FormatException("no TCP line in sockstat");
    }

    /// <summary>The 1, 5 and 15 minute load averages (/proc/loadavg): other work competing for the box's cores.</summary>
    public static string ReadLoadAverage()
    {
        try
        {
            var fields = File.ReadAllText("/proc/loadavg").Split(' ');
            return fields.Length >= 3 ? $"{fields[0]} {fields[1]} {fields[2]}" : "?";
        }
        catch (IOException)
        {
            return "?";
        }
    }

    private static double ReadClockTicks()
    {
        try
        {
            // _SC_CLK_TCK is 2 in glibc's <bits/confname.h>.
            var ticks = Sysconf(2);
            return ticks > 0 ? ticks : 100;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return 100;
        }
    }

    [DllImport("libc", EntryPoint = "sysconf")]
    private static extern long Sysconf(int name);
}

/// <summary>RLIMIT_NOFILE of this process: every client socket is one file descriptor.</summary>
internal static class FileDescriptorLimit
{
    /// <summary>Descriptors kept for the runtime, files and pipes beside the client sockets.</summary>
    public const int Reserve = 100;

    /// <summary>RLIMIT_NOFILE on Linux (asm-generic/resource.h).</summary>
    private const int RlimitNofile = 7;

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Maximum;
    }

    [DllImport("libc", EntryPoint = "getrlimit", SetLastError = true)]
    private static extern int GetRLimit(int resource, out RLimit limit);

    [DllImport("libc", EntryPoint = "setrlimit", SetLastError = true)]
    private static extern int SetRLimit(int resource, in RLimit limit);

    /// <summary>
    /// Raises the soft limit to the hard limit (20,000 on these machines; only the hard limit binds, and root
    /// cannot raise it here). Returns the soft limit before and after and the hard limit; -1s if unknown.
    /// </summary>
    public static (long Before, long After, long Hard) RaiseToHard()
    {
        try
        {
            if (GetRLimit(RlimitNofile, out var limit) != 0)
                return (-1, -1, -1);
            var before = (long)Math.Min(limit.Current, long.MaxValue);
            if (limit.Current < limit.Maximum)
            {
                var raised = new RLimit { Current = limit.Maximum, Maximum = limit.Maximum };
                if (SetRLimit(RlimitNofile, raised) == 0)
                    limit = raised;
            }
            return (before, (long)Math.Min(limit.Current, long.MaxValue), (long)Math.Min(limit.Maximum, long.MaxValue));
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return (-1, -1, -1);
        }
    }
}
