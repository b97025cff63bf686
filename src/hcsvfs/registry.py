"""Backend names, the registry that maps them to backend instances, and the default registry."""

from __future__ import annotations

import importlib
import pickle
import threading
from collections.abc import Callable, Mapping
from enum import Enum, StrEnum
from importlib.metadata import EntryPoint, entry_points
from typing import Any, cast

from .backends.base import StorageBackend
from .errors import StorageResolutionError

__all__ = [
    "Backend",
    "BackendRef",
    "canonical_name",
    "StorageRegistry",
    "storage_registry",
    "create_default_registry",
    "ENTRY_POINT_GROUP",
]

#: Third-party packages add backends by declaring entry points in this group.
ENTRY_POINT_GROUP = "hcsvfs.backends"


class Backend(StrEnum):
    """Built-in backend names; a plain string works anywhere a member does."""

    MEMORY = "memory"
    DISK = "disk"
    ZARR = "zarr"
    OBJECT_STORE = "objectstore"
    OVERLAY = "overlay"
    SHARED_MEMORY = "shared_memory"
    #: Let FileManager choose memory, disk or zarr for each object (see FileManager.where).
    AUTO = "auto"


#: A backend name: a :class:`Backend` member, a string, or any Enum member whose value is a name
#: (callers of the original system pass their own ``Backend`` enum).
BackendRef = Backend | str | Enum
_Factory = Callable[[], StorageBackend]


def canonical_name(name: BackendRef) -> str:
    """The registry key for a backend name or member: ``Backend.DISK``, ``"DISK"`` and ``" disk "`` are all
    ``"disk"``, and so is a member of another Enum whose value is ``"disk"``."""
    if isinstance(name, Backend):
        return name._value_  # not .value: the enum descriptor costs more than the rest of a memory load
    if isinstance(name, Enum) and not isinstance(name, str):
        name = name._value_  # another library's enum (its value is the name); a str-mixin enum is a str already
    if not isinstance(name, str) or not name.strip():
        raise StorageResolutionError(
            f"a backend is named by a Backend member, a non-empty str or an Enum member whose value is one, not {name!r}"
        )
    return name.strip().lower()


class _Lazy:
    """A factory that imports its backend class only when first asked for (keeps `import hcsvfs` light);
    a class rather than a closure so that a registry holding it pickles."""

    def __init__(self, module: str, attr: str, **kwargs: object) -> None:
        self.module, self.attr, self.kwargs = module, attr, kwargs

    def __call__(self) -> StorageBackend:
        cls = getattr(importlib.import_module(self.module), self.attr)
        return cast(StorageBackend, cls(**self.kwargs))

    def __repr__(self) -> str:
        return f"{self.module}.{self.attr}"



class StorageRegistry:
    """Maps backend names to backend instances.

    A class or zero-argument factory registered here is instantiated on first
    use; an instance is used as it is. Names are case-insensitive and
    ``Backend`` members are interchangeable with their strings.
    """

    def __init__(self, *, discover: bool = True) -> None:
        self._instances: dict[str, StorageBackend] = {}
        self._factories: dict[str, _Factory] = {}
        self._lock = threading.RLock()
        self._discover = discover
        self._discovered = False

    @classmethod
    def from_mapping(
        cls, backends: Mapping[BackendRef, StorageBackend | type[StorageBackend] | _Factory]
    ) -> StorageRegistry:
        """A registry holding exactly ``backends`` (name or enum member -> instance, class or factory), as the
        original system's ``FileManager({Backend.DISK: DiskStorageBackend(), ...})`` builds one."""
        if not isinstance(backends, Mapping):
            raise TypeError(f"from_mapping takes a mapping of backend name to backend, not {type(backends).__name__}")
        registry = cls(discover=False)
        for name, backend in backends.items():
            registry.register_backend(name, backend)
        return registry

    def register_backend(
        self, name: BackendRef, backend: StorageBackend | type[StorageBackend] | _Factory, *, replace: bool = False
    ) -> None:
        """Register ``backend`` (an instance, a class, or a zero-argument factory) under ``name``."""
        key = canonical_name(name)
        with self._lock:
            if not replace and (key in self._instances or key in self._factories):
                raise ValueError(f"backend {key!r} is already registered; pass replace=True to swap it")
            self._instances.pop(key, None)
            self._factories.pop(key, None)
            if isinstance(backend, StorageBackend):
                self._instances[key] = backend
            elif callable(backend):
                self._factories[key] = backend  # classes are factories too
            else:
                raise TypeError(
                    f"register_backend({key!r}, ...) takes a StorageBackend instance, class or factory, "
                    f"not {type(backend).__name__}"
                )

    def unregister_backend(self, name: BackendRef) -> None:
        """Forget ``name``; StorageResolutionError if it was never registered."""
        key = canonical_name(name)
        with self._lock:
            if self._instances.pop(key, None) is None and self._factories.pop(key, None) is None:
                raise self._unknown(key)

    def get_backend(self, name: BackendRef) -> StorageBackend:
        """The backend registered as ``name``; StorageResolutionError listing the known names otherwise."""
        key = canonical_name(name)
        found = self._instances.get(key)  # a plain dict read is atomic: no lock on the hot path
        if found is not None:
            return found
        with self._lock:
            found = self._instances.get(key)
            if found is not None:
                return found
            if key not in self._factories and self._discover and not self._discovered:
                self._discover_entry_points()
            factory = self._factories.get(key)
            if factory is None:
                raise self._unknown(key)
            instance = factory()
            if not isinstance(instance, StorageBackend):
                raise StorageResolutionError(
                    f"backend {key!r} was registered with a factory that returned {type(instance).__name__}, "
                    "not a StorageBackend"
                )
            self._instances[key] = instance
            del self._factories[key]
            return instance

    def __getstate__(self) -> dict[str, Any]:
        """Backends travel as they pickle (see each backend: memory arrives empty, shared memory and object
        stores reattach); a factory that cannot be pickled (a lambda) is named in the error."""
        with self._lock:
            for key, factory in self._factories.items():
                try:
                    pickle.dumps(factory)
                except Exception as exc:
                    raise TypeError(
                        f"backend {key!r} was registered with a factory that cannot be pickled ({exc}); to send this "
                        "registry (or a FileManager) to another process, register a class, an instance or a "
                        "module-level function"
                    ) from None
            return {"instances": dict(self._instances), "factories": dict(self._factories),
                    "discover": self._discover, "discovered": self._discovered}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._instances, self._factories = state["instances"], state["factories"]
        self._discover, self._discovered = state["discover"], state["discovered"]
        self._lock = threading.RLock()

    def close(self) -> None:
        """Close every backend made so far that has a ``close()`` (overlays stop their threads, shared memory
        unlinks what it owns); names stay registered."""
        with self._lock:
            made = list(self._instances.values())
        for backend in made:
            close = getattr(backend, "close", None)
            if callable(close):
                close()

    def names(self) -> list[str]:
        """Every registered name (instantiated or not), sorted."""
        with self._lock:
            return sorted({*self._instances, *self._factories})

    def __contains__(self, name: object) -> bool:
        try:
            key = canonical_name(name)  # type: ignore[arg-type]
        except StorageResolutionError:
            return False
        with self._lock:
            return key in self._instances or key in self._factories

    def _discover_entry_points(self) -> None:
        self._discovered = True
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            key = canonical_name(ep.name)
            if key not in self._instances and key not in self._factories:
                self._factories[key] = _entry_point_factory(ep)

    def _unknown(self, key: str) -> StorageResolutionError:
        known = ", ".join(self.names()) or "none"
        hint = ""
        if key == Backend.AUTO:
            hint = "; Backend.AUTO is resolved by FileManager, not by the registry"
        return StorageResolutionError(
            f"no backend named {key!r} is registered (known: {known}){hint}; "
            "register one with register_backend(name, backend) or mount a URL with FileManager.mount()"
        )

    def __repr__(self) -> str:
        return f"<StorageRegistry {', '.join(self.names())}>"


def _entry_point_factory(ep: EntryPoint) -> _Factory:
    def make() -> StorageBackend:
        try:
            loaded = ep.load()
        except Exception as exc:  # a broken plugin must say which one it is, not just "No module named x"
            dist = f" of {ep.dist.name}" if ep.dist is not None else ""
            raise StorageResolutionError(
                f"backend {ep.name!r} from entry point {ep.value!r}{dist} ({ENTRY_POINT_GROUP!r}) failed to load: "
                f"{type(exc).__name__}: {exc}; fix or uninstall that package"
            ) from exc
        return loaded if isinstance(loaded, StorageBackend) else loaded()

    return make


def create_default_registry() -> StorageRegistry:
    """A fresh registry with memory, disk and zarr; disk and zarr rooted at the working directory."""
    reg = StorageRegistry()
    reg.register_backend(Backend.MEMORY, _Lazy("hcsvfs.backends.memory", "MemoryStorageBackend"))
    reg.register_backend(Backend.DISK, _Lazy("hcsvfs.backends.disk", "DiskStorageBackend"))
    reg.register_backend(Backend.ZARR, _Lazy("hcsvfs.backends.zarr", "ZarrStorageBackend"))
    return reg


#: The process-wide default registry (like the original system's global one).
storage_registry = create_default_registry()
