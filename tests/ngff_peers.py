"""Small HCS plates written by other tools, as their users write them, for the interop tests.

Every plate: wells A/1 and B/2, two fields each, channels DAPI and GFP, two
z-planes of 16 x 16 uint16 whose every pixel encodes where it is
(1000 * well + 100 * field + 10 * channel + z), so a plane read from the wrong
place is caught. ``expected()`` gives the ImageXpress names hcsvfs lists and
each plane's value.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

WELLS = [("A", 1), ("B", 2)]
FIELDS, CHANNELS, ZS, SIDE = 2, 2, 2, 16
CHANNEL_NAMES = ["DAPI", "GFP"]


def value(well: int, field: int, channel: int, z: int) -> int:
    return 1000 * well + 100 * field + 10 * channel + z


def field_data(well: int, field: int) -> np.ndarray:
    """One field as (c, z, y, x)."""
    out = np.empty((CHANNELS, ZS, SIDE, SIDE), np.uint16)
    for c in range(CHANNELS):
        for z in range(ZS):
            out[c, z] = value(well, field, c, z)
    return out


def expected() -> dict[str, int]:
    """ImageXpress name -> the value of every pixel of that plane."""
    return {
        f"{r}{col:02d}_s{f + 1}_w{c + 1}_z{z + 1:03d}_t001.tif": value(w, f, c, z)
        for w, (r, col) in enumerate(WELLS)
        for f in range(FIELDS)
        for c in range(CHANNELS)
        for z in range(ZS)
    }


# ---------------------------------------------------------------- writers
def write_ngio(path: Path, version: str) -> None:
    import ngio

    plate = ngio.create_empty_plate(str(path), name="ngio", ngff_version=version)
    for w, (row, col) in enumerate(WELLS):
        for f in range(FIELDS):
            plate.add_image(row, col, str(f))
            store = plate.get_image_store(row, col, str(f))
            ngio.create_ome_zarr_from_array(
                store, field_data(w, f), pixelsize=0.5, axes_names="czyx", channels_meta=CHANNEL_NAMES, levels=2,
                ngff_version=version, overwrite=True,
            )


def write_ome_zarr_py(path: Path, version: str) -> None:
    import zarr

    with warnings.catch_warnings():  # ome-zarr's writer module builds a deprecated default Scaler at import
        warnings.simplefilter("ignore", DeprecationWarning)
        from ome_zarr.format import FormatV04, FormatV05
        from ome_zarr.writer import write_image, write_plate_metadata, write_well_metadata

    fmt = FormatV04() if version == "0.4" else FormatV05()
    root = zarr.open_group(str(path), mode="w", zarr_format=2 if version == "0.4" else 3)
    rows = sorted({r for r, _ in WELLS})
    cols = [str(c) for c in sorted({c for _, c in WELLS})]
    write_plate_metadata(root, rows, cols, [f"{r}/{c}" for r, c in WELLS], fmt=fmt, field_count=FIELDS)
    for w, (row, col) in enumerate(WELLS):
        well = root.require_group(row).require_group(str(col))
        write_well_metadata(well, [{"path": str(f)} for f in range(FIELDS)], fmt=fmt)
        for f in range(FIELDS):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                write_image(field_data(w, f), well.require_group(str(f)), axes="czyx", fmt=fmt, scaler=None)


def write_ngff_zarr(path: Path, version: str) -> None:
    import ngff_zarr as nz

    plate = nz.Plate(
        columns=[nz.PlateColumn(name=str(c)) for c in sorted({c for _, c in WELLS})],
        rows=[nz.PlateRow(name=r) for r in sorted({r for r, _ in WELLS})],
        wells=[nz.PlateWell(path=f"{r}/{c}", rowIndex=i, columnIndex=i) for i, (r, c) in enumerate(WELLS)],
        name="ngff-zarr",
        field_count=FIELDS,
        version=version,
    )
    nz.to_hcs_zarr(nz.HCSPlate(str(path), plate), str(path))
    for w, (row, col) in enumerate(WELLS):
        for f in range(FIELDS):
            image = nz.to_ngff_image(field_data(w, f), dims=["c", "z", "y", "x"], channel_names=CHANNEL_NAMES)
            nz.write_hcs_well_image(str(path), nz.to_multiscales(image, scale_factors=[]), plate, row, str(col),
                                    field_index=f, version=version)


def write_polystore(path: Path, version: str) -> None:
    """The original system's plate (zarr v2, NGFF 0.4): one image per field and a filename map on each array."""
    from polystore.config import ZarrChunkStrategy, ZarrCompressor, ZarrConfig
    from polystore.zarr import ZarrStorageBackend
    from polystore.zarr_batch import ZarrBatchAxis, ZarrBatchAxisRole, ZarrBatchLayout

    assert version == "0.4", "polystore writes NGFF 0.4"
    backend = ZarrStorageBackend(ZarrConfig(ZarrCompressor.BLOSC, 1, ZarrChunkStrategy.WELL))
    for w, (row, col) in enumerate(WELLS):
        names, planes, coords = [], [], []
        for f in range(FIELDS):
            data = field_data(w, f)
            for c in range(CHANNELS):
                for z in range(ZS):
                    names.append(str(path / f"{row}{col:02d}_s{f + 1}_w{c + 1}_z{z + 1:03d}_t001.tif"))
                    planes.append(data[c, z])
                    coords.append((f, c, z))
        layout = ZarrBatchLayout(
            axes=(
                ZarrBatchAxis("field", tuple(str(f + 1) for f in range(FIELDS)), ZarrBatchAxisRole.HCS_IMAGE),
                ZarrBatchAxis("c", tuple(str(c + 1) for c in range(CHANNELS))),
                ZarrBatchAxis("z", tuple(str(z + 1) for z in range(ZS))),
            ),
            item_coordinates=tuple(coords),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            backend.save_batch(planes, names, chunk_name=f"{row}{col:02d}", batch_layout=layout, row=row, col=f"{col:02d}")


def write_bioio(path: Path, version: str) -> None:
    """bioio-ome-zarr writes images, not plates: its OMEZarrWriter writes each field, the plate and well
    metadata are written as a user of it would, with zarr."""
    import zarr
    from bioio_ome_zarr.writers import Channel, OMEZarrWriter

    fmt = 2 if version == "0.4" else 3
    root = zarr.open_group(str(path), mode="w", zarr_format=fmt)
    rows = sorted({r for r, _ in WELLS})
    cols = sorted({c for _, c in WELLS})

    def ngff(doc: dict) -> dict:
        return {**doc, "version": version} if fmt == 2 else {"ome": {"version": version, **doc}}

    root.attrs.update(ngff({"plate": {
        "rows": [{"name": r} for r in rows],
        "columns": [{"name": str(c)} for c in cols],
        "wells": [{"path": f"{r}/{c}", "rowIndex": rows.index(r), "columnIndex": cols.index(c)} for r, c in WELLS],
        "field_count": FIELDS,
        **({"version": version} if fmt == 2 else {}),
    }}))
    for w, (row, col) in enumerate(WELLS):
        well = root.require_group(row).require_group(str(col))
        images = [{"path": str(f)} for f in range(FIELDS)]
        well.attrs.update(ngff({"well": {"images": images, **({"version": version} if fmt == 2 else {})}}))
        for f in range(FIELDS):
            writer = OMEZarrWriter(
                f"{path}/{row}/{col}/{f}", level_shapes=(CHANNELS, ZS, SIDE, SIDE), dtype="uint16", zarr_format=fmt,
                axes_names=["c", "z", "y", "x"], axes_types=["channel", "space", "space", "space"],
                channels=[Channel(label=n, color="FFFFFF") for n in CHANNEL_NAMES],
            )
            writer.write_full_volume(field_data(w, f))


#: (tool, NGFF version) -> writer. ome-zarr-py, ngio, ngff-zarr and bioio write both versions; polystore 0.4.
WRITERS: dict[tuple[str, str], Callable[[Path, str], None]] = {
    **{("ngio", v): write_ngio for v in ("0.4", "0.5")},
    **{("ome-zarr-py", v): write_ome_zarr_py for v in ("0.4", "0.5")},
    **{("ngff-zarr", v): write_ngff_zarr for v in ("0.4", "0.5")},
    **{("bioio-ome-zarr", v): write_bioio for v in ("0.4", "0.5")},
    ("polystore", "0.4"): write_polystore,
}
