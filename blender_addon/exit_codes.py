"""The exit codes every handcap command uses (``handcap estimate|blend|demo|addon-zip`` and batch.py).

They are part of the contract between the engine and the add-on (which runs the engine as a
process and reads its exit code), so they live here, with the standard library only:

* 0 ``OK``        every input gave a result;
* 1 ``FAILED``    at least one input failed (its error line says why); the others went on;
* 2 ``USAGE``     the command line is wrong (an option, a value, an output folder that cannot be
                  written, missing weights): nothing was read and nothing was written;
* 3 ``NO_HAND``   every input was read and none failed, but at least one had no hand in it.

A process killed by a signal has no exit code of its own (Python reports ``-signal``).
"""

from __future__ import annotations

OK = 0
FAILED = 1
USAGE = 2
NO_HAND = 3


def exit_code(failed: int, without_hands: int, inputs: int) -> int:
    """The exit code of a run over ``inputs`` inputs, of which ``failed`` failed and
    ``without_hands`` were read fine but had no hand: a failure outranks a missing hand."""
    if failed or inputs == 0:
        return FAILED
    return NO_HAND if without_hands else OK
