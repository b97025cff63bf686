"""PyTorch ``.pt``: tensors and state dicts, always loaded with ``weights_only=True``."""

from __future__ import annotations

import pickle
import sys
from typing import Any, BinaryIO

from ..errors import UnsafeLoadError
from .base import Format, zip_first_member


def _is_tensor_tree(obj: Any, torch: Any) -> bool:
    if isinstance(obj, torch.Tensor):
        return True
    if isinstance(obj, dict):
        return bool(obj) and all(isinstance(k, str) and _is_tensor_tree(v, torch) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return bool(obj) and all(_is_tensor_tree(v, torch) for v in obj)
    return False


class TorchFormat(Format):
    name = "torch"
    extensions = (".pt", ".pth")
    load_options = frozenset({"map_location"})

    def accepts(self, obj: Any) -> bool:
        torch = sys.modules.get("torch")  # a tensor can exist only if torch is imported
        return torch is not None and _is_tensor_tree(obj, torch)

    def dump(self, obj: Any, fh: BinaryIO, **options: Any) -> None:
        import torch

        torch.save(obj, fh)

    def load(self, fh: BinaryIO, **options: Any) -> Any:
        import torch

        # weights_only: a .pt file from elsewhere must not be able to run code on load.
        try:
            return torch.load(fh, weights_only=True, map_location=options.get("map_location", "cpu"))
        except pickle.UnpicklingError as exc:
            if "weights_only" not in str(exc):
                raise  # damaged bytes, reported as corrupt by the backend
            raise UnsafeLoadError(
                "this .pt file holds pickled objects other than tensors, and unpickling them could run code; "
                "hcsvfs loads .pt files with weights_only=True. Save tensors or dicts of tensors only, or load "
                "a file you trust with torch.load yourself"
            ) from None

    def sniff(self, head: bytes) -> bool:
        # A zip whose first member is torch's pickle ("archive/data.pkl"): other zips (.npz, ROI sets) are not torch.
        return head.startswith(b"PK\x03\x04") and zip_first_member(head).endswith("data.pkl")

