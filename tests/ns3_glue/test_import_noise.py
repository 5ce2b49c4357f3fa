"""The ns-3 import's known cling noise is dropped from stderr; nothing else is."""

from __future__ import annotations

import os

from ns3_glue.build import KNOWN_IMPORT_NOISE, _known_import_noise_filtered


def test_only_the_known_noise_is_dropped_from_fd2(capfd):
    with _known_import_noise_filtered():
        os.write(2, f"{KNOWN_IMPORT_NOISE}: {{ (main, {{ __orc_init_func.cling-module-146 }}) }}\n".encode())
        os.write(2, b"a real error from C++\n")
        os.write(2, f"{KNOWN_IMPORT_NOISE}: again\n".encode())
    err = capfd.readouterr().err
    assert err == "a real error from C++\n"


def test_stderr_is_restored_when_the_block_raises(capfd):
    try:
        with _known_import_noise_filtered():
            os.write(2, b"said before failing\n")
            raise RuntimeError("import failed")
    except RuntimeError:
        pass
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "said before failing\nafter\n"
