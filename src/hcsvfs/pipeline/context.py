"""ProcessingContext: what a step sees while one well is processed (storage, plate, inputs, outputs)."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import paths as P
from ..arrays import to_numpy
from ..filemanager import FileManager
from ..hcs import HCSName
from .errors import StepOutputError
from .ingest import PlateLayout, output_name

__all__ = ["ProcessingContext", "StepOutput"]


@dataclass(frozen=True)
class StepOutput:
    """Where a step left its images: a backend, a folder on it, and the image keys (one file each)."""

    backend: str
    directory: str
    keys: tuple[HCSName, ...]

    def path(self, key: HCSName) -> str:
        return P.join(self.directory, output_name(key).removesuffix(".tif") + ".npy")


@dataclass
class ProcessingContext:
    """One well's processing state, passed to every step's ``execute``.

    ``original_input_path`` is the plate folder on ``input_backend`` (disk),
    ``current_step_output`` the previous step's images (memory by default),
    ``output_path`` the destination plate on ``output_backend`` (zarr).
    """

    filemanager: FileManager
    plate: PlateLayout
    well: str
    original_input_path: str
    output_path: str
    input_backend: str = "disk"
    intermediate_backend: str = "memory"
    output_backend: str = "zarr"
    scratch_path: str = "hcsvfs-scratch"
    current_step_output: StepOutput | None = None
    step_name: str = ""
    measurements: list[dict[str, Any]] = field(default_factory=list)
    bytes_read: int = 0
    _plane_shape: tuple[int, ...] | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ reading
    def original_images(self) -> Iterator[tuple[HCSName, np.ndarray]]:
        """The well's input images (z-stacks as 3-D arrays), read from the input backend one at a time."""
        for key, records in self.plate.stacks(self.well):
            yield key, self.original_image(key, records)

    def original_image(self, key: HCSName, records: list | None = None) -> np.ndarray:
        """One input image of this well (any field, channel and t), read from the input backend."""
        if records is None:
            records = dict(self.plate.stacks(self.well))[dataclasses.replace(key, z=1)]
        image = self.plate.load_stack(self.filemanager, records, self.input_backend)
        self.bytes_read += image.nbytes
        self._plane_shape = tuple(image.shape[-2:])
        return image

    def input_plane_shape(self) -> tuple[int, ...]:
        """(y, x) of this well's input images (read once if no step has read one yet)."""
        if self._plane_shape is None:
            key, records = next(iter(self.plate.stacks(self.well)))
            self.original_image(key, records)
        return self._plane_shape  # type: ignore[return-value]

    def previous_images(self) -> Iterator[tuple[HCSName, Any]]:
        """The previous step's images, or the original input for the first step."""
        out = self.current_step_output
        if out is None:
            yield from self.original_images()
            return
        for key in out.keys:
            yield key, self.filemanager.load(out.path(key), out.backend)

    # ------------------------------------------------------------------ writing
    def write_images(self, items: Iterable[tuple[HCSName, Any]], backend: str | None = None) -> StepOutput:
        """Store a step's images (on the intermediate backend unless ``backend`` is given) and make them current."""
        target = backend or self.intermediate_backend
        directory = P.join(self.scratch_path, self.well, self.step_name)
        keys = []
        for key, image in items:
            self.filemanager.save(image, StepOutput(target, directory, ()).path(key), target, overwrite=True)
            keys.append(key)
        previous, self.current_step_output = self.current_step_output, StepOutput(target, directory, tuple(keys))
        if previous is not None and previous.directory != directory:
            # Only the latest output is ever read again: free the older one now, not at the end of the well.
            self.filemanager.delete_all(previous.directory, previous.backend)
        return self.current_step_output

    def write_final(self, labels: str | None = None) -> int:
        """Write the current images to the output plate as 2-D planes; returns how many planes were written.

        With ``labels`` (a name such as ``"cells"``) the plate gets the well's raw input images, field by
        field, and the current images become the NGFF label image ``labels`` of each field, so a viewer
        shows the segmentation over the raw data.
        """
        out = self.current_step_output
        if out is None:
            return 0
        written = 0
        if labels is not None:
            for _field, stacks in itertools.groupby(self.plate.stacks(self.well), key=lambda item: item[0].field):
                raw = ((key, self.original_image(key, records)) for key, records in stacks)
                written += self._save_planes(raw, {})  # one field at a time: memory stays bounded
            channels = sorted({k.channel for k in out.keys})  # label channels numbered from 1, in order
            renumber = {c: i + 1 for i, c in enumerate(channels)}
        images = ((key, to_output_array(self.filemanager.load(out.path(key), out.backend), self, key)) for key in out.keys)
        if labels is not None:
            images = ((dataclasses.replace(key, channel=renumber[key.channel]), image) for key, image in images)
        return written + self._save_planes(images, {"label": labels} if labels is not None else {})

    def _save_planes(self, images: Iterable[tuple[HCSName, np.ndarray]], options: dict[str, Any]) -> int:
        """Save (z, y, x) or (y, x) images to the output plate as named 2-D planes, in one batch."""
        planes: list[np.ndarray] = []
        names: list[str] = []
        for key, image in images:
            stack = image if image.ndim == 3 else image[None]
            for z, plane in enumerate(stack, start=1):
                planes.append(plane)
                names.append(P.join(self.output_path, output_name(dataclasses.replace(key, z=z))))
        self.filemanager.save_batch(planes, names, self.output_backend, overwrite=True, **options)
        return len(planes)

    def free_intermediates(self) -> None:
        """Drop this well's scratch images from every backend they were written to."""
        backends = {self.intermediate_backend}
        if self.current_step_output is not None and self.current_step_output.backend != self.output_backend:
            backends.add(self.current_step_output.backend)
        directory = P.join(self.scratch_path, self.well)
        for backend in backends:
            if self.filemanager.exists(directory, backend):
                self.filemanager.delete_all(directory, backend)


def to_output_array(image: Any, ctx: ProcessingContext, key: HCSName) -> np.ndarray:
    """Host NumPy array a plate can store, or StepOutputError naming the well, step and image."""
    where = f"step {ctx.step_name!r} returned for well {ctx.well} ({output_name(key)})"
    try:
        arr = to_numpy(image)
    except TypeError:
        raise StepOutputError(
            f"{where} a {type(image).__name__}, not an image array; a step feeding the output plate must return "
            "an array of the input image's height and width",
            path=ctx.output_path,
        ) from None
    if arr.dtype == bool:
        arr = arr.view(np.uint8)  # masks are stored as 0/1 bytes
    if arr.dtype.kind not in "biuf":
        raise StepOutputError(
            f"{where} dtype {arr.dtype}, which an OME-Zarr plate cannot store; return an integer or float array",
            path=ctx.output_path,
        )
    expected = ctx.input_plane_shape()
    if arr.ndim not in (2, 3) or tuple(arr.shape[-2:]) != expected:
        raise StepOutputError(
            f"{where} shape {arr.shape}; the output plate needs (y, x) or (z, y, x) images of the input's "
            f"height and width {expected}",
            path=ctx.output_path,
        )
    return arr
