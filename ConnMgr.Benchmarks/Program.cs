using BenchmarkDotNet.Running;

namespace ConnMgr.Benchmarks;

// In a namespace: the daemon's top-level Program (global namespace) is visible here through InternalsVisibleTo.
public static class Program
{
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
