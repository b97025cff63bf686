"""Steps: ``AbstractStep`` (anything with ``execute(context)``) and ``FunctionStep`` (one image function)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Any

from ..arrays import MemoryType, convert, memory_type
from .context import ProcessingContext
from .functions import ImageFunction, get_function

__all__ = ["AbstractStep", "FunctionStep"]


class AbstractStep(ABC):
    """One stage of a pipeline; reads and writes through ``context.filemanager``.

    ``output_backend`` overrides where the step's images go (None: the
    pipeline's intermediate backend).
    """

    name: str = "step"
    output_backend: str | None = None

    @abstractmethod
    def execute(self, context: ProcessingContext) -> None:
        """Process ``context.well``: read inputs, write outputs (``context.write_images``)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class FunctionStep(AbstractStep):
    """Apply an image function to every image of the well: ``FunctionStep(func="gaussian_filter", sigma=2)``.

    ``func`` is a registered name (see :mod:`hcsvfs.pipeline.functions`) or a
    callable (``memory_type`` says what arrays it takes; default numpy).
    ``channels`` limits the step to those channels (the others are dropped).
    Inputs are converted to the function's memory type at the step boundary.
    """

    def __init__(
        self,
        func: str | Callable[..., Any],
        *,
        name: str | None = None,
        channels: Iterable[int] | None = None,
        memory_type: MemoryType | None = None,
        output_backend: str | None = None,
        **params: Any,
    ) -> None:
        if isinstance(func, str):
            self.function = get_function(func, prefer=memory_type)  # fail at construction, not mid-plate
        elif callable(func):
            self.function = ImageFunction(getattr(func, "__name__", "function"), func, memory_type or "numpy")
        else:
            raise TypeError(f"FunctionStep func must be a registered name or a callable, not {type(func).__name__}")
        self.name = name or self.function.name
        self.channels = None if channels is None else frozenset(channels)
        self.output_backend = output_backend
        self.params = params

    def execute(self, context: ProcessingContext) -> None:
        fn, params, wanted = self.function, self.params, self.channels

        def results() -> Iterable[tuple[Any, Any]]:
            for key, image in context.previous_images():
                if wanted is not None and key.channel not in wanted:
                    continue
                if memory_type(image) != fn.memory_type:
                    image = convert(image, fn.memory_type)
                yield key, fn(image, **params)

        context.write_images(results(), self.output_backend)

    def __getstate__(self) -> dict[str, Any]:
        # Registered functions travel by name, so workers use their own (e.g. CuPy) registry entry.
        state = dict(self.__dict__)
        if _registered(self.function.name, self.function.memory_type) is self.function:
            state["function"] = (self.function.name, self.function.memory_type)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if isinstance(state["function"], tuple):
            name, kind = state["function"]
            state["function"] = get_function(name, prefer=kind)
        self.__dict__.update(state)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"FunctionStep({self.function.name!r}{', ' + args if args else ''})"


def _registered(name: str, kind: MemoryType) -> ImageFunction | None:
    """The registered entry, or None (a user callable that was never registered)."""
    try:
        return get_function(name, prefer=kind)
    except LookupError:
        return None
