using System.Runtime.CompilerServices;
using ConnMgr.Core.Links;
using NUnit.Framework;

namespace ConnMgr.Tests.Core;

[TestFixture]
public sealed class ConnectionManagerGroupTests
{
    // The group only holds links by reference: blank instances stand in for connected ones.
    private static CoreLink Link() => (CoreLink)RuntimeHelpers.GetUninitializedObject(typeof(CoreLink));

    [Test]
    public void Adding_a_link_returns_the_count_with_it_and_a_retired_group_takes_none()
    {
        var group = new ConnectionManagerGroup("cm1");
        var first = Link();
        var second = Link();

        Assert.That(group.TryAdd(first), Is.EqualTo(1));
        Assert.That(group.TryAdd(second), Is.EqualTo(2));
        Assert.That(group.Remove(first), Is.False, "a link is left");
        Assert.That(group.Remove(second), Is.True, "the last link retires the group");
        Assert.That(group.TryAdd(Link()), Is.EqualTo(0));
        Assert.That(group.LinkCount, Is.EqualTo(0));
    }

    [Test]
    public void Links_added_at_once_each_get_a_different_count()
    {
        const int Links = 64;
        var group = new ConnectionManagerGroup("cm1");
        var counts = new int[Links];
        Parallel.For(0, Links, k => counts[k] = group.TryAdd(Link()));
        Assert.That(counts.Order(), Is.EqualTo(Enumerable.Range(1, Links)));
    }
}
