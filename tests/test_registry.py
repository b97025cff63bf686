"""StorageRegistry: names and enum members, registration forms, errors, and entry-point discovery."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from hcsvfs import Backend, DiskStorageBackend, MemoryStorageBackend, StorageRegistry, storage_registry
from hcsvfs.errors import StorageError, StorageResolutionError
from hcsvfs.registry import ENTRY_POINT_GROUP, create_default_registry


def test_enum_members_and_strings_are_interchangeable() -> None:
    reg = StorageRegistry(discover=False)
    mem = MemoryStorageBackend()
    reg.register_backend("memory", mem)
    assert reg.get_backend(Backend.MEMORY) is mem
    assert reg.get_backend(" MEMORY ") is mem  # names are case- and space-insensitive
    assert Backend.MEMORY == "memory" and Backend("disk") is Backend.DISK
    assert Backend.MEMORY in reg and "memory" in reg and "Memory" in reg and 3 not in reg
    reg.register_backend(Backend.DISK, MemoryStorageBackend)
    assert reg.names() == ["disk", "memory"]


def test_classes_and_factories_are_instantiated_once_on_first_use() -> None:
    reg = StorageRegistry(discover=False)
    made: list[int] = []

    def factory() -> MemoryStorageBackend:
        made.append(1)
        return MemoryStorageBackend()

    reg.register_backend("lazy", factory)
    reg.register_backend("cls", MemoryStorageBackend)
    assert made == []
    first = reg.get_backend("lazy")
    assert reg.get_backend("lazy") is first and made == [1]
    assert isinstance(reg.get_backend("cls"), MemoryStorageBackend)
    assert reg.get_backend("cls") is reg.get_backend("cls")


def test_registration_errors() -> None:
    reg = StorageRegistry(discover=False)
    reg.register_backend("m", MemoryStorageBackend())
    with pytest.raises(ValueError, match="replace=True"):
        reg.register_backend("m", MemoryStorageBackend())
    other = MemoryStorageBackend()
    reg.register_backend("m", other, replace=True)
    assert reg.get_backend("m") is other
    with pytest.raises(TypeError, match="int"):
        reg.register_backend("bad", 42)  # type: ignore[arg-type]
    reg.register_backend("liar", lambda: "not a backend")  # type: ignore[arg-type, return-value]
    with pytest.raises(StorageResolutionError, match="returned str"):
        reg.get_backend("liar")
    for bad_name in ("", "  ", None, 3):
        with pytest.raises(StorageResolutionError):
            reg.register_backend(bad_name, MemoryStorageBackend())  # type: ignore[arg-type]


def test_unknown_backend_names_the_known_ones() -> None:
    reg = StorageRegistry(discover=False)
    reg.register_backend("memory", MemoryStorageBackend())
    reg.register_backend("disk", MemoryStorageBackend)
    with pytest.raises(StorageResolutionError) as info:
        reg.get_backend("s3")
    message = str(info.value)
    assert "'s3'" in message and "disk, memory" in message and "register_backend" in message
    assert isinstance(info.value, LookupError) and isinstance(info.value, StorageError)
    with pytest.raises(StorageResolutionError, match="FileManager"):
        reg.get_backend(Backend.AUTO)
    reg.unregister_backend("disk")
    assert reg.names() == ["memory"]
    with pytest.raises(StorageResolutionError):
        reg.unregister_backend("disk")


def test_default_registry_roots_disk_at_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reg = create_default_registry()
    assert {"memory", "disk", "zarr"} <= set(reg.names())
    assert reg is not storage_registry and reg.get_backend("memory") is not storage_registry.get_backend("memory")
    disk = reg.get_backend(Backend.DISK)
    assert isinstance(disk, DiskStorageBackend) and not disk.paths.jailed
    monkeypatch.chdir(tmp_path)
    disk.save("x", "here.txt")
    assert (tmp_path / "here.txt").read_text() == "x"


# ---------------------------------------------------------------- entry points
_PLUGIN = textwrap.dedent(
    """
    from hcsvfs.backends import MemoryStorageBackend

    class FakeCloudBackend(MemoryStorageBackend):
        name = "fakecloud"

    shared_instance = FakeCloudBackend()
    """
)


@pytest.fixture
def plugin_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A third-party distribution, installed the way pip would: a module plus a dist-info with entry points."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "hcsvfs_fake_plugin.py").write_text(_PLUGIN)
    dist = site / "hcsvfs_fake_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: hcsvfs-fake-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\n"
        "fakecloud = hcsvfs_fake_plugin:FakeCloudBackend\n"
        "fakeshared = hcsvfs_fake_plugin:shared_instance\n"
        "broken = hcsvfs_fake_plugin_missing:Backend\n"
        "memory = hcsvfs_fake_plugin:FakeCloudBackend\n"
    )
    monkeypatch.syspath_prepend(str(site))
    return site


def test_third_party_backends_are_discovered_through_entry_points(plugin_on_path: Path) -> None:
    reg = StorageRegistry()
    mem = MemoryStorageBackend()
    reg.register_backend("memory", mem)
    cloud = reg.get_backend("fakecloud")
    assert type(cloud).__name__ == "FakeCloudBackend" and reg.get_backend("FAKECLOUD") is cloud
    import hcsvfs_fake_plugin

    assert reg.get_backend("fakeshared") is hcsvfs_fake_plugin.shared_instance  # an instance is used as it is
    assert reg.get_backend("memory") is mem  # explicit registrations win over plugins
    assert {"fakecloud", "fakeshared", "broken"} <= set(reg.names())


def test_a_broken_plugin_says_which_one_it_is(plugin_on_path: Path) -> None:
    reg = StorageRegistry()
    with pytest.raises(StorageResolutionError) as info:
        reg.get_backend("broken")
    message = str(info.value)
    assert "broken" in message and "hcsvfs_fake_plugin_missing:Backend" in message and "hcsvfs-fake-plugin" in message
    assert reg.get_backend("fakecloud").name == "fakecloud"  # one bad plugin does not poison the others


def test_discovery_can_be_turned_off(plugin_on_path: Path) -> None:
    reg = StorageRegistry(discover=False)
    with pytest.raises(StorageResolutionError, match="fakecloud"):
        reg.get_backend("fakecloud")
